#!/usr/bin/env bash
# End to end: the admin HTTP API and sawctl for revocation, locks and the kill switch.
#  - the admin API refuses requests without a token (401 + WWW-Authenticate: Bearer), with a
#    malformed token, with an ID token (not an access token), with an access token of a user
#    outside AdminGroup (403), and with the wrong audience (401); a real RFC 9068 JWT access
#    token of an AdminGroup member (from the test IdP, device flow with resource=) works;
#  - sessions listed, one revoked over HTTP (its held connection closes with the sentence);
#    sawctl sessions / revoke --user / lock --until 5s / locks / unlock: a lock closes the
#    user's connection and refuses new logins until it expires;
#  - the kill switch (HTTP, then sawctl): the workspace's connection is closed, KillCommand
#    runs with the workspace name (a script writing a marker file), the workspace is refused
#    until revived, then connects again;
#  - TLS on the listener (HttpTLSCertificate/HttpTLSKey), and plain HTTP on a non-loopback
#    address refused by the configuration check.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-common.sh"
. "$(dirname "$0")/revoke-common.sh"

SAWCTL=$SAW_BUILD/broker/sawctl
TOKEN_TOOL=$SAW_SRC/tests/tools/saw-admin-token
sawctl() {
	RC=0
	"$SAWCTL" -s "$BROKER_DIR/admin.sock" "$@" >"$T/out" 2>"$T/err" || RC=$?
}

# KillCommand: a script that records its arguments (the broker runs it as its User)
make_kill_command "$T/kill"

start_idp
revoke_broker "AdminGroup saw-admins" "AdminAPIAudience urn:saw:admin" \
	"KillCommand $KILL_DIR/stop-vm --vm"
start_broker
wait_for_text "$BROKER_LOG" "admin socket" 10 || fail "no admin socket"

ADMIN_TOKEN=$("$TOKEN_TOOL" "$IDP_URL" admin) || fail "no admin access token from the IdP"
CAROL_TOKEN=$("$TOKEN_TOOL" "$IDP_URL" carol) || fail "no access token for carol"
ID_TOKEN=$("$TOKEN_TOOL" "$IDP_URL" admin --id-token) || fail "no ID token"
auth() { echo "Authorization: Bearer $1"; }

# --- authentication ----------------------------------------------------------------------------
http GET /v1/sessions
assert_eq "$HTTP_STATUS" 401 "no token: 401"
assert_contains "$T/http.headers" 'WWW-Authenticate: Bearer' "the 401 asks for a bearer token"
http GET /v1/sessions -H "Authorization: Basic YWRtaW46YWRtaW4="
assert_eq "$HTTP_STATUS" 401 "basic auth: 401"
http GET /v1/sessions -H "$(auth not.a.token)"
assert_eq "$HTTP_STATUS" 401 "a malformed token: 401"
assert_contains "$T/http.headers" 'error="invalid_token"' "(invalid_token)"
http GET /v1/sessions -H "$(auth "$ID_TOKEN")"
assert_eq "$HTTP_STATUS" 401 "an ID token of an admin: 401"
assert_contains "$T/http.body" "ID tokens are not accepted" "(not an access token)"
http POST /v1/workspaces/x/kill -H "$(auth "$CAROL_TOKEN")"
assert_eq "$HTTP_STATUS" 403 "an access token of a user outside AdminGroup: 403"
assert_contains "$T/http.headers" 'error="insufficient_scope"' "(insufficient_scope)"
tampered=$(echo "$ADMIN_TOKEN" | python3 -c 'import sys; t=sys.stdin.read().strip(); print(t[:-4] + ("AAAA" if t[-4:] != "AAAA" else "BBBB"))')
http GET /v1/sessions -H "$(auth "$tampered")"
assert_eq "$HTTP_STATUS" 401 "a tampered admin token: 401"
http GET /v1/sessions -H "$(auth "$ADMIN_TOKEN")"
assert_eq "$HTTP_STATUS" 200 "the admin's access token: 200"
assert_eq "$(json_field "$T/http.body" sessions)" "[]" "no sessions yet"
http GET /v1/nothing -H "$(auth "$ADMIN_TOKEN")"
assert_eq "$HTTP_STATUS" 404 "an unknown admin path: 404"
http GET /healthz
assert_eq "$HTTP_STATUS" 200 "/healthz: 200"

