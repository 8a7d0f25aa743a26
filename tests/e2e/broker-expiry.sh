#!/usr/bin/env bash
# End to end (stock OpenSSH client, the test IdP, sqlite): sessions end on time.
#  - broker A, SessionMaxLifetime 6s: a connection held open (`ssh -N`, keepalives flowing) is
#    closed at the absolute expiry with a sentence;
#  - broker B, SessionIdleTimeout 4s: a connection held open without any traffic is closed at
#    the idle deadline with the idle sentence, while another user's connection that keeps
#    talking (ssh keepalives every second) outlives the idle timeout;
#  - then the row is expired in sqlite, a Logoff is audited, and the same key needs the browser
#    again.
# The two brokers run at the same time. Every wait is bounded.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-common.sh"

start_idp

# --- broker A: absolute lifetime ------------------------------------------------------------
broker_config "SessionMaxLifetime 6s"
start_broker
A_PORT=$BROKER_PORT A_DB=$BROKER_DB A_AUDIT=$BROKER_AUDIT A_PID=$BROKER_PID

# --- broker B: idle timeout (its own directory, port, database and audit log) ---------------
B_DIR=$T/broker-idle
mkdir -p "$B_DIR"
chmod 0700 "$B_DIR"
B_PORT=$(free_port)
B_DB=$B_DIR/broker.db
B_AUDIT=$B_DIR/audit.jsonl
cp "$BROKER_HOSTKEY" "$B_DIR/ssh_host_ed25519_key"
sed -e "s|^ListenAddress .*|ListenAddress 127.0.0.1:$B_PORT|" \
	-e "s|^HostKey .*|HostKey $B_DIR/ssh_host_ed25519_key|" \
	-e "s|^StateDatabase .*|StateDatabase $B_DB|" \
	-e "s|^AuditLog .*|AuditLog $B_AUDIT|" \
	-e "s|^AdminSocket .*|AdminSocket $B_DIR/admin.sock|" \
	-e "/^SessionMaxLifetime /d" "$BROKER_CONF" >"$B_DIR/broker.conf"
echo "SessionIdleTimeout 4s" >>"$B_DIR/broker.conf"
[ "$(id -u)" -ne 0 ] || chown -R saw: "$B_DIR"
"$SAW_BUILD/broker/saw-brokerd" -f "$B_DIR/broker.conf" -d >"$T/broker-idle.log" 2>&1 &
B_PID=$!
track "$B_PID" "$T/broker-idle.log"
wait_for_port "$B_PORT" 15 "$B_PID" || fail "broker B did not start (see $T/broker-idle.log)"
wait_for_text "$T/broker-idle.log" "identity provider $IDP_URL ready" 15 ||
	log "warning: broker B has not fetched the IdP's metadata after 15 s; going on"
log "broker B (idle) on 127.0.0.1:$B_PORT (pid $B_PID)"

# use A|B: point ssh_login and the db/audit helpers at one broker.
use() {
	case $1 in
	A) BROKER_PORT=$A_PORT BROKER_DB=$A_DB BROKER_AUDIT=$A_AUDIT SAW_ASKPASS_LOG=$T/askpass-A.log ;;
	B) BROKER_PORT=$B_PORT BROKER_DB=$B_DB BROKER_AUDIT=$B_AUDIT SAW_ASKPASS_LOG=$T/askpass-B.log ;;
	esac
	export BROKER_PORT BROKER_DB BROKER_AUDIT SAW_ASKPASS_LOG
}
SAW_LOGS+=("$T/askpass-A.log" "$T/askpass-B.log")

# session_of JSONFILE: the session id in a `json` output.
session_of() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["session"])' "$1" 2>/dev/null ||
		echo none
}

