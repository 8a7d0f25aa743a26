#!/usr/bin/env bash
# Audit pipeline benchmark (issue 6), side by side with the peer on this machine.
#
#   tests/bench/bench-audit.sh [BUILD_DIR] [EVENTS]
#
# Measures, with EVENTS OCSF events (default 200000, at most 2000000) built and emitted the
# way the broker does:
#   1. SAW file sink: JSON lines + hash chain, fdatasync batched (<= 10 ms, background thread);
#   2. SAW spool + forwarder: committed to the sqlite spool, POSTed in batches to a local HTTP
#      sink (tests/e2e/audit-siem.py on 127.0.0.1), counted when the spool is empty; also the
#      longest single audit_emit() (how long the event loop can stall on the pipeline) and the
#      event loop thread's own CPU per event (checkpoints run on the spool's thread). With
#      SAW_BENCH_AUDIT_BASELINE=/path/to/audit-bench (built from an earlier tree) the same run
#      is repeated with that binary, for a before/after row in the same table;
#   3. peer: rsyslog's omfile writing the same JSON lines, fed through SAW's syslog sink into
#      rsyslog's imuxsock (a private socket and config: the system's syslog is not touched),
#      once as rsyslog ships (no fsync) and once with sync="on"; if rsyslog is missing it is
#      installed with apt-get, and if it cannot run, journald (systemd-cat) is tried; if
#      neither works the peer is skipped with the reason.
# Prints a table; targets: >= 50,000 events/s to the file, >= 20,000 events/s delivered.
# Loopback only, private temporary directory, every wait bounded.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
N=${2:-200000}
[ "$N" -ge 1000 ] && [ "$N" -le 2000000 ] || { echo "EVENTS must be 1000..2000000" >&2; exit 2; }
BENCH=$BUILD/tests/audit-bench
VERIFY=$BUILD/audit/saw-audit-verify
for b in "$BENCH" "$VERIFY"; do
	[ -x "$b" ] || { echo "missing $b: build first (make -C $BUILD audit-bench saw-audit-verify)" >&2; exit 2; }
done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export NO_PROXY='*' no_proxy='*'

T=$(mktemp -d "${TMPDIR:-/tmp}/saw-bench-audit.XXXXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<"$2"; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }
ROWS=()
row() { ROWS+=("$(printf '| %-62s | %8s | %8s | %10s | %s' "$1" "$2" "$3" "$4" "$5")"); }

echo "audit benchmark: $N events, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# ---- 1. file sink -------------------------------------------------------------------------
R=$("$BENCH" file "$T/audit.jsonl" "$N")
echo "$R" >&2
FILE_RATE=$(field done_rate "$R")
row "SAW file sink (hash chain, fdatasync <= 10 ms)" "$(field done_s "$R")" "$FILE_RATE" \
	"$(field cpu_rate "$R")" ">= 50000"
"$VERIFY" "$T/audit.jsonl" >"$T/verify.txt" || { cat "$T/verify.txt" >&2; echo "chain does not verify" >&2; exit 1; }
LINES=$(wc -l <"$T/audit.jsonl")
[ "$LINES" -eq $((N + 1)) ] || { echo "file has $LINES lines, want $((N + 1))" >&2; exit 1; }

# ---- 2. spool + forwarder to a local HTTP sink -------------------------------------------
python3 "$SRC/tests/e2e/audit-siem.py" --port-file "$T/siem.port" --out "$T/siem.count" \
	--count-only >"$T/siem.log" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 100; i++)); do [ -s "$T/siem.port" ] && break; sleep 0.1; done
[ -s "$T/siem.port" ] || { cat "$T/siem.log" >&2; echo "HTTP sink did not start" >&2; exit 1; }
PORT=$(cat "$T/siem.port")
# http_run BENCH LABEL: one spool + forwarder run into the running HTTP sink; adds rows.
http_run() {
	local bench=$1 label=$2 r got before
	rm -f "$T"/spool.db*
	before=$(awk '{ s += $2 } END { print s + 0 }' "$T/siem.count")
	r=$("$bench" http "http://127.0.0.1:$PORT/ingest" "$T/spool.db" "$N")
	echo "$r" >&2
	got=$(($(awk '{ s += $2 } END { print s + 0 }' "$T/siem.count") - before))
	[ "$got" -eq "$N" ] || { echo "HTTP sink counted $got events, want $N" >&2; exit 1; }
	HTTP_RATE=$(field done_rate "$r")
	row "$label spool + forwarder -> local HTTP (emitted)" "$(field emit_s "$r")" \
		"$(field emit_rate "$r")" "" ""
	row "$label spool + forwarder -> local HTTP (delivered, spool empty)" \
		"$(field done_s "$r")" "$HTTP_RATE" "$(field cpu_rate "$r")" ">= 20000"
	[ -z "$(field loop_cpu_rate "$r")" ] ||
		row "  event loop thread alone (longest emit $(field emit_max_ms "$r") ms)" "" "" \
			"$(field loop_cpu_rate "$r")" ""
}
if [ -n "${SAW_BENCH_AUDIT_BASELINE:-}" ]; then
	http_run "$SAW_BENCH_AUDIT_BASELINE" "baseline:"
	BASE_RATE=$HTTP_RATE
