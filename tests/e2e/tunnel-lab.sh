#!/usr/bin/env bash
# The netns lab itself (tests/e2e/netns-lab.sh), without any SAW component: it builds in
# under 10 s, the reachability matrix is what the tunnel tests rely on (corp only from the
# jump hosts; ws reaches nothing but the broker's link), the workspace sshd runs under a PAM
# service of its own (the sshd-sawtPID symlink trick, OpenSSH 9.2), the jump hosts forward to
# corp, killing a jump host's sshd leaves the other one, and lab_down removes everything.
. "$(dirname "$0")/netns-lab.sh"

t0=$(date +%s%N)
lab_up
ms=$((($(date +%s%N) - t0) / 1000000))
echo "lab_up took $ms ms"
check "lab_up under 10 s ($ms ms)" test "$ms" -lt 10000

# --- reachability matrix --------------------------------------------------------------------
check "j1 reaches corp $LAB_CORP_ADDR:$LAB_CORP_PORT" lab_tcp_ok j1 "$LAB_CORP_ADDR" "$LAB_CORP_PORT"
check "j2 reaches corp $LAB_CORP_ADDR:$LAB_CORP_PORT" lab_tcp_ok j2 "$LAB_CORP_ADDR" "$LAB_CORP_PORT"
if lab_tcp_ok ws "$LAB_CORP_ADDR" "$LAB_CORP_PORT"; then fail_soft "ws reaches corp"; else pass "ws cannot reach corp"; fi
if lab_tcp_ok b "$LAB_CORP_ADDR" "$LAB_CORP_PORT"; then fail_soft "b reaches corp"; else pass "b cannot reach corp"; fi
if lab_tcp_ok ws "$LAB_J1_ADDR" 22; then fail_soft "ws reaches j1"; else pass "ws cannot reach j1"; fi
if lab_tcp_ok ws "$LAB_J2_ADDR" 22; then fail_soft "ws reaches j2"; else pass "ws cannot reach j2"; fi
if lab_tcp_ok ws "$LAB_B_J1_ADDR" 22; then fail_soft "ws reaches b's j1 link"; else pass "ws cannot reach b's j1-side address"; fi
if lab_tcp_ok corp "$LAB_WS_ADDR" 22; then fail_soft "corp reaches ws"; else pass "corp cannot reach ws"; fi
check "b reaches j1:22" lab_tcp_ok b "$LAB_J1_ADDR" 22
check "b reaches j2:22" lab_tcp_ok b "$LAB_J2_ADDR" 22
for ns in b ws j1 j2 corp; do
	assert_eq "$(lab_exec "$ns" sysctl -n net.ipv4.ip_forward)" 0 "ip_forward=0 in $ns"
	assert_eq "$(lab_exec "$ns" ip route show default)" "" "no default route in $ns"
done
# ws reaches the broker's side of its link (a listener there stands in for the broker).
lab_bg b "$T/b-listener.log" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 2222)); s.listen(4)
while True:
    c, _ = s.accept(); c.sendall(b"hello from b\n"); c.close()' "$LAB_B_WS_ADDR"
lab_wait_listen b 2222 5 "$LAB_LAST_PID" || fail "listener in b did not start"
got=$(lab_exec ws timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/2222"; head -n1 <&3' "$LAB_B_WS_ADDR" || true)
assert_eq "$got" "hello from b" "ws reaches b at $LAB_B_WS_ADDR"

# --- jump hosts forward to corp --------------------------------------------------------------
jssh=(ssh -F /dev/null -i "$LAB_JUMP_KEY" -o IdentitiesOnly=yes -o BatchMode=yes
	-o UserKnownHostsFile="$LAB_JUMP_KNOWN_HOSTS" -o StrictHostKeyChecking=yes
	-o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=5 -o LogLevel=ERROR)
for j in j1 j2; do
	addr=LAB_${j^^}_ADDR
	printf 'GET /file HTTP/1.0\r\nHost: corp\r\n\r\n' |
		timeout 10 "${jssh[@]}" -W "$LAB_CORP_ADDR:$LAB_CORP_PORT" "$LAB_JUMP_USER@${!addr}" \
			>"$T/$j.http" 2>"$T/$j.err" || true
	sed '1,/^\r$/d' "$T/$j.http" >"$T/$j.body"
	assert_eq "$(sha256sum <"$T/$j.body" | cut -d' ' -f1)" "$LAB_CORP_SHA" \
		"$j (pinned host key) forwards to corp; the body matches"
done

# --- the workspace sshd, plain mode: PAM service named after the symlink ----------------------
lab_ws_sshd plain
key=$(make_key wsuser)
lab_ws_authorize "$key.pub"
out=$(lab_exec ws timeout 10 ssh -F /dev/null -i "$key" -o IdentitiesOnly=yes -o BatchMode=yes \
	-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
	"$LAB_USER@127.0.0.1" 'id -un' 2>"$T/ws-ssh.err" || true)
assert_eq "$out" "$LAB_USER" "login to the ws sshd as $LAB_USER"
assert_contains "$LAB_DIR/ws/pam-service.log" "sshd-sawt$LAB_RUN" \
	"OpenSSH 9.2 run as $LAB_SSHD_LINK uses PAM service sshd-sawt$LAB_RUN"
if lab_tcp_ok b "$LAB_WS_ADDR" 22; then fail_soft "ws sshd reachable from b"; else pass "ws sshd is not reachable from b (127.0.0.1 only)"; fi

# --- killing j1's sshd leaves j2 -------------------------------------------------------------
check "kill j1's sshd" lab_kill_sshd j1
sleep 0.2
if lab_tcp_ok b "$LAB_J1_ADDR" 22; then fail_soft "j1 still answers"; else pass "j1's sshd is gone"; fi
check "j2 still answers" lab_tcp_ok b "$LAB_J2_ADDR" 22

# --- lab_down removes everything --------------------------------------------------------------
lab_down
left=$(ip netns list | grep -c "^$LAB_ID-" || true)
assert_eq "$left" 0 "no lab namespace left"
check "account $LAB_USER removed" bash -c "! id $LAB_USER >/dev/null 2>&1"
check "account $LAB_JUMP_USER removed" bash -c "! id $LAB_JUMP_USER >/dev/null 2>&1"
check "no $LAB_LIBDIR, $LAB_SSHD_LINK, /etc/pam.d/$LAB_PAM_SERVICE" \
	bash -c "[ ! -e $LAB_LIBDIR ] && [ ! -L $LAB_SSHD_LINK ] && [ ! -e /etc/pam.d/$LAB_PAM_SERVICE ]"
check "no home left" test ! -e "/home/$LAB_USER"
finish
