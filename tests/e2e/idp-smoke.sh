#!/usr/bin/env bash
# End-to-end smoke test of the test IdP (tests/idp/idp.mjs) and the browser-less approver
# (tests/tools/saw-approve): a device authorization driven with curl only, approved as alice,
# the ID token checked for the claims the broker relies on; then a denied login.
set -euo pipefail
src=${SAW_TEST_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/saw-idp-smoke.XXXXXX")
idp_pid=
cleanup() {
	if [ -n "$idp_pid" ]; then kill "$idp_pid" 2>/dev/null || true; wait "$idp_pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
export NO_PROXY='*' no_proxy='*'
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy

fails=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
die() {
	echo "FAIL: $*"
	echo "--- IdP log"; cat "$tmp/idp.log" 2>/dev/null || true
	exit 1
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
node "$src/tests/idp/idp.mjs" --port "$port" >"$tmp/idp.out" 2>"$tmp/idp.log" &
idp_pid=$!
for _ in $(seq 1 600); do
	grep -q '^READY ' "$tmp/idp.out" 2>/dev/null && break
	kill -0 "$idp_pid" 2>/dev/null || die "the IdP exited at start"
	sleep 0.1
done
grep -q '^READY ' "$tmp/idp.out" || die "the IdP did not print READY within 60 s"
issuer=$(sed -n 's/^READY //p' "$tmp/idp.out")
[ "$issuer" = "http://127.0.0.1:$port" ] && pass "IdP ready at $issuer" || fail "READY line says '$issuer'"

json() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$@"; }

curl -sf "$issuer/.well-known/openid-configuration" -o "$tmp/disco.json" || die "no discovery document"
[ "$(json "$tmp/disco.json" issuer)" = "$issuer" ] && pass "discovery issuer" || fail "discovery issuer"
dev_ep=$(json "$tmp/disco.json" device_authorization_endpoint)
tok_ep=$(json "$tmp/disco.json" token_endpoint)
[ -n "$dev_ep" ] && pass "device_authorization_endpoint $dev_ep" || die "no device_authorization_endpoint"
curl -sf "$(json "$tmp/disco.json" jwks_uri)" -o "$tmp/jwks.json" || die "no JWKS"
python3 - "$tmp/jwks.json" <<'PY' && pass "JWKS has an RSA and an EC P-256 public key with kids" || fail "JWKS content"
import json, sys
keys = json.load(open(sys.argv[1]))["keys"]
assert {k["kty"] for k in keys} >= {"RSA", "EC"}, keys
assert all(k.get("kid") for k in keys)
assert not any("d" in k for k in keys), "private key material published"
PY

device_auth() {
	curl -sf -d client_id=saw-broker --data-urlencode "scope=openid profile groups" "$dev_ep" -o "$tmp/da.json" ||
		die "device authorization request failed"
}
poll() {
	curl -s -d client_id=saw-broker -d grant_type=urn:ietf:params:oauth:grant-type:device_code \
		-d device_code="$(json "$tmp/da.json" device_code)" "$tok_ep" -o "$tmp/tok.json"
}

# 1. Approve as alice.
device_auth
uri=$(json "$tmp/da.json" verification_uri_complete)
[ -n "$uri" ] && pass "device authorization: user code $(json "$tmp/da.json" user_code)" || die "no verification_uri_complete"
poll
[ "$(json "$tmp/tok.json" error)" = authorization_pending ] && pass "token endpoint says authorization_pending before approval" || fail "expected authorization_pending, got $(cat "$tmp/tok.json")"
if "$src/tests/tools/saw-approve" "$uri" alice --timeout 20 2>"$tmp/approve.err"; then
	pass "saw-approve approved as alice"
else
	fail "saw-approve: $(cat "$tmp/approve.err")"
fi
poll
python3 - "$tmp/tok.json" "$issuer" <<'PY' && pass "ID token: RS256, iss, aud, preferred_username=alice, groups=[saw-users,developers]" || fail "ID token content: $(cat "$tmp/tok.json")"
import base64, json, sys
tok = json.load(open(sys.argv[1]))
def part(s): return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
h, p = (part(x) for x in tok["id_token"].split(".")[:2])
print("  id_token header:", json.dumps(h))
print("  id_token claims:", json.dumps(p))
assert h["alg"] == "RS256" and h.get("kid")
assert p["iss"] == sys.argv[2] and p["aud"] == "saw-broker"
assert p["sub"] == "alice" and p["preferred_username"] == "alice"
assert p["groups"] == ["saw-users", "developers"]
assert 3500 <= p["exp"] - p["iat"] <= 3700
PY

# 2. Deny as bob: the token endpoint must answer access_denied.
device_auth
if "$src/tests/tools/saw-approve" "$(json "$tmp/da.json" verification_uri_complete)" bob --deny 2>"$tmp/deny.err"; then
	pass "saw-approve --deny aborted the login"
else
	fail "saw-approve --deny: $(cat "$tmp/deny.err")"
fi
poll
[ "$(json "$tmp/tok.json" error)" = access_denied ] && pass "token endpoint says access_denied after abort" || fail "expected access_denied, got $(cat "$tmp/tok.json")"

# 3. A user outside the built-in list gets no groups; --code with the bare verification_uri.
device_auth
"$src/tests/tools/saw-approve" "$(json "$tmp/da.json" verification_uri)" mallory --code "$(json "$tmp/da.json" user_code)" 2>"$tmp/approve2.err" ||
	fail "saw-approve --code: $(cat "$tmp/approve2.err")"
poll
python3 - "$tmp/tok.json" <<'PY' && pass "unknown user mallory gets groups []" || fail "mallory's token: $(cat "$tmp/tok.json")"
import base64, json, sys
s = json.load(open(sys.argv[1]))["id_token"].split(".")[1]
p = json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
assert p["preferred_username"] == "mallory" and p["groups"] == []
PY

# 4. SIGTERM ends the IdP cleanly.
kill -TERM "$idp_pid"
rc=0; wait "$idp_pid" || rc=$?
idp_pid=
[ "$rc" -eq 0 ] && pass "IdP exits 0 on SIGTERM" || fail "IdP exit status $rc on SIGTERM"

if [ "$fails" -ne 0 ]; then
	echo "--- IdP log"; cat "$tmp/idp.log"
	echo "idp-smoke: $fails check(s) FAILED"
	exit 1
fi
echo "idp-smoke: all checks passed"