# hold NAME LOGIN [SSH OPTIONS...]: `ssh -N` as LOGIN in the background, needing no browser
# (askpass approves nothing and keyboard-interactive is off, so a key that is not bound to a
# live session fails at once). Output in $T/NAME.{out,err}; when ssh ends, "EXIT EPOCH" goes to
# $T/NAME.end.
hold() {
	local name=$1 login=$2
	shift 2
	{
		local rc=0
		SAW_APPROVE_LOGIN="" SSH_TIMEOUT=40 ssh_login "$login" -o NumberOfPasswordPrompts=0 \
			"$@" -N >"$T/$name.out" 2>"$T/$name.err" || rc=$?
		echo "$rc $(date +%s)" >"$T/$name.end"
	} &
}

# wait_end NAME DEADLINE_EPOCH: wait until the holder NAME has ended, at the latest until
# DEADLINE_EPOCH; then sets END_RC and END_AT (the epoch second ssh ended). Status 1 if it
# was still running at the deadline.
wait_end() {
	local name=$1 deadline=$2
	END_RC="" END_AT=""
	while [ ! -s "$T/$name.end" ]; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.2
	done
	read -r END_RC END_AT <"$T/$name.end"
}

# --- logins, each followed at once by a connection held open -------------------------------
use A
rc=0
ssh_login alice -- json >"$T/a-login.json" 2>"$T/a-login.err" || rc=$?
hold a-hold alice
assert_status "$rc" 0 "A: alice logs in"
a_sid=$(session_of "$T/a-login.json")
a_created=$(db "SELECT created FROM sessions WHERE id = '$a_sid';")
assert_eq "$(db "SELECT expires - created FROM sessions WHERE id = '$a_sid';")" 6 \
	"A: the session's absolute lifetime is 6s"

use B
# user2 keeps talking: ssh sends a keepalive request after every second of server silence.
rc=0
ssh_login user2 -- json >"$T/b2-login.json" 2>"$T/b2-login.err" || rc=$?
b2_hold_start=$(date +%s)
hold b2-hold user2 -o ServerAliveInterval=1 -o ServerAliveCountMax=30
assert_status "$rc" 0 "B: user2 logs in"
b2_sid=$(session_of "$T/b2-login.json")
# carol's holder sends nothing at all.
rc=0
ssh_login carol -- json >"$T/b-login.json" 2>"$T/b-login.err" || rc=$?
b_hold_start=$(date +%s)
hold b-hold carol -o ServerAliveInterval=0
assert_status "$rc" 0 "B: carol logs in"
b_sid=$(session_of "$T/b-login.json")
assert_contains "$T/b-login.json" '"idle_timeout":4' "B: the session's idle timeout is 4s"

use A
n=$(audit_wait 2 5 class_uid=4007 activity_id=1 actor.session.uid="$a_sid") || true
assert_eq "$n" 2 "A: alice's holding connection logged in with her session, no browser"
use B
n=$(audit_wait 2 5 class_uid=4007 activity_id=1 actor.session.uid="$b_sid") || true
assert_eq "$n" 2 "B: carol's silent holding connection logged in with her session, no browser"
n=$(audit_wait 2 5 class_uid=4007 activity_id=1 actor.session.uid="$b2_sid") || true
assert_eq "$n" 2 "B: user2's talking holding connection logged in with his session, no browser"

# --- A: absolute expiry ---------------------------------------------------------------------
wait_end a-hold $((a_created + 6 + 5)) ||
	fail_soft "A: alice's connection was still open 5s after the session's absolute expiry"
log "A: holder ended at +$((${END_AT:-0} - a_created))s after the session was created (exit ${END_RC:-?})"
check "A: the connection ended at the session's lifetime (+$((${END_AT:-0} - a_created))s, want 5..9)" \
	[ "$((${END_AT:-0} - a_created))" -ge 5 -a "$((${END_AT:-0} - a_created))" -le 9 ]
check "A: ssh exited with an error (exit ${END_RC:-?})" [ "${END_RC:-0}" -ne 0 ]
assert_contains "$T/a-hold.err" "Your SAW session reached its maximum lifetime" \
	"A: ssh prints the lifetime sentence"
