#!/usr/bin/env bash
# Issue 6 end to end: every security-relevant action of the broker is an OCSF 1.8.0 event in
# its audit file, with who did it and the brokered identity. Real peers: the test IdP, the
# stock OpenSSH client, sawctl, curl, a test SSF transmitter (tests/tools/set-sign).
#  - admin API calls accepted (200) and refused (no token 401, a user outside AdminGroup 403,
#    an unknown path 404), and admin socket calls (sawctl), as API Activity with the caller;
#  - webhooks accepted (a signed SET: 202) and rejected (wrong key, malformed, wrong
#    Content-Type, a back-channel logout that is not a JWT), as API Activity with the reason;
#  - a lock and unlock (Account Change, with who did it), the kill switch on and off;
#  - a tunnel to a workspace opened and closed (Network Activity with the user, the session,
#    the workspace, its profile, and the bytes), then the session revoked by the SET
#    (Authentication Logoff saying by what);
#  - lib.sh's finish checks the whole file against the OCSF class definitions and greps it
#    for the tokens.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-common.sh"
. "$(dirname "$0")/revoke-common.sh"

SAWCTL=$SAW_BUILD/broker/sawctl
TOKEN_TOOL=$SAW_SRC/tests/tools/saw-admin-token
SIGN=$SAW_SRC/tests/tools/set-sign
SSF_ISS=https://ssf.test.example
EV=https://schemas.openid.net/secevent
sawctl() {
	RC=0
	"$SAWCTL" -s "$BROKER_DIR/admin.sock" "$@" >"$T/out" 2>"$T/err" || RC=$?
}
auth() { echo "Authorization: Bearer $1"; }

# the SSF transmitter's keys on a loopback web server
"$SIGN" keygen "$T/ssf" --kid ssf-1
"$SIGN" keygen "$T/other" --kid ssf-1 # same kid, another key: a forger's
serve_dir "$T/ssf"
JWKS_PORT=$SERVE_PORT

# the workspace's "sshd": an echo server that closes when the client is done sending
ECHO_PORT=$(free_port)
python3 - "$ECHO_PORT" >"$T/echo.log" 2>&1 <<'PY' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
while True:
    c, _ = s.accept()
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()
PY
track $! "$T/echo.log"
wait_for_port "$ECHO_PORT" 10 || fail "the echo server did not start"

start_idp
revoke_broker "AdminGroup saw-admins" "AdminAPIAudience urn:saw:admin" \
	"SSFTransmitterIssuer $SSF_ISS" "SSFTransmitterJWKS http://127.0.0.1:$JWKS_PORT/jwks.json"
start_broker
wait_for_text "$BROKER_LOG" "admin socket" 10 || fail "no admin socket"
wait_for_text "$BROKER_LOG" "SSF transmitter $SSF_ISS: 1 signing keys" 10 ||
	fail "the broker did not fetch the transmitter's keys"

ADMIN_TOKEN=$("$TOKEN_TOOL" "$IDP_URL" admin) || fail "no admin access token from the IdP"
CAROL_TOKEN=$("$TOKEN_TOOL" "$IDP_URL" carol) || fail "no access token for carol"
audit_secret "$ADMIN_TOKEN" "$CAROL_TOKEN"

# --- admin API: refused and accepted ----------------------------------------------------------
http GET /v1/sessions
assert_eq "$HTTP_STATUS" 401 "admin API without a token: 401"
http POST /v1/workspaces/x/kill -H "$(auth "$CAROL_TOKEN")"
assert_eq "$HTTP_STATUS" 403 "admin API with a token outside AdminGroup: 403"
http GET /v1/nothing -H "$(auth "$ADMIN_TOKEN")"
assert_eq "$HTTP_STATUS" 404 "an unknown admin path: 404"
http GET /v1/sessions -H "$(auth "$ADMIN_TOKEN")"
assert_eq "$HTTP_STATUS" 200 "GET /v1/sessions: 200"

assert_audit 1 "API Activity: the call without a token, refused, from 127.0.0.1, with the reason" \
	class_uid=6003 activity_id=2 status_id=2 api.operation=session.list http_response.code=401 \
	src_endpoint.ip=127.0.0.1 http_request.url.path=/v1/sessions status_detail~"authentication required"
assert_audit 1 "API Activity: carol's kill refused (403), the reason says AdminGroup" \
	class_uid=6003 activity_id=3 status_id=2 api.operation=workspace.kill http_response.code=403 \
	status_detail~"AdminGroup"
