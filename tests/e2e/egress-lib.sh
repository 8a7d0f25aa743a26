# shellcheck shell=bash
# Helpers for the egress and credential-proxy tests (egress.sh, credproxy.sh); sourced after
# lib.sh. Not a test by itself.
#
# A brokered session without the whole lab: the real IdP and saw-brokerd (lib.sh), workspace
# alice-ws registered with sawctl, saw-guestd connected to the broker on loopback, and a login
# of alice that opens a direct-tcpip channel to alice-ws:22 (ssh -W): that is what makes the
# broker attach the session to the workspace (CTL_SESSION_ATTACH), exactly as for a real
# login. guestd's LocalSSH is a small TCP sink here: nothing in these tests needs an sshd.
# The session's capabilities come from the ControlSocket's root-only session_env, which is
# how a launcher outside guestd gets them; no test-only path in the daemon.

EGRESS_HELPERS=$SAW_SRC/tests/e2e/egress-servers.py

# egress_up POLICY_FILE [EXTRA GUESTD CONFIG LINES...]: everything above, and the session.
# Sets GUESTD_CONF, GUESTD_LOG, GUESTD_PID, GUESTD_SOCK, PROXY_PORT, SESSION_ID.
# EGRESS_BROKER_LINE: one more line for the broker's configuration (the benchmark's).
egress_up() {
	local policy=$1 i l
	shift
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (ControlSocket session_env is root-only)"; exit 77; }
	for l in broker/saw-brokerd broker/sawctl guestd/saw-guestd; do
		[ -x "$SAW_BUILD/$l" ] || fail "no $SAW_BUILD/$l (build first)"
	done
	start_idp
	write_broker_config "AdminSocket $T/broker/admin.sock" ${EGRESS_BROKER_LINE:+"$EGRESS_BROKER_LINE"}
	start_broker
	wait_for_text "$BROKER_LOG" "admin socket" 10 || fail "no admin socket (see $BROKER_LOG)"
	local wskey
	wskey=$(make_key alice-ws)
	"$SAW_BUILD/broker/sawctl" -s "$T/broker/admin.sock" workspace add alice-ws --owner alice \
		--key "$wskey.pub" --profile public >"$T/sawctl.out" 2>&1 ||
		{ show_file "$T/sawctl.out"; fail "sawctl workspace add"; }

	SINK_PORT=$(free_port)
	python3 "$EGRESS_HELPERS" sink "$SINK_PORT" >"$T/sink.log" 2>&1 &
	track $! "$T/sink.log"
	PROXY_PORT=$(free_port)
	GUESTD_SOCK=$T/guestd.sock
	GUESTD_CONF=$T/guestd.conf
	GUESTD_LOG=$T/guestd.log
	{
		echo "BrokerAddress 127.0.0.1:$BROKER_PORT"
		echo "BrokerHostKey $BROKER_HOSTKEY.pub"
		echo "WorkspaceName alice-ws"
		echo "WorkspaceKey $wskey"
		echo "LocalSSH 127.0.0.1:$SINK_PORT"
		echo "ControlSocket $GUESTD_SOCK"
		echo "DecisionSocket $T/decide.sock"
		echo "ProxyListen 127.0.0.1:$PROXY_PORT"
		echo "PolicyFile $policy"
		# guestd's audit events spooled as in production (the default directory may not
		# exist on a test machine), unless the test says otherwise
		case " $* " in
		*" AuditSpool "*) ;;
		*) echo "AuditSpool $T/guestd-audit.spool" ;;
		esac
		for l in "$@"; do echo "$l"; done
	} >"$GUESTD_CONF"
	# shellcheck disable=SC2086 # GUESTD_FLAGS: words
	"$SAW_BUILD/guestd/saw-guestd" -f "$GUESTD_CONF" ${GUESTD_FLAGS--d} >"$GUESTD_LOG" 2>&1 &
	GUESTD_PID=$!
	track "$GUESTD_PID" "$GUESTD_LOG"
	wait_for_text "$BROKER_LOG" "workspace alice-ws is online" 15 ||
		fail "alice-ws did not come online (see $GUESTD_LOG)"
	wait_for_port "$PROXY_PORT" 10 "$GUESTD_PID" || fail "guestd's proxy does not listen"

	# the login that attaches alice's session to alice-ws
	local key rc=0
	key=$(make_key alice)
	SAW_APPROVE_LOGIN=alice SAW_APPROVE_DENY=0 SAW_ASKPASS_LOG=$T/askpass.log \
		SSH_ASKPASS="$SAW_SRC/tests/tools/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
		timeout -k 5 60 setsid -w ssh "${SAW_SSH_OPTS[@]}" -i "$key" -p "$BROKER_PORT" \
		-l alice -W alice-ws:22 127.0.0.1 </dev/null >"$T/login.out" 2>"$T/login.err" || rc=$?
	wait_for_text "$GUESTD_LOG" "of alice attached" 15 ||
		{ show_file "$T/login.err"; fail "no session attached to alice-ws (ssh exit $rc)"; }
	[ -z "${EGRESS_DEBUG:-}" ] || return 0
	SESSION_ID=$(gsock '{"op":"status"}' | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r["sessions"][0]["session"] if r.get("sessions") else "")')
	[ -n "$SESSION_ID" ] || fail "no live session in guestd's status"
	export SESSION_ID PROXY_PORT GUESTD_SOCK GUESTD_LOG GUESTD_PID
	log "session $SESSION_ID attached to alice-ws"
}

# gsock JSON: one request to guestd's ControlSocket, the answer on stdout.
gsock() {
	python3 - "$GUESTD_SOCK" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    d = s.recv(65536)
    if not d:
        break
    buf += d
sys.stdout.write(buf.decode())
PY
}

# revoke_session: revoke alice's session at the broker (sawctl), wait until guestd ended it.
revoke_session() {
	"$SAW_BUILD/broker/sawctl" -s "$T/broker/admin.sock" revoke "$SESSION_ID" \
		>"$T/revoke.out" 2>&1 || { show_file "$T/revoke.out"; fail_soft "sawctl revoke"; }
	wait_for_text "$GUESTD_LOG" "session $SESSION_ID of alice ended" 10
}

# audit_lines CLASS ACTIVITY: how many "audit:" lines of guestd are OCSF events of that class
# and activity.
audit_lines() {
	python3 - "$GUESTD_LOG" "$1" "$2" <<'PY'
import json, sys
n = 0
for line in open(sys.argv[1], errors="replace"):
    i = line.find("audit: {")
    if i < 0:
        continue
    ev = json.loads(line[i + 7:])
    if ev.get("class_uid") == int(sys.argv[2]) and ev.get("activity_id") == int(sys.argv[3]):
        n += 1
print(n)
PY
}
