#!/usr/bin/env bash
# sawctl against a real saw-brokerd over AdminSocket: workspace add / list / remove, their
# refusals, the registry surviving a restart, a stale socket replaced, a workspace connected
# with the stock OpenSSH client shown online and cut off by "remove", and the SO_PEERCRED
# check (run as root: sawctl as user nobody is refused; a member of AdminSocketGroup is not).
. "$(dirname "$0")/lib.sh"

SAWCTL=$SAW_BUILD/broker/sawctl
[ -x "$SAWCTL" ] || fail "no sawctl at $SAWCTL (build first, or set SAW_BUILD_DIR)"

# sawctl ARGS...: run sawctl, output in $T/out and $T/err, status in $RC.
sawctl() {
	RC=0
	"$SAWCTL" "$@" >"$T/out" 2>"$T/err" || RC=$?
}

# as_nobody ARGS...: sawctl as nobody:GROUP ($NOBODY_GROUP), no supplementary groups.
as_nobody() {
	RC=0
	setpriv --reuid=nobody --regid="${NOBODY_GROUP:-nogroup}" --clear-groups \
		env SAW_ADMIN_SOCKET="$SAW_ADMIN_SOCKET" "$SAWCTL" "$@" >"$T/out" 2>"$T/err" || RC=$?
}

fp_of() {
	ssh-keygen -lf "$1" -E sha256 | awk '{print $2}'
}

start_idp
SOCK=$T/broker/admin.sock
write_broker_config "AdminSocket $SOCK"
start_broker
wait_for_text "$BROKER_LOG" "admin socket $SOCK ready" 10 || fail "no admin socket (see $BROKER_LOG)"
export SAW_ADMIN_SOCKET=$SOCK

WS1=$(make_key ws1)
WS2=$(make_key ws2)
FP1=$(fp_of "$WS1.pub")

# --- add, list, refusals ------------------------------------------------------------------
sawctl workspace list
assert_status "$RC" 0 "list with no workspace"
assert_contains "$T/out" "no workspaces registered"

sawctl workspace add alice-ws --owner alice-sub --key "$WS1.pub" --profile corporate
assert_status "$RC" 0 "add alice-ws"
assert_contains "$T/out" "workspace alice-ws added (owner alice-sub, profile corporate, key $FP1)"

# -s wins over SAW_ADMIN_SOCKET; NAME after the options
sawctl -s "$SOCK" workspace add --owner bob-sub --key "$WS2.pub" --profile public bob-ws
assert_status "$RC" 0 "add bob-ws (public, -s)"

sawctl workspace add alice-ws --owner x --key "$WS2.pub"
assert_status "$RC" 1 "same name refused"
assert_contains "$T/err" "sawctl: a workspace named alice-ws already exists"

sawctl workspace add carol-ws --owner x --key "$WS1.pub"
assert_status "$RC" 1 "same key refused"
assert_contains "$T/err" "is already registered for workspace alice-ws"

sawctl workspace add Bad_Name --owner x --key "$WS2.pub"
assert_status "$RC" 1 "invalid name refused"
assert_contains "$T/err" "invalid workspace name"

sawctl workspace add carol-ws --owner x --key "$WS1"
assert_status "$RC" 1 "a private key file refused"
assert_contains "$T/err" "is a private key: give the public key file (.pub)"

sawctl workspace add carol-ws --owner x
assert_status "$RC" 2 "usage: add without --key"
sawctl frobnicate
assert_status "$RC" 2 "usage: unknown command"
sawctl workspace list extra
assert_status "$RC" 2 "usage: list with an argument"

sawctl workspace list
assert_status "$RC" 0 "list"
assert_contains "$T/out" "NAME      OWNER      PROFILE    STATE    KEY"
assert_contains "$T/out" "alice-ws  alice-sub  corporate  offline  $FP1"
assert_contains "$T/out" "bob-ws    bob-sub    public     offline  SHA256:"
check "list is sorted by name" test "$(awk 'NR > 1 {print $1}' "$T/out" | tr '\n' ' ')" = "alice-ws bob-ws "

sawctl --json workspace list
assert_status "$RC" 0 "list --json"
check "list --json is the broker's JSON" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok"] is True
ws = r["workspaces"]
assert [w["name"] for w in ws] == ["alice-ws", "bob-ws"], ws
assert ws[0]["key_fp"] == sys.argv[2] and ws[0]["online"] is False and ws[1]["profile"] == "public"
' "$T/out" "$FP1"

sawctl --json workspace remove nope
assert_status "$RC" 1 "remove unknown (--json)"
assert_contains "$T/out" '{"ok":false,"error":"no workspace named nope"}'
assert_contains "$T/err" "sawctl: no workspace named nope"