# --- sessions: list and revoke one over HTTP ------------------------------------------------------
a_sid=$(login alice-login alice)
hold a-hold alice
wait_held a-hold "$a_sid"
http GET "/v1/sessions?user=alice" -H "$(auth "$ADMIN_TOKEN")"
assert_eq "$(json_field "$T/http.body" sessions.0.id)" "$a_sid" "GET /v1/sessions?user=alice lists her session"
t0=$(date +%s%3N)
http POST "/v1/sessions/$a_sid/revoke" -H "$(auth "$ADMIN_TOKEN")" -d '{"reason":"laptop stolen"}'
assert_eq "$HTTP_STATUS" 200 "POST /v1/sessions/ID/revoke: 200"
ended_within a-hold "$t0" 1000 && pass "alice's connection closed ${ENDED_MS} ms after the request" ||
	fail_soft "alice's connection closed within 1 s"
assert_contains "$T/a-hold.err" "Your SAW session was revoked (laptop stolen)" "alice sees the reason"
assert_contains "$BROKER_LOG" "(by admin API admin (admin))" "the actor is the token's user"
http POST "/v1/sessions/$a_sid/revoke" -H "$(auth "$ADMIN_TOKEN")"
assert_eq "$HTTP_STATUS" 400 "revoking it again: 400"
assert_contains "$T/http.body" "already ended" "(already ended)"
http POST "/v1/sessions/$a_sid/revoke" -H "$(auth "$ADMIN_TOKEN")" -d '{"id":"x"}'
assert_eq "$HTTP_STATUS" 400 "a body that tries to override the path: 400"

# --- sawctl: sessions, revoke --user ----------------------------------------------------------
b_sid=$(login bob-login user8)
hold b-hold user8
wait_held b-hold "$b_sid"
sawctl sessions
assert_status "$RC" 0 "sawctl sessions"
assert_contains "$T/out" "SESSION" "a table with a header"
assert_contains "$T/out" "$b_sid  user8" "user8's live session is listed"
sawctl sessions --all --user alice
assert_contains "$T/out" "revoked" "--all shows alice's revoked session"
sawctl --json sessions
check "--json is the broker's answer" python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["ok"] and r["sessions"][0]["username"]=="user8"' "$T/out"
sawctl revoke --user user8 --message "offboarding"
assert_status "$RC" 0 "sawctl revoke --user user8"
assert_contains "$T/out" "1 session of user:user8 revoked"
ended_within b-hold "$(date +%s%3N)" 1000 && pass "user8's connection closed" || fail_soft "user8's connection closed"
assert_contains "$T/b-hold.err" "(offboarding)" "user8 sees the message"
sawctl revoke nosuchsession
assert_status "$RC" 1 "sawctl revoke of an unknown session"
sawctl revoke
assert_status "$RC" 2 "sawctl revoke without arguments: usage"

# --- locks: carol locked for 5 s ------------------------------------------------------------------
c_sid=$(login carol-login carol)
hold c-hold carol
wait_held c-hold "$c_sid"
sawctl lock carol --until 5s --message "maintenance window"
lock_at=$(date +%s)
assert_status "$RC" 0 "sawctl lock carol --until 5s"
assert_contains "$T/out" "user:carol locked until" "sawctl says until when"
ended_within c-hold "$(date +%s%3N)" 1000 && pass "carol's connection closed at the lock" ||
	fail_soft "carol's connection closed at the lock"
