#!/usr/bin/env bash
# Issue 5 benchmark: saw-guestd's egress proxy side by side in one run with tinyproxy and squid
# (Debian packages, installed with apt-get if missing), each configured with the equivalent
# allowlist (CONNECT only to 127.0.0.1:TARGET), and with no proxy at all; then the credential
# proxy's added latency per request. Loopback only: the target is tests/bench/saw-egressbench
# on 127.0.0.1, guestd runs for a real brokered session (IdP, broker, sawctl, an attached
# login: tests/e2e/egress-lib.sh) with a policy that allows 127.0.0.1:TARGET and names
# 127.0.0.1/32 in addresses.allow_private. Every path uses the same client, the same target
# and the same byte counts; "direct" is the client connected to the target without a proxy;
# "floor" is tests/bench/saw-floorproxy, the least a CONNECT proxy can cost on this machine
# (one allowed port, no names, no policy, no audit, one epoll loop per CPU, splice for bulk):
# the yardstick that says how much of a proxy's cost is the kernel's loopback work for its
# two sockets, which no proxy avoids, and how far the targets are reachable here at all.
#
# First, not timed: saw-egressbench check through each proxy (64 MiB downstream compared
# byte for byte, 32 MiB upstream sent with early data and ended by a half-close); guestd must
# pass, the others are reported.
# Measured, the paths interleaved (each round runs every path once, so that a machine shared
# with other work slows all of them alike), median of the rounds:
#   (1) CONNECT connections per second: SAW_BENCH_THREADS (8) clients for SAW_BENCH_SECS (5 s),
#       SAW_BENCH_CONN_RUNS (3) rounds; each connection: CONNECT, 200, one byte there and back,
#       close;
#   (2) bulk throughput: SAW_BENCH_BYTES (2 GiB) downstream through one CONNECT tunnel,
#       SAW_BENCH_RUNS (3) rounds;
#   (3) credential proxy: SAW_BENCH_REQS (200) sequential keep-alive requests, median and p90
#       latency, straight to the HTTPS upstream and through the credential proxy.
# With (1) and (2), the CPU time (user+system, /proc/PID/stat) of every process on the path:
# the proxy, the broker (guestd sends it an OCSF event per connection over CTL_AUDIT, and on
# this machine it shares the CPUs; in production it runs elsewhere), the target and the client,
# per connection and per GiB. On a machine with few CPUs the figures that say what a proxy
# costs are these; the rates say how the machine shared its CPUs among the processes.
# Targets: guestd >= 1.5x tinyproxy's connections/s, >= 0.9x direct throughput.
# Root only (apt-get, the ControlSocket). Progress on stderr, the tables on stdout. Benchmarks
# measure, they do not pass or fail: exit 0 when it ran.
# Environment: SAW_BUILD_DIR (default build/), the SAW_BENCH_* above, SAW_BENCH_PROXY_THREADS
# (guestd's ProxyThreads; default guestd's own: one event loop per CPU), SAW_KEEP_TMP=1.
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
	exit 0
fi
SAW_TEST_NAME=bench-egress
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../e2e/egress-lib.sh"

SECS=${SAW_BENCH_SECS:-5}
THREADS=${SAW_BENCH_THREADS:-8}
BYTES=${SAW_BENCH_BYTES:-2147483648}
RUNS=${SAW_BENCH_RUNS:-3}
CONN_RUNS=${SAW_BENCH_CONN_RUNS:-3}
REQS=${SAW_BENCH_REQS:-200}
EB=$SAW_BUILD/tests/saw-egressbench
FLOORPROXY=$SAW_BUILD/tests/saw-floorproxy
blog() { echo "bench-egress: $*" >&2; }
[ -x "$EB" ] && [ -x "$FLOORPROXY" ] || fail "no $EB or $FLOORPROXY (build first)"
[ "$(id -u)" -eq 0 ] || fail "run as root (apt-get, guestd's ControlSocket)"

if ! command -v tinyproxy >/dev/null || ! command -v squid >/dev/null; then
	blog "installing tinyproxy and squid (apt-get)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tinyproxy squid \
		>"$T/apt.log" 2>&1 || { show_file "$T/apt.log"; fail "apt-get install tinyproxy squid"; }
fi

