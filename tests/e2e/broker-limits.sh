#!/usr/bin/env bash
# End to end (stock OpenSSH client, the test IdP, sqlite): the broker's pre-auth limits.
#  - LoginGraceTime 3s: a client that authenticates its key but never approves the device login
#    is disconnected with the grace-time sentence on time; a raw TCP client that never speaks is
#    dropped at the same deadline;
#  - PerSourceMaxStartups / MaxStartups: with the unauthenticated slots taken by silent raw TCP
#    connections, the next ssh is closed before the SSH banner, and the refusal is audited;
#  - PerSourcePenalty: after two refused logins (bob) the next connection from that address is
#    refused at once, while another address still gets in.
# Other source addresses are other loopback addresses (127.0.0.2, 127.0.0.3), which Linux routes
# to lo without any set-up.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-common.sh"

start_idp
# First broker: only the grace time (a short one would close the silent connections of the
# MaxStartups checks below before they are done).
broker_config "LoginGraceTime 3s"
start_broker

# hold_raw NAME SRC COUNT: COUNT TCP connections from SRC to the broker that never send a byte,
# in the background ($T/NAME.log gets "banner I" once the broker greeted connection I, "closed I
# AFTER" when the broker closed it). Sets HOLD_PID.
hold_raw() {
	local name=$1 src=$2 count=$3
	python3 - "$src" "$BROKER_PORT" "$count" >"$T/$name.log" 2>&1 <<'PY' &
import select, socket, sys, time
src, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks, t0 = [], {}
for i in range(count):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    socks.append(s)
    t0[s] = time.time()
banner, open_ = set(), set(socks)
deadline = time.time() + 40
while open_ and time.time() < deadline:
    r, _, _ = select.select(list(open_), [], [], 0.2)
    for s in r:
        i = socks.index(s) + 1
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if data and s not in banner and data.startswith(b"SSH-2.0-"):
            banner.add(s)
            print(f"banner {i}", flush=True)
        if not data:
            print(f"closed {i} {time.time() - t0[s]:.1f}", flush=True)
            open_.discard(s)
            s.close()
time.sleep(0.1)
PY
	HOLD_PID=$!
	track "$HOLD_PID" "$T/$name.log"
}

# wait_lines FILE PATTERN N SECONDS: wait until FILE has N lines matching PATTERN.
wait_lines() {
	local file=$1 pat=$2 n=$3 secs=$4 i
	for ((i = 0; i < secs * 10; i++)); do
		[ "$(grep -c -- "$pat" "$file" 2>/dev/null || true)" -ge "$n" ] && return 0
		sleep 0.1
	done
	return 1
}

# --- LoginGraceTime 3s ----------------------------------------------------------------------
hold_raw silent 127.0.0.1 1
silent=$HOLD_PID
start=$(now_s)
rc=0
SAW_APPROVE_LOGIN="" SSH_TIMEOUT=30 ssh_login alice -- whoami >"$T/grace.out" 2>"$T/grace.err" || rc=$?
took=$(secs_since "$start")
assert_status "$rc" 255 "a login that is never approved fails"
assert_contains "$T/grace.err" "Login not completed within 3s; connect again to start over." \
	"ssh prints the grace-time sentence"
check "the client was disconnected on time (${took}s, want 2..5)" [ "$took" -ge 2 -a "$took" -le 5 ]
assert_contains "$T/askpass.log" "not approving" "the device login was shown but not approved"
assert_audit 2 "audit: SSH Activity Refuse for the grace time (the client and the silent socket)" \
	class_uid=4007 activity_id=5 status_id=2 status_detail~"login grace time"
assert_eq "$(db 'SELECT count(*) FROM sessions;')" 0 "no session after the grace-time refusal"
wait_lines "$T/silent.log" '^closed' 1 5 || fail_soft "the silent connection was not closed"
log "silent connection: $(tr '\n' ' ' <"$T/silent.log")"
check "the silent connection was dropped after about 3s" \
	awk '/^closed/ { n++; if ($3 < 2 || $3 > 5) bad = 1 } END { exit bad || n != 1 }' "$T/silent.log"
stop_pid "$silent" || true

# Second broker, same files: the connection limits and the penalty.
stop_pid "$BROKER_PID" || true
broker_config "LoginGraceTime 30s" "PerSourceMaxStartups 2" "MaxStartups 3" \
	"PerSourcePenalty 2 1m"