sawctl locks
assert_contains "$T/out" "user:carol" "sawctl locks lists carol"
assert_contains "$T/out" "maintenance window" "with the message"
rc=0
ssh_login carol -- true >"$T/c-locked.out" 2>"$T/c-locked.err" || rc=$?
check "carol cannot log in while locked (exit $rc)" [ "$rc" -ne 0 ]
assert_contains "$T/c-locked.err" "Your access to SAW is locked until" "the refusal says until when"
assert_contains "$T/c-locked.err" "maintenance window" "and why"
while [ "$(date +%s)" -le $((lock_at + 5)) ]; do sleep 0.2; done
rc=0
ssh_login carol -- whoami >"$T/c-after.out" 2>"$T/c-after.err" || rc=$?
assert_status "$rc" 0 "carol logs in once the lock expired"
# lock and unlock over HTTP
http POST /v1/users/user9/lock -H "$(auth "$ADMIN_TOKEN")" -d '{"until":"1h","message":"m"}'
assert_eq "$HTTP_STATUS" 200 "POST /v1/users/user9/lock: 200"
http GET /v1/locks -H "$(auth "$ADMIN_TOKEN")"
assert_contains "$T/http.body" '"user:user9"' "GET /v1/locks lists it"
http POST /v1/users/user9/unlock -H "$(auth "$ADMIN_TOKEN")"
assert_eq "$HTTP_STATUS" 200 "POST /v1/users/user9/unlock: 200"
http POST /v1/users/user9/unlock -H "$(auth "$ADMIN_TOKEN")"
assert_eq "$HTTP_STATUS" 404 "unlocking again: 404 (no lock)"
http POST /v1/users/user9/lock -H "$(auth "$ADMIN_TOKEN")" -d '{"until":"soon"}'
assert_eq "$HTTP_STATUS" 400 "a lock with a bad time: 400"

# --- the kill switch --------------------------------------------------------------------------------
WS=$(make_key ws1)
sawctl workspace add ws1 --owner alice --key "$WS.pub"
assert_status "$RC" 0 "workspace ws1 registered"
# ws_connect NAME: the workspace's own connection (as guestd would hold it), in the background
ws_connect() {
	rm -f "$T/$1.end"
	{
		local rc=0
		timeout -k 5 60 ssh -o PreferredAuthentications=publickey "${SAW_SSH_OPTS[@]}" \
			-i "$WS" -p "$BROKER_PORT" -N -R 22:127.0.0.1:22 "workspace:ws1@127.0.0.1" \
			</dev/null >"$T/$1.out" 2>&1 || rc=$?
		echo "$rc $(date +%s%3N)" >"$T/$1.end"
	} &
}
ws_connect ws-a
wait_for_text "$BROKER_LOG" "workspace ws1 is online" 15 || fail "ws1 did not come online"
t0=$(date +%s%3N)
http POST /v1/workspaces/ws1/kill -H "$(auth "$ADMIN_TOKEN")" -d '{"reason":"incident 42"}'
assert_eq "$HTTP_STATUS" 200 "POST /v1/workspaces/ws1/kill: 200"
ended_within ws-a "$t0" 1000 && pass "the workspace's connection closed ${ENDED_MS} ms after the kill" ||
	fail_soft "the workspace's connection closed within 1 s"
wait_for_text "$KILL_DIR/marker" "--vm ws1" 5 && pass "KillCommand ran with the workspace name" ||
	fail_soft "KillCommand ran with the workspace name"
wait_for_text "$BROKER_LOG" "KillCommand for workspace ws1: stopping ws1" 5 &&
	pass "KillCommand's output is in the broker's log" || fail_soft "KillCommand's output is in the broker's log"
wait_for_text "$BROKER_LOG" "KillCommand for workspace ws1: done" 5 && pass "KillCommand finished" ||
	fail_soft "KillCommand finished"
