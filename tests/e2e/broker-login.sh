#!/usr/bin/env bash
# End to end (stock OpenSSH client, the test IdP, sqlite): ARCHITECTURE Flow 1, the happy path.
#  - a first login runs the device flow in the "browser" (tests/tools/askpass approves the URL
#    shown in the keyboard-interactive prompt) and prints who you are;
#  - `json` prints the session as one JSON object;
#  - a second login with the same key needs no browser; the session is one sqlite row bound to
#    the key's fingerprint; the logon and the SSH connection are audited (OCSF);
#  - another key of the same user needs the browser again;
#  - direct-tcpip (ssh -W) to a workspace that does not exist is refused with a sentence; a client without a key is refused with
#    the sentence that says a key is needed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-common.sh"

start_idp
broker_config
start_broker

# --- 1. first login: device flow ------------------------------------------------------------
key=$(make_key alice)
fp=$(key_fp "$key")
rc=0
ssh_login alice -- whoami >"$T/login1.out" 2>"$T/login1.err" || rc=$?
assert_status "$rc" 0 "first login of alice by device flow"
assert_contains "$T/login1.out" "You are alice" "whoami names alice"
assert_contains "$T/login1.out" "saw-users" "whoami lists the group saw-users"
assert_contains "$T/login1.out" "developers" "whoami lists the group developers"
assert_contains "$T/login1.out" "$fp" "whoami shows the key fingerprint"
# The prompt carried the IdP's verification URL (with the user code) and it was approved there.
assert_contains "$T/askpass.log" "Open $IDP_URL/device" "the prompt shows the IdP's verification URL"
assert_contains "$T/askpass.log" "user_code=" "the verification URL carries the user code"
assert_contains "$T/askpass.log" "approve $IDP_URL/" "askpass approved that URL at the IdP"
assert_contains "$T/askpass.log" "as alice: exit 0" "the IdP accepted the approval as alice"
calls_after_first=$(askpass_calls)
check "askpass was asked at least once during the first login" [ "$calls_after_first" -ge 1 ]

# --- 2. second login, same key: no browser; json output -------------------------------------
rc=0
SAW_APPROVE_LOGIN="" ssh_login alice -- json >"$T/json.out" 2>"$T/json.err" || rc=$?
assert_status "$rc" 0 "second login of alice with the same key"
assert_eq "$(askpass_calls)" "$calls_after_first" "second login did not prompt (no browser)"
if python3 - "$T/json.out" "$IDP_URL" "$fp" >"$T/json.check" 2>&1 <<'PY'; then
import json, re, sys, time
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
assert len(lines) == 1, f"want one JSON line, got {len(lines)}"
o = json.loads(lines[0])
want = {"user", "sub", "issuer", "groups", "session", "key", "created", "expires", "idle_timeout"}
assert set(o) >= want, f"missing fields: {want - set(o)}"
assert o["user"] == "alice", o["user"]
assert o["sub"] == "alice", o["sub"]
assert o["issuer"] == sys.argv[2], o["issuer"]
assert isinstance(o["groups"], list) and {"saw-users", "developers"} <= set(o["groups"]), o["groups"]
assert re.fullmatch(r"[0-9a-f]{32}", o["session"]), o["session"]
assert o["key"] == sys.argv[3], (o["key"], sys.argv[3])
now = time.time()
assert now - 120 <= o["created"] <= now + 5, o["created"]
assert o["expires"] - o["created"] == 8 * 3600, "default SessionMaxLifetime is 8h"
assert o["idle_timeout"] == 1800, "default SessionIdleTimeout is 30m"
print(o["session"])
PY
	pass "json output has the right user, sub, issuer, groups, session, key and times"
else
	fail_soft "json output"
	show_file "$T/json.check"
	show_file "$T/json.out"
fi
sid=$(tail -n1 "$T/json.check" 2>/dev/null || true)
[ -n "$sid" ] || sid=none

# A third time, with an askpass that would fail: still in without a prompt.
rc=0
SAW_APPROVE_LOGIN="" ssh_login alice -o NumberOfPasswordPrompts=0 -- whoami \
	>"$T/login3.out" 2>"$T/login3.err" || rc=$?
assert_status "$rc" 0 "third login with the same key, keyboard-interactive not even possible"
assert_contains "$T/login3.out" "Session: $sid" "third login lands in the same session"

# --- 3. the session store -------------------------------------------------------------------
assert_eq "$(live_sessions)" 1 "exactly one live session in the database"
assert_eq "$(live_sessions "key_fp = '$fp' AND username = 'alice'")" 1 \
	"the live session is alice's and bound to her key fingerprint"
assert_eq "$(db "SELECT id FROM sessions WHERE state = 0;")" "$sid" \
	"the database row is the session json reported"
assert_eq "$(db "SELECT iss || ' ' || sub FROM sessions WHERE id = '$sid';")" "$IDP_URL alice" \
	"the row records iss and sub"