fi
http_run "$BENCH" "SAW"

# ---- 3. the peer: rsyslog omfile, same lines ---------------------------------------------
# peer_rsyslog SYNC LABEL: start a private rsyslogd (omfile sync=SYNC), feed it N events,
# time until all are in its output file. Adds a row; returns 1 if it cannot run.
peer_rsyslog() {
	local sync=$1 name=$2 dir=$T/rsyslog-$1 t0 t1 got pid i
	mkdir -p "$dir"
	cat >"$dir/rsyslog.conf" <<EOF
global(workDirectory="$dir")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$dir/log.sock" RateLimit.Interval="0" UseSpecialParser="off"
      ParseHostname="on")
template(name="jsonline" type="string" string="%msg%\n")
action(type="omfile" file="$dir/out.jsonl" template="jsonline" sync="$sync")
EOF
	rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid" >"$dir/rsyslogd.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	for ((i = 0; i < 100; i++)); do [ -S "$dir/log.sock" ] && break; sleep 0.05; done
	if [ ! -S "$dir/log.sock" ]; then
		echo "rsyslogd did not start: $(tail -n 3 "$dir/rsyslogd.log")" >&2
		return 1
	fi
	t0=$(now)
	"$BENCH" syslog "$dir/log.sock" "$N" >"$dir/sender.txt"
	got=0
	for ((i = 0; i < 6000; i++)); do # at most 300 s
		got=$(wc -l <"$dir/out.jsonl" 2>/dev/null || echo 0)
		[ "$got" -lt "$N" ] || break
		sleep 0.05
	done
	t1=$(now)
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	if [ "$got" -lt "$N" ]; then
		echo "rsyslog ($name) wrote $got of $N lines in 300 s" >&2
		return 1
	fi
	# The same JSON as SAW's file lines, without the chain member.
	head -n 1 "$dir/out.jsonl" | python3 -c 'import json,sys; json.loads(sys.stdin.read())' ||
		{ echo "rsyslog output is not the JSON lines" >&2; return 1; }
	local secs
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	row "peer: rsyslog $(rsyslogd -v | head -n 1 | awk '{print $2}') omfile, $name" "$secs" \
		"$(rate "$N" "$secs")" "" ""
}

peer_journald() {
	local t0 t1 got=0 i tag=saw-bench-$$ secs
	command -v systemd-cat >/dev/null && [ -S /run/systemd/journal/socket ] || {
		echo "journald is not running here" >&2
		return 1
	}
	"$BENCH" lines "$T/lines.jsonl" "$N"
	t0=$(now)
	systemd-cat -t "$tag" <"$T/lines.jsonl"
	for ((i = 0; i < 600; i++)); do
		got=$(journalctl -q -t "$tag" -o cat | wc -l)
		[ "$got" -lt "$N" ] || break
		sleep 0.5
	done
	t1=$(now)
	[ "$got" -ge "$N" ] || { echo "journald stored $got of $N" >&2; return 1; }
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	row "peer: journald (systemd-cat, same lines)" "$secs" "$(rate "$N" "$secs")" "" ""
}

PEER_NOTE=""
if ! command -v rsyslogd >/dev/null 2>&1; then
	echo "rsyslog not installed: trying apt-get install rsyslog" >&2
	if [ "$(id -u)" -eq 0 ]; then
		timeout 300 apt-get install -y --no-install-recommends rsyslog >"$T/apt.log" 2>&1 ||
			echo "apt-get install rsyslog failed: $(tail -n 2 "$T/apt.log")" >&2
	else
		echo "not root: cannot install rsyslog" >&2
	fi
fi
if command -v rsyslogd >/dev/null 2>&1 &&
	peer_rsyslog off "as shipped (no fsync)" && peer_rsyslog on "sync=on"; then
	:
elif peer_journald; then
	PEER_NOTE="rsyslog could not run; journald used as the peer"
else
	PEER_NOTE="PEER SKIPPED: neither rsyslog nor journald could run here (see messages above)"
fi

echo
printf '| %-62s | %8s | %8s | %10s | %s\n' "pipeline ($N events)" "wall s" "events/s" \
	"events/CPU-s" "target"
printf '|%s|%s|%s|%s|%s\n' "$(printf -- '-%.0s' {1..64})" "----------" "----------" \
	"------------" "---------"
printf '%s\n' "${ROWS[@]}"
[ -z "$PEER_NOTE" ] || echo "$PEER_NOTE"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs" \
	"(wall-clock rates drop when other work shares the CPUs; events/CPU-s does not)"
FAILED=0
awk -v r="$FILE_RATE" 'BEGIN { exit !(r >= 50000) }' || { echo "below target: file $FILE_RATE events/s"; FAILED=1; }
awk -v r="$HTTP_RATE" 'BEGIN { exit !(r >= 20000) }' || { echo "below target: delivered $HTTP_RATE events/s"; FAILED=1; }
[ -z "${BASE_RATE:-}" ] || echo "delivered: $HTTP_RATE events/s, baseline $BASE_RATE events/s in the same run"
[ "$FAILED" -eq 0 ] && echo "targets met"
exit 0