# --- a connected workspace: online, then cut off by remove ---------------------------------
rc=0
timeout -k 5 60 ssh -o PreferredAuthentications=publickey -o ExitOnForwardFailure=yes \
	"${SAW_SSH_OPTS[@]}" -i "$WS1" -p "$BROKER_PORT" -N -R 22:127.0.0.1:22 \
	"workspace:alice-ws@127.0.0.1" </dev/null >"$T/ws-ssh.out" 2>&1 &
WS_PID=$!
track "$WS_PID" "$T/ws-ssh.out"
wait_for_text "$BROKER_LOG" "workspace alice-ws is online" 15 || fail_soft "alice-ws did not come online"
sawctl workspace list
assert_contains "$T/out" "alice-ws  alice-sub  corporate  online   $FP1"

sawctl workspace remove alice-ws
assert_status "$RC" 0 "remove alice-ws (online)"
assert_contains "$T/out" "workspace alice-ws removed (its connection was closed)"
for ((i = 0; i < 50; i++)); do
	kill -0 "$WS_PID" 2>/dev/null || break
	sleep 0.1
done
check "the workspace's SSH connection was closed" sh -c "! kill -0 $WS_PID 2>/dev/null"
wait "$WS_PID" 2>/dev/null || rc=$?
assert_contains "$BROKER_LOG" "admin: workspace alice-ws removed (disconnected)"

# a removed workspace's key no longer gets in
rc=0
timeout -k 5 30 ssh -o PreferredAuthentications=publickey "${SAW_SSH_OPTS[@]}" -i "$WS1" \
	-p "$BROKER_PORT" -N -R 22:127.0.0.1:22 "workspace:alice-ws@127.0.0.1" </dev/null \
	>"$T/ws-ssh2.out" 2>&1 || rc=$?
check "a removed workspace cannot connect again (ssh exit $rc)" test "$rc" -ne 0

sawctl workspace remove alice-ws
assert_status "$RC" 1 "remove twice"
assert_contains "$T/err" "sawctl: no workspace named alice-ws"

# --- restart: a stale socket is replaced, the registry is kept -------------------------------
kill -KILL "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null || true
check "a killed broker leaves its socket behind" test -S "$SOCK"

if [ "$(id -u)" -ne 0 ]; then
	start_broker
	wait_for_text "$BROKER_LOG" "admin socket $SOCK ready" 10 || fail "no admin socket after restart"
	sawctl workspace list
	assert_contains "$T/out" "bob-ws  bob-sub  public   offline"
	log "not root: the SO_PEERCRED checks are skipped"
	finish
fi

# Root: the socket in a setgid directory of group nogroup, AdminSocketGroup nogroup.
write_broker_config "AdminSocket $SOCK" "AdminSocketGroup nogroup"
chgrp nogroup "$BROKER_DIR"
chmod 2710 "$BROKER_DIR"
: >"$BROKER_LOG"
start_broker
wait_for_text "$BROKER_LOG" "admin socket $SOCK ready" 10 || fail "no admin socket after restart (see $BROKER_LOG)"
check "the socket is 0660 and belongs to nogroup" \
	test "$(stat -c '%a %G' "$SOCK")" = "660 nogroup"

sawctl workspace list
assert_status "$RC" 0 "list after restart"
assert_contains "$T/out" "bob-ws  bob-sub  public   offline"
assert_not_contains "$T/out" "alice-ws"

# a member of AdminSocketGroup (primary group here) may use it
NOBODY_GROUP=nogroup as_nobody workspace list
assert_status "$RC" 0 "nobody:nogroup (AdminSocketGroup member) may list"
assert_contains "$T/out" "bob-ws"

# someone else cannot even open the socket (mode 0660, directory 2710)...
NOBODY_GROUP=daemon as_nobody workspace list
assert_status "$RC" 1 "nobody:daemon refused"
assert_contains "$T/err" "Permission denied"

# ...and if the file modes were loosened by mistake, the broker still refuses by SO_PEERCRED
chmod 0711 "$BROKER_DIR"
chmod 0666 "$SOCK"
NOBODY_GROUP=daemon as_nobody workspace remove bob-ws
assert_status "$RC" 1 "nobody:daemon refused by the broker itself"
assert_contains "$T/err" "sawctl: permission denied: uid 65534 is neither root, the broker's user, nor a member of group nogroup (AdminSocketGroup)"
assert_contains "$BROKER_LOG" "admin: refused uid 65534"
sawctl workspace list
assert_contains "$T/out" "bob-ws" "bob-ws is still there"

# a clean stop removes the socket
stop_pid "$BROKER_PID" || true
check "a clean stop removes the socket" test ! -e "$SOCK"

finish
