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
#  3. Broker crash: CRASH events reach the broker's audit file but guestd never reads the
#     acknowledgement (the broker SIGSTOPped while guestd makes and sends them, guestd
#     SIGSTOPped, the broker continued: it writes them and acknowledges), then both are
#     SIGKILLed. After both restart, guestd still holds the events in its spool and would
#     send them again; the broker's mark in its session store makes them no duplicates.
#  4. A far-future seq (edited into guestd's spool while it is stopped) is refused by the
#     broker as a malformed message, and does not become the workspace's mark; a damaged
#     spool row is dropped loudly by guestd and the rows around it are delivered.
#  5. A full spool (AuditSpoolMax at its minimum, the broker SIGSTOPped): events past the
#     cap are logged "AUDIT EVENT NOT SPOOLED"; every event spooled before is delivered.
#  6. The workspace removed and registered again: its next guestd is told the broker holds
#     nothing of it (the mark starts again from 0).
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
# spool_rows: rows in guestd's spool (read from a copy: guestd may hold the database)
spool_rows() {
	python3 - "$SPOOL" <<'PY'
import os, shutil, sqlite3, sys, tempfile
d = tempfile.mkdtemp()
for suf in ("", "-wal"):
    if os.path.exists(sys.argv[1] + suf):
        shutil.copy(sys.argv[1] + suf, os.path.join(d, "s" + suf))
try:
    print(sqlite3.connect(os.path.join(d, "s")).execute("select count(*) from spool").fetchone()[0])
except Exception as e:
    print("?", e)
shutil.rmtree(d)
PY
}
spooled=$(spool_rows)
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

# ---- helpers for 3-5 -------------------------------------------------------------------
start_guestd() {
	# shellcheck disable=SC2086 # GUESTD_FLAGS: words
	"$GUESTD_BIN" -f "$GUESTD_CONF" ${GUESTD_FLAGS--d} >>"$GUESTD_LOG" 2>&1 &
	GUESTD_PID=$!
	track "$GUESTD_PID" "$GUESTD_LOG"
	wait_for_port "$PROXY_PORT" 10 "$GUESTD_PID" || fail "guestd's proxy does not listen"
}

# count FILE ERE: lines of FILE matching ERE
count() { grep -Ec "$2" "$1" || true; }

# wait_count FILE ERE N SECS: until FILE has at least N lines matching ERE
wait_count() {
	local i
	for ((i = 0; i < $4 * 5; i++)); do
		[ "$(count "$1" "$2")" -ge "$3" ] && return 0
		sleep 0.2
	done
	return 1
}

# relogin: alice's session attached to the running guestd (a new login through the broker,
# as in egress_up; after a broker restart its attachments are gone), until guestd has it.
relogin() {
	local rc=0 i
	SAW_APPROVE_LOGIN=alice SAW_APPROVE_DENY=0 SAW_ASKPASS_LOG=$T/askpass.log \
		SSH_ASKPASS="$SAW_SRC/tests/tools/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
		timeout -k 5 60 setsid -w ssh "${SAW_SSH_OPTS[@]}" -i "$T/keys/alice" \
		-p "$BROKER_PORT" -l alice -W alice-ws:22 127.0.0.1 </dev/null >"$T/login.out" \
		2>"$T/login.err" || rc=$?
	for ((i = 0; i < 75; i++)); do
		gsock '{"op":"status"}' 2>/dev/null | python3 -c '
import json, sys
sys.exit(0 if json.load(sys.stdin).get("sessions") else 1)' 2>/dev/null && return 0
		sleep 0.2
	done
	show_file "$T/login.err"
	fail "no session attached to alice-ws after a new login (ssh exit $rc)"
}