TARGET=$(free_port)
"$EB" server "$TARGET" >"$T/target.out" 2>&1 &
TARGET_PID=$!
track "$TARGET_PID"
wait_for_port "$TARGET" 10 || fail "the target server did not start"

# --- saw-guestd (and the credential proxy's HTTPS upstream) -------------------------------------
make_test_pki "$T/pki"
UP=$(free_port)
python3 "$EGRESS_HELPERS" https "$UP" "$T/pki/srv.pem" "$T/pki/srv.key" /dev/null \
	>"$T/upstream.out" 2>/dev/null &
track $!
printf 'sk-bench-secret\n' >"$T/secret"
chmod 0600 "$T/secret"
cat >"$T/policy.json" <<JSON
{ "version": 1, "profile": "public",
  "egress": [ { "id": "bench-target", "action": "allow", "hosts": ["127.0.0.1"], "ports": [$TARGET] } ],
  "addresses": { "allow_private": ["127.0.0.1/32"] },
  "credentials": [ { "name": "openai", "kind": "openai", "upstream": "https://127.0.0.1:$UP",
                     "secret": "file:$T/secret" } ] }
JSON
CRED=$(free_port)
blog "starting the IdP, the broker and saw-guestd (a brokered session)"
# The broker takes guestd's events as they come: its default WorkspaceAuditRate (500/s) would
# hold most of a run's events back in guestd's spool, to be sent and counted after the run.
# SAW_BENCH_PROXY_THREADS: guestd's ProxyThreads (default: guestd's own, one loop per CPU)
EGRESS_BROKER_LINE="WorkspaceAuditRate 1000000" GUESTD_FLAGS="" egress_up "$T/policy.json" "CredentialListen 127.0.0.1:$CRED" \
	"CredentialCAFile $T/pki/ca.pem" ${SAW_BENCH_PROXY_THREADS:+"ProxyThreads $SAW_BENCH_PROXY_THREADS"} \
	>"$T/egress-up.log" 2>&1 || { cat "$T/egress-up.log"; fail "guestd setup"; }