start_broker

# --- PerSourceMaxStartups 2, MaxStartups 3 --------------------------------------------------
hold_raw raw1 127.0.0.1 2
raw1=$HOLD_PID
wait_lines "$T/raw1.log" '^banner' 2 5 || fail_soft "the broker did not greet the 2 raw connections"
start=$(now_s)
rc=0
SSH_TIMEOUT=20 ssh_login alice -- whoami >"$T/persource.out" 2>"$T/persource.err" || rc=$?
took=$(secs_since "$start")
assert_status "$rc" 255 "3rd connection from 127.0.0.1 with 2 silent ones open is refused"
assert_contains "$T/persource.err" "kex_exchange_identification" "it was closed before the SSH banner"
check "the refusal was immediate (${took}s)" [ "$took" -le 2 ]
assert_audit 1 "audit: SSH Activity Refuse naming PerSourceMaxStartups" \
	class_uid=4007 activity_id=5 status_id=2 status_detail~"PerSourceMaxStartups" src_endpoint.ip=127.0.0.1

# One more silent connection from another address fills MaxStartups (3 unauthenticated)...
hold_raw raw2 127.0.0.2 1
raw2=$HOLD_PID
wait_lines "$T/raw2.log" '^banner' 1 5 || fail_soft "the broker did not greet the raw connection from 127.0.0.2"
# ... so a client from a third address is refused too, by the global cap.
rc=0
SSH_TIMEOUT=20 ssh_login alice -b 127.0.0.3 -- whoami >"$T/maxstartups.out" 2>"$T/maxstartups.err" || rc=$?
assert_status "$rc" 255 "a client from 127.0.0.3 with 3 unauthenticated connections open is refused"
assert_contains "$T/maxstartups.err" "kex_exchange_identification" "it was closed before the SSH banner"
assert_audit 1 "audit: SSH Activity Refuse naming MaxStartups" \
	class_uid=4007 activity_id=5 status_id=2 status_detail~"(MaxStartups" src_endpoint.ip=127.0.0.3
check "the raw connections were still open during these checks" \
	[ "$(grep -c '^closed' "$T/raw1.log" "$T/raw2.log" | awk -F: '{s += $2} END {print s}')" -eq 0 ]

# The silent clients go away, which frees the slots.
stop_pid "$raw1" || true
stop_pid "$raw2" || true
sleep 0.5
rc=0
ssh_login alice -- whoami >"$T/after.out" 2>"$T/after.err" || rc=$?
assert_status "$rc" 0 "with the slots free again, alice logs in from 127.0.0.1"
assert_contains "$T/after.out" "You are alice" "… and gets her session"

# --- PerSourcePenalty 2 1m ------------------------------------------------------------------
for i in 1 2; do
	rc=0
	ssh_login bob -- whoami >"$T/bob$i.out" 2>"$T/bob$i.err" || rc=$?
	assert_status "$rc" 255 "bob's login $i is refused (not entitled)"
	assert_contains "$T/bob$i.err" 'not in the group "saw-users"' "bob's refusal $i is explained"
done
# alice's key is bound to a live session: without the penalty she would be in at once.
start=$(now_s)
rc=0
SSH_TIMEOUT=20 ssh_login alice -- whoami >"$T/penalty.out" 2>"$T/penalty.err" || rc=$?
took=$(secs_since "$start")
assert_status "$rc" 255 "after 2 refused logins, the next connection from 127.0.0.1 is refused"
assert_contains "$T/penalty.err" "kex_exchange_identification" "it was closed before the SSH banner"
check "the penalty refusal was immediate (${took}s)" [ "$took" -le 2 ]
assert_not_contains "$T/penalty.out" "You are" "no session output under penalty"
assert_audit 1 "audit: SSH Activity Refuse naming PerSourcePenalty" \
	class_uid=4007 activity_id=5 status_id=2 status_detail~"PerSourcePenalty" src_endpoint.ip=127.0.0.1
rc=0
ssh_login alice -b 127.0.0.2 -- whoami >"$T/other.out" 2>"$T/other.err" || rc=$?
assert_status "$rc" 0 "another address (127.0.0.2) is not penalised"
assert_contains "$T/other.out" "You are alice" "… alice logs in from there with her session"

check "the broker is still running" kill -0 "$BROKER_PID"
finish