use A
assert_eq "$(db "SELECT state || ' ' || end_reason FROM sessions WHERE id = '$a_sid';")" \
	"1 expired: absolute lifetime reached" "A: the row is expired by its absolute lifetime"
assert_eq "$(live_sessions)" 0 "A: no live session left"
assert_audit 1 "A: audit has the Logoff of alice's session" \
	class_uid=3002 activity_id=2 session.uid="$a_sid" user.name=alice status_detail~"absolute lifetime"

# --- B: idle expiry -------------------------------------------------------------------------
wait_end b-hold $((b_hold_start + 4 + 5)) ||
	fail_soft "B: carol's idle connection was still open 5s after the idle deadline"
log "B: idle holder ended at +$((${END_AT:-0} - b_hold_start))s after it started (exit ${END_RC:-?})"
check "B: the silent connection ended at the idle deadline (+$((${END_AT:-0} - b_hold_start))s, want 3..8)" \
	[ "$((${END_AT:-0} - b_hold_start))" -ge 3 -a "$((${END_AT:-0} - b_hold_start))" -le 8 ]
assert_contains "$T/b-hold.err" "Your SAW session was idle for 4s and has ended" \
	"B: ssh prints the idle sentence"
use B
assert_eq "$(db "SELECT state || ' ' || end_reason FROM sessions WHERE id = '$b_sid';")" \
	"1 expired: idle timeout" "B: carol's row is expired by idle timeout"
assert_audit 1 "B: audit has the Logoff of carol's session for idleness" \
	class_uid=3002 activity_id=2 session.uid="$b_sid" user.name=carol status_detail~"idle"
# user2's connection kept talking: still open, session still live, twice the idle timeout on.
while [ "$(date +%s)" -lt $((b2_hold_start + 9)) ]; do sleep 0.2; done
if [ ! -s "$T/b2-hold.end" ]; then
	pass "B: user2's talking connection is still open after 2x the idle timeout"
else
	fail_soft "B: user2's talking connection is still open after 2x the idle timeout (it ended: $(cat "$T/b2-hold.end"))"
	show_file "$T/b2-hold.err"
fi
assert_eq "$(live_sessions "id = '$b2_sid'")" 1 "B: user2's session is still live"
assert_audit_exactly 0 "B: no Logoff for user2" class_uid=3002 activity_id=2 session.uid="$b2_sid"

# --- the same keys need the browser again ---------------------------------------------------
use A
before=$(askpass_calls)
rc=0
ssh_login alice -- json >"$T/a-again.json" 2>"$T/a-again.err" || rc=$?
assert_status "$rc" 0 "A: alice logs in again after expiry"
check "A: that login needed the browser (askpass prompted)" [ "$(askpass_calls)" -gt "$before" ]
a2_sid=$(session_of "$T/a-again.json")
check "A: a new session ($a2_sid) replaces the expired one" [ "$a2_sid" != "$a_sid" -a "$a2_sid" != none ]
assert_eq "$(live_sessions)" 1 "A: one live session again"

use B
before=$(askpass_calls)
rc=0
SAW_APPROVE_LOGIN="" ssh_login carol -o NumberOfPasswordPrompts=0 -- whoami \
	>"$T/b-nobrowser.out" 2>"$T/b-nobrowser.err" || rc=$?
check "B: carol's key alone no longer logs in (exit $rc)" [ "$rc" -ne 0 ]
rc=0
ssh_login carol -- json >"$T/b-again.json" 2>"$T/b-again.err" || rc=$?
assert_status "$rc" 0 "B: carol logs in again through the browser"
check "B: that login needed the browser (askpass prompted)" [ "$(askpass_calls)" -gt "$before" ]
check "B: a new session replaces the idle one" [ "$(session_of "$T/b-again.json")" != "$b_sid" ]

check "broker A is still running" kill -0 "$A_PID"
check "broker B is still running" kill -0 "$B_PID"
finish