GUESTD_LOOPS=$(grep -oE 'egress proxy: [0-9]+ event loop' "$GUESTD_LOG" | grep -oE '[0-9]+' | tail -n1)
CAP=$(gsock "{\"op\":\"session_env\",\"session\":\"$SESSION_ID\"}" | python3 -c '
import json, sys
for e in json.load(sys.stdin)["env"]:
    if e.startswith("SAW_CAP_OPENAI="): print(e.split("=", 1)[1])')
[ -n "$CAP" ] || fail "no capability"

# --- tinyproxy and squid with the same allowlist --------------------------------------------
TINY=$(free_port)
cat >"$T/tinyproxy.conf" <<CONF
User nobody
Group nogroup
Port $TINY
Listen 127.0.0.1
Timeout 600
MaxClients 1024
LogLevel Critical
LogFile "$T/tinyproxy.log"
PidFile "$T/tinyproxy.pid"
Allow 127.0.0.1
ConnectPort $TARGET
FilterDefaultDeny Yes
Filter "$T/tinyproxy.filter"
FilterExtended Yes
CONF
echo '^127\.0\.0\.1$' >"$T/tinyproxy.filter"
touch "$T/tinyproxy.log"
chown nobody "$T/tinyproxy.log"
tinyproxy -d -c "$T/tinyproxy.conf" >"$T/tinyproxy.out" 2>&1 &
TINY_PID=$!
track "$TINY_PID" "$T/tinyproxy.out"
SQUID=$(free_port)
mkdir -p "$T/squid"
chown proxy: "$T/squid" 2>/dev/null || true
cat >"$T/squid.conf" <<CONF
http_port 127.0.0.1:$SQUID
acl target_port port $TARGET
acl target_dst dst 127.0.0.1/32
acl CONNECT method CONNECT
acl me src 127.0.0.1/32
http_access allow me CONNECT target_dst target_port
http_access deny all
cache deny all
cache_mem 8 MB
access_log none
cache_log $T/squid/cache.log
pid_filename $T/squid/squid.pid
coredump_dir $T/squid
shutdown_lifetime 1 seconds
max_filedescriptors 16384
CONF
squid -N -f "$T/squid.conf" >"$T/squid.out" 2>&1 &
SQUID_PID=$!
track "$SQUID_PID" "$T/squid.out"
FLOOR=$(free_port)
"$FLOORPROXY" "$FLOOR" "$TARGET" "$(nproc)" >"$T/floor.out" 2>&1 &
FLOOR_PID=$!
track "$FLOOR_PID" "$T/floor.out"
wait_for_port "$FLOOR" 10 || fail "saw-floorproxy did not start"
wait_for_port "$TINY" 10 || fail "tinyproxy did not start"
wait_for_port "$SQUID" 20 || fail "squid did not start"
for p in "$PROXY_PORT" "$TINY" "$SQUID"; do
	"$EB" bulk "$p" "$TARGET" 1048576 >/dev/null || fail "no CONNECT through 127.0.0.1:$p"
done
# the allowlists really are equivalent: another port is refused by all three
OTHER=$(free_port)
for p in "$PROXY_PORT" "$TINY" "$SQUID"; do
	code=$(curl -s -o /dev/null -w '%{http_connect}' -p -x "http://127.0.0.1:$p" --noproxy '' \
		"http://127.0.0.1:$OTHER/" 2>/dev/null || true)
	blog "CONNECT 127.0.0.1:$OTHER (not allowed) through 127.0.0.1:$p: $code"
done

NCPU=$(nproc)
HZ=$(getconf CLK_TCK)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
NAMES=(direct floor guestd tinyproxy squid)
declare -A PORT=([direct]=0 [floor]=$FLOOR [guestd]=$PROXY_PORT [tinyproxy]=$TINY [squid]=$SQUID)
declare -A PID=([direct]="" [floor]=$FLOOR_PID [guestd]=$GUESTD_PID [tinyproxy]=$TINY_PID
	[squid]=$SQUID_PID)
declare -A CHECK CPS TPUT
# ticks PID: CPU clock ticks (user+system, with reaped children) of a process so far; 0 if none
ticks() {
	if [ -n "$1" ] && [ -r "/proc/$1/stat" ]; then
		awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$1/stat"
	else
		echo 0
	fi
}
# sticks PID: the same, system time only (the kernel's work on the process's behalf)
sticks() {
	if [ -n "$1" ] && [ -r "/proc/$1/stat" ]; then
		awk '{ sub(/^.*\) /, ""); print $13 + $15 }' "/proc/$1/stat"
	else
		echo 0
	fi
}
# mticks PID: user+system clock ticks of the process's main thread alone (guestd: its own event
# loop, which also spools every loop's audit events)
mticks() {
	if [ -n "$1" ] && [ -r "/proc/$1/task/$1/stat" ]; then
		awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/task/$1/stat"
	else
		echo 0
	fi
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'; }
# col FILE N: the median of column N (0 when that kind was not measured: SAW_BENCH_*RUNS=0)
col() { if [ -f "$1" ]; then awk -v n="$2" '{print $n}' "$1" | median; else echo 0; fi; }

for name in "${NAMES[@]}"; do
	out=$("$EB" check "${PORT[$name]}" "$TARGET" 2>&1) || true
	CHECK[$name]=$([ "$out" = "check ok" ] && echo ok || echo "failed: ${out#check: }")
	blog "$name: relay check: ${CHECK[$name]}"
done
[ "${CHECK[guestd]}" = ok ] || fail "guestd's relay check: ${CHECK[guestd]}"

# one measured run; appends "rate proxy broker target client proxy-system main-thread" (CPU
# per connection in µs, or per GiB in s) to $T/<mode>.<name>
measure() {
	local mode=$1 name=$2 p0 b0 t0 s0 m0 p1 b1 t1 s1 m1 out rate units client
	p0=$(ticks "${PID[$name]}")
	m0=$(mticks "${PID[$name]}")
	s0=$(sticks "${PID[$name]}")
	b0=$(ticks "$BROKER_PID")
	t0=$(ticks "$TARGET_PID")
	if [ "$mode" = conn ]; then
		out=$("$EB" conn "${PORT[$name]}" "$TARGET" "$SECS" "$THREADS")
		rate=$(awk '{print $2}' <<<"$out")
		units=$(awk '{print $6 / 1e6}' <<<"$out") # millions of connections: CPU s -> µs each
		[ "$(awk '{print $4}' <<<"$out")" = 0 ] ||
			blog "$name: $(awk '{print $4}' <<<"$out") failed connections"
	else
		out=$("$EB" bulk "${PORT[$name]}" "$TARGET" "$BYTES") || blog "$name: bulk run: $out"
		rate=$(awk '{print $2}' <<<"$out")
		units=$(awk '{print $4 / 1073741824}' <<<"$out") # GiB: CPU s per GiB
	fi
	client=$(awk '{print $NF == "(short)" ? $(NF - 1) : $NF}' <<<"$out")
	# the broker takes guestd's audit events as they come; what it still had queued is
	# counted too (it does nothing else meanwhile)
	[ "$name" != guestd ] || sleep 1
	p1=$(ticks "${PID[$name]}")
	m1=$(mticks "${PID[$name]}")
	s1=$(sticks "${PID[$name]}")
	b1=$(ticks "$BROKER_PID")
	t1=$(ticks "$TARGET_PID")
	awk -v r="$rate" -v u="$units" -v hz="$HZ" -v p=$((p1 - p0)) -v b=$((b1 - b0)) \
		-v t=$((t1 - t0)) -v c="$client" -v sy=$((s1 - s0)) -v m=$((m1 - m0)) 'BEGIN {
		if (u <= 0) u = 1e-9
		printf "%s %.4f %.4f %.4f %.4f %.4f %.4f\n", r, p / hz / u, b / hz / u, t / hz / u,
			c / u, sy / hz / u, m / hz / u }' >>"$T/$mode.$name"
	blog "$name: $mode: $(tail -n1 "$T/$mode.$name")"
}

for name in "${NAMES[@]}"; do # warm-up: thread pools, caches, the first-connection costs
	"$EB" conn "${PORT[$name]}" "$TARGET" 1 "$THREADS" >/dev/null
done
for ((r = 0; r < CONN_RUNS; r++)); do
	blog "connections/s, round $((r + 1)) of $CONN_RUNS ($THREADS clients, ${SECS}s per path)"
	for name in "${NAMES[@]}"; do
		measure conn "$name"
		sleep 1
	done
done
for ((r = 0; r < RUNS; r++)); do
	blog "bulk throughput, round $((r + 1)) of $RUNS ($((BYTES / 1048576)) MiB per path)"
	for name in "${NAMES[@]}"; do
		measure bulk "$name"
	done
done
for name in "${NAMES[@]}"; do
	CPS[$name]=$(col "$T/conn.$name" 1)
	TPUT[$name]=$(col "$T/bulk.$name" 1)
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# --- credential proxy latency ----------------------------------------------------------------
blog "credential proxy: $REQS requests each way"
python3 - "$UP" "$CRED" "$CAP" "$T/pki/ca.pem" "$REQS" >"$T/cred.out" <<'PY'
import http.client, ssl, sys, time
up, cred, cap, ca, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
body = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
def run(conn, path, hdrs):
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=hdrs)
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status
        t.append((time.perf_counter() - t0) * 1000)
    t.sort()
    return t[len(t) // 2], t[int(len(t) * 0.9)]
ctx = ssl.create_default_context(cafile=ca)
d = run(http.client.HTTPSConnection("127.0.0.1", up, context=ctx), "/v1/chat/completions",
        {"Authorization": "Bearer sk-bench-secret", "Content-Type": "application/json"})
p = run(http.client.HTTPConnection("127.0.0.1", cred), "/openai/v1/chat/completions",
        {"Authorization": "Bearer " + cap, "Content-Type": "application/json"})
print("%.2f %.2f %.2f %.2f" % (d[0], d[1], p[0], p[1]))
PY
read -r d50 d90 p50 p90 <"$T/cred.out"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf (b > 0 ? "%.2f" : "-"), a / b }'; }
echo
echo "saw-guestd egress benchmark (loopback; $NCPU CPUs, $(uname -r); load average $LOAD0 before, $LOAD1 after)"
echo "saw-guestd: ${GUESTD_LOOPS:-?} egress event loop(s) (ProxyThreads ${SAW_BENCH_PROXY_THREADS:-0, one per CPU})"
echo "CONNECT: $THREADS clients x ${SECS}s, median of $CONN_RUNS rounds; bulk: $((BYTES / 1048576)) MiB through one CONNECT tunnel, median of $RUNS rounds; paths interleaved"
printf '%-10s %10s %13s %9s %10s  %s\n' proxy "CONNECT/s" "vs tinyproxy" "MiB/s" "vs direct" "relay check"
for name in "${NAMES[@]}"; do
	printf '%-10s %10s %13s %9s %10s  %s\n' "$name" "${CPS[$name]}" \
		"$(ratio "${CPS[$name]}" "${CPS[tinyproxy]}")" "${TPUT[$name]}" \
		"$(ratio "${TPUT[$name]}" "${TPUT[direct]}")" "${CHECK[$name]}"