assert_eq "$(db "SELECT expires - created FROM sessions WHERE id = '$sid';")" 28800 \
	"the row's absolute lifetime is 8h"
check "the row's idle deadline lies in the future" \
	[ "$(db "SELECT idle_deadline > strftime('%s','now') FROM sessions WHERE id = '$sid';")" = 1 ]

# --- 4. the audit log -----------------------------------------------------------------------
assert_audit 1 "audit: Authentication Logon success by device flow for alice's session" \
	class_uid=3002 activity_id=1 status_id=1 user.name=alice session.uid="$sid" \
	status_detail~"device flow"
assert_audit 2 "audit: Logon successes by the session-bound key" \
	class_uid=3002 activity_id=1 status_id=1 user.name=alice session.uid="$sid" \
	status_detail~"key bound"
assert_audit 3 "audit: SSH Activity Open for alice's connections" \
	class_uid=4007 activity_id=1 actor.user.name=alice actor.session.uid="$sid"
assert_audit 1 "audit: SSH Activity Open by keyboard-interactive (device flow)" \
	class_uid=4007 activity_id=1 actor.user.name=alice auth_type="Keyboard Interactive"
assert_audit_exactly 0 "audit: no failed logon so far" class_uid=3002 status_id=2

# --- 5. another key of alice needs the browser again ----------------------------------------
key2=$(make_key alice-laptop2)
fp2=$(key_fp "$key2")
before=$(askpass_calls)
rc=0
SSH_KEY=$key2 ssh_login alice -- json >"$T/key2.out" 2>"$T/key2.err" || rc=$?
assert_status "$rc" 0 "login of alice with a second key"
check "the second key needed the browser (askpass prompted)" [ "$(askpass_calls)" -gt "$before" ]
assert_contains "$T/key2.out" "\"key\":\"$fp2\"" "the new session is bound to the second key"
assert_not_contains "$T/key2.out" "\"session\":\"$sid\"" "the second key got a session of its own"
assert_eq "$(live_sessions "username = 'alice'")" 2 "alice now has two live sessions, one per key"
assert_eq "$(live_sessions "key_fp = '$fp2'")" 1 "one live session bound to the second key"

# --- 6. a command the broker does not run ---------------------------------------------------
rc=0
ssh_login alice -- ls / >"$T/cmd.out" 2>"$T/cmd.err" || rc=$?
assert_status "$rc" 1 "a remote command other than whoami/json fails"
assert_contains "$T/cmd.err" "runs no commands" "the user is told the broker runs no commands"

# --- 7. direct-tcpip is refused with a sentence ---------------------------------------------
rc=0
ssh_login alice -W some-ws:22 >"$T/fwd.out" 2>"$T/fwd.err" || rc=$?
assert_status "$rc" 255 "ssh -W some-ws:22 is refused"
# The sentence names the destination: "Forwarding to some-ws:22 is not available ..." before
# workspace routing, "There is no workspace named "some-ws" ..." with it.
if grep -qE '^Received disconnect from .*:11: .*some-ws' "$T/fwd.err"; then
	pass "the refused forward is explained in one sentence the ssh user sees"
else
	fail_soft "the refused forward is explained in one sentence the ssh user sees"
	show_file "$T/fwd.err"
fi
assert_audit 1 "audit: SSH Activity Refuse for the forward" \
	class_uid=4007 activity_id=5 actor.user.name=alice status_detail~"some-ws"
assert_eq "$(live_sessions "key_fp = '$fp'")" 1 "the refused forward did not end the session"

# --- 8. no key: refused with the sentence that a key is needed ------------------------------
before=$(askpass_calls)
rc=0
ssh_login alice -o PubkeyAuthentication=no >"$T/nokey1.out" 2>"$T/nokey1.err" || rc=$?
assert_status "$rc" 255 "a client with PubkeyAuthentication=no is refused"
assert_contains "$T/nokey1.err" "This broker needs an SSH key" "it is told that a key is needed"
assert_contains "$T/nokey1.err" "Received disconnect" "the sentence came as the SSH disconnect"
rc=0
ssh_login alice -o PreferredAuthentications=keyboard-interactive \
	>"$T/nokey2.out" 2>"$T/nokey2.err" || rc=$?
assert_status "$rc" 255 "a client that only tries keyboard-interactive is refused"
assert_contains "$T/nokey2.err" "This broker needs an SSH key" "it is told that a key is needed"
assert_eq "$(askpass_calls)" "$before" "no device login was offered to a client without a key"
assert_audit 2 "audit: Logon failures with the reason 'no SSH key'" \
	class_uid=3002 activity_id=1 status_id=2 user.name=alice status_detail~"no SSH key"
assert_eq "$(live_sessions)" 2 "refusals added no session"

check "the broker is still running" kill -0 "$BROKER_PID"
finish
