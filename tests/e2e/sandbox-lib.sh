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
