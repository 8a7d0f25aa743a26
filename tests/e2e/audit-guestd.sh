#!/usr/bin/env bash
# Issue 6, guestd's side of audit delivery end to end on loopback: the real IdP, saw-brokerd
# and saw-guestd with AuditSpool (egress-lib.sh brings up the session), guestd's egress
# refusals as the events (one per CONNECT to an unlisted host, each naming its own host, so
# the broker's audit file shows which event is which and in which order).
#
#  1. Flood: FLOOD events as fast as one client can make them, with WorkspaceAuditRate far
#     below that. The broker reads the control channel more slowly (back-pressure: the
#     events wait in guestd's spool), says so in its log, and stays responsive meanwhile
#     (sawctl over the admin socket, an SSH banner); every event arrives, once, in order.
#  2. Durability: BEFORE events with the broker up; the broker stopped; OFFLINE more (they go
#     to the spool); guestd SIGKILLed and started again (the spool survives it, the numbers
#     go on); the broker started again. The broker's audit file then holds every event
#     exactly once and in order, and its hash chain verifies; guestd's spool is empty.
# Root only (egress-lib.sh: the ControlSocket's session_env); otherwise skipped (exit 77).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/egress-lib.sh"

FLOOD=${SAW_AUDIT_FLOOD:-1500}
BEFORE=40
OFFLINE=60
RATE=200
BURST=100

# Default deny: every CONNECT below is refused (403) and audited; nothing is dialled.
cat >"$T/policy.json" <<'JSON'
{
  "version": 1,
  "profile": "public",
  "egress": [ { "id": "docs", "action": "allow", "hosts": ["docs.example.com"], "ports": [443] } ]
}
JSON

# egress_up writes the broker's config through lib.sh; the rate limit goes in as extra lines
# of write_broker_config, which egress_up calls with the admin socket only: wrap it.
eval "$(declare -f write_broker_config | sed '1s/write_broker_config/saw_write_broker_config/')"
write_broker_config() {
	saw_write_broker_config "$@" "WorkspaceAuditRate $RATE" "WorkspaceAuditBurst $BURST"
}
SPOOL=$T/gspool/audit.spool
mkdir -p "$T/gspool"
egress_up "$T/policy.json" "AuditSpool $SPOOL" "AuditSpoolMax 16M" "ReconnectMax 2s" \
	"Keepalive 2s"
GUESTD_BIN=$SAW_BUILD/guestd/saw-guestd

# refuse_many PREFIX FROM TO: CONNECT PREFIX<i>.denied.test:443 for i in FROM..TO, one after
# the other (so guestd makes the events in this order); prints how many got 403.
refuse_many() {
	python3 - "$PROXY_PORT" "$1" "$2" "$3" <<'PY'
import socket, sys
port, prefix, a, b = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
n = 0
for i in range(a, b + 1):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    h = "%s%d.denied.test:443" % (prefix, i)
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (h, h)).encode())
    buf = b""
    while b"\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    s.close()
    n += buf.startswith(b"HTTP/1.1 403")
print(n)
PY
}

# seen PREFIX: the numbers of the refusals of PREFIX<i>.denied.test that saw-guestd sent to
# the broker, in the order of the broker's audit file, one per line.
seen() {
	python3 - "$BROKER_AUDIT" "$1" <<'PY'
import json, re, sys
pat = re.compile(r"^%s(\d+)\.denied\.test$" % re.escape(sys.argv[2]))
for line in open(sys.argv[1], errors="replace"):
    try:
        ev = json.loads(line)
    except ValueError:
        continue
    if ev.get("metadata", {}).get("product", {}).get("name") != "saw-guestd":
        continue
    m = pat.match(ev.get("dst_endpoint", {}).get("hostname", ""))
    if m and ev.get("class_uid") == 4001 and ev.get("activity_id") == 5:
        print(m.group(1))
PY
}

# wait_seen PREFIX COUNT SECS: until the broker's audit file has COUNT such events.
wait_seen() {
	local i
	for ((i = 0; i < $3 * 5; i++)); do
		[ "$(seen "$1" | wc -l)" -ge "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

# exactly_once_in_order PREFIX COUNT: the file holds 1..COUNT, each once, in order.
exactly_once_in_order() {
	seen "$1" >"$T/seen.$1"
	seq 1 "$2" >"$T/want.$1"
	if cmp -s "$T/seen.$1" "$T/want.$1"; then
		pass "$1: all $2 guestd events in the broker's audit file, each once, in order"
	else
		fail_soft "$1: guestd events missing, repeated or out of order ($(wc -l <"$T/seen.$1") lines; first difference below)"
		diff "$T/want.$1" "$T/seen.$1" | head -n 10
	fi
}

ssh_banner() {
	python3 - "$BROKER_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.settimeout(5)
print(s.recv(64).split(b"\r\n")[0].decode(errors="replace"))
PY
}

check "guestd opened its audit spool" test -f "$SPOOL"
# the broker's online event for the workspace (Network Activity Open, saw-control)
check "broker: workspace online as an OCSF event" python3 - "$BROKER_AUDIT" <<'PY'
import json, sys
ok = any(ev.get("class_uid") == 4001 and ev.get("activity_id") == 1
         and ev.get("unmapped", {}).get("workspace") == "alice-ws"
         and ev.get("dst_endpoint", {}).get("svc_name") == "saw-control"
         for ev in map(json.loads, open(sys.argv[1])))
sys.exit(0 if ok else 1)
PY

# ---- 1. flood ---------------------------------------------------------------------------
log "flood: $FLOOD events, WorkspaceAuditRate $RATE burst $BURST"
refuse_many f 1 "$FLOOD" >"$T/flood.out" &
FLOOD_PID=$!
track "$FLOOD_PID"
wait_for_text "$BROKER_LOG" "audit events above WorkspaceAuditRate" 60 ||
	fail_soft "broker: no rate-limit message while flooded"
# responsive while it reads the flood slowly
rc=0
timeout 5 "$SAW_BUILD/broker/sawctl" -s "$T/broker/admin.sock" workspace list \
	>"$T/ws-list.out" 2>&1 || rc=$?
assert_eq "$rc" 0 "broker: sawctl answers while flooded"
assert_contains "$T/ws-list.out" "alice-ws"
banner=$(ssh_banner 2>&1) || true
case $banner in
SSH-2.0-*) pass "broker: SSH banner while flooded ($banner)" ;;
*) fail_soft "broker: no SSH banner while flooded: $banner" ;;
esac
wait "$FLOOD_PID" || fail "the flood client failed"
assert_eq "$(cat "$T/flood.out")" "$FLOOD" "flood: every CONNECT refused by guestd"
wait_seen f "$FLOOD" 120 || log "flood: only $(seen f | wc -l) of $FLOOD arrived"
exactly_once_in_order f "$FLOOD"

