#!/usr/bin/env bash
# End to end (stock OpenSSH client, the test IdP, sqlite): every refused login ends with one
# plain sentence printed by ssh ("Received disconnect ...: 11: <sentence>"), a failed
# Authentication Logon in the audit log with the reason, and no session in the store.
#  - bob is not in saw-users;
#  - ssh as alice, approved at the IdP as carol (username mismatch);
#  - the login is denied in the browser;
#  - the IdP is down when the login starts.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-common.sh"

start_idp
broker_config
start_broker

# refused NAME LOGIN SENTENCE DESC: the last ssh run (outputs $T/NAME.*) exited 255 with SENTENCE
# as the disconnect message, and the store holds no session at all.
refused() {
	local name=$1 rc=$2 sentence=$3 desc=$4
	assert_status "$rc" 255 "$desc: ssh fails"
	assert_contains "$T/$name.err" "Received disconnect from 127.0.0.1 port $BROKER_PORT:11: $sentence" \
		"$desc: ssh prints the sentence"
	check "$desc: exactly one line of explanation" \
		[ "$(grep -c 'Received disconnect' "$T/$name.err")" -eq 1 ]
	assert_eq "$(live_sessions)" 0 "$desc: no live session in the store"
	assert_eq "$(db 'SELECT count(*) FROM sessions;')" 0 "$desc: nothing added to the sessions table"
}

# --- bob: not in the required group ---------------------------------------------------------
rc=0
ssh_login bob -- whoami >"$T/bob.out" 2>"$T/bob.err" || rc=$?
refused bob "$rc" 'Your account bob is not in the group "saw-users" that SAW access requires' \
	"bob (not in saw-users)"
assert_contains "$T/askpass.log" "as bob: exit 0" "bob did approve at the IdP (the refusal is the broker's)"
assert_not_contains "$T/bob.out" "You are" "bob got no output of a session"
assert_audit 1 "audit: bob's logon failure names the group" \
	class_uid=3002 activity_id=1 status_id=2 user.name=bob status_detail~"not in group saw-users"
assert_audit 1 "audit: bob's SSH connection refused" \
	class_uid=4007 activity_id=5 status_id=2 status_detail~"not entitled"

# --- alice approved as carol: username mismatch ---------------------------------------------
rc=0
SAW_APPROVE_LOGIN=carol ssh_login alice -- whoami >"$T/mismatch.out" 2>"$T/mismatch.err" || rc=$?
refused mismatch "$rc" 'You approved the login as "carol" but connected as "alice"' \
	"alice approved as carol"
assert_contains "$T/mismatch.err" "connect with your own user name (carol)" \
	"the sentence says which user name to use"
assert_audit 1 "audit: username mismatch logged as a failure with the reason" \
	class_uid=3002 activity_id=1 status_id=2 user.name=alice status_detail~"username mismatch"

# --- denied in the browser ------------------------------------------------------------------
rc=0
SAW_APPROVE_DENY=1 ssh_login alice -- whoami >"$T/deny.out" 2>"$T/deny.err" || rc=$?
refused deny "$rc" "The login was denied in the browser" "login denied in the browser"
assert_contains "$T/askpass.log" "deny $IDP_URL/" "askpass denied at the IdP"
assert_audit 1 "audit: denied login logged as a failure" \
	class_uid=3002 activity_id=1 status_id=2 user.name=alice status_detail~"denied"

# --- the IdP is down ------------------------------------------------------------------------
stop_pid "$IDP_PID" || true
check "the IdP is stopped" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$IDP_PORT) 2>/dev/null"
start=$(now_s)
rc=0
SSH_KEY=$(make_key alice-idp-down) ssh_login alice -- whoami \
	>"$T/down.out" 2>"$T/down.err" || rc=$?
took=$(secs_since "$start")
refused down "$rc" "The identity provider cannot be reached right now" "IdP stopped"
check "the IdP-down refusal came quickly (${took}s, want < 15s)" [ "$took" -lt 15 ]
assert_audit 4 "audit: IdP-down refusal logged as a fourth failed logon" \
	class_uid=3002 activity_id=1 status_id=2
detail=$(python3 -c 'import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print([e for e in ev if e.get("class_uid") == 3002 and e.get("status_id") == 2][-1].get("status_detail", ""))' "$BROKER_AUDIT")
log "IdP-down audit reason: $detail"
check "audit: the IdP-down failure has a reason ($detail)" [ -n "$detail" ]
assert_audit 4 "audit: every refusal has an SSH Activity Refuse" class_uid=4007 activity_id=5 status_id=2
assert_audit_exactly 0 "audit: no successful logon at all" class_uid=3002 status_id=1
assert_audit_exactly 4 "audit: four failed logons, one per refusal" class_uid=3002 status_id=2

check "the broker is still running" kill -0 "$BROKER_PID"
finish
