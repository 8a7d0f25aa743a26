# shellcheck shell=bash
# The network-namespace lab of the tunnel tests (issue #3), on top of lib.sh. Source it at the
# top of a test INSTEAD of lib.sh (it sources lib.sh itself):
#
#   #!/usr/bin/env bash
#   . "$(dirname "$0")/netns-lab.sh"   # re-runs the test inside a new network namespace: "b"
#   lab_up                             # ws, j1, j2, corp + links, jump sshds, corp web server
#   start_idp --users "$LAB_IDP_USERS"; write_broker_config ...; start_broker   # all in b
#   lab_ws_sshd saw                    # OpenSSH sshd in ws (saw-authorized-keys + pam_saw)
#   lab_exec ws curl ...               # a command in a namespace
#   finish                             # the exit trap tears the whole lab down
#
# Topology ("hosts" are network namespaces; every address is in 198.18.0.0/15, the RFC 2544
# benchmark range; nothing is routed anywhere: no default route, ip_forward=0 everywhere):
#
#        b  (the test itself: IdP, broker, ssh clients on its loopback)
#        ├─ bws  198.18.1.1/24 ──── eth0 198.18.1.2/24  ws   (saw-guestd, sshd on 127.0.0.1:22)
#        ├─ bj1  198.18.2.1/24 ──── eth0 198.18.2.2/24  j1   (sshd :22, jump user)
#        └─ bj2  198.18.3.1/24 ──── eth0 198.18.3.2/24  j2   (sshd :22, jump user)
#                          j1: corp0 198.19.0.11/24 ─┐
#                          j2: corp0 198.19.0.12/24 ─┤ br0 198.19.0.1/24  corp (HTTP :8080)
#
# So the corp web server is reachable from j1 and j2 only: not from ws, not from b.
#
# The test process re-executes itself under `unshare --net` when it sources this file, so
# that its own namespace is "b" and every lib.sh helper (start_idp, start_broker, ssh_login,
# free_port, wait_for_port) works unchanged on b's loopback; b is also given a name
# (ip netns attach) so that `ip netns exec` works on it from outside. The host's own
# network namespace is never touched.
#
# What lab_up makes, per run ($$ of the test = LAB_RUN):
#   namespaces  saw$LAB_RUN-{b,ws,j1,j2,corp}
#   accounts    sawt$LAB_RUN (the test user, with a home: it logs in to the workspace sshd) and
#               sawj$LAB_RUN (the jump hosts' login user); see LAB_USER, LAB_JUMP_USER
#   files       /usr/local/lib/saw-test-$LAB_RUN/ (root-owned 0755: saw-authorized-keys and
#               pam_saw.so copied from the build, sshd's AuthorizedKeysCommand needs that),
#               /usr/local/sbin/sshd-sawt$LAB_RUN -> /usr/sbin/sshd and
#               /etc/pam.d/sshd-sawt$LAB_RUN (OpenSSH names its PAM service after the program
#               name, so the workspace sshd gets a PAM stack of its own), /run/saw-lab/$LAB_RUN
#               (what to undo; a later lab_up undoes the leftovers of a run that was killed)
# lab_down (run by the exit trap, also on failure) stops every process in the lab's
# namespaces, deletes them (and so their veths), the accounts and the files.
#
# Needs root, iproute2, OpenSSH sshd, python3. Without root or network namespaces the test
# exits 77 (ctest: SKIP_RETURN_CODE 77).

# ---- re-execute inside a new network namespace (b) ----------------------------------------
if [ -z "${SAW_LAB_INNER:-}" ]; then
	_lab_skip() {
		echo "SKIP: $*"
		exit 77
	}
	[ "$(id -u)" -eq 0 ] || _lab_skip "the netns lab needs root"
	for _lab_tool in ip unshare /usr/sbin/sshd ssh python3 useradd userdel; do
		command -v "$_lab_tool" >/dev/null 2>&1 || _lab_skip "missing tool: $_lab_tool"
	done
	unshare --net true 2>/dev/null || _lab_skip "cannot create a network namespace (unshare --net)"
	SAW_LAB_INNER=1 exec unshare --net -- bash "$0" "$@"
fi
unset SAW_LAB_INNER

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ip link set lo up

LAB_RUN=$$
LAB_ID=saw$LAB_RUN
LAB_DIR=$T/lab
LAB_USER=sawt$LAB_RUN
LAB_JUMP_USER=sawj$LAB_RUN
LAB_LIBDIR=/usr/local/lib/saw-test-$LAB_RUN
LAB_SSHD_LINK=/usr/local/sbin/sshd-sawt$LAB_RUN
LAB_PAM_SERVICE=sshd-sawt$LAB_RUN
LAB_MARKER_DIR=/run/saw-lab
LAB_MARKER=$LAB_MARKER_DIR/$LAB_RUN

