#!/usr/bin/env bash
# End-to-end test of the jump-host multiplexer (tunnel/jump.c): two real OpenSSH sshd as the
# jump-host pair on loopback ports, a python3 http.server as the corporate service, and
# jump-failover.c driving a mux over them (it kills, restarts, freezes and thaws the sshd
# itself so that it can time the failovers; see the scenarios there).
#
#   jump-failover.sh PATH/TO/jump-failover
. "$(dirname "$0")/lib.sh"

bin=${1:?usage: jump-failover.sh PATH/TO/jump-failover}
[ -x "$bin" ] || fail "no test program at $bin"
[ -x /usr/sbin/sshd ] || fail "/usr/sbin/sshd is missing (apt-get install openssh-server)"
mkdir -p /run/sshd 2>/dev/null || true

user=$(id -un)
key=$(make_key jump)

# start_jump_sshd N: sshd number N on a free loopback port, publickey only, TCP forwarding
# allowed. Sets JUMP_PORT[N], JUMP_PID[N], JUMP_DIR[N].
declare -a JUMP_PORT JUMP_PID JUMP_DIR
start_jump_sshd() {
	local n=$1 dir=$T/jump$1 port try
	mkdir -p "$dir"
	ssh-keygen -q -t ed25519 -N '' -C "saw-test-jump$n" -f "$dir/ssh_host_ed25519_key" ||
		fail "ssh-keygen (host key) failed"
	cp "$key.pub" "$dir/authorized_keys"
	chmod 600 "$dir/authorized_keys"
	# A port taken between the check and sshd's bind is retried, 5 times at most.
	for ((try = 0; try < 5; try++)); do
		port=$(free_port)
		cat >"$dir/sshd_config" <<CONF
Port $port
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
AllowTcpForwarding yes
PermitOpen any
UseDNS no
X11Forwarding no
LogLevel ERROR
CONF
		/usr/sbin/sshd -t -f "$dir/sshd_config" || fail "sshd rejects its test config"
		/usr/sbin/sshd -D -e -f "$dir/sshd_config" 2>>"$dir/sshd.log" &
		JUMP_PID[n]=$!
		# jump-failover kills it: no "Killed" job report from this shell (stop_pid at
		# exit copes with a process that is not in the job table).
		disown "${JUMP_PID[n]}"
		if wait_for_port "$port" 10 "${JUMP_PID[n]}"; then
			track "${JUMP_PID[n]}" "$dir/sshd.log"
			JUMP_PORT[n]=$port
			JUMP_DIR[n]=$dir
			log "jump host $n: sshd on 127.0.0.1:$port (pid ${JUMP_PID[n]})"
			return 0
		fi
		kill "${JUMP_PID[n]}" 2>/dev/null || true
		wait "${JUMP_PID[n]}" 2>/dev/null || true
	done
	fail "sshd $n did not start: $(tail -5 "$dir/sshd.log" 2>/dev/null)"
}

# tree_signal SIG PID: PID and all its descendants.
tree_signal() {
	local sig=$1 pid ppid
	local -a queue=("$2")
	local -A children=()
	while read -r pid ppid; do
		children[$ppid]+=" $pid"
	done < <(ps -e -o pid=,ppid=)
	while ((${#queue[@]})); do
		kill "-$sig" "${queue[0]}" 2>/dev/null || true
		for pid in ${children[${queue[0]}]:-}; do
			queue+=("$pid")
		done
		queue=("${queue[@]:1}")
	done
}

start_jump_sshd 0
start_jump_sshd 1

# known_hosts with both host keys; a second one where host 0 has somebody else's key.
hostkey() { cut -d' ' -f1,2 "${JUMP_DIR[$1]}/ssh_host_ed25519_key.pub"; }
{
	echo "[127.0.0.1]:${JUMP_PORT[0]} $(hostkey 0)"
	echo "[127.0.0.1]:${JUMP_PORT[1]} $(hostkey 1)"
} >"$T/known_hosts"
ssh-keygen -q -t ed25519 -N '' -C impostor -f "$T/impostor" || fail "ssh-keygen failed"
{
	echo "[127.0.0.1]:${JUMP_PORT[0]} $(cut -d' ' -f1,2 "$T/impostor.pub")"
	echo "[127.0.0.1]:${JUMP_PORT[1]} $(hostkey 1)"
} >"$T/known_hosts.bad"

# The corporate service: a static file over HTTP.
mkdir -p "$T/www"
token="saw-jump-$RANDOM$RANDOM"
echo "$token" >"$T/www/hello.txt"
http_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$http_port" \
	>"$T/http.log" 2>&1 &
track $! "$T/http.log"
wait_for_port "$http_port" 10 || fail "the HTTP service did not start"
closed_port=$(free_port)

rc=0
timeout -k 5 240 "$bin" --user "$user" --key "$key" \
	--known-hosts "$T/known_hosts" --bad-known-hosts "$T/known_hosts.bad" \
	--port0 "${JUMP_PORT[0]}" --port1 "${JUMP_PORT[1]}" \
	--sshd0-pid "${JUMP_PID[0]}" --sshd1-pid "${JUMP_PID[1]}" \
	--sshd0-config "${JUMP_DIR[0]}/sshd_config" --sshd1-config "${JUMP_DIR[1]}/sshd_config" \
	--http-port "$http_port" --closed-port "$closed_port" --expect "$token" \
	--restart-pidfile "$T/sshd0-restarted.pid" ${SAW_JUMP_DEBUG:+-d} \
	>"$T/run.out" 2>"$T/run.err" || rc=$?
SAW_LOGS+=("$T/run.err")
# Whatever happened in there: nothing stays frozen, the restarted sshd is stopped at exit.
tree_signal CONT "${JUMP_PID[1]}"
if [ -s "$T/sshd0-restarted.pid" ]; then
	track "$(cat "$T/sshd0-restarted.pid")"
fi

cat "$T/run.out"
assert_status "$rc" 0 "jump-failover"
if grep -q '^FAIL' "$T/run.out"; then
	fail_soft "jump-failover reported failures"
fi
assert_contains "$T/run.err" "host key mismatch for 127.0.0.1:${JUMP_PORT[0]}" \
	"the wrong host key of host 0 is logged"
assert_contains "$T/run.err" "no answer for" "the frozen host was found silent"
finish