http GET /v1/workspaces -H "$(auth "$ADMIN_TOKEN")"
assert_eq "$(json_field "$T/http.body" workspaces.0.killed)" true "GET /v1/workspaces shows ws1 killed"
ws_connect ws-b
for ((i = 0; i < 100; i++)); do [ -s "$T/ws-b.end" ] && break; sleep 0.1; done
check "a killed workspace cannot connect" test -s "$T/ws-b.end"
sawctl workspace list
assert_contains "$T/out" "killed" "sawctl workspace list shows it killed"
sawctl revive ws1
assert_status "$RC" 0 "sawctl revive ws1"
ws_connect ws-c
wait_for_text "$BROKER_LOG" "workspace ws1 is online" 15 && sleep 0.5
check "the revived workspace connects again" still_held ws-c
sawctl kill ws1 --reason "second time"
assert_status "$RC" 0 "sawctl kill ws1"
ended_within ws-c "$(date +%s%3N)" 1000 && pass "sawctl kill closed the workspace's connection" ||
	fail_soft "sawctl kill closed the workspace's connection"
sawctl kill nope
assert_status "$RC" 1 "sawctl kill of an unknown workspace"

# --- the wrong audience: the same admin token against a broker that wants another one -------------
stop_pid "$BROKER_PID" || true
sed -i 's|^AdminAPIAudience .*|AdminAPIAudience urn:other:api|' "$BROKER_CONF"
start_broker
wait_for_port "$HTTP_PORT" 10 "$BROKER_PID" || fail "no HTTP listener after the restart"
http GET /v1/sessions -H "$(auth "$ADMIN_TOKEN")"
assert_eq "$HTTP_STATUS" 401 "an access token for another audience: 401"
assert_contains "$T/http.body" "audience" "(the audience)"
check "the broker is alive" broker_alive

# --- TLS: the listener on HttpTLSCertificate/HttpTLSKey (read before the privilege drop) --------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tls.key" \
	-out "$T/tls.crt" -days 2 -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" \
	2>/dev/null || fail "openssl could not make a test certificate"
chmod 600 "$T/tls.key"
stop_pid "$BROKER_PID" || true
echo "HttpTLSCertificate $T/tls.crt" >>"$BROKER_CONF"
echo "HttpTLSKey $T/tls.key" >>"$BROKER_CONF"
start_broker
wait_for_port "$HTTP_PORT" 10 "$BROKER_PID" || fail "no HTTPS listener"
assert_contains "$BROKER_LOG" "HTTP listener on 127.0.0.1:$HTTP_PORT (TLS)" "the listener runs TLS"
HTTP_URL=https://127.0.0.1:$HTTP_PORT
http GET /healthz --cacert "$T/tls.crt"
assert_eq "$HTTP_STATUS" 200 "/healthz over TLS, certificate verified: 200"
http GET /v1/sessions --cacert "$T/tls.crt"
assert_eq "$HTTP_STATUS" 401 "the admin API over TLS still wants a token"
rc=0
curl -s -o /dev/null --max-time 3 "http://127.0.0.1:$HTTP_PORT/healthz" || rc=$?
check "plain HTTP to the TLS port gets no answer (curl exit $rc)" [ "$rc" -ne 0 ]
# a non-loopback address without TLS is a configuration error
sed -e '/^HttpTLS/d' -e "s|^HttpListenAddress .*|HttpListenAddress 0.0.0.0:$HTTP_PORT|" \
	"$BROKER_CONF" >"$T/bad.conf"
rc=0
"$SAW_BUILD/broker/saw-brokerd" -t -f "$T/bad.conf" >"$T/bad.out" 2>&1 || rc=$?
check "saw-brokerd -t refuses HttpListenAddress 0.0.0.0 without TLS (exit $rc)" [ "$rc" -ne 0 ]
assert_contains "$T/bad.out" "is not a loopback address: set HttpTLSCertificate and HttpTLSKey"
finish
