#!/bin/bash
# Login benchmark: saw-brokerd against OpenSSH sshd, side by side in one run, on loopback.
# See tests/bench/README.md.
#
#   tests/bench/bench-login.sh [--sshd-only]
#
# Measures, with the same load client (saw-loadclient) and the same ed25519 user key:
#   - complete logins per second with 8 concurrent clients (connect, publickey auth, session
#     channel, exec whoami, exit status, disconnect), with p50/p99 latency and the server's CPU time
#     per login;
#   - memory per idle authenticated connection: PSS of the server's process tree with 1000
#     connections held, minus the PSS before, divided by 1000.
# Targets (reported, not asserted): rate >= 2x sshd; memory <= 1/10 of sshd.
#
# Exit status: 0 if the benchmark ran (whatever the figures), 1 if something failed to run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/lib-sshd.sh
. "$here/lib-sshd.sh"

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
	cat <<'EOF'
Environment:
  SAW_BUILD_DIR         the build directory (default: build/ of this tree): saw-brokerd and
                        saw-loadclient are taken from it
  SAW_LOADCLIENT        the load client (default: SAW_BUILD_DIR's, else the newest build*/ one)
  SAW_BENCH_CLIENTS     concurrent clients for the rate run (8)
  SAW_BENCH_RATE_N      logins per server in the rate run (400)
  SAW_BENCH_RATE_SECONDS  time bound of each rate run (120)
  SAW_BENCH_HOLD_N      connections held for the memory figure (1000)
  SAW_BENCH_HOLD_SECONDS  time bound of each hold run (300)
  SAW_BENCH_USER        SSH user for sshd (the current user)
  SAW_BENCH_LOGIN       the IdP login bound to the key when the broker comes from lib.sh (alice)
  SAW_BENCH_KEEP=1      keep the scratch directory (logs)
How the broker is provided, first match wins:
  SAW_BENCH_BROKER_PORT, SAW_BENCH_BROKER_PID, SAW_BENCH_BROKER_KEY [, SAW_BENCH_BROKER_USER]
      a broker you started yourself, and a private key already bound to a live session on it.
  SAW_BROKER_CMD
      a command started in the background that starts the broker, binds the public key
      $SAW_BENCH_KEY.pub to a live session, prints "READY port=N pid=P user=U" on stdout,
      and keeps running until it gets SIGTERM, when it stops what it started. It runs with
      SAW_BENCH_DIR (a scratch directory) and SAW_BENCH_KEY (the private key) set.
  otherwise
      tests/e2e/lib.sh: the test IdP and the broker are started and the stock ssh client logs
      in once through the device flow (approved by tests/tools/askpass).
EOF
}

sshd_only=0
for arg in "$@"; do
	case $arg in
	--sshd-only) sshd_only=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		exit 1
		;;
	esac
done

clients=${SAW_BENCH_CLIENTS:-8}
rate_n=${SAW_BENCH_RATE_N:-400}
rate_s=${SAW_BENCH_RATE_SECONDS:-120}
hold_n=${SAW_BENCH_HOLD_N:-1000}
hold_s=${SAW_BENCH_HOLD_SECONDS:-300}
clk_tck=$(getconf CLK_TCK)

# The load client: $SAW_LOADCLIENT, else that of $SAW_BUILD_DIR (default build/), else the
# newest one in this tree's build*/ directories.
loadclient=${SAW_LOADCLIENT:-}
if [[ -z $loadclient ]]; then
	loadclient=${SAW_BUILD_DIR:-$src/build}/tests/saw-loadclient
	if [[ ! -x $loadclient ]]; then
		# shellcheck disable=SC2012 # names come from our own build directories
		loadclient=$(ls -t "$src"/build*/tests/saw-loadclient 2>/dev/null | head -1 || true)
	fi
fi
[[ -n $loadclient && -x $loadclient ]] ||
	bench_die "no saw-loadclient: build it (make -C build saw-loadclient) or set SAW_LOADCLIENT"

