#!/usr/bin/env bash
# Issue #5, the sandbox, inside real brokered logins: `ssh -J user@broker WS` through the
# netns lab (tests/e2e/netns-lab.sh) to an OpenSSH sshd whose ForceCommand is saw-session.
# In the sandbox: writing outside the home fails, the home and /tmp are writable, shell rc
# files are read-only, a root-only file is unreadable, a listener in the workspace's own
# network namespace is unreachable (only loopback, with guestd's proxy listeners on it),
# ptrace/mount/unshare -U/bpf/io_uring/keyctl/userfaultfd and packet, raw and non-route
# netlink sockets are refused, memfd_create works, /proc shows only the sandbox. Then a
# login that keeps processes running is revoked (sawctl revoke): saw-session says why and
# exits 255, and no process of the user is left in the workspace.
. "$(dirname "$0")/netns-lab.sh"
. "$(dirname "$0")/sandbox-lib.sh"

SECRET=/etc/saw-test-secret-$$
trap 'rc=$?; rm -f "$SECRET"; (exit $rc); _lab_exit' EXIT

lab_up
LAB_GUESTD_EXTRA+=("SandboxLandlock required")
lab_saw_up
lab_ws_sshd_sandbox
install -m 0755 -o root -g root "$SAW_SRC/tests/e2e/sandbox-probe.sh" "$LAB_LIBDIR/sandbox-probe.sh"

echo "saw-test-secret $$" >"$SECRET"
chmod 0600 "$SECRET"