done
echo
echo "CPU per CONNECT connection, µs (user+system, median of the rounds; \"kernel\": the proxy's"
echo "system time, most of it the loopback TCP work of its two sockets):"
printf '%-10s %8s %8s %15s %8s %8s %8s\n' path proxy kernel "broker (audit)" target client total
for name in "${NAMES[@]}"; do
	f=$T/conn.$name
	awk -v n="$name" -v p="$(col "$f" 2)" -v b="$(col "$f" 3)" -v t="$(col "$f" 4)" \
		-v c="$(col "$f" 5)" -v sy="$(col "$f" 6)" 'BEGIN {
		if (n != "guestd") b = 0
		if (n == "direct") p = 0
		printf "%-10s %8s %8s %15s %8.1f %8.1f %8.1f\n", n,
			n == "direct" ? "-" : sprintf("%.1f", p), n == "direct" ? "-" : sprintf("%.1f", sy),
			n == "guestd" ? sprintf("%.1f", b) : "-", t, c, p + b + t + c }'
done
awk -v p="$(col "$T/conn.guestd" 2)" -v m="$(col "$T/conn.guestd" 7)" -v n="${GUESTD_LOOPS:-1}" 'BEGIN {
	printf "guestd on %d event loop(s): %.1f of its %.1f us per connection on its own loop (the main\n", n, m, p
	printf "thread: its share of the connections, and the audit spool of all of them), %.1f on its\n", p - m
	printf "other threads (the other loops, the audit spool'"'"'s syncer)\n" }'