# Addresses (fixed: each lab has namespaces of its own, so two labs never clash).
LAB_B_WS_ADDR=198.18.1.1 # b's end of the b-ws link: where guestd dials the broker
LAB_WS_ADDR=198.18.1.2
LAB_B_J1_ADDR=198.18.2.1
LAB_J1_ADDR=198.18.2.2
LAB_B_J2_ADDR=198.18.3.1
LAB_J2_ADDR=198.18.3.2
LAB_CORP_ADDR=198.19.0.1
LAB_J1_CORP_ADDR=198.19.0.11
LAB_J2_CORP_ADDR=198.19.0.12
LAB_CORP_PORT=8080
LAB_NAMESPACES=(ws j1 j2 corp) # b is the test's own

LAB_PIDS=()
LAB_UP=0
LAB_GUESTD_EXTRA=()
export LAB_RUN LAB_ID LAB_DIR LAB_USER LAB_JUMP_USER LAB_WS_ADDR LAB_B_WS_ADDR LAB_J1_ADDR \
	LAB_J2_ADDR LAB_CORP_ADDR LAB_CORP_PORT

# lab_ns NAME: the namespace's full name (saw$$-NAME).
lab_ns() {
	echo "$LAB_ID-$1"
}

# lab_exec NS CMD...: run CMD in namespace NS (b, ws, j1, j2, corp); b is the current one.
lab_exec() {
	local ns=$1
	shift
	if [ "$ns" = b ]; then
		"$@"
	else
		ip netns exec "$LAB_ID-$ns" "$@"
	fi
}

# lab_bg NS LOG CMD...: start CMD in NS in the background, output appended to LOG (shown if
# the test fails); the process is stopped by lab_down. Sets LAB_LAST_PID.
lab_bg() {
	local ns=$1 logf=$2
	shift 2
	if [ "$ns" = b ]; then
		"$@" </dev/null >>"$logf" 2>&1 &
	else
		# ip netns exec execs the command: $! is the command itself.
		ip netns exec "$LAB_ID-$ns" "$@" </dev/null >>"$logf" 2>&1 &
	fi
	LAB_LAST_PID=$!
	LAB_PIDS+=("$LAB_LAST_PID")
	SAW_LOGS+=("$logf")
}

# lab_listening NS PORT [ADDR]: something listens on TCP PORT in NS (socket table, no connect).
lab_listening() {
	local out
	out=$(lab_exec "$1" ss -Hltn "sport = :$2" 2>/dev/null) || return 1
	[ -n "$out" ] || return 1
	[ -z "${3:-}" ] || grep -qF -- "$3:$2" <<<"$out"
}

# lab_wait_listen NS PORT SECONDS [PID]: wait until lab_listening; gives up if PID exits.
lab_wait_listen() {
	local ns=$1 port=$2 secs=$3 pid=${4:-} i
	for ((i = 0; i < secs * 20; i++)); do
		lab_listening "$ns" "$port" && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.05
	done
	return 1
}

# lab_tcp_ok NS HOST PORT [SECONDS=2]: a TCP connection from NS to HOST:PORT succeeds.
lab_tcp_ok() {
	lab_exec "$1" timeout "${4:-2}" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$2" "$3" 2>/dev/null
}

# ---- undo (also for leftovers of a killed run) --------------------------------------------

# _lab_marker_add KIND VALUE: remember something to undo (KIND: ns, user, path).
_lab_marker_add() {
	echo "$1 $2" >>"$LAB_MARKER"
}

# _lab_undo MARKERFILE [OWNPIDS...]: stop every process in the marker's namespaces, delete
# them, the accounts and the paths it lists, then the marker.
_lab_undo() {
	local marker=$1 kind val pid i alive
	local -a nss=() users=() paths=()
	[ -f "$marker" ] || return 0
	while read -r kind val; do
		case $kind in
		ns) nss+=("$val") ;;
		user) users+=("$val") ;;
		path) paths+=("$val") ;;
		tmp) [ "$marker" = "$LAB_MARKER" ] || paths+=("$val") ;;
		esac
	done <"$marker"
	# Every process in a lab namespace was started by this lab: TERM, then KILL after 3 s.
	local -a pids=()
	for val in "${nss[@]}"; do
		[ -e "/run/netns/$val" ] || continue
		# shellcheck disable=SC2207
		pids+=($(ip netns pids "$val" 2>/dev/null || true))
	done
	# Never ourselves (b is our own namespace).
	local -a victims=()
	for pid in "${pids[@]}"; do
		[ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] || victims+=("$pid")
	done
	if [ ${#victims[@]} -gt 0 ]; then
		kill -TERM "${victims[@]}" 2>/dev/null || true
		for ((i = 0; i < 30; i++)); do
			alive=0
			for pid in "${victims[@]}"; do
				kill -0 "$pid" 2>/dev/null && alive=1 && break
			done
			[ "$alive" = 1 ] || break
			sleep 0.1
		done
		kill -KILL "${victims[@]}" 2>/dev/null || true
	fi
	for val in "${nss[@]}"; do
		[ ! -e "/run/netns/$val" ] || ip netns del "$val" 2>/dev/null || true
	done
	for val in "${users[@]}"; do
		if id "$val" >/dev/null 2>&1; then
			# Processes of the account outside the lab namespaces (none expected).
			userdel -r "$val" >/dev/null 2>&1 || userdel -f -r "$val" >/dev/null 2>&1 || true
		fi
	done
	for val in "${paths[@]}"; do
		case $val in
		/usr/local/lib/saw-test-* | /usr/local/sbin/sshd-sawt* | /etc/pam.d/sshd-sawt* | */saw-e2e-*)
			rm -rf -- "$val"
			;;
		esac
	done
	rm -f -- "$marker"
}

