#!/usr/bin/env bash
# End to end: OIDC Back-Channel Logout driven by the real oidc-provider.
#  - alice logs in (device flow) and holds `ssh -N`; her IdP session is ended (the IdP's
#    end-session logic, through the test endpoint) and the provider POSTs its logout token to
#    the broker (through a recording relay): the held connection closes within 1 s with the
#    revocation sentence, the row is revoked, audited, and the key needs the browser again;
#  - carol's session (another IdP session) is untouched;
#  - the recorded logout token replayed is refused (400, no-store), also after a restart;
#  - malformed requests: 400 with Cache-Control: no-store and a JSON error; nothing revoked.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-common.sh"
. "$(dirname "$0")/revoke-common.sh"

HTTP_PORT=$(free_port)
RELAY_PORT=$(free_port)

# The relay: records each logout request body, forwards it to the broker, answers as it did.
cat >"$T/relay.py" <<'PY'
import http.server, sys, urllib.request, urllib.error, itertools
target, outdir, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
counter = itertools.count(1)
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        n = next(counter)
        open(f"{outdir}/bcl-{n}.body", "wb").write(body)
        req = urllib.request.Request(target, data=body, method="POST",
            headers={"Content-Type": self.headers.get("Content-Type", "")})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, out = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, out = e.code, e.read()
        open(f"{outdir}/bcl-{n}.status", "w").write(str(status))
        self.send_response(status)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
python3 "$T/relay.py" "http://127.0.0.1:$HTTP_PORT/v1/revocation/backchannel-logout" "$T" \
	"$RELAY_PORT" >"$T/relay.log" 2>&1 &
track $! "$T/relay.log"

start_idp --test-endpoints --backchannel-logout-uri "http://127.0.0.1:$RELAY_PORT/bcl"
revoke_broker
start_broker
wait_for_port "$HTTP_PORT" 10 "$BROKER_PID" || fail "no HTTP listener on $HTTP_PORT"
assert_contains "$BROKER_LOG" "HTTP listener on 127.0.0.1:$HTTP_PORT without TLS" \
	"plain HTTP on loopback is logged as a warning"

# --- malformed requests first: nothing to revoke yet, but the answers must be right ---------
http POST /v1/revocation/backchannel-logout -H 'Content-Type: application/x-www-form-urlencoded' \
	--data 'foo=bar'
assert_eq "$HTTP_STATUS" 400 "a form without logout_token: 400"
assert_contains "$T/http.headers" "Cache-Control: no-store" "the 400 is no-store"
assert_eq "$(json_field "$T/http.body" error)" invalid_request "the 400 has a JSON error body"
http POST /v1/revocation/backchannel-logout --data 'logout_token=not.a.jwt'
assert_eq "$HTTP_STATUS" 400 "a malformed logout token: 400"
http GET /v1/revocation/backchannel-logout
assert_eq "$HTTP_STATUS" 405 "GET: 405"

# --- alice and carol log in; alice's IdP session ends ---------------------------------------
a_sid=$(login alice-login alice)
c_sid=$(login carol-login carol)
hold a-hold alice
hold c-hold carol
wait_held a-hold "$a_sid"
wait_held c-hold "$c_sid"
a_idp_sid=$(db "SELECT sid FROM sessions WHERE id = '$a_sid';")
check "alice's session has the IdP's sid ($a_idp_sid)" test -n "$a_idp_sid"

t0=$(date +%s%3N)
curl -sS --max-time 10 -X POST "$IDP_URL/test/end-session?login=alice" >"$T/end.json"
assert_contains "$T/end.json" '"delivered":1' "the IdP delivered one back-channel logout"
if ended_within a-hold "$t0" 1000; then
	pass "alice's held connection closed ${ENDED_MS} ms after the IdP session ended"
else
	fail_soft "alice's held connection closed within 1 s (took ${ENDED_MS:-more than 3000} ms)"
fi
assert_contains "$T/a-hold.err" "Your SAW session was revoked (you were logged out at the identity provider)" \
	"ssh shows the revocation sentence"
assert_eq "$(cat "$T/bcl-1.status" 2>/dev/null)" 200 "the broker answered the IdP 200"
assert_eq "$(db "SELECT state FROM sessions WHERE id = '$a_sid';")" 2 "alice's session is revoked in the store"
assert_audit 1 "audit has the Logoff of alice's revoked session" \
	class_uid=3002 activity_id=2 session.uid="$a_sid" status_detail~"revoked"
check "carol's connection is still open" still_held c-hold
assert_eq "$(live_sessions "id = '$c_sid'")" 1 "carol's session is still live"

before=$(askpass_calls)
rc=0
SAW_APPROVE_LOGIN="" ssh_login alice -o NumberOfPasswordPrompts=0 -- whoami >"$T/nob.out" \
	2>"$T/nob.err" || rc=$?
check "alice's key alone no longer logs in (exit $rc)" [ "$rc" -ne 0 ]

# --- the same logout token again: a replay ---------------------------------------------------
http POST /v1/revocation/backchannel-logout -H 'Content-Type: application/x-www-form-urlencoded' \
	--data-binary "@$T/bcl-1.body"
assert_eq "$HTTP_STATUS" 400 "the logout token replayed: 400"
assert_contains "$T/http.body" "already used" "the answer says it is a replay"
assert_contains "$T/http.headers" "Cache-Control: no-store" "the replay's 400 is no-store"

# a second logout for an already logged-out user is success (a fresh token from the IdP)
a2_sid=$(login alice-login2 alice)
check "alice logged in again through the browser" [ "$(askpass_calls)" -gt "$before" ]
curl -sS --max-time 10 -X POST "$IDP_URL/test/end-session?login=alice" >"$T/end2.json"
wait_for_text "$T/bcl-2.status" 200 5 && pass "second logout answered 200" ||
	fail_soft "second logout answered 200 (got $(cat "$T/bcl-2.status" 2>/dev/null))"
assert_eq "$(db "SELECT state FROM sessions WHERE id = '$a2_sid';")" 2 "alice's new session is revoked too"

# --- restart: the replay is still refused (the jti is in sqlite) -----------------------------
stop_pid "$BROKER_PID" || true
start_broker
wait_for_port "$HTTP_PORT" 10 "$BROKER_PID" || fail "no HTTP listener after the restart"
wait_for_text "$BROKER_LOG" "identity provider $IDP_URL ready" 15 || true
http POST /v1/revocation/backchannel-logout -H 'Content-Type: application/x-www-form-urlencoded' \
	--data-binary "@$T/bcl-1.body"
assert_eq "$HTTP_STATUS" 400 "after a restart the replayed logout token is still refused"
assert_contains "$T/http.body" "already used" "(as a replay)"
assert_eq "$(db "SELECT state FROM sessions WHERE id = '$a_sid';")" 2 "alice's session stays revoked across the restart"
assert_eq "$(live_sessions "id = '$c_sid'")" 1 "carol's session is still live"
check "the broker is alive" broker_alive
finish