# A listener in the workspace's own network namespace (where guestd and sshd run).
port=$(lab_exec ws python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
lab_bg ws "$T/rootns-listener.log" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept(); c.close()' "$port"
lab_wait_listen ws "$port" 10 || fail "the root-namespace test listener did not start"
check "the test listener is reachable from the workspace namespace itself" \
	lab_tcp_ok ws 127.0.0.1 "$port"

key=$(make_key user)
cfg=$(lab_ssh_config "$key")
jump=$LAB_USER@127.0.0.1:$BROKER_PORT
WS=$LAB_WS_NAME

# --- one login: the probe -------------------------------------------------------------------
rc=0
lab_ssh -F "$cfg" -J "$jump" "$WS" \
	"bash $LAB_LIBDIR/sandbox-probe.sh $SECRET $port $LAB_B_WS_ADDR $BROKER_PORT" \
	>"$T/probe.out" 2>"$T/probe.err" || rc=$?
assert_status "$rc" 0 "the probe ran in a brokered login through saw-session"
[ "$rc" -eq 0 ] || { show_file "$T/probe.err"; show_file "$LAB_DIR/ws/guestd.log"; show_file "$LAB_DIR/ws/sshd.log"; }
cat "$T/probe.out"
val() { sed -n "s/^$1=//p" "$T/probe.out" | head -n1; }
assert_eq "$(val user)" "$LAB_USER" "the login runs as $LAB_USER"
assert_eq "$(val home_write)" ok "the home is writable"
assert_eq "$(val tmp_write)" ok "/tmp is writable (the login's own tmpfs)"
assert_eq "$(val etc_write)" denied "writing to /etc fails"
assert_eq "$(val usr_write)" denied "writing to /usr/local fails"
assert_eq "$(val var_write)" denied "writing to /var/lib fails"
assert_eq "$(val bashrc_write)" denied "~/.bashrc is read-only (it runs outside the sandbox at the next login)"
assert_eq "$(val secret_read)" denied "reading the root-only $SECRET fails"
assert_eq "$(val rootns_connect)" denied "127.0.0.1:$port of the workspace namespace is unreachable"
assert_eq "$(val broker_connect)" denied "the broker's address is unreachable (no route)"
assert_eq "$(val proxy_listening)" ok "guestd's proxy listens on 127.0.0.1:3128 inside the sandbox"
assert_eq "$(val ifaces)" "lo," "the sandbox's network namespace has only lo"
assert_eq "$(val unshare_user)" denied "unshare -U fails"
assert_eq "$(val unshare_userr)" denied "unshare -r fails"
assert_eq "$(val ptrace_traceme)" EPERM "ptrace fails with EPERM"
assert_eq "$(val mount_tmpfs)" EPERM "mount fails with EPERM"
assert_eq "$(val umount_proc)" EPERM "umount2 fails with EPERM"
assert_eq "$(val unshare_newuser)" EPERM "unshare(CLONE_NEWUSER) fails with EPERM"
assert_eq "$(val bpf)" EPERM "bpf fails with EPERM"
assert_eq "$(val keyctl)" EPERM "keyctl fails with EPERM"
assert_eq "$(val io_uring_setup)" EPERM "io_uring_setup fails with EPERM"
assert_eq "$(val userfaultfd)" EPERM "userfaultfd fails with EPERM"
assert_eq "$(val sock_packet)" EPERM "AF_PACKET sockets fail"
assert_eq "$(val sock_raw)" EPERM "raw IPv4 sockets fail"
assert_eq "$(val sock_nl_audit)" EPERM "NETLINK_AUDIT sockets fail"
assert_eq "$(val sock_nl_route)" ok "NETLINK_ROUTE sockets work (ip addr)"
assert_eq "$(val sock_tcp)" ok "TCP sockets work"
assert_eq "$(val memfd)" ok "memfd_create works"
assert_eq "$(val NoNewPrivs)" 1 "no_new_privs is set"
assert_eq "$(val Seccomp)" 2 "a seccomp filter is loaded"
assert_eq "$(val CapBnd)" 0000000000000000 "the capability bounding set is empty"
assert_eq "$(val CapEff)" 0000000000000000 "no effective capabilities"
assert_eq "$(val pid1)" saw-sandbox-init "pid 1 is the sandbox's init"
assert_eq "$(val sshd_visible)" denied "no sshd (nothing of the workspace) is visible in /proc"
check "/proc shows only the sandbox's few processes ($(val proc_pids))" test "$(val proc_pids)" -le 8
assert_eq "$(val run_empty)" yes "/run (the control socket, D-Bus, user runtime dirs) is hidden"
assert_eq "$(val http_proxy)" "http://127.0.0.1:3128" "HTTP_PROXY points at guestd's proxy in the sandbox"
assert_eq "$(val saw_session)" set "SAW_SESSION is set"
check "$SECRET is still there, unchanged" grep -q "saw-test-secret $$" "$SECRET"

# --- exit status and a refused login --------------------------------------------------------
# guestd's sockets now, with the session attached and no sandbox running
guestd_sockets() { find "/proc/$LAB_GUESTD_PID/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
socks0=$(guestd_sockets)
rc=0
lab_ssh -F "$cfg" -J "$jump" "$WS" 'exit 7' >"$T/exit.out" 2>"$T/exit.err" || rc=$?
assert_status "$rc" 7 "the command's exit status comes back through saw-session"
# A sandbox's listeners (the egress proxy's socket per event loop, the credential proxy's, the
# decision API's) close when the sandbox ends, not only with the session.
for ((i = 0; i < 50; i++)); do
	[ "$(guestd_sockets)" -gt "$socks0" ] || break
	sleep 0.1
done
check "an ended sandbox leaves guestd no socket ($(guestd_sockets) now, $socks0 before it)" \
	test "$(guestd_sockets)" -le "$socks0"
rc=0
lab_exec ws su -s /bin/sh "$LAB_USER" -c \
	"SSH_USER_AUTH=/nonexistent $LAB_LIBDIR/saw-session -s $LAB_GUESTD_SOCK" \
	</dev/null >"$T/direct.out" 2>&1 || rc=$?
check "saw-session without a login's auth info is refused (exit $rc)" test "$rc" -eq 255
echo "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ5dGVzYnl0ZXNieXRlc2J5dGVzYnl0ZXNieXRlc2J5" \
	>"$T/fake-auth"
chmod 0644 "$T/fake-auth"
rc=0
lab_exec ws su -s /bin/sh "$LAB_USER" -c \
	"SSH_USER_AUTH=$T/fake-auth $LAB_LIBDIR/saw-session -s $LAB_GUESTD_SOCK" \
	</dev/null >"$T/nokey.out" 2>&1 || rc=$?
check "saw-session with a key that has no brokered session is refused (exit $rc)" test "$rc" -eq 255
assert_contains "$T/nokey.out" "no live brokered session" "the refusal says why"

# --- revocation ends every process of the sandbox --------------------------------------------
rc=0
SSH_TIMEOUT=60 lab_ssh -F "$cfg" -J "$jump" "$WS" \
	'sleep 600 & (setsid sleep 601 &); nohup sleep 602 >/dev/null 2>&1 & echo started; wait' \
	>"$T/long.out" 2>"$T/long.err" &
longpid=$!
ok=0
for ((i = 0; i < 100; i++)); do
	[ "$(pgrep -u "$LAB_USER" -x sleep | wc -l)" -ge 3 ] && ok=1 && break
	sleep 0.1
done
check "the long login's three sleeps run (seen from the workspace's root pid namespace)" test "$ok" = 1
# A second sandbox of the same session, started by running saw-session as sshd would (the
# user's key in an SSH_USER_AUTH file): no SSH connection that the broker could cut first,
# so the "session ended" message reaches it.
echo "publickey $(cut -d' ' -f1,2 "$key.pub")" >"$T/user-auth"
chmod 0644 "$T/user-auth"
lab_exec ws su -s /bin/sh "$LAB_USER" -c \
	"SSH_USER_AUTH=$T/user-auth SSH_ORIGINAL_COMMAND='sleep 603' $LAB_LIBDIR/saw-session -s $LAB_GUESTD_SOCK" \
	</dev/null >"$T/direct-long.out" 2>"$T/direct-long.err" &
directpid=$!
for ((i = 0; i < 100; i++)); do
	pgrep -u "$LAB_USER" -f 'sleep 603' >/dev/null && break
	sleep 0.1
done
check "a second sandbox of the session runs (sleep 603)" pgrep -u "$LAB_USER" -f 'sleep 603'
sbx_user_procs >"$T/procs-before.out"
sid=$(lab_sawctl sessions --user "$LAB_USER" 2>/dev/null | awk 'NR > 1 && $1 != "" { print $1; exit }')
check "sawctl lists the session ($sid)" test -n "$sid"
cg=$(grep -o 'cgroup /sys/fs/cgroup[^ ]*' "$LAB_DIR/ws/guestd.log" | tail -n1 | cut -d' ' -f2 || true)
t0=$(date +%s%N)
lab_sawctl revoke "$sid" --message "sandbox test" >"$T/revoke.out" 2>&1 ||
	{ show_file "$T/revoke.out"; fail_soft "sawctl revoke $sid"; }
if sbx_wait_no_user_procs 10; then
	ms=$((($(date +%s%N) - t0) / 1000000))
	pass "every process of $LAB_USER is gone $ms ms after the revocation"
else
	fail_soft "processes of $LAB_USER are left after the revocation"
	sbx_user_procs
fi
rc=0
wait "$longpid" || rc=$?
assert_status "$rc" 255 "the revoked login's ssh exits 255"
rc=0
wait "$directpid" || rc=$?
assert_status "$rc" 255 "saw-session of the second sandbox exits 255"
assert_contains "$T/direct-long.err" "SAW: session ended: " "saw-session says the session ended, and why"
cat "$T/direct-long.err"
if [ -n "$cg" ] && [ "$cg" != none ]; then
	check "the login's cgroup $cg is gone" test ! -d "$cg"
fi
assert_contains "$LAB_DIR/ws/guestd.log" "ended: " "guestd logged the sandbox's end"

finish
