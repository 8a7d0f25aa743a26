#!/usr/bin/env bash
# Issue #3 benchmark: ProxyJump into a workspace through saw-brokerd + saw-guestd, side by side
# in one run with the OpenSSH equivalent, in the network-namespace lab of the e2e tests
# (tests/e2e/netns-lab.sh):
#
#   saw      ssh -J USER@broker WS          client → saw-brokerd (b) → guestd's reverse tunnel
#                                           (ws) → the workspace sshd (ws, 127.0.0.1:22)
#   openssh  ssh -J USER@sshd -p P 127.0.0.1  client → OpenSSH sshd as jump host (b) → an
#                                           `ssh -N -R 127.0.0.1:P:127.0.0.1:22` from ws (the
#                                           stand-in for guestd) → the same workspace sshd
#
# Both sides use the same client, key, workspace sshd (saw-authorized-keys + pam_saw: the key
# is bound to a live brokered session) and default ciphers; only the middle differs. Measured:
#   (1) throughput: SAW_BENCH_BYTES (1 GiB) of zeros through `ssh -J … 'cat >/dev/null'`,
#       SAW_BENCH_TPUT_RUNS (3) runs per side, alternating; the median run is reported.
#   (2) time to a shell prompt: wall time of a new `ssh -J … WS true` with a live session
#       (publickey at once at the broker), SAW_BENCH_CONN_N (10) per side, alternating; median.
# Targets: throughput ≥ 1.0× OpenSSH, connection time ≤ 1.0× OpenSSH.
#
# Root only (namespaces). Progress on stderr, the table on stdout. Benchmarks measure, they do
# not pass or fail: exit 0 when it ran, 1 when something could not be set up.
# If every run of one side fails, the throughput is measured again with SAW_BENCH_FALLBACK_BYTES
# (512M) and printed on a row of its own, so that a failure never hides the comparison.
# Environment: SAW_BUILD_DIR (default build/), SAW_BENCH_BYTES, SAW_BENCH_TPUT_RUNS,
# SAW_BENCH_CONN_N, SAW_KEEP_TMP=1 (keep the scratch directory and its logs).
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
	exit 0
fi
# shellcheck disable=SC2034 # read by lib.sh
SAW_TEST_NAME=bench-tunnel
. "$(dirname "$0")/../e2e/netns-lab.sh"

BYTES=${SAW_BENCH_BYTES:-1G}
TPUT_RUNS=${SAW_BENCH_TPUT_RUNS:-3}
CONN_N=${SAW_BENCH_CONN_N:-10}

blog() { echo "bench-tunnel: $*" >&2; }

blog "building the lab"
lab_up
lab_saw_up "SessionMaxLifetime 2h" "SessionIdleTimeout 1h"

key=$(make_key user)
cfg=$(lab_ssh_config "$key")
WS=$LAB_WS_NAME

# A live brokered session bound to the key (device login approved by askpass).
rc=0
lab_ssh -F "$cfg" -J "$LAB_USER@127.0.0.1:$BROKER_PORT" "$WS" true >"$T/login.out" 2>"$T/login.err" ||
	rc=$?
[ "$rc" -eq 0 ] || { show_file "$T/login.err"; fail "could not log in through the broker"; }

# From here on no prompt may appear: BatchMode yes (a lost session fails instead of waiting).
bcfg=$T/ssh_config.bench
sed 's/^  BatchMode no$/  BatchMode yes/; s/^  LogLevel .*/  LogLevel ERROR/' "$cfg" >"$bcfg"

# --- the OpenSSH side: sshd as jump host in b, ssh -R from ws -----------------------------------
PJ=$(free_port)
PW=$(free_port)
rkey=$(make_key reverse)
mkdir -p "$T/jsshd"
chmod 0755 "$T/jsshd"
cat "$key.pub" "$rkey.pub" >"$T/jsshd/authorized_keys"
chmod 0644 "$T/jsshd/authorized_keys"
ssh-keygen -q -t ed25519 -N '' -f "$T/jsshd/ssh_host_ed25519_key"
cat >"$T/jsshd/sshd_config" <<EOF
ListenAddress 127.0.0.1:$PJ
ListenAddress $LAB_B_WS_ADDR:$PJ
HostKey $T/jsshd/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile $T/jsshd/authorized_keys
AllowUsers $LAB_USER $LAB_JUMP_USER
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
AllowTcpForwarding yes
GatewayPorts no
MaxStartups 100:30:200
LogLevel ERROR
EOF
/usr/sbin/sshd -t -f "$T/jsshd/sshd_config" || fail "sshd rejects the jump-host config"
lab_bg b "$T/jsshd/sshd.log" /usr/sbin/sshd -D -e -f "$T/jsshd/sshd_config"
lab_wait_listen b "$PJ" 10 "$LAB_LAST_PID" || fail "the OpenSSH jump host did not start"
cp "$rkey" "$LAB_DIR/ws/reverse_key"
chmod 0600 "$LAB_DIR/ws/reverse_key"
lab_bg ws "$T/reverse.log" ssh -F /dev/null -N -i "$LAB_DIR/ws/reverse_key" -o IdentitiesOnly=yes \
	-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
	-o ExitOnForwardFailure=yes -o ServerAliveInterval=15 -o LogLevel=ERROR \
	-R "127.0.0.1:$PW:127.0.0.1:22" -p "$PJ" "$LAB_JUMP_USER@$LAB_B_WS_ADDR"