# _lab_owner_id PID: "PIDNS-INODE STARTTIME" of a process (empty if it does not exist): a
# marker's owner is the same process only if both match (pids are reused; and a process in
# another pid namespace would see a live owner as dead).
_lab_owner_id() {
	local ns st
	ns=$(readlink "/proc/$1/ns/pid" 2>/dev/null) || return 0
	st=$(awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null) || return 0
	echo "$ns $st"
}

# Leftovers of runs that were killed (SIGKILL, ctest timeout): their marker's owner is gone.
# Only markers written from our own pid namespace are judged; an owner still alive (same pid,
# same start time) is left alone.
_lab_reap_stale() {
	local m pid owner mine
	[ -d "$LAB_MARKER_DIR" ] || return 0
	mine=$(readlink /proc/self/ns/pid)
	for m in "$LAB_MARKER_DIR"/*; do
		[ -f "$m" ] || continue
		pid=${m##*/}
		case $pid in *[!0-9]* | '') continue ;; esac
		[ "$pid" != "$LAB_RUN" ] || continue
		owner=$(sed -n 's/^owner //p' "$m")
		[ -n "$owner" ] || continue           # no owner line: not ours to judge
		[ "${owner%% *}" = "$mine" ] || continue # another pid namespace
		[ "$(_lab_owner_id "$pid")" != "$owner" ] || continue
		log "removing the leftovers of lab run $pid (killed?)"
		_lab_undo "$m"
	done
}

