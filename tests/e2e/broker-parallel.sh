#!/usr/bin/env bash
# End to end (stock OpenSSH client, the test IdP, sqlite): 20 device-flow logins at the same
# time (user1..user20, each with a key of its own) all succeed on the broker's one event loop;
# the store has 20 live sessions, each bound to its user's key, and the audit log 20 logons.
# Then the 20 keys log in again at once, without the browser.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-common.sh"

N=20
start_idp
# All 20 clients come from 127.0.0.1 and each stays unauthenticated while its browser step
# runs: the pre-auth limits (defaults 10:30:100 and 10 per source) must leave room for them.
broker_config "MaxStartups 40" "PerSourceMaxStartups 40"
start_broker

for ((i = 1; i <= N; i++)); do
	make_key "user$i" >/dev/null
done

# run_all NAME [ssh_login args...]: user1..userN log in at once, outputs in $T/NAME-userI.*;
# prints the number of logins that exited 0 and printed "You are userI".
run_all() {
	local name=$1 i ok=0 rc
	shift
	local pids=()
	for ((i = 1; i <= N; i++)); do
		SSH_TIMEOUT=90 ssh_login "user$i" "$@" -- whoami \
			>"$T/$name-user$i.out" 2>"$T/$name-user$i.err" &
		pids+=($!)
	done
	for ((i = 1; i <= N; i++)); do
		rc=0
		wait "${pids[$((i - 1))]}" || rc=$?
		if [ "$rc" -eq 0 ] && grep -q "^You are user$i " "$T/$name-user$i.out"; then
			ok=$((ok + 1))
		else
			echo "user$i: exit $rc" >>"$T/$name.failures"
			cat "$T/$name-user$i.err" >>"$T/$name.failures"
		fi
	done
	echo "$ok"
}

start=$(now_s)
ok=$(run_all first)
took=$(secs_since "$start")
log "$ok of $N parallel device-flow logins succeeded in ${took}s"
assert_eq "$ok" "$N" "$N parallel device-flow logins succeed (${took}s)"
[ ! -f "$T/first.failures" ] || show_file "$T/first.failures"
calls=$(askpass_calls)
check "every parallel login went through the browser ($calls prompts)" [ "$calls" -ge "$N" ]
assert_eq "$(grep -c ': exit 0' "$T/askpass.log" || true)" "$N" "the IdP accepted $N approvals"

assert_eq "$(live_sessions)" "$N" "$N live sessions in the database"
assert_eq "$(db "SELECT count(DISTINCT username) FROM sessions WHERE state = 0;")" "$N" \
	"one live session per user"
bound=0
for ((i = 1; i <= N; i++)); do
	fp=$(key_fp "$T/keys/user$i")
	[ "$(live_sessions "username = 'user$i' AND key_fp = '$fp'")" = 1 ] && bound=$((bound + 1))
done
assert_eq "$bound" "$N" "each user's session is bound to that user's own key"
assert_audit_exactly "$N" "audit: $N Authentication Logon successes" \
	class_uid=3002 activity_id=1 status_id=1 status_detail~"device flow"
assert_audit_exactly 0 "audit: no failed logon" class_uid=3002 status_id=2

# The same 20 keys again, at once, with no browser available.
start=$(now_s)
ok=$(SAW_APPROVE_LOGIN="" run_all again -o NumberOfPasswordPrompts=0)
took=$(secs_since "$start")
assert_eq "$ok" "$N" "$N parallel logins with session-bound keys succeed without the browser (${took}s)"
[ ! -f "$T/again.failures" ] || show_file "$T/again.failures"
assert_eq "$(askpass_calls)" "$calls" "no prompt during the second round"
assert_eq "$(live_sessions)" "$N" "still $N live sessions"
assert_audit_exactly "$N" "audit: $N logons by session-bound key" \
	class_uid=3002 activity_id=1 status_id=1 status_detail~"key bound"

check "the broker is still running" kill -0 "$BROKER_PID"
finish