lab_wait_listen b "$PW" 10 "$LAB_LAST_PID" || fail "the ssh -R reverse tunnel did not come up"

# shellcheck disable=SC2034 # used through namerefs (${side}_cmd)
saw_cmd=(ssh -F "$bcfg" -J "$LAB_USER@127.0.0.1:$BROKER_PORT" "$WS")
# shellcheck disable=SC2034
ossh_cmd=(ssh -F "$bcfg" -J "$LAB_USER@127.0.0.1:$PJ" -p "$PW" 127.0.0.1)

# Both paths work and land in the same workspace sshd as the same user.
for side in saw ossh; do
	declare -n cmd=${side}_cmd
	out=$(timeout 30 "${cmd[@]}" 'id -un; ip -4 -o addr show dev eth0' 2>"$T/$side.check.err" </dev/null) ||
		{ show_file "$T/$side.check.err"; fail "the $side path does not work"; }
	grep -q "^$LAB_USER\$" <<<"$out" && grep -qF "$LAB_WS_ADDR/" <<<"$out" ||
		fail "the $side path did not land in the workspace as $LAB_USER: $out"
	unset -n cmd
done

now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END{ if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else printf "%.0f\n", (a[NR/2]+a[NR/2+1])/2 }'; }

# --- (1) throughput ------------------------------------------------------------------------
# tput_runs BYTES: SAW_BENCH_TPUT_RUNS runs per side, alternating; MB/s of each completed run in
# tput[side], failures counted in tfail[side]. A run that fails is reported (its stderr kept),
# not fatal: the table says how many failed.
declare -A tput tfail
tput_runs() {
	local bytes=$1 nb r side rc t0 t1 mbs
	nb=$(numfmt --from=iec "$bytes")
	tput=([saw]="" [ossh]="")
	tfail=([saw]=0 [ossh]=0)
	for ((r = 1; r <= TPUT_RUNS; r++)); do
		for side in saw ossh; do
			local -n c=${side}_cmd
			t0=$(now_ns)
			rc=0
			head -c "$nb" /dev/zero | timeout 600 "${c[@]}" 'cat >/dev/null' \
				2>"$T/$side.tput.$bytes.$r.err" || rc=$?
			t1=$(now_ns)
			unset -n c
			if [ "$rc" -ne 0 ]; then
				tfail[$side]=$((tfail[$side] + 1))
				blog "throughput $bytes run $r $side: FAILED after $(((t1 - t0) / 1000000)) ms" \
					"(exit $rc): $(tr '\n' ' ' <"$T/$side.tput.$bytes.$r.err")"
				continue
			fi
			mbs=$(awk -v b="$nb" -v ns=$((t1 - t0)) 'BEGIN{printf "%.1f", b / 1e6 / (ns / 1e9)}')
			tput[$side]+="$mbs "
			blog "throughput $bytes run $r $side: $mbs MB/s ($(((t1 - t0) / 1000000)) ms)"
		done
	done
}
tput_runs "$BYTES"
declare -A tput_main=([saw]="${tput[saw]}" [ossh]="${tput[ossh]}") \
	tfail_main=([saw]="${tfail[saw]}" [ossh]="${tfail[ossh]}")
# If every run of a side failed, measure once more below the size where it fails, so that the
# table still compares two figures (clearly labelled).
FALLBACK=${SAW_BENCH_FALLBACK_BYTES:-512M}
fallback=0
if [ "${tfail_main[saw]}" -eq "$TPUT_RUNS" ] || [ "${tfail_main[ossh]}" -eq "$TPUT_RUNS" ]; then
	fallback=1
	blog "every run of one side failed at $BYTES: measuring $FALLBACK as well"
	tput_runs "$FALLBACK"
fi

