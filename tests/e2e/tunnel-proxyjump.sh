#!/usr/bin/env bash
# Issue #3, Flow 1 end to end in the netns lab: `ssh -J user@broker WS` and
# `ProxyCommand ssh -W %h:%p user@broker` reach a real OpenSSH sshd in the workspace namespace
# through saw-guestd's reverse tunnel; scp of 100 MB with a matching sha256; a key without a
# brokered session is refused by the workspace sshd itself (saw-authorized-keys) even over the
# tunnel; another user's workspace, an unknown one and an offline one are refused with their
# sentences; after a saw-guestd restart the tunnel comes back by itself.
. "$(dirname "$0")/netns-lab.sh"

lab_up
lab_saw_up "WorkspaceKeepalive 2s"

# The test user's key (A) and a second key (B) that never gets a session.
keyA=$(make_key user)
keyB=$(make_key nosession)
cfgA=$(lab_ssh_config "$keyA")
cfgB=$(lab_ssh_config "$keyB")
jump=$LAB_USER@127.0.0.1:$BROKER_PORT
WS=$LAB_WS_NAME

# --- ssh -J: the device login, then a command in the workspace --------------------------------
rc=0
lab_ssh -F "$cfgA" -J "$jump" "$WS" 'hostname; id -un; ip -4 -o addr show dev eth0' \
	>"$T/j.out" 2>"$T/j.err" || rc=$?
assert_status "$rc" 0 "ssh -J $jump $WS (device login approved by askpass)"
assert_eq "$(sed -n 2p "$T/j.out")" "$LAB_USER" "the command ran as $LAB_USER in the workspace"
assert_contains "$T/j.out" "$LAB_WS_ADDR/" "the command ran in the ws namespace"
assert_contains "$T/askpass.log" "approve" "the jump hop went through the device flow"
[ "$rc" -eq 0 ] || { show_file "$T/j.err"; show_file "$LAB_DIR/ws/sshd.log"; }

# --- ProxyCommand ssh -W: the session is live, no new device login ----------------------------
prompts=$(grep -c 'prompt:' "$T/askpass.log" || true)
rc=0
lab_ssh -F "$cfgA" -o "ProxyCommand=ssh -F $cfgA -W %h:%p broker" "$WS" 'id -un' \
	>"$T/pc.out" 2>"$T/pc.err" || rc=$?
assert_status "$rc" 0 "ProxyCommand ssh -W %h:%p broker, then $WS"
assert_eq "$(cat "$T/pc.out")" "$LAB_USER" "ProxyCommand login runs as $LAB_USER"
assert_eq "$(grep -c 'prompt:' "$T/askpass.log" || true)" "$prompts" \
	"no second device login while the session lives"

# --- scp of 100 MB --------------------------------------------------------------------------
head -c 100M /dev/urandom >"$T/big"
want=$(sha256sum "$T/big" | cut -d' ' -f1)
t0=$(date +%s%N)
rc=0
LAB_SSH_BIN=scp SSH_TIMEOUT=180 lab_ssh -F "$cfgA" -J "$jump" "$T/big" "$WS:big" \
	>"$T/scp.out" 2>"$T/scp.err" || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
assert_status "$rc" 0 "scp of 100 MB into the workspace ($ms ms)"
rm -f "$T/big"
got=$(lab_ssh -F "$cfgA" -J "$jump" "$WS" 'sha256sum big; rm -f big' 2>"$T/sum.err" | cut -d' ' -f1 || true)
assert_eq "$got" "$want" "sha256 of the 100 MB file in the workspace matches"
[ "$rc" -eq 0 ] || show_file "$T/scp.err"

# --- key B (no session) over the tunnel: refused by the workspace sshd -----------------------
before=$(grep -c 'Connection from 127.0.0.1' "$LAB_DIR/ws/sshd.log" || true)
rc=0
lab_ssh -F "$cfgB" -o "ProxyCommand=ssh -F $cfgA -W %h:%p broker" "$WS" true \
	>"$T/b.out" 2>"$T/b.err" || rc=$?
check "key B (no brokered session) is refused (exit $rc)" test "$rc" -ne 0
assert_contains "$T/b.err" "Permission denied (publickey" "the refusal is the workspace sshd's"
after=$(grep -c 'Connection from 127.0.0.1' "$LAB_DIR/ws/sshd.log" || true)
check "the connection did reach the workspace sshd over the tunnel ($before -> $after)" \
	test "$after" -gt "$before"
assert_not_contains "$T/b.out" "$LAB_USER" "nothing ran for key B"

# --- refusals at the broker ----------------------------------------------------------------
otherkey=$(make_key other-ws)
lab_sawctl workspace add "other-$LAB_RUN" --owner carol --key "$otherkey.pub" --profile corporate \
	>"$T/sawctl-other.out" 2>&1 || fail_soft "sawctl workspace add other-$LAB_RUN"