tmp=$(mktemp -d /tmp/saw-bench.XXXXXX)
SSHD_PID=
HOLD_PID=
broker_cmd_pid=
lib_cleanup=
cleanup() {
	local rc=$?
	if [[ -n ${HOLD_PID:-} ]]; then kill "$HOLD_PID" 2>/dev/null || true; fi
	bench_stop_sshd
	if [[ -n $broker_cmd_pid ]]; then
		kill "$broker_cmd_pid" 2>/dev/null || true
		wait "$broker_cmd_pid" 2>/dev/null || true
	fi
	if [[ -n ${SAW_BENCH_KEEP:-} ]]; then
		bench_log "scratch directory kept: $tmp"
	else
		rm -rf "$tmp"
	fi
	# lib.sh's cleanup reads the exit status from $? and exits with it.
	if [[ -n $lib_cleanup ]]; then
		export SAW_KEEP_TMP=${SAW_BENCH_KEEP:-0}
		if ((rc == 0)); then
			$lib_cleanup
		else
			bench_status "$rc" || $lib_cleanup
		fi
	fi
}
bench_status() { return "$1"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- the machine ---------------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
echo "# SAW broker login benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine: $(nproc) CPUs (${cpu:-unknown}), $mem, kernel $(uname -sr)"
echo "OpenSSH: $(/usr/sbin/sshd -V 2>&1 | head -1)"
echo "libssh: $(pkg-config --modversion libssh 2>/dev/null || echo unknown) (load client)"
echo "load client: $loadclient, $clients clients, $rate_n logins per server; $hold_n held"

bench_make_user_key "$tmp"

# ---- measurements, the same for both servers -----------------------------------------------

# cpu_ticks PID : user+system time of PID and of its reaped children, in clock ticks.
cpu_ticks() {
	# Fields after the command name (which may hold spaces): 14-17 are utime stime cutime cstime.
	local stat
	stat=$(<"/proc/$1/stat")
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	echo $((${12} + ${13} + ${14} + ${15}))
}

# run_rate NAME PORT USER KEY SERVERPID : warm-up, then the rate run. Sets RATE_LINE, RATE_CPU_MS.
run_rate() {
	local name=$1 port=$2 user=$3 key=$4 pid=$5 t0 t1 rc=0
	# whoami: one of the broker's commands, and a command any sshd user can run.
	local args=(-H 127.0.0.1 -p "$port" -u "$user" -i "$key" -e whoami)
	bench_log "$name: warm-up (16 logins)"
	"$loadclient" rate "${args[@]}" -c "$clients" -n 16 -t 30 >/dev/null 2>"$tmp/$name-warmup.err" ||
		bench_die "$name: warm-up logins failed: $(head -3 "$tmp/$name-warmup.err")"
	bench_log "$name: rate run ($rate_n logins, $clients clients, at most $rate_s s)"
	t0=$(cpu_ticks "$pid")
	RATE_LINE=$("$loadclient" rate "${args[@]}" -c "$clients" -n "$rate_n" -t "$rate_s" \
		2>"$tmp/$name-rate.err") || rc=$?
	t1=$(cpu_ticks "$pid")
	[[ $RATE_LINE == connections=* ]] ||
		bench_die "$name: the load client failed (status $rc): $(head -3 "$tmp/$name-rate.err")"
	((rc == 0)) || bench_log "$name: WARNING: some logins failed: $(head -3 "$tmp/$name-rate.err")"
	RATE_CPU_MS=$(awk -v d=$((t1 - t0)) -v hz="$clk_tck" \
		-v n="$(bench_field "$RATE_LINE" connections)" \
		'BEGIN { if (n > 0) printf "%.2f", d * 1000 / hz / n; else print "n/a" }')
	bench_log "$name: $RATE_LINE"
}

# run_hold NAME PORT USER KEY SERVERPID : PSS of the server's process tree before and with
# hold_n idle authenticated connections. Sets HOLD_PER_CONN_KB, HOLD_BEFORE_KB, HOLD_WITH_KB.
run_hold() {
	local name=$1 port=$2 user=$3 key=$4 pid=$5 nproc_with
	sleep 1
	HOLD_BEFORE_KB=$(bench_tree_pss_kb "$pid")
	bench_log "$name: holding $hold_n connections (at most $hold_s s)"
	bench_hold_start "$tmp" "$loadclient" "$hold_s" -H 127.0.0.1 -p "$port" -u "$user" \
		-i "$key" -c 8 -n "$hold_n" -t "$hold_s" ||
		bench_die "$name: the hold client did not report: $(head -3 "$tmp/hold.err")"
	[[ $(bench_field "$HOLD_LINE" held) == "$hold_n" ]] ||
		bench_die "$name: only $HOLD_LINE: $(head -3 "$tmp/hold.err")"
	# Let the last connections settle (post-auth processes, buffers) before measuring.
	sleep 2
	HOLD_WITH_KB=$(bench_tree_pss_kb "$pid")
	nproc_with=$(bench_descendants "$pid" | wc -l)
	bench_hold_stop
	((HOLD_RC == 0)) || bench_log "$name: WARNING: hold client status $HOLD_RC: $(head -3 "$tmp/hold.err")"
	HOLD_PER_CONN_KB=$(awk -v a="$HOLD_WITH_KB" -v b="$HOLD_BEFORE_KB" -v n="$hold_n" \
		'BEGIN { printf "%.1f", (a - b) / n }')
	bench_log "$name: $HOLD_LINE; PSS ${HOLD_BEFORE_KB} kB before, ${HOLD_WITH_KB} kB with" \
		"($nproc_with processes): ${HOLD_PER_CONN_KB} kB per connection"
	# Give the server time to tear the connections down before the next phase.
	sleep 2
}

# ---- OpenSSH sshd --------------------------------------------------------------------------
sshd_user=${SAW_BENCH_USER:-$(id -un)}
bench_start_sshd "$tmp"
bench_log "sshd: pid $SSHD_PID on 127.0.0.1:$SSHD_PORT, user $sshd_user"
run_rate sshd "$SSHD_PORT" "$sshd_user" "$tmp/user_ed25519" "$SSHD_PID"
s_rate_line=$RATE_LINE s_cpu=$RATE_CPU_MS
run_hold sshd "$SSHD_PORT" "$sshd_user" "$tmp/user_ed25519" "$SSHD_PID"
s_mem=$HOLD_PER_CONN_KB
bench_stop_sshd

# ---- saw-brokerd ---------------------------------------------------------------------------
# broker_via_lib : start the IdP and the broker with tests/e2e/lib.sh and bind the key with one
# device-flow login by the stock ssh client. Sets b_port, b_pid, b_user, b_key.
broker_via_lib() {
	local lib=$src/tests/e2e/lib.sh f rc=0 login=${SAW_BENCH_LOGIN:-alice}
	[[ -f $lib ]] || return 1
	export SAW_TEST_NAME=bench-login
	# shellcheck source=SCRIPTDIR/../e2e/lib.sh
	. "$lib"
	# lib.sh installs its own exit trap (it stops the IdP and the broker): chain it after ours.
	lib_cleanup=saw_cleanup
	trap cleanup EXIT
	for f in start_idp write_broker_config start_broker ssh_login; do
		declare -F "$f" >/dev/null || bench_die "tests/e2e/lib.sh has no $f()"
	done
	# shellcheck disable=SC2119 # no IdP options
	start_idp
	# The same limits on unauthenticated connections as the sshd above.
	write_broker_config "MaxStartups 100:30:200" "PerSourceMaxStartups 100"
	start_broker "$BROKER_CONF"
	bench_log "broker: binding the key to a session: device login as $login through ssh"
	SSH_KEY=$tmp/user_ed25519 ssh_login "$login" -- whoami >"$tmp/login.out" 2>"$tmp/login.err" ||
		rc=$?
	((rc == 0)) || bench_die "the device login through ssh failed (status $rc):" \
		"$(tail -5 "$tmp/login.err")"
	b_port=$BROKER_PORT b_pid=$BROKER_PID b_user=$login b_key=$tmp/user_ed25519
}

b_port='' b_pid='' b_user='' b_key=''
b_how=
if ((sshd_only)); then
	b_how="skipped (--sshd-only)"
elif [[ -n ${SAW_BENCH_BROKER_PORT:-} ]]; then
	b_port=$SAW_BENCH_BROKER_PORT
	b_pid=${SAW_BENCH_BROKER_PID:?SAW_BENCH_BROKER_PID is needed with SAW_BENCH_BROKER_PORT}
	b_key=${SAW_BENCH_BROKER_KEY:?SAW_BENCH_BROKER_KEY is needed with SAW_BENCH_BROKER_PORT}
	b_user=${SAW_BENCH_BROKER_USER:-$(id -un)}
	b_how="given (SAW_BENCH_BROKER_PORT)"
elif [[ -n ${SAW_BROKER_CMD:-} ]]; then
	bench_log "broker: starting SAW_BROKER_CMD"
	SAW_BENCH_DIR=$tmp SAW_BENCH_KEY=$tmp/user_ed25519 bash -c "$SAW_BROKER_CMD" \
		>"$tmp/broker-cmd.out" 2>"$tmp/broker-cmd.err" &
	broker_cmd_pid=$!
	for ((i = 0; i < 1200; i++)); do
		grep -q '^READY ' "$tmp/broker-cmd.out" 2>/dev/null && break
		kill -0 "$broker_cmd_pid" 2>/dev/null ||
			bench_die "SAW_BROKER_CMD exited: $(tail -5 "$tmp/broker-cmd.err")"
		sleep 0.1
	done
	line=$(grep -m1 '^READY ' "$tmp/broker-cmd.out") ||
		bench_die "SAW_BROKER_CMD printed no READY line within 120 s"
	if ! b_port=$(bench_field "$line" port) || ! b_pid=$(bench_field "$line" pid); then
		bench_die "SAW_BROKER_CMD's READY line lacks port= or pid=: $line"
	fi
	b_user=$(bench_field "$line" user) || b_user=$(id -un)
	b_key=$tmp/user_ed25519
	b_how="SAW_BROKER_CMD"
elif [[ -f $src/tests/e2e/lib.sh ]]; then
	bench_log "broker: starting the IdP and the broker with tests/e2e/lib.sh"
	broker_via_lib
	b_how="tests/e2e/lib.sh, IdP login $b_user"
else
	bench_die "no broker: tests/e2e/lib.sh is missing and neither SAW_BROKER_CMD nor" \
		"SAW_BENCH_BROKER_PORT is set (or run with --sshd-only)"
fi

b_rate_line='' b_cpu='' b_mem=''
if [[ -n $b_port ]]; then
	kill -0 "$b_pid" 2>/dev/null || bench_die "broker pid $b_pid is not running"
	bench_log "broker: pid $b_pid on 127.0.0.1:$b_port, user $b_user ($b_how)"
	run_rate broker "$b_port" "$b_user" "$b_key" "$b_pid"
	b_rate_line=$RATE_LINE b_cpu=$RATE_CPU_MS
	run_hold broker "$b_port" "$b_user" "$b_key" "$b_pid"
	b_mem=$HOLD_PER_CONN_KB
	b_version=$(timeout 5 "/proc/$b_pid/exe" -V 2>&1 | head -1 || true)
	echo "saw-brokerd: ${b_version:-version unknown} ($b_how)"
else
	echo "saw-brokerd: $b_how"
fi

# ---- the table -----------------------------------------------------------------------------
# row METRIC BROKER SSHD RATIO_KIND TARGET
#   RATIO_KIND: "up" (broker/sshd, want >= target), "down" (broker/sshd, want <= target),
#   "-" (no target).
row() {
	awk -v m="$1" -v b="$2" -v s="$3" -v kind="$4" -v t="$5" 'BEGIN {
		ratio = "-"; verdict = ""
		if (b != "" && b != "n/a" && s + 0 > 0) {
			r = b / s; ratio = sprintf("%.2fx", r)
			if (kind == "up") verdict = (r >= t + 0) ? "met" : "MISSED"
			if (kind == "down") verdict = (r <= t + 0) ? "met" : "MISSED"
		}
		if (b == "") b = "not run"
		tgt = kind == "up" ? sprintf(">= %gx sshd", t) : kind == "down" ? sprintf("<= %gx sshd", t) : "-"
		printf "%-38s %12s %14s %9s   %-14s %s\n", m, b, s, ratio, tgt, verdict
	}'
}