# lab_down: stop the lab's processes, delete its namespaces, accounts and files. Idempotent.
lab_down() {
	local i
	for ((i = ${#LAB_PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM "${LAB_PIDS[$i]}" 2>/dev/null || true
	done
	for ((i = ${#LAB_PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${LAB_PIDS[$i]}" >/dev/null 2>&1 || true
	done
	LAB_PIDS=()
	_lab_undo "$LAB_MARKER"
	LAB_UP=0
}

_lab_exit() {
	local rc=$?
	trap - EXIT
	set +e
	lab_down
	# saw_cleanup takes the exit status from $?.
	if [ "$rc" -eq 0 ]; then
		saw_cleanup
	else
		(exit "$rc") || saw_cleanup
	fi
}
trap _lab_exit EXIT

# ---- building it -------------------------------------------------------------------------

# _lab_veth NS_A IF_A ADDR_A NS_B IF_B ADDR_B: a veth pair between two namespaces (b = ours).
_lab_veth() {
	local na=$1 ia=$2 aa=$3 nb=$4 ib=$5 ab=$6 tmp=${LAB_ID}x$RANDOM
	# Created in namespace A under a temporary unique name, the peer straight in B.
	lab_exec "$na" ip link add "$tmp" type veth peer name "$ib" netns "$(_lab_nsref "$nb")"
	lab_exec "$na" ip link set "$tmp" name "$ia"
	[ -z "$aa" ] || lab_exec "$na" ip addr add "$aa" dev "$ia"
	[ -z "$ab" ] || lab_exec "$nb" ip addr add "$ab" dev "$ib"
	lab_exec "$na" ip link set "$ia" up
	lab_exec "$nb" ip link set "$ib" up
}

# the netns argument of ip link for a lab namespace: a name, or our pid for b.
_lab_nsref() {
	if [ "$1" = b ]; then echo "$LAB_RUN"; else echo "$LAB_ID-$1"; fi
}

# _lab_sshd_config NAME LISTEN AUTHKEYS EXTRA...: a config for a lab sshd in $LAB_DIR/NAME.
_lab_sshd_config() {
	local name=$1 listen=$2 authkeys=$3 dir=$LAB_DIR/$1
	shift 3
	mkdir -p "$dir"
	chmod 0755 "$dir"
	[ -f "$dir/ssh_host_ed25519_key" ] ||
		ssh-keygen -q -t ed25519 -N '' -C "saw-lab-$name" -f "$dir/ssh_host_ed25519_key"
	{
		echo "# saw netns lab: $name"
		echo "ListenAddress $listen"
		echo "HostKey $dir/ssh_host_ed25519_key"
		echo "PidFile none"
		echo "AuthorizedKeysFile $authkeys"
		echo "PubkeyAuthentication yes"
		echo "PasswordAuthentication no"
		echo "KbdInteractiveAuthentication no"
		echo "PermitRootLogin no"
		echo "StrictModes no"
		echo "UseDNS no"
		echo "PrintMotd no"
		echo "PrintLastLog no"
		echo "X11Forwarding no"
		echo "MaxStartups 100:30:200"
		echo "LogLevel VERBOSE"
		local l
		for l in "$@"; do echo "$l"; done
	} >"$dir/sshd_config"
	/usr/sbin/sshd -t -f "$dir/sshd_config" || fail "sshd rejects the lab config $dir/sshd_config"
}

# lab_start_jump NAME (j1|j2): the jump host's sshd on ADDR:22 (pubkey for $LAB_JUMP_USER,
# key $LAB_JUMP_KEY, TCP forwarding allowed). Sets LAB_SSHD_PID_<NAME>.
lab_start_jump() {
	local name=$1 addr
	case $name in j1) addr=$LAB_J1_ADDR ;; j2) addr=$LAB_J2_ADDR ;; *) fail "lab_start_jump $name" ;; esac
	_lab_sshd_config "$name" "$addr:22" "$LAB_DIR/$name/authorized_keys" \
		"AllowUsers $LAB_JUMP_USER" "UsePAM no" "AllowTcpForwarding yes" "PermitOpen any" \
		"PermitTTY no" "ClientAliveInterval 5"
	cp "$LAB_JUMP_KEY.pub" "$LAB_DIR/$name/authorized_keys"
	chmod 0644 "$LAB_DIR/$name/authorized_keys"
	lab_bg "$name" "$LAB_DIR/$name/sshd.log" /usr/sbin/sshd -D -e -f "$LAB_DIR/$name/sshd_config"
	printf -v "LAB_SSHD_PID_$name" '%s' "$LAB_LAST_PID"
	export "LAB_SSHD_PID_$name"
}

# lab_kill_sshd NS: kill NS's sshd and all its connections at once (SIGKILL, like a crash):
# every sshd process of that namespace (by pid). Status 1 if there was none.
lab_kill_sshd() {
	local ns=$1 pid victims=()
	for pid in $(ip netns pids "$LAB_ID-$ns"); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sshd ] && victims+=("$pid")
	done
	[ ${#victims[@]} -gt 0 ] || return 1
	kill -KILL "${victims[@]}" 2>/dev/null || true
	# Reap our own child quietly (no "Killed" job notice).
	for pid in "${victims[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	return 0
}

# lab_ws_sshd MODE: (re)start the workspace's OpenSSH sshd on 127.0.0.1:22 of ws, run through
# $LAB_SSHD_LINK so that its PAM service is $LAB_PAM_SERVICE. MODE:
#   plain  AuthorizedKeysFile $LAB_DIR/ws/authorized_keys (keys added with lab_ws_authorize),
#          PAM stack: account/session pam_permit plus a pam_exec line that logs the PAM service
#          name to $LAB_DIR/ws/pam-service.log (how lab self-test checks the symlink trick)
#   saw    AuthorizedKeysCommand saw-authorized-keys (copied into $LAB_LIBDIR) asking guestd at
#          $LAB_GUESTD_SOCK, AuthorizedKeysFile none, PAM: account/session pam_saw.so
#   nopam  like saw, but UsePAM no (the fallback if the PAM service trick fails)
# Sets LAB_WS_SSHD_PID.
lab_ws_sshd() {
	local mode=$1 ak pam
	[ -z "${LAB_WS_SSHD_PID:-}" ] || {
		stop_pid "$LAB_WS_SSHD_PID" >/dev/null 2>&1 || true
		LAB_WS_SSHD_PID=
	}
	local -a extra=("Subsystem sftp internal-sftp" "AllowUsers $LAB_USER" "AllowTcpForwarding no"
		"PermitTunnel no" "ClientAliveInterval 10")
	case $mode in
	plain)
		ak=$LAB_DIR/ws/authorized_keys
		mkdir -p "$LAB_DIR/ws"
		touch "$ak"
		chmod 0644 "$ak"
		extra+=("UsePAM yes")
		pam="# saw netns lab $LAB_RUN, plain mode
auth     required pam_deny.so
account  optional pam_exec.so quiet log=$LAB_DIR/ws/pam-service.log /usr/bin/printenv PAM_SERVICE
account  required pam_permit.so
session  required pam_permit.so"
		;;
	saw | nopam)
		ak=none
		_lab_install_saw
		extra+=("AuthorizedKeysCommand $LAB_LIBDIR/saw-authorized-keys -s $LAB_GUESTD_SOCK %u %f %k %t"
			"AuthorizedKeysCommandUser nobody")
		if [ "$mode" = saw ]; then
			extra+=("UsePAM yes")
		else
			extra+=("UsePAM no")
		fi
		pam="# saw netns lab $LAB_RUN, saw mode (conf/pam.d-sshd-saw)
auth     required pam_deny.so
account  required $LAB_LIBDIR/pam_saw.so socket=$LAB_GUESTD_SOCK
session  required $LAB_LIBDIR/pam_saw.so socket=$LAB_GUESTD_SOCK"
		;;
	*) fail "lab_ws_sshd: unknown mode $mode" ;;
	esac
	_lab_sshd_config ws "127.0.0.1:22" "$ak" "${extra[@]}"
	printf '%s\n' "$pam" >"/etc/pam.d/$LAB_PAM_SERVICE"
	chmod 0644 "/etc/pam.d/$LAB_PAM_SERVICE"
	lab_bg ws "$LAB_DIR/ws/sshd.log" "$LAB_SSHD_LINK" -D -e -f "$LAB_DIR/ws/sshd_config"
	LAB_WS_SSHD_PID=$LAB_LAST_PID
	lab_wait_listen ws 22 10 "$LAB_WS_SSHD_PID" || fail "the workspace sshd did not start (mode $mode)"
	export LAB_WS_SSHD_PID
}

# lab_ws_authorize PUBKEY: plain mode: let that key log in as $LAB_USER.
lab_ws_authorize() {
	cat "$1" >>"$LAB_DIR/ws/authorized_keys"
}

# Copies saw-authorized-keys and pam_saw.so from the build into $LAB_LIBDIR.
_lab_install_saw() {
	local akc=$SAW_BUILD/guestd/saw-authorized-keys pam=$SAW_BUILD/guestd/pam_saw.so
	[ -x "$akc" ] || fail "no $akc (build first)"
	[ -f "$pam" ] || fail "no $pam (build first)"
	install -m 0755 -o root -g root "$akc" "$LAB_LIBDIR/saw-authorized-keys"
	install -m 0644 -o root -g root "$pam" "$LAB_LIBDIR/pam_saw.so"
}

# lab_guestd_config [EXTRA LINES...]: guestd's config in $LAB_DIR/ws/guestd.conf for the
# running broker ($BROKER_PORT, $BROKER_HOSTKEY.pub), workspace $LAB_WS_NAME with key
# $LAB_WS_KEY. Sets LAB_GUESTD_CONF.
lab_guestd_config() {
	LAB_GUESTD_CONF=$LAB_DIR/ws/guestd.conf
	{
		echo "# saw netns lab guestd"
		echo "BrokerAddress $LAB_B_WS_ADDR:${BROKER_PORT:?start the broker first}"
		echo "BrokerHostKey $LAB_DIR/ws/broker_host_key.pub"
		echo "WorkspaceName $LAB_WS_NAME"
		echo "WorkspaceKey $LAB_WS_KEY"
		echo "LocalSSH 127.0.0.1:22"
		echo "ControlSocket $LAB_GUESTD_SOCK"
		echo "AuthorizedKeysUser nobody"
		echo "ProxyListen 127.0.0.1:3128"
		# A guestd that has a DecisionSocket (issue #5) gets one of its own: the default
		# /run/saw/decide.sock would be shared by every lab running at the same time.
		if grep -qa DecisionSocket "$SAW_BUILD/guestd/saw-guestd" 2>/dev/null; then
			echo "DecisionSocket $LAB_DIR/ws/decide.sock"
		fi
		local l
		for l in "$@"; do echo "$l"; done
	} >"$LAB_GUESTD_CONF"
	cp "${BROKER_HOSTKEY:?}.pub" "$LAB_DIR/ws/broker_host_key.pub"
	export LAB_GUESTD_CONF
}

# lab_start_guestd: saw-guestd -d in ws with $LAB_GUESTD_CONF. Sets LAB_GUESTD_PID.
lab_start_guestd() {
	local bin=$SAW_BUILD/guestd/saw-guestd
	[ -x "$bin" ] || fail "no $bin (build first)"
	lab_bg ws "$LAB_DIR/ws/guestd.log" "$bin" -f "$LAB_GUESTD_CONF" -d
	LAB_GUESTD_PID=$LAB_LAST_PID
	export LAB_GUESTD_PID
}

# lab_stop_guestd: SIGTERM (then SIGKILL after 5 s) to guestd.
lab_stop_guestd() {
	[ -n "${LAB_GUESTD_PID:-}" ] || return 0
	stop_pid "$LAB_GUESTD_PID" >/dev/null 2>&1 || true
	LAB_GUESTD_PID=
}

# lab_up: namespaces, links, accounts, jump hosts' sshd, the corp web server. < 10 s.
# Sets (besides the addresses above) LAB_JUMP_KEY (private key of the jump user; a copy
# readable by the broker's account is at $LAB_DIR/jump_key_broker once lab_jump_key_for
# is called), LAB_JUMP_KNOWN_HOSTS, LAB_WS_NAME (default ws-$LAB_RUN), LAB_WS_KEY,
# LAB_GUESTD_SOCK, LAB_IDP_USERS (an idp.mjs --users file with $LAB_USER, alice, bob, carol),
# LAB_CORP_FILE (what the corp server serves at /file) and its sha256 LAB_CORP_SHA.
lab_up() {
	local ns t0=$SECONDS
	[ "$LAB_UP" = 0 ] || return 0
	mkdir -p "$LAB_MARKER_DIR"
	chmod 0700 "$LAB_MARKER_DIR"
	_lab_reap_stale
	echo "owner $(_lab_owner_id "$LAB_RUN")" >"$LAB_MARKER"
	# The test's directory, only for the reaper (lib.sh removes it on a normal exit).
	echo "tmp $T" >>"$LAB_MARKER"
	mkdir -p "$LAB_DIR"
	chmod 0711 "$LAB_DIR"
	LAB_UP=1

	# b: our own namespace, named so that `ip netns exec saw$$-b` works from outside.
	ip netns attach "$LAB_ID-b" "$LAB_RUN" || fail "ip netns attach failed"
	_lab_marker_add ns "$LAB_ID-b"
	for ns in "${LAB_NAMESPACES[@]}"; do
		_lab_marker_add ns "$LAB_ID-$ns"
		ip netns add "$LAB_ID-$ns" || fail "ip netns add $LAB_ID-$ns failed"
		lab_exec "$ns" ip link set lo up
	done
	for ns in b "${LAB_NAMESPACES[@]}"; do
		# No forwarding anywhere, no IPv6 (nothing of it is needed; no stray link-local paths).
		lab_exec "$ns" sysctl -qw net.ipv4.ip_forward=0
		lab_exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true
		lab_exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
	done
	_lab_veth b bws "$LAB_B_WS_ADDR/24" ws eth0 "$LAB_WS_ADDR/24"
	_lab_veth b bj1 "$LAB_B_J1_ADDR/24" j1 eth0 "$LAB_J1_ADDR/24"
	_lab_veth b bj2 "$LAB_B_J2_ADDR/24" j2 eth0 "$LAB_J2_ADDR/24"
	lab_exec corp ip link add br0 type bridge
	lab_exec corp ip addr add "$LAB_CORP_ADDR/24" dev br0
	lab_exec corp ip link set br0 up
	_lab_veth j1 corp0 "$LAB_J1_CORP_ADDR/24" corp j1 ""
	_lab_veth j2 corp0 "$LAB_J2_CORP_ADDR/24" corp j2 ""
	lab_exec corp ip link set j1 master br0
	lab_exec corp ip link set j2 master br0

	# Accounts: the test user (logs in to the workspace sshd) and the jump hosts' user.
	local u
	for u in "$LAB_USER" "$LAB_JUMP_USER"; do
		! id "$u" >/dev/null 2>&1 || fail "account $u exists already"
		_lab_marker_add user "$u"
	done
	useradd -m -s /bin/bash -c "saw netns lab $LAB_RUN" "$LAB_USER" || fail "useradd $LAB_USER"
	useradd -M -d /nonexistent -s /bin/sh -c "saw netns lab $LAB_RUN jump" "$LAB_JUMP_USER" ||
		fail "useradd $LAB_JUMP_USER"
	# No password, but not "locked" ('!'): sshd without PAM refuses locked accounts.
	usermod -p '*' "$LAB_USER"
	usermod -p '*' "$LAB_JUMP_USER"

	# Root-owned files: the libexec dir (AuthorizedKeysCommand), the sshd link, the PAM service.
	_lab_marker_add path "$LAB_LIBDIR"
	_lab_marker_add path "$LAB_SSHD_LINK"
	_lab_marker_add path "/etc/pam.d/$LAB_PAM_SERVICE"
	install -d -m 0755 -o root -g root "$LAB_LIBDIR"
	ln -sfn /usr/sbin/sshd "$LAB_SSHD_LINK"
	mkdir -p /run/sshd
	chmod 0755 /run/sshd

	# Keys: the jump user's, the workspace's.
	LAB_JUMP_KEY=$LAB_DIR/jump_key
	ssh-keygen -q -t ed25519 -N '' -C "saw-lab-jump" -f "$LAB_JUMP_KEY"
	mkdir -p "$LAB_DIR/ws"
	chmod 0711 "$LAB_DIR/ws"
	LAB_WS_NAME=${LAB_WS_NAME:-ws-$LAB_RUN}
	LAB_WS_KEY=$LAB_DIR/ws/workspace_key
	ssh-keygen -q -t ed25519 -N '' -C "saw-lab-workspace" -f "$LAB_WS_KEY"
	LAB_GUESTD_SOCK=$LAB_DIR/ws/guestd.sock

	# Jump hosts.
	lab_start_jump j1
	lab_start_jump j2

	# The corp web server: a file with known content, served on CORP_ADDR:8080 only.
	mkdir -p "$LAB_DIR/corp/www"
	LAB_CORP_FILE=$LAB_DIR/corp/www/file
	{
		echo "saw corp service $LAB_RUN"
		head -c 65536 /dev/urandom | base64
	} >"$LAB_CORP_FILE"
	LAB_CORP_SHA=$(sha256sum "$LAB_CORP_FILE" | cut -d' ' -f1)
	lab_bg corp "$LAB_DIR/corp/http.log" python3 -m http.server "$LAB_CORP_PORT" \
		--bind "$LAB_CORP_ADDR" --directory "$LAB_DIR/corp/www"
	LAB_CORP_PID=$LAB_LAST_PID

	# The IdP's users: the test user is an entitled login.
	LAB_IDP_USERS=$LAB_DIR/idp-users.json
	cat >"$LAB_IDP_USERS" <<EOF
{
  "$LAB_USER": { "groups": ["saw-users"], "name": "SAW Lab User $LAB_RUN" },
  "alice": { "groups": ["saw-users", "developers"], "name": "Alice Example" },
  "bob": { "groups": ["developers"], "name": "Bob Example" },
  "carol": { "groups": ["saw-users"], "name": "Carol Example" }
}
EOF

	# known_hosts of the jump hosts, as the broker pins them (port 22: plain host).
	LAB_JUMP_KNOWN_HOSTS=$LAB_DIR/jump_known_hosts
	{
		echo "$LAB_J1_ADDR $(cut -d' ' -f1,2 "$LAB_DIR/j1/ssh_host_ed25519_key.pub")"
		echo "$LAB_J2_ADDR $(cut -d' ' -f1,2 "$LAB_DIR/j2/ssh_host_ed25519_key.pub")"
	} >"$LAB_JUMP_KNOWN_HOSTS"
	chmod 0644 "$LAB_JUMP_KNOWN_HOSTS"

	# shellcheck disable=SC2154 # set by lab_start_jump (printf -v)
	lab_wait_listen j1 22 10 "$LAB_SSHD_PID_j1" || fail "the j1 sshd did not start"
	# shellcheck disable=SC2154
	lab_wait_listen j2 22 10 "$LAB_SSHD_PID_j2" || fail "the j2 sshd did not start"
	lab_wait_listen corp "$LAB_CORP_PORT" 10 "$LAB_CORP_PID" || fail "the corp web server did not start"
	export LAB_JUMP_KEY LAB_WS_NAME LAB_WS_KEY LAB_GUESTD_SOCK LAB_CORP_FILE LAB_CORP_SHA \
		LAB_IDP_USERS LAB_JUMP_KNOWN_HOSTS LAB_CORP_PID
	log "lab $LAB_ID up in $((SECONDS - t0)) s (b, ws, j1, j2, corp)"
}

# lab_jump_key_for USER: a copy of the jump key readable by USER (the broker's account);
# prints its path.
lab_jump_key_for() {
	local dst=$LAB_DIR/jump_key_broker
	install -m 0600 -o "$1" "$LAB_JUMP_KEY" "$dst"
	echo "$dst"
}

# lab_jump_lines: broker config lines for the lab's jump hosts (j1 active, j2 standby, as
# $LAB_JUMP_USER with a copy of $LAB_JUMP_KEY the broker's account can read, pinned by
# $LAB_JUMP_KNOWN_HOSTS) and the corp service "api" ($LAB_CORP_ADDR:$LAB_CORP_PORT).
# One line per output line: mapfile -t lines < <(lab_jump_lines).
lab_jump_lines() {
	local keyuser=root jk
	[ "$(id -u)" -ne 0 ] || keyuser=saw
	jk=$(lab_jump_key_for "$keyuser")
	echo "JumpHost $LAB_J1_ADDR:22 $LAB_JUMP_USER $jk"
	echo "JumpHost $LAB_J2_ADDR:22 $LAB_JUMP_USER $jk"
	echo "JumpHostKnownHosts $LAB_JUMP_KNOWN_HOSTS"
	echo "CorpService api $LAB_CORP_ADDR:$LAB_CORP_PORT"
}

# lab_sawctl ARGS...: sawctl against the lab broker's AdminSocket.
lab_sawctl() {
	timeout -k 2 15 "$SAW_BUILD/broker/sawctl" -s "$BROKER_DIR/admin.sock" "$@"
}

# lab_ws_state NAME: the STATE column of `sawctl workspace list` for NAME (online/offline).
lab_ws_state() {
	lab_sawctl workspace list 2>/dev/null | awk -v n="$1" '$1 == n { print $4 }'
}

# lab_wait_ws_state NAME STATE SECONDS: wait until the broker lists NAME in STATE.
lab_wait_ws_state() {
	local i
	for ((i = 0; i < $3 * 5; i++)); do
		[ "$(lab_ws_state "$1")" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

# lab_saw_up [EXTRA BROKER CONFIG LINES...]: the whole SAW side of the lab, after lab_up:
# the IdP (users $LAB_IDP_USERS) and saw-brokerd in b (127.0.0.1:PORT and $LAB_B_WS_ADDR:PORT,
# AdminSocket $BROKER_DIR/admin.sock), workspace $LAB_WS_NAME registered with sawctl (owner
# $LAB_USER, profile corporate), the workspace sshd in saw mode (or $LAB_WS_SSHD_MODE), and
# saw-guestd, waited for until the broker lists the workspace online.
lab_saw_up() {
	local bin
	for bin in broker/saw-brokerd broker/sawctl guestd/saw-guestd guestd/saw-authorized-keys \
		guestd/pam_saw.so; do
		[ -e "$SAW_BUILD/$bin" ] || fail "no $SAW_BUILD/$bin (build first, or set SAW_BUILD_DIR)"
	done
	start_idp --users "$LAB_IDP_USERS"
	write_broker_config "AdminSocket $T/broker/admin.sock" "$@"
	echo "ListenAddress $LAB_B_WS_ADDR:$BROKER_PORT" >>"$BROKER_CONF"
	start_broker "$BROKER_CONF"
	lab_sawctl workspace add "$LAB_WS_NAME" --owner "$LAB_USER" --key "$LAB_WS_KEY.pub" \
		--profile corporate >"$T/sawctl-add.out" 2>&1 ||
		{ show_file "$T/sawctl-add.out"; fail "sawctl workspace add $LAB_WS_NAME failed"; }
	lab_ws_sshd "${LAB_WS_SSHD_MODE:-saw}"
	lab_guestd_config "${LAB_GUESTD_EXTRA[@]}"
	lab_start_guestd
	lab_wait_ws_state "$LAB_WS_NAME" online 15 ||
		fail "workspace $LAB_WS_NAME not online 15 s after saw-guestd started"
	log "workspace $LAB_WS_NAME online (guestd pid $LAB_GUESTD_PID)"
}

# lab_ssh_config KEY [FILE]: an ssh_config for the test's clients in b: every host uses KEY
# and the test options (no known_hosts, askpass allowed); Host "broker" is the broker as
# $LAB_USER, and so is every other host (the workspaces). Pass it with -F so that ssh -J's
# inner ssh reads it too. LogLevel INFO (LAB_SSH_LOGLEVEL) as a user has it: ssh prints a
# refused channel's reason ("channel 0: open failed: administratively prohibited: SENTENCE")
# at INFO. Prints FILE.
lab_ssh_config() {
	local key=$1 f=${2:-$T/ssh_config.$(basename "$1")}
	cat >"$f" <<EOF
Host broker
  HostName 127.0.0.1
  Port ${BROKER_PORT:-22}
  User $LAB_USER
Host *
  User $LAB_USER
  IdentityFile $key
  IdentitiesOnly yes
  IdentityAgent none
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  GlobalKnownHostsFile /dev/null
  BatchMode no
  PreferredAuthentications publickey,keyboard-interactive
  ConnectTimeout 10
  ServerAliveInterval 5
  LogLevel ${LAB_SSH_LOGLEVEL:-INFO}
EOF
	echo "$f"
}

# lab_ssh [SSH ARGS...]: the stock ssh client with askpass wiring (device logins approved as
# $SAW_APPROVE_LOGIN, default $LAB_USER), no terminal, bounded by SSH_TIMEOUT (60 s).
# Use it for ssh, or LAB_SSH_BIN=scp for scp.
lab_ssh() {
	SAW_APPROVE_LOGIN=${SAW_APPROVE_LOGIN-$LAB_USER} \
		SAW_APPROVE_DENY=${SAW_APPROVE_DENY:-0} \
		SAW_ASKPASS_LOG=${SAW_ASKPASS_LOG:-$T/askpass.log} \
		SSH_ASKPASS="$SAW_SRC/tests/tools/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
		timeout -k 5 "${SSH_TIMEOUT:-60}" setsid -w "${LAB_SSH_BIN:-ssh}" "$@" </dev/null
}