assert_audit 1 "API Activity: the unknown path refused (404)" \
	class_uid=6003 status_id=2 http_response.code=404 http_request.url.path=/v1/nothing \
	actor.user.uid=admin
assert_audit 1 "API Activity: the admin's session list accepted, with the admin's identity" \
	class_uid=6003 activity_id=2 status_id=1 api.operation=session.list http_response.code=200 \
	actor.user.uid=admin actor.user.name=admin status_detail~"sessions: 0"

# --- admin socket (sawctl) --------------------------------------------------------------------
WSKEY=$(make_key ws1)
sawctl workspace add ws1 --owner alice --key "$WSKEY.pub" --profile corporate
assert_status "$RC" 0 "sawctl workspace add ws1"
sawctl revive nosuch
check "sawctl revive of an unknown workspace fails" [ "$RC" -ne 0 ]
assert_audit 1 "API Activity: workspace.add over the admin socket (Create), by uid $(id -u)" \
	class_uid=6003 activity_id=1 status_id=1 api.operation=workspace.add \
	actor.user.uid="$(id -u)" src_endpoint.svc_name="admin socket" status_detail~"ws1"
assert_audit 1 "API Activity: the refused revive over the admin socket, with the error" \
	class_uid=6003 activity_id=3 status_id=2 api.operation=workspace.revive status_detail~"no"

# --- a tunnel to the workspace: open and close, with the identity and the bytes ---------------
a_sid=$(login alice-login alice)
ws_connect() {
	timeout -k 5 120 ssh -o PreferredAuthentications=publickey "${SAW_SSH_OPTS[@]}" \
		-i "$WSKEY" -p "$BROKER_PORT" -N -R "ws1:22:127.0.0.1:$ECHO_PORT" \
		"workspace:ws1@127.0.0.1" </dev/null >"$T/$1.out" 2>&1 &
	track $!
}
ws_connect ws-a
wait_for_text "$BROKER_LOG" "workspace ws1 is online" 15 || fail "ws1 did not come online"
rc=0
printf 'hello through the broker\n' |
	timeout -k 5 30 ssh "${SAW_SSH_OPTS[@]}" -o NumberOfPasswordPrompts=0 \
		-i "$T/keys/alice" -p "$BROKER_PORT" -l alice -W ws1:22 127.0.0.1 \
		>"$T/tunnel.out" 2>"$T/tunnel.err" || rc=$?
assert_status "$rc" 0 "ssh -W ws1:22 through the broker"
assert_contains "$T/tunnel.out" "hello through the broker" "the bytes went to the workspace and back"
assert_audit 1 "Network Activity Open of alice's tunnel to ws1 (user, session, workspace, profile)" \
	class_uid=4001 activity_id=1 status_id=1 actor.user.name=alice actor.user.uid=alice \
	actor.session.uid="$a_sid" unmapped.workspace=ws1 unmapped.profile=corporate \
	dst_endpoint.hostname=ws1 dst_endpoint.port=22 src_endpoint.ip=127.0.0.1
assert_audit 1 "Network Activity Close of that tunnel with the bytes each way" \
	class_uid=4001 activity_id=2 actor.session.uid="$a_sid" unmapped.workspace=ws1 \
	traffic.bytes_in=25 traffic.bytes_out=25

# --- webhooks: a SET accepted (revokes alice's session), and refusals ----------------------------
set_claims() {
	python3 - "$1" "$2" "$SSF_ISS" <<'PY'
import json, sys, uuid
ev, sub, iss = sys.argv[1:4]
print(json.dumps({"iss": iss, "aud": "saw-broker", "iat": "@now", "jti": str(uuid.uuid4()),
                  "sub_id": json.loads(sub), "events": {ev: {}}}))
PY
}
push() {
	http POST /v1/revocation/events -H "Content-Type: ${2:-application/secevent+jwt}" \
		--data-binary "@$1"
}
set_claims "$EV/caep/event-type/session-revoked" "{\"format\":\"opaque\",\"id\":\"$a_sid\"}" \
	>"$T/c1.json"
