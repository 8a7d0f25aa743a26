#!/usr/bin/env bash
# End-to-end test of the broker's OIDC client (broker-oidc.c on broker-http.c) against the
# test IdP: a device login approved as alice (claims checked), one denied in the browser, an
# IdP that stops after discovery, and an unreachable issuer; both of the latter must fail fast.
# Then a scripted IdP (Python, signing with the openssl CLI) for what oidc-provider will not
# do on demand: slow_down, 5xx while polling, expiry, error answers, an oversized or slow
# answer, and a key rotation (ID token signed with a kid the first JWKS did not have).
#
#   oidc-devflow.sh PATH/TO/oidc-devflow
. "$(dirname "$0")/lib.sh"

bin=${1:?usage: oidc-devflow.sh PATH/TO/oidc-devflow}
[ -x "$bin" ] || fail "no test program at $bin"
approver=$SAW_SRC/tests/tools/saw-approve

start_idp

# run NAME ARGS...: one oidc-devflow run, its output kept for the failure report.
run() {
	local name=$1 rc=0
	shift
	timeout -k 5 120 "$bin" --approver "$approver" "$@" >"$T/$name.out" 2>"$T/$name.err" ||
		rc=$?
	SAW_LOGS+=("$T/$name.err")
	cat "$T/$name.out"
	assert_status "$rc" 0 "$name"
}

run approve --issuer "$IDP_URL" --mode approve --login alice --expect-group saw-users
assert_contains "$T/approve.out" "preferred_username=alice" "approved as alice"
run deny --issuer "$IDP_URL" --mode deny --login bob
assert_contains "$T/deny.out" "PASS: denied" "denied by the user"

# The IdP answered discovery, then goes away: the login fails at the device authorization
# step at once (this stops the IdP, so it comes last but one).
run down --issuer "$IDP_URL" --mode down --idp-pid "$IDP_PID"
assert_contains "$T/down.out" "device authorization: connection refused" "IdP down after discovery"

# A loopback port that nobody listens on: connection refused.
closed=$(free_port)
run unreachable --issuer "http://127.0.0.1:$closed" --mode unreachable
assert_contains "$T/unreachable.out" "identity provider unreachable" "unreachable issuer reported"

# ---- the scripted IdP: issuer http://127.0.0.1:PORT/SCENARIO ----
cat >"$T/fake-idp.py" <<'PY'
import base64, json, subprocess, sys, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

keydir = sys.argv[1]
GRANT = "urn:ietf:params:oauth:grant-type:device_code"

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def jwk(kid):
    out = subprocess.run(["openssl", "rsa", "-in", f"{keydir}/{kid}.pem", "-noout", "-modulus"],
                         capture_output=True, check=True, text=True).stdout
    n = bytes.fromhex(out.strip().split("=", 1)[1])
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64u(n), "e": "AQAB"}

KEYS = {kid: jwk(kid) for kid in ("k1", "k2")}

def sign(kid, claims):
    si = b64u(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode()) + "." + \
        b64u(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", f"{keydir}/{kid}.pem"],
                         input=si.encode(), capture_output=True, check=True).stdout
    return si + "." + b64u(sig)

state = {}