rc=0
lab_ssh -F "$cfgA" -J "$jump" "other-$LAB_RUN" true >"$T/o.out" 2>"$T/o.err" || rc=$?
check "another user's workspace is refused (exit $rc)" test "$rc" -ne 0
assert_contains "$T/o.err" "Workspace other-$LAB_RUN belongs to another user" \
	"another user's workspace: the sentence"

rc=0
lab_ssh -F "$cfgA" -J "$jump" "nosuch-$LAB_RUN" true >"$T/u.out" 2>"$T/u.err" || rc=$?
check "an unknown workspace is refused (exit $rc)" test "$rc" -ne 0
assert_contains "$T/u.err" "There is no workspace named \"nosuch-$LAB_RUN\"" \
	"unknown workspace: the sentence"

rc=0
lab_ssh -F "$cfgA" -J "$jump" -p 2222 "$WS" true >"$T/p.out" 2>"$T/p.err" || rc=$?
check "another port than 22 is refused (exit $rc)" test "$rc" -ne 0
assert_contains "$T/p.err" "Only the SSH port (22) of workspace $WS" "other port: the sentence"

# --- offline (guestd stopped), then guestd restart: the tunnel comes back -----------------------
lab_stop_guestd
check "the broker lists $WS offline within 10 s of guestd stopping" \
	lab_wait_ws_state "$WS" offline 10
rc=0
lab_ssh -F "$cfgA" -J "$jump" "$WS" true >"$T/off.out" 2>"$T/off.err" || rc=$?
check "an offline workspace is refused (exit $rc)" test "$rc" -ne 0
assert_contains "$T/off.err" "Workspace $WS is offline" "offline workspace: the sentence"

t0=$(date +%s%N)
lab_start_guestd
ok=0
for ((i = 0; i < 30; i++)); do
	if SSH_TIMEOUT=10 lab_ssh -F "$cfgA" -J "$jump" "$WS" 'id -un' >"$T/back.out" 2>"$T/back.err" &&
		[ "$(cat "$T/back.out")" = "$LAB_USER" ]; then
		ok=1
		break
	fi
	sleep 0.5
done
ms=$((($(date +%s%N) - t0) / 1000000))
echo "login through the tunnel works again $ms ms after saw-guestd restarted"
check "after a guestd restart, login works again within 10 s ($ms ms)" \
	test "$ok" = 1 -a "$ms" -le 10000
[ "$ok" = 1 ] || show_file "$T/back.err"

# guestd killed hard (no goodbye): the broker notices through its keepalive, and the restarted
# guestd's tunnel replaces the old one.
kill -KILL "$LAB_GUESTD_PID" 2>/dev/null || true
wait "$LAB_GUESTD_PID" 2>/dev/null || true
LAB_GUESTD_PID=
t0=$(date +%s%N)
lab_start_guestd
ok=0
for ((i = 0; i < 40; i++)); do
	if SSH_TIMEOUT=10 lab_ssh -F "$cfgA" -J "$jump" "$WS" 'id -un' >"$T/back2.out" 2>"$T/back2.err" &&
		[ "$(cat "$T/back2.out")" = "$LAB_USER" ]; then
		ok=1
		break
	fi
	sleep 0.5
done
ms=$((($(date +%s%N) - t0) / 1000000))
echo "after saw-guestd was SIGKILLed and started again: login works $ms ms later"
check "after guestd SIGKILL + restart, login works again within 10 s ($ms ms)" \
	test "$ok" = 1 -a "$ms" -le 10000
[ "$ok" = 1 ] || show_file "$T/back2.err"

# removed and registered again for someone else: the session attached to the old
# registration is not handed to the new one (its guestd is told of no session)
GLOG=$LAB_DIR/ws/guestd.log
attached=$(grep -c "attached (key" "$GLOG" || true)
check "before the removal, the session is attached to $WS" test "$attached" -ge 1
lab_sawctl workspace remove "$WS" >"$T/rm.out" 2>&1 || show_file "$T/rm.out"
lab_sawctl workspace add "$WS" --owner someone-else --key "$LAB_WS_KEY.pub" \
	--profile corporate >"$T/readd.out" 2>&1 || show_file "$T/readd.out"
lab_wait_ws_state "$WS" online 20 || fail_soft "$WS did not come back online after re-add"
sleep 1
check "re-added for another owner: no session of the old registration attached" \
	test "$(grep -c "attached (key" "$GLOG" || true)" -eq "$attached"
rc=0
SSH_TIMEOUT=10 lab_ssh -F "$cfgA" -J "$jump" "$WS" true >/dev/null 2>"$T/other.err" || rc=$?
check "re-added for another owner: $LAB_USER cannot reach it (exit $rc)" test "$rc" -ne 0
assert_contains "$T/other.err" "belongs to another user"

finish