"$SIGN" sign "$T/ssf/key.pem" ssf-1 <"$T/c1.json" >"$T/ok.jws"
"$SIGN" sign "$T/other/key.pem" ssf-1 <"$T/c1.json" >"$T/forged.jws"
audit_secret "$(cat "$T/ok.jws")" "$(cat "$T/forged.jws")"
push "$T/forged.jws"
assert_eq "$HTTP_STATUS" 400 "a SET signed with another key: 400"
printf 'not.a.jwt' >"$T/malformed.jws"
push "$T/malformed.jws"
assert_eq "$HTTP_STATUS" 400 "a malformed SET: 400"
push "$T/ok.jws" application/json
assert_eq "$HTTP_STATUS" 400 "a SET with the wrong Content-Type: 400"
http POST /v1/revocation/backchannel-logout --data "logout_token=garbage"
assert_eq "$HTTP_STATUS" 400 "a back-channel logout that is not a JWT: 400"
push "$T/ok.jws"
assert_eq "$HTTP_STATUS" 202 "the genuine SET: 202"

assert_audit 1 "API Activity: the forged SET refused, with the reason" \
	class_uid=6003 activity_id=1 status_id=2 api.operation=revocation.security-event \
	http_response.code=400 src_endpoint.ip=127.0.0.1 status_detail~"signature"
assert_audit 2 "API Activity: the malformed and the wrong-Content-Type SETs refused" \
	class_uid=6003 status_id=2 api.operation=revocation.security-event http_response.code=400
assert_audit 1 "API Activity: the wrong Content-Type named" \
	class_uid=6003 status_id=2 api.operation=revocation.security-event status_detail~"Content-Type"
assert_audit 1 "API Activity: the back-channel logout refused" \
	class_uid=6003 status_id=2 api.operation=revocation.backchannel-logout http_response.code=400
assert_audit 1 "API Activity: the SET accepted, from the transmitter, saying what it did" \
	class_uid=6003 activity_id=1 status_id=1 api.operation=revocation.security-event \
	http_response.code=202 actor.app_name="$SSF_ISS" status_detail~"session-revoked: 1 session revoked"
assert_audit 1 "Authentication Logoff of alice's session, revoked by the SET" \
	class_uid=3002 activity_id=2 session.uid="$a_sid" user.name=alice status_detail~"by SET"

# --- a lock (admin socket) and an unlock (HTTP), with who did it ---------------------------------
sawctl lock carol --until 1h --message "offboarding"
assert_status "$RC" 0 "sawctl lock carol"
http POST /v1/users/carol/unlock -H "$(auth "$ADMIN_TOKEN")"
assert_eq "$HTTP_STATUS" 200 "POST /v1/users/carol/unlock: 200"
assert_audit 1 "Account Change Lock of carol by the admin socket's uid, with until and why" \
	class_uid=3001 activity_id=9 user.name=carol actor.user.name="admin uid $(id -u)" \
	status_detail~"offboarding"
assert_audit 1 "Account Change Unlock of carol by the admin API's user" \
	class_uid=3001 activity_id=12 user.name=carol actor.user.name~"admin API admin"

# --- the kill switch on (HTTP) and off (sawctl) ---------------------------------------------------
http POST /v1/workspaces/ws1/kill -H "$(auth "$ADMIN_TOKEN")" -d '{"reason":"incident 42"}'
assert_eq "$HTTP_STATUS" 200 "POST /v1/workspaces/ws1/kill: 200"
sawctl revive ws1
assert_status "$RC" 0 "sawctl revive ws1"
assert_audit 1 "Account Change Lock: kill switch on for ws1, by the admin API's user, why" \
	class_uid=3001 activity_id=9 user.name=workspace:ws1 unmapped.workspace=ws1 \
	actor.user.name~"admin API admin" status_detail="incident 42"
assert_audit 1 "API Activity: the kill call accepted" \
	class_uid=6003 activity_id=3 status_id=1 api.operation=workspace.kill http_response.code=200
assert_audit 1 "Account Change Unlock: kill switch off for ws1, by the admin socket's uid" \
	class_uid=3001 activity_id=12 user.name=workspace:ws1 actor.user.name="admin uid $(id -u)"
assert_audit 1 "SSH Activity Close of the workspace's connection at the kill" \
	class_uid=4007 activity_id=2 unmapped.workspace=ws1

# every event has a unique id (lib.sh's finish checks the schema, the uniqueness and the tokens)
n=$(python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l).get("metadata",{}).get("uid")))' "$BROKER_AUDIT")
check "every event of the file has a metadata.uid ($n)" [ "$n" -eq "$(wc -l <"$BROKER_AUDIT")" ]
finish
