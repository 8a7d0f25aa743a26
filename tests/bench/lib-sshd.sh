# shellcheck shell=bash
# Helpers shared by bench-login.sh and loadclient-smoke.sh: a user key, and an OpenSSH sshd
# started by hand on a free loopback port with publickey authentication only.
# Source this file; it defines functions and sets no options.

# bench_log MESSAGE... : progress on stderr, so stdout stays the results.
bench_log() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
}

bench_die() {
	bench_log "error: $*"
	exit 1
}

# bench_free_port : prints a TCP port nobody listens on at 127.0.0.1. Bounded: 50 tries.
bench_free_port() {
	local i port
	for ((i = 0; i < 50; i++)); do
		port=$((20000 + RANDOM % 40000))
		if [[ -z "$(ss -Htln "sport = :$port" 2>/dev/null)" ]]; then
			printf '%s\n' "$port"
			return 0
		fi
	done
	return 1
}

# bench_wait_banner PORT SECONDS : waits until an SSH server answers with its banner.
bench_wait_banner() {
	local port=$1 secs=$2 i line
	for ((i = 0; i < secs * 10; i++)); do
		if { exec 9<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
			line=
			read -r -t 2 line <&9 || true
			exec 9<&- 9>&-
			[[ $line == SSH-2.0-* ]] && return 0
		fi
		sleep 0.1
	done
	return 1
}

# bench_make_user_key DIR : an ed25519 key without passphrase at DIR/user_ed25519(.pub).
bench_make_user_key() {
	ssh-keygen -q -t ed25519 -N '' -C saw-bench -f "$1/user_ed25519" >/dev/null ||
		bench_die "ssh-keygen failed"
}

# bench_start_sshd DIR : starts /usr/sbin/sshd -D on a free loopback port with its own config,
# host key and authorized_keys (DIR/user_ed25519.pub) in DIR. Sets SSHD_PID and SSHD_PORT.
bench_start_sshd() {
	local dir=$1 try
	[[ -x /usr/sbin/sshd ]] || bench_die "/usr/sbin/sshd is missing (apt-get install openssh-server)"
	mkdir -p /run/sshd 2>/dev/null || true
	[[ -f $dir/ssh_host_ed25519_key ]] ||
		ssh-keygen -q -t ed25519 -N '' -f "$dir/ssh_host_ed25519_key" >/dev/null ||
		bench_die "ssh-keygen (host key) failed"
	cp "$dir/user_ed25519.pub" "$dir/authorized_keys"
	chmod 600 "$dir/authorized_keys"
	# A port taken between the check and sshd's bind is retried, 5 times at most.
	for ((try = 0; try < 5; try++)); do
		SSHD_PORT=$(bench_free_port) || bench_die "no free loopback port"
		cat >"$dir/sshd_config" <<EOF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
PubkeyAuthentication yes
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
MaxStartups 100:30:200
MaxSessions 10
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
LogLevel ERROR
EOF
		/usr/sbin/sshd -t -f "$dir/sshd_config" || bench_die "sshd rejects its test config"
		/usr/sbin/sshd -D -e -f "$dir/sshd_config" 2>>"$dir/sshd.log" &
		SSHD_PID=$!
		if bench_wait_banner "$SSHD_PORT" 10; then
			return 0
		fi
		kill "$SSHD_PID" 2>/dev/null || true
		wait "$SSHD_PID" 2>/dev/null || true
		SSHD_PID=
	done
	bench_die "sshd did not start; its log: $(tail -5 "$dir/sshd.log" 2>/dev/null)"
}

# bench_stop_sshd : stops the listener started by bench_start_sshd (its per-connection
# children exit when their clients go or when their listener does).
bench_stop_sshd() {
	if [[ -n ${SSHD_PID:-} ]]; then
		kill "$SSHD_PID" 2>/dev/null || true
		wait "$SSHD_PID" 2>/dev/null || true
		SSHD_PID=
	fi
}

# bench_descendants PID : PID and all its descendants, one per line.
bench_descendants() {
	local -A children=()
	local pid ppid queue cur
	while read -r pid ppid; do
		children[$ppid]+=" $pid"
	done < <(ps -e -o pid=,ppid=)
	queue=("$1")
	while ((${#queue[@]})); do
		cur=${queue[0]}
		queue=("${queue[@]:1}")
		printf '%s\n' "$cur"
		for pid in ${children[$cur]:-}; do
			queue+=("$pid")
		done
	done
}

# bench_pss_kb PID... : the sum of the processes' proportional set sizes in kB (smaps_rollup).
bench_pss_kb() {
	local pid sum=0 v
	for pid in "$@"; do
		v=$(awk '$1 == "Pss:" { print $2; exit }' "/proc/$pid/smaps_rollup" 2>/dev/null) || v=
		sum=$((sum + ${v:-0}))
	done
	printf '%s\n' "$sum"
}

# bench_tree_pss_kb PID : PSS in kB of PID and all its descendants.
bench_tree_pss_kb() {
	# shellcheck disable=SC2046
	bench_pss_kb $(bench_descendants "$1")
}

# bench_field LINE NAME : the value of NAME=VALUE in a load client result line.
bench_field() {
	local w
	for w in $1; do
		if [[ $w == "$2="* ]]; then
			printf '%s\n' "${w#*=}"
			return 0
		fi
	done
	return 1
}

# bench_hold_start DIR LOADCLIENT SECONDS ARGS... : starts "LOADCLIENT hold ARGS..." in the
# background with its stdin on a FIFO kept open by this shell (fd 7), and waits (at most
# SECONDS) for its "held=" line. Sets HOLD_PID and HOLD_LINE; returns 1 if no such line came.
bench_hold_start() {
	local dir=$1 client=$2 secs=$3 i
	shift 3
	rm -f "$dir/hold.in" "$dir/hold.out" "$dir/hold.err"
	mkfifo "$dir/hold.in" || bench_die "mkfifo failed"
	"$client" hold "$@" <"$dir/hold.in" >"$dir/hold.out" 2>"$dir/hold.err" &
	HOLD_PID=$!
	exec 7>"$dir/hold.in"
	HOLD_LINE=
	for ((i = 0; i < secs * 10; i++)); do
		HOLD_LINE=$(grep -m1 '^held=' "$dir/hold.out" 2>/dev/null) && [[ -n $HOLD_LINE ]] &&
			return 0
		kill -0 "$HOLD_PID" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}

# bench_hold_stop : closes the hold client's stdin so it disconnects, and waits for it (SIGTERM
# after 60 s). Sets HOLD_RC to its exit status.
# shellcheck disable=SC2034 # HOLD_RC is for the caller
bench_hold_stop() {
	local i
	exec 7>&-
	for ((i = 0; i < 600; i++)); do
		kill -0 "$HOLD_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill "$HOLD_PID" 2>/dev/null || true
	HOLD_RC=0
	wait "$HOLD_PID" || HOLD_RC=$?
	HOLD_PID=
}