echo
echo "CPU per GiB of bulk transfer, s (user+system, median of the rounds); ceiling: the MiB/s at which"
echo "the path's CPU time per GiB would occupy all $NCPU CPUs (what the machine could do if nothing else ran):"
printf '%-10s %8s %8s %8s %8s %8s %14s\n' path proxy kernel target client total "ceiling MiB/s"
for name in "${NAMES[@]}"; do
	f=$T/bulk.$name
	awk -v n="$name" -v p="$(col "$f" 2)" -v t="$(col "$f" 4)" -v c="$(col "$f" 5)" \
		-v sy="$(col "$f" 6)" -v ncpu="$NCPU" 'BEGIN {
		if (n == "direct") p = 0
		tot = p + t + c
		printf "%-10s %8s %8s %8.3f %8.3f %8.3f %14.0f\n", n,
			n == "direct" ? "-" : sprintf("%.3f", p), n == "direct" ? "-" : sprintf("%.3f", sy),
			t, c, tot, (tot > 0 ? ncpu * 1024 / tot : 0) }'
done
echo
printf 'credential proxy, %d keep-alive requests: direct HTTPS p50 %s ms p90 %s ms; through the proxy p50 %s ms p90 %s ms; added p50 %s ms\n' \
	"$REQS" "$d50" "$d90" "$p50" "$p90" "$(awk -v a="$p50" -v b="$d50" 'BEGIN{printf "%.2f", a-b}')"
echo "targets: guestd >= 1.5x tinyproxy CONNECT/s: $(ratio "${CPS[guestd]}" "${CPS[tinyproxy]}")x; guestd >= 0.9x direct throughput: $(ratio "${TPUT[guestd]}" "${TPUT[direct]}")x"
echo "the floor on this machine (saw-floorproxy): $(ratio "${CPS[floor]}" "${CPS[tinyproxy]}")x tinyproxy CONNECT/s, $(ratio "${TPUT[floor]}" "${TPUT[direct]}")x direct throughput; guestd: $(ratio "${CPS[guestd]}" "${CPS[floor]}")x the floor's CONNECT/s, $(ratio "${TPUT[guestd]}" "${TPUT[floor]}")x its throughput"
exit 0