# --- (2) time to a shell prompt ------------------------------------------------------------
for side in saw ossh; do # warm-up (page cache, first connection)
	declare -n cmd=${side}_cmd
	timeout 30 "${cmd[@]}" true </dev/null 2>"$T/$side.warm.err" || fail "$side: warm-up failed"
	unset -n cmd
done
declare -A conn=([saw]="" [ossh]="")
for ((r = 1; r <= CONN_N; r++)); do
	for side in saw ossh; do
		declare -n cmd=${side}_cmd
		t0=$(now_ns)
		timeout 30 "${cmd[@]}" true </dev/null 2>"$T/$side.conn.err" ||
			{ show_file "$T/$side.conn.err"; fail "$side: ssh … true failed"; }
		t1=$(now_ns)
		unset -n cmd
		conn[$side]+="$(((t1 - t0) / 1000)) " # µs
	done
done
blog "connection times (µs) saw: ${conn[saw]}"
blog "connection times (µs) openssh: ${conn[ossh]}"

# --- the table -----------------------------------------------------------------------------
med_g() { tr ' ' '\n' | { grep . || true; } | sort -g | awk '{a[NR]=$1} END{ if (NR) print a[int((NR+1)/2)]; else print "nan" }'; }
tput_saw=$(med_g <<<"${tput_main[saw]}")
tput_ossh=$(med_g <<<"${tput_main[ossh]}")
conn_saw=$(tr ' ' '\n' <<<"${conn[saw]}" | { grep . || true; } | median)
conn_ossh=$(tr ' ' '\n' <<<"${conn[ossh]}" | { grep . || true; } | median)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a != "nan" && b != "nan" && b > 0) printf "%.2f", a / b; else print "nan" }'; }
verdict() { awk -v r="$1" -v op="$2" 'BEGIN{ if (r == "nan") { print "no figure"; exit } ok = (op == "ge") ? (r >= 1.0) : (r <= 1.0); print ok ? "met" : "NOT met" }'; }
r_tput=$(ratio "$tput_saw" "$tput_ossh")
r_conn=$(ratio "$conn_saw" "$conn_ossh")

echo
echo "bench-tunnel: $(nproc) CPUs, kernel $(uname -r), $(ssh -V 2>&1), $("$SAW_BUILD/broker/saw-brokerd" -V 2>&1 | head -n1)"
echo "saw     = ssh -J -> saw-brokerd (b) -> saw-guestd's reverse tunnel (ws) -> workspace sshd"
echo "openssh = ssh -J -> OpenSSH sshd (b) -> ssh -N -R from ws                -> the same workspace sshd"
echo "default ciphers on every hop (libssh and OpenSSH both prefer chacha20-poly1305@openssh.com)"
printf '%-38s %14s %14s %8s  %s\n' "metric" "saw" "openssh" "ratio" "target"
printf '%-38s %14s %14s %8s  %s\n' "throughput, $BYTES 'cat >/dev/null' (MB/s)" \
	"$tput_saw" "$tput_ossh" "$r_tput" "≥ 1.0× ($(verdict "$r_tput" ge))"
printf '%-38s %14s %14s %8s  %s\n' "time to prompt, ssh -J ... true (ms)" \
	"$(awk -v u="$conn_saw" 'BEGIN{printf "%.1f", u/1000}')" \
	"$(awk -v u="$conn_ossh" 'BEGIN{printf "%.1f", u/1000}')" "$r_conn" "≤ 1.0× ($(verdict "$r_conn" le))"
if [ "$fallback" = 1 ]; then
	fb_saw=$(med_g <<<"${tput[saw]}")
	fb_ossh=$(med_g <<<"${tput[ossh]}")
	r_fb=$(ratio "$fb_saw" "$fb_ossh")
	printf '%-38s %14s %14s %8s  %s\n' "throughput, $FALLBACK (fallback) (MB/s)" \
		"$fb_saw" "$fb_ossh" "$r_fb" "≥ 1.0× ($(verdict "$r_fb" ge))"
fi
echo "(throughput: median of the completed runs out of $TPUT_RUNS per side" \
	"[saw: ${tput_main[saw]% }] [openssh: ${tput_main[ossh]% }]; time to prompt: median of" \
	"$CONN_N per side, alternating)"
for side in saw ossh; do
	[ "${tfail_main[$side]}" -eq 0 ] ||
		echo "WARNING: ${tfail_main[$side]} of $TPUT_RUNS $side throughput runs of $BYTES FAILED (see stderr)"
done
if [ "$fallback" = 1 ]; then
	echo "(fallback $FALLBACK: [saw: ${tput[saw]% }] [openssh: ${tput[ossh]% }];" \
		"failed: saw ${tfail[saw]}, openssh ${tfail[ossh]})"
fi
exit 0
