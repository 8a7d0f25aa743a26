#!/usr/bin/env bash
# End to end (stock OpenSSH client, the test IdP, sqlite): sessions end on time.
#  - broker A, SessionMaxLifetime 1m: a connection held open (`ssh -N`, keepalives flowing) is
#    closed at the absolute expiry with a sentence;
#  - broker B, SessionIdleTimeout 1m: a connection held open without any traffic is closed at
#    the idle deadline with the idle sentence, while another user's connection that keeps
#    talking (ssh keepalives) stays;
#  - then the row is expired in sqlite, a Logoff is audited, and the same key needs the browser
#    again.
# 1m is the smallest value saw-broker.conf(5) allows for both; the two brokers run at the same
# time so that the test waits about one minute in all.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-common.sh"

start_idp

# --- broker A: absolute lifetime ------------------------------------------------------------
write_broker_config "SessionMaxLifetime 1m"
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
	-e "/^SessionMaxLifetime /d" "$BROKER_CONF" >"$B_DIR/broker.conf"
echo "SessionIdleTimeout 1m" >>"$B_DIR/broker.conf"
[ "$(id -u)" -ne 0 ] || chown -R saw: "$B_DIR"
"$SAW_BUILD/broker/saw-brokerd" -f "$B_DIR/broker.conf" -d >"$T/broker-idle.log" 2>&1 &
B_PID=$!
track "$B_PID" "$T/broker-idle.log"
wait_for_port "$B_PORT" 15 "$B_PID" || fail "broker B did not start (see $T/broker-idle.log)"
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

# wait_exit PID DEADLINE_EPOCH: wait until PID has exited, at the latest at DEADLINE_EPOCH.
# Prints the epoch second it was seen gone; status 1 if it was still running.
wait_exit() {
	local pid=$1 deadline=$2
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			date +%s
			return 1
		fi
		sleep 0.2
	done
	date +%s
}

# --- logins ---------------------------------------------------------------------------------
use A
rc=0
ssh_login alice -- json >"$T/a-login.json" 2>"$T/a-login.err" || rc=$?
assert_status "$rc" 0 "A: alice logs in"
a_sid=$(session_of "$T/a-login.json")
a_created=$(db "SELECT created FROM sessions WHERE id = '$a_sid';")
assert_eq "$(db "SELECT expires - created FROM sessions WHERE id = '$a_sid';")" 60 \
	"A: the session's absolute lifetime is 60s"

use B
rc=0
ssh_login carol -- json >"$T/b-login.json" 2>"$T/b-login.err" || rc=$?
assert_status "$rc" 0 "B: carol logs in"
b_sid=$(session_of "$T/b-login.json")
rc=0
ssh_login user2 -- json >"$T/b2-login.json" 2>"$T/b2-login.err" || rc=$?
assert_status "$rc" 0 "B: user2 logs in"
b2_sid=$(session_of "$T/b2-login.json")
assert_contains "$T/b-login.json" '"idle_timeout":60' "B: the session's idle timeout is 60s"

# --- hold connections open ------------------------------------------------------------------
# Each holder needs no browser (its key is bound to a live session): askpass approves nothing.
use A
SAW_APPROVE_LOGIN="" SSH_TIMEOUT=110 ssh_login alice -N >"$T/a-hold.out" 2>"$T/a-hold.err" &
a_hold=$!
use B
b_hold_start=$(date +%s)
SAW_APPROVE_LOGIN="" SSH_TIMEOUT=110 ssh_login carol -o ServerAliveInterval=0 -N \
	>"$T/b-hold.out" 2>"$T/b-hold.err" &
b_hold=$!
# user2 keeps talking: ssh sends a keepalive request every 2 s of server silence.
SAW_APPROVE_LOGIN="" SSH_TIMEOUT=110 ssh_login user2 -o ServerAliveInterval=2 -N \
	>"$T/b2-hold.out" 2>"$T/b2-hold.err" &
b2_hold=$!

use A
n=$(audit_wait 2 10 class_uid=4007 activity_id=1 actor.session.uid="$a_sid") || true
assert_eq "$n" 2 "A: alice's holding connection is logged in (with her session)"
use B
n=$(audit_wait 2 10 class_uid=4007 activity_id=1 actor.session.uid="$b_sid") || true
assert_eq "$n" 2 "B: carol's idle holding connection is logged in (with her session)"
n=$(audit_wait 2 10 class_uid=4007 activity_id=1 actor.session.uid="$b2_sid") || true
assert_eq "$n" 2 "B: user2's talking holding connection is logged in"
check "the holding connections are open" kill -0 "$a_hold" "$b_hold" "$b2_hold"

# --- A: absolute expiry ---------------------------------------------------------------------
a_gone=$(wait_exit "$a_hold" $((a_created + 60 + 10))) ||
	fail_soft "A: alice's connection was still open 10s after the session's absolute expiry"
rc=0
wait "$a_hold" || rc=$?
log "A: holder gone at +$((a_gone - a_created))s after the session was created (exit $rc)"
check "A: the connection was not closed before the session's lifetime (+$((a_gone - a_created))s)" \
	[ "$((a_gone - a_created))" -ge 59 ]
check "A: ssh exited with an error (exit $rc)" [ "$rc" -ne 0 ]
assert_contains "$T/a-hold.err" "Your SAW session reached its maximum lifetime" \
	"A: ssh prints the lifetime sentence"
use A
assert_eq "$(db "SELECT state || ' ' || end_reason FROM sessions WHERE id = '$a_sid';")" \
	"1 expired: absolute lifetime reached" "A: the row is expired by its absolute lifetime"
assert_eq "$(live_sessions)" 0 "A: no live session left"
assert_audit 1 "A: audit has the Logoff of alice's session" \
	class_uid=3002 activity_id=2 session.uid="$a_sid" user.name=alice status_detail~"absolute lifetime"

# --- B: idle expiry -------------------------------------------------------------------------
b_gone=$(wait_exit "$b_hold" $((b_hold_start + 60 + 10))) ||
	fail_soft "B: carol's idle connection was still open 10s after the idle deadline"
rc=0
wait "$b_hold" || rc=$?
log "B: idle holder gone at +$((b_gone - b_hold_start))s after it connected (exit $rc)"
check "B: the idle connection was not closed before 60s idle (+$((b_gone - b_hold_start))s)" \
	[ "$((b_gone - b_hold_start))" -ge 59 ]
assert_contains "$T/b-hold.err" "Your SAW session was idle for 60s and has ended" \
	"B: ssh prints the idle sentence"
use B
assert_eq "$(db "SELECT state || ' ' || end_reason FROM sessions WHERE id = '$b_sid';")" \
	"1 expired: idle timeout" "B: carol's row is expired by idle timeout"
assert_audit 1 "B: audit has the Logoff of carol's session for idleness" \
	class_uid=3002 activity_id=2 session.uid="$b_sid" user.name=carol status_detail~"idle"
# user2's connection kept talking: still open, session still live.
sleep 3
check "B: user2's talking connection is still open after carol's idle expiry" kill -0 "$b2_hold"
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
