# shellcheck shell=bash
# Sandbox additions to the netns lab (tests/e2e/netns-lab.sh), issue #5: the workspace sshd
# with `ForceCommand saw-session`, so that every brokered login runs in saw-guestd's sandbox.
# Source it after netns-lab.sh:
#
#   . "$(dirname "$0")/netns-lab.sh"
#   . "$(dirname "$0")/sandbox-lib.sh"
#   lab_up
#   lab_saw_up                 # broker, IdP, guestd, workspace sshd in saw mode
#   lab_ws_sshd_sandbox        # the same sshd again, plus ForceCommand saw-session
#
# saw-session is copied next to saw-authorized-keys in $LAB_LIBDIR (root-owned 0755). The
# lines added to the workspace sshd's config are those conf/sshd-saw.conf documents.

# lab_ws_sshd_sandbox: restart the workspace sshd (saw mode) with ForceCommand saw-session.
lab_ws_sshd_sandbox() {
	local bin=$SAW_BUILD/guestd/saw-session
	[ -x "$bin" ] || fail "no $bin (build first)"
	install -m 0755 -o root -g root "$bin" "$LAB_LIBDIR/saw-session"
	lab_ws_sshd saw
	stop_pid "$LAB_WS_SSHD_PID" >/dev/null 2>&1 || true
	LAB_WS_SSHD_PID=
	{
		echo "ForceCommand $LAB_LIBDIR/saw-session -s $LAB_GUESTD_SOCK"
		echo "ExposeAuthInfo yes"
		echo "PermitUserRC no"
	} >>"$LAB_DIR/ws/sshd_config"
	/usr/sbin/sshd -t -f "$LAB_DIR/ws/sshd_config" || fail "sshd rejects the sandbox config"
	lab_bg ws "$LAB_DIR/ws/sshd.log" "$LAB_SSHD_LINK" -D -e -f "$LAB_DIR/ws/sshd_config"
	LAB_WS_SSHD_PID=$LAB_LAST_PID
	lab_wait_listen ws 22 10 "$LAB_WS_SSHD_PID" || fail "the workspace sshd (sandbox mode) did not start"
	export LAB_WS_SSHD_PID
}

# sbx_user_procs: the test user's processes in the workspace namespace ("PID COMM" lines).
sbx_user_procs() {
	local pid
	for pid in $(ip netns pids "$LAB_ID-ws" 2>/dev/null); do
		[ "$(stat -c %U "/proc/$pid" 2>/dev/null)" = "$LAB_USER" ] || continue
		echo "$pid $(cat "/proc/$pid/comm" 2>/dev/null)"
	done
	# Sandboxes have network namespaces of their own: look by uid too.
	pgrep -u "$LAB_USER" -l 2>/dev/null || true
}

# sbx_wait_no_user_procs SECONDS: wait until the test user has no process left.
sbx_wait_no_user_procs() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		[ -z "$(pgrep -u "$LAB_USER" 2>/dev/null)" ] && return 0
		sleep 0.1
	done
	return 1
}

# sbx_guestd_hostmnt: from now on lab_start_guestd runs saw-guestd in the workspace's network
# namespace only (nsenter --net), keeping the host's mount namespace. `ip netns exec` (what
# lab_bg does) remounts /sys for the namespace, which hides /sys/fs/cgroup: the per-login
# cgroups (tests/e2e/sandbox-cgroup.sh) need the real one.
sbx_guestd_hostmnt() {
	lab_start_guestd() {
		local bin=$SAW_BUILD/guestd/saw-guestd logf=$LAB_DIR/ws/guestd.log
		[ -x "$bin" ] || fail "no $bin (build first)"
		# nsenter execs guestd: $! is guestd itself.
		nsenter --net="/run/netns/$LAB_ID-ws" "$bin" -f "$LAB_GUESTD_CONF" -d \
			</dev/null >>"$logf" 2>&1 &
		LAB_LAST_PID=$!
		LAB_PIDS+=("$LAB_LAST_PID")
		SAW_LOGS+=("$logf")
		LAB_GUESTD_PID=$LAB_LAST_PID
		export LAB_GUESTD_PID
	}
}

# sbx_log_cgroup KIND: the last per-login cgroup directory guestd logged for a sandbox
# start: KIND v2 ("cgroup DIR"), pids or memory ("v1 pids DIR", "v1 memory DIR").
sbx_log_cgroup() {
	local pat
	case $1 in
	v2) pat='started: .*cgroup \(/sys/fs/cgroup[^ ,]*\)' ;;
	pids) pat='started: .*v1 pids \(/sys/fs/cgroup[^ ,]*\)' ;;
	memory) pat='started: .*v1 memory \(/sys/fs/cgroup[^ ,]*\)' ;;
	esac
	sed -n "s|.*$pat.*|\1|p" "$LAB_DIR/ws/guestd.log" | tail -n1
}