# ---- 3. broker SIGKILLed after writing events it could not acknowledge ------------------
CRASH=30
start_guestd
relogin
log "crash: broker stopped (SIGSTOP) while guestd makes $CRASH events"
kill -STOP "$BROKER_PID"
[ "$(refuse_many k 1 "$CRASH")" = "$CRASH" ] || fail "crash: refusals"
sleep 0.5 # guestd hands each event to the socket as it spools it
kill -STOP "$GUESTD_PID"
kill -CONT "$BROKER_PID"
# the broker reads what guestd sent, writes it and acknowledges it to a guestd that sleeps
wait_seen k "$CRASH" 30 || fail_soft "crash: the broker did not write the $CRASH events"
log "crash: $(seen k | wc -l) event(s) in the broker's audit file; SIGKILL the broker and guestd"
kill -KILL "$BROKER_PID" "$GUESTD_PID"
wait "$BROKER_PID" 2>/dev/null || true
wait "$GUESTD_PID" 2>/dev/null || true
assert_eq "$(spool_rows)" "$CRASH" "crash: guestd never read the acknowledgement (all $CRASH still spooled)"
start_broker
acks=$(count "$GUESTD_LOG" "broker holds audit events up to #")
start_guestd
if wait_for_text "$GUESTD_LOG" "holds $CRASH event(s) not yet acknowledged" 10; then
	pass "crash: restarted guestd finds the $CRASH events in its spool"
else
	fail_soft "crash: restarted guestd does not report $CRASH spooled events"
fi
wait_count "$GUESTD_LOG" "broker holds audit events up to #" $((acks + 1)) 20 ||
	fail_soft "crash: no acknowledgement from the restarted broker"
relogin
[ "$(refuse_many k $((CRASH + 1)) $((CRASH + 5)))" = 5 ] || fail "crash: refusals after"
wait_seen k $((CRASH + 5)) 30 || log "crash: only $(seen k | wc -l) arrived"
sleep 1 # a duplicate would come with the others; give a late one time to show
exactly_once_in_order k $((CRASH + 5))
for ((i = 0; i < 50; i++)); do
	[ "$(spool_rows)" = 0 ] && break
	sleep 0.2
done
assert_eq "$(spool_rows)" 0 "crash: guestd's spool empty once acknowledged"

# ---- 4. a far-future seq and a damaged row in guestd's spool ----------------------------
log "spool edits: broker stopped while guestd makes 4 events"
kill -STOP "$BROKER_PID"
[ "$(refuse_many x 1 4)" = 4 ] || fail "spool edits: refusals"
stop_pid "$GUESTD_PID" || true
kill -KILL "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null || true
# x1: its seq ten days ahead of the clock; x3: not an event any more; x4: an hour ahead
# (within the allowed skew: it becomes the workspace's mark, for 6)
python3 - "$SPOOL" >"$T/edit.out" <<'PY' || fail "spool edits: sqlite"
import json, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
rows = db.execute("select id, event from spool order by id").fetchall()
assert len(rows) == 4, rows
far = int(time.time() * 1e6) + 10 * 86400 * 1000000
body = json.loads(rows[0][1])
body["seq"] = far
db.execute("update spool set event = ? where id = ?",
           (json.dumps(body, separators=(",", ":")), rows[0][0]))
db.execute("update spool set event = ? where id = ?", ("damaged row\n", rows[2][0]))
body = json.loads(rows[3][1])
body["seq"] = int(time.time() * 1e6) + 3600 * 1000000
db.execute("update spool set event = ? where id = ?",
           (json.dumps(body, separators=(",", ":")), rows[3][0]))
db.commit()
print(rows[0][0], rows[2][0], far)
PY
read -r far_id damaged_id far <"$T/edit.out"
start_broker
start_guestd
if wait_for_text "$BROKER_LOG" "seq #$far is more than 86400 s ahead of this broker's clock" 20; then
	pass "broker refuses a seq ten days ahead as a malformed CTL_AUDIT"
else
	fail_soft "broker did not refuse the far-future seq #$far"
fi
wait_for_text "$GUESTD_LOG" "reconnecting to the broker" 10 ||
	fail_soft "the broker did not end guestd's connection after the far-future seq"
check "nothing of the refused connection was written" test "$(seen x | wc -l)" -eq 0
stop_pid "$GUESTD_PID" || true
python3 -c '
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); db.execute("delete from spool where id = ?", (int(sys.argv[2]),)); db.commit()' \
	"$SPOOL" "$far_id" || fail "spool edits: delete"