class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("fake-idp: " + (fmt % args) + "\n")

    def reply(self, code, obj=None, raw=None, ctype="application/json"):
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route(self):
        scen, _, rest = self.path.lstrip("/").partition("/")
        st = state.setdefault(scen, {"polls": 0, "last": 0.0, "jwks": 0, "rotated": False})
        return scen, rest, st, f"http://127.0.0.1:{self.server.server_port}/{scen}"

    def do_GET(self):
        scen, rest, st, iss = self.route()
        if rest == ".well-known/openid-configuration":
            self.reply(200, {"issuer": iss, "device_authorization_endpoint": iss + "/device",
                             "token_endpoint": iss + "/token", "jwks_uri": iss + "/jwks"})
        elif rest == "jwks":
            st["jwks"] += 1
            sys.stderr.write(f"fake-idp: {scen}: JWKS fetch {st['jwks']}\n")
            keys = [KEYS["k1"]] + ([KEYS["k2"]] if st["rotated"] else [])
            self.reply(200, {"keys": keys})
        else:
            self.reply(404, {"error": "not_found"})

    def do_POST(self):
        scen, rest, st, iss = self.route()
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
        one = lambda k: form.get(k, [""])[0]
        if rest == "device":
            if one("client_id") != "saw-broker" or "openid" not in one("scope").split():
                return self.reply(400, {"error": "invalid_request"})
            if scen == "huge":
                return self.reply(200, raw=b'{"pad":"' + b"A" * (2 << 20) + b'"}')
            if scen == "slow":
                time.sleep(3)
            return self.reply(200, {"device_code": "dc-" + scen, "user_code": "BCDF-GHJK",
                                    "verification_uri": iss + "/verify",
                                    "expires_in": 9 if scen == "slowdown" else 30, "interval": 1})
        if rest != "token":
            return self.reply(404, {"error": "not_found"})
        if one("grant_type") != GRANT or one("device_code") != "dc-" + scen or \
                one("client_id") != "saw-broker":
            return self.reply(400, {"error": "invalid_request", "error_description": "bad poll"})
        now = time.monotonic()
        gap, st["last"] = now - st["last"], now
        st["polls"] += 1
        sys.stderr.write(f"fake-idp: {scen}: poll {st['polls']} after {gap:.2f} s\n")
        need = 6 if scen == "slowdown" and st["polls"] > 1 else 1
        if gap < need - 0.2:
            return self.reply(400, {"error": "polled_too_fast", "error_description": f"{gap:.2f} s"})
        if scen == "slowdown":
            return self.reply(400, {"error": "slow_down" if st["polls"] == 1 else "authorization_pending"})
        if scen == "flaky":
            if st["polls"] <= 2:
                return self.reply(503, raw=b"Service Unavailable", ctype="text/plain")
            return self.reply(400, {"error": "expired_token"})
        if scen == "rude":
            return self.reply(400, {"error": "invalid_client", "error_description": "nope"})
        if scen in ("rotate", "norotate"):
            st["rotated"] = scen == "rotate"
            t = int(time.time())
            tok = sign("k2", {"iss": iss, "aud": "saw-broker", "sub": "alice", "iat": t,
                              "exp": t + 300, "preferred_username": "alice",
                              "groups": ["saw-users"]})
            return self.reply(200, {"access_token": "at", "token_type": "Bearer", "id_token": tok})
        return self.reply(400, {"error": "authorization_pending"})

srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"READY http://127.0.0.1:{srv.server_port}", flush=True)
srv.serve_forever()
PY
for k in k1 k2; do
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/$k.pem" 2>/dev/null ||
		fail "openssl genpkey"
done
python3 "$T/fake-idp.py" "$T" >"$T/fake.out" 2>"$T/fake.log" &
track $! "$T/fake.log"
wait_for_text "$T/fake.out" READY 10 || fail "the scripted IdP did not start"
fake=$(sed -n 's/^READY //p' "$T/fake.out")

run fake-slowdown --issuer "$fake/slowdown" --mode expect --expect expired
assert_contains "$T/fake.log" "slowdown: poll 2 after 6." "slow_down adds 5 s to the interval"
run fake-flaky --issuer "$fake/flaky" --mode expect --expect expired
assert_contains "$T/fake.log" "flaky: poll 3" "polling goes on through HTTP 503"
run fake-rude --issuer "$fake/rude" --mode expect --expect protocol \
	--detail "token endpoint: invalid_client: nope"
run fake-huge --issuer "$fake/huge" --mode expect --expect unreachable \
	--detail "response too large"
run fake-slow --issuer "$fake/slow" --mode expect --expect unreachable --detail "timed out" \
	--timeout 1
run fake-rotate --issuer "$fake/rotate" --mode expect --expect approved
assert_contains "$T/fake.log" "rotate: JWKS fetch 2" "unknown kid: JWKS fetched again"
run fake-norotate --issuer "$fake/norotate" --mode expect --expect invalid_token --detail "ID token:"
assert_not_contains "$T/fake.log" "norotate: JWKS fetch 3" "unknown kid: only one refetch"

finish