f() { bench_field "$1" "$2" 2>/dev/null | sed 's,/s$,,' || true; }

echo
printf '%-38s %12s %14s %9s   %s\n' metric saw-brokerd "OpenSSH sshd" ratio target
row "logins/s ($clients clients)" "$(f "$b_rate_line" rate)" "$(f "$s_rate_line" rate)" up 2
row "login latency p50 (ms)" "$(f "$b_rate_line" p50_ms)" "$(f "$s_rate_line" p50_ms)" - 0
row "login latency p99 (ms)" "$(f "$b_rate_line" p99_ms)" "$(f "$s_rate_line" p99_ms)" - 0
row "server CPU per login (ms)" "$b_cpu" "$s_cpu" - 0
row "failed logins" "$(f "$b_rate_line" errors)" "$(f "$s_rate_line" errors)" - 0
row "PSS per idle auth. connection (kB)" "$b_mem" "$s_mem" down 0.1
echo
echo "rate: $(f "$s_rate_line" connections) sshd logins in $(f "$s_rate_line" seconds) s" \
	"${b_rate_line:+; $(f "$b_rate_line" connections) broker logins in $(f "$b_rate_line" seconds) s}"
echo "memory: $hold_n idle connections authenticated by public key; PSS of the server's whole" \
	"process tree (sshd: listener and per-connection processes) with them held, minus before."