start_guestd
if wait_for_text "$GUESTD_LOG" "AUDIT EVENT LOST: audit spool $SPOOL row $damaged_id is damaged; it is dropped" 20; then
	pass "guestd drops the damaged spool row loudly"
else
	fail_soft "guestd did not report the damaged row $damaged_id"
fi
wait_seen x 2 30 || true
sleep 1
# x2 and x4 arrive: the refused seq did not become the mark (they are far below it)
assert_eq "$(seen x | tr '\n' ' ')" "2 4 " "the rows around the damaged one are delivered, once"

# ---- 5. a full spool ---------------------------------------------------------------------
FULL=300
stop_pid "$GUESTD_PID" || true
sed -i 's/^AuditSpoolMax .*/AuditSpoolMax 64K/' "$GUESTD_CONF"
start_guestd
relogin
log "full spool: broker stopped while guestd makes $FULL events into a 64K spool"
kill -STOP "$BROKER_PID"
[ "$(refuse_many s 1 "$FULL")" = "$FULL" ] || fail "full spool: refusals"
spooled=$(spool_rows)
log "full spool: $spooled of $FULL events spooled"
kill -CONT "$BROKER_PID"
assert_contains "$GUESTD_LOG" "AUDIT EVENT NOT SPOOLED: audit spool $SPOOL is full"
check "full spool: some events spooled, not all" test "$spooled" -gt 0 -a "$spooled" -lt "$FULL"
# every event stays in guestd's own log ("they remain in this log")
assert_eq "$(grep -Ec 'audit: \{.*"s[0-9]+\.denied\.test"' "$GUESTD_LOG")" "$FULL" \
	"full spool: guestd logged all $FULL events"
wait_seen s "$spooled" 60 || log "full spool: only $(seen s | wc -l) arrived"
sleep 1
exactly_once_in_order s "$spooled"
stop_pid "$GUESTD_PID" || true

# ---- 6. removed and registered again: a new guestd, counted from 0 ----------------------
# alice-ws's mark is an hour ahead of the clock now (x4 in 4). Removed and added again (same
# name and key), its next guestd (a fresh spool, numbering by the clock) must be told 0: told
# the old mark, it would skip its own first events as held by the broker, and the broker
# would drop the next ones as resends.
SAWCTL=("$SAW_BUILD/broker/sawctl" -s "$T/broker/admin.sock")
"${SAWCTL[@]}" workspace remove alice-ws >"$T/rm.out" 2>&1 || { show_file "$T/rm.out"; fail "sawctl workspace remove"; }
"${SAWCTL[@]}" workspace add alice-ws --owner alice --key "$T/keys/alice-ws.pub" \
	--profile public >"$T/add.out" 2>&1 || { show_file "$T/add.out"; fail "sawctl workspace add"; }
sed -i "s|^AuditSpool .*|AuditSpool $T/gspool/new.spool|" "$GUESTD_CONF"
hellos=$(count "$BROKER_LOG" "workspace alice-ws: guestd .* ready")
acks=$(count "$GUESTD_LOG" "above any this saw-guestd numbered")
start_guestd
wait_count "$BROKER_LOG" "workspace alice-ws: guestd .* ready" $((hellos + 1)) 20 ||
	fail_soft "re-added: guestd did not come back"
relogin
[ "$(refuse_many r 1 3)" = 3 ] || fail "re-added: refusals"
wait_seen r 3 20 || true
sleep 1
assert_eq "$(seen r | tr '\n' ' ')" "1 2 3 " "re-added workspace: its new guestd's events delivered"
assert_eq "$(count "$GUESTD_LOG" "above any this saw-guestd numbered")" "$acks" \
	"re-added workspace: the broker holds nothing of its new guestd (mark 0)"
stop_pid "$GUESTD_PID" || true

rc=0
"$SAW_BUILD/audit/saw-audit-verify" "$BROKER_AUDIT" >"$T/verify.out" 2>&1 || rc=$?
assert_eq "$rc" 0 "broker's audit file verifies after the SIGKILLs (hash chain)"
finish