# ---- 2. broker down, guestd killed, both back -------------------------------------------
[ "$(refuse_many d 1 "$BEFORE")" = "$BEFORE" ] || fail "refusals before the broker stops"
wait_seen d "$BEFORE" 30 || fail "the first $BEFORE events did not reach the broker"
log "stopping the broker"
stop_pid "$BROKER_PID" || true
# its summary of the connection, logged when the workspace went offline
check "broker: the flood was paced (pauses counted)" grep -Eq \
	"audit intake in the last [0-9]+s: [0-9]+ event\(s\) taken, [1-9][0-9]* pause\(s\) at WorkspaceAuditRate $RATE/s" \
	"$BROKER_LOG"
wait_for_text "$GUESTD_LOG" "reconnecting to the broker" 10 || fail "guestd did not notice"
[ "$(refuse_many d $((BEFORE + 1)) $((BEFORE + OFFLINE)))" = "$OFFLINE" ] ||
	fail "refusals while the broker is down"
spooled=$(python3 - "$SPOOL" <<'PY'
import sqlite3, sys
# read-only and without the lock: guestd holds the database exclusively, so copy it first
import shutil, tempfile, os
d = tempfile.mkdtemp()
for suf in ("", "-wal"):
    if os.path.exists(sys.argv[1] + suf):
        shutil.copy(sys.argv[1] + suf, os.path.join(d, "s" + suf))
try:
    print(sqlite3.connect(os.path.join(d, "s")).execute("select count(*) from spool").fetchone()[0])
except Exception as e:
    print("?", e)
PY
)
log "guestd's spool holds $spooled row(s) (expected $OFFLINE)"
log "SIGKILL guestd and start it again"
kill -KILL "$GUESTD_PID"
wait "$GUESTD_PID" 2>/dev/null || true
# shellcheck disable=SC2086 # GUESTD_FLAGS: words
"$GUESTD_BIN" -f "$GUESTD_CONF" ${GUESTD_FLAGS--d} >>"$GUESTD_LOG" 2>&1 &
GUESTD_PID=$!
track "$GUESTD_PID" "$GUESTD_LOG"
if wait_for_text "$GUESTD_LOG" "holds $OFFLINE event(s) not yet acknowledged" 10; then
	pass "restarted guestd finds the $OFFLINE events in its spool"
else
	fail_soft "restarted guestd does not report the $OFFLINE spooled events"
fi
sleep 1
check "nothing reached the stopped broker" test "$(seen d | wc -l)" -eq "$BEFORE"
log "starting the broker again"
hellos=$(grep -c "workspace alice-ws: guestd .* ready" "$BROKER_LOG" || true)
start_broker
for ((i = 0; i < 150; i++)); do
	[ "$(grep -c "workspace alice-ws: guestd .* ready" "$BROKER_LOG" || true)" -gt "$hellos" ] && break
	sleep 0.2
done
wait_seen d $((BEFORE + OFFLINE)) 60 || log "only $(seen d | wc -l) arrived"
exactly_once_in_order d $((BEFORE + OFFLINE))
# guestd deleted them once acknowledged: its spool is empty again
for ((i = 0; i < 50; i++)); do
	grep -q "sending the $OFFLINE spooled" "$GUESTD_LOG" && break
	sleep 0.1
done
assert_contains "$GUESTD_LOG" "broker holds audit events up to #"
stop_pid "$GUESTD_PID" || true
assert_not_contains "$GUESTD_LOG" "event(s) for the broker" "guestd stops with an empty spool"
assert_not_contains "$GUESTD_LOG" "AUDIT EVENT"
# the broker's file: one chain across both broker runs
rc=0
"$SAW_BUILD/audit/saw-audit-verify" "$BROKER_AUDIT" >"$T/verify.out" 2>&1 || rc=$?
assert_eq "$rc" 0 "broker's audit file verifies (hash chain)"
check "broker: workspace offline as an OCSF event" python3 - "$BROKER_AUDIT" <<'PY'
import json, sys
ok = any(ev.get("class_uid") == 4001 and ev.get("activity_id") == 2
         and ev.get("unmapped", {}).get("workspace") == "alice-ws"
         and ev.get("dst_endpoint", {}).get("svc_name") == "saw-control"
         for ev in map(json.loads, open(sys.argv[1])))
sys.exit(0 if ok else 1)
PY
finish
