#!/usr/bin/env bash
# A real OpenSSH sshd configured with conf/sshd-saw.conf, saw-authorized-keys and pam_saw.so,
# against a fake saw-guestd (tests/tools/fake-guestd.py): a key bound to a live session logs
# in, any other key, an expired session, a PAM refusal or a stopped guestd keeps it out; and
# pam_saw.so driven directly (tests/e2e/pam-harness.c) for account, open and close.
#
#   akc-sshd.sh SAW_AUTHORIZED_KEYS PAM_SAW_SO PAM_HARNESS
#
# Needs root (sshd, /etc/pam.d). sshd runs the AuthorizedKeysCommand only from a root-owned
# path that no group or other can write, so the binary is installed for the test under
# /usr/libexec/saw-test-PID; sshd's PAM service name is its program name, so sshd is started
# through a symlink saw-test-PID in that folder and uses /etc/pam.d/saw-test-PID. Both are
# removed on exit, as is a cgroup made under /sys/fs/cgroup/unified (or /sys/fs/cgroup).
. "$(dirname "$0")/lib.sh"

AKC=${1:?usage: akc-sshd.sh SAW_AUTHORIZED_KEYS PAM_SAW_SO PAM_HARNESS}
PAM_SO=${2:?usage: akc-sshd.sh SAW_AUTHORIZED_KEYS PAM_SAW_SO PAM_HARNESS}
HARNESS=${3:?usage: akc-sshd.sh SAW_AUTHORIZED_KEYS PAM_SAW_SO PAM_HARNESS}
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: akc-sshd needs root (sshd, /etc/pam.d)"
	exit 77
fi
[ -x /usr/sbin/sshd ] || fail "/usr/sbin/sshd is missing (apt-get install openssh-server)"

SVC=saw-test-$$
LIBEXEC=/usr/libexec/$SVC
PAMFILE=/etc/pam.d/$SVC
CGROUP=
SOCK=$T/guestd.sock
STATE=$T/state.json
REQLOG=$T/requests.log
SSHD_PID=
FAKE_PID=
PAM_SO=$(readlink -f "$PAM_SO")

# Everything made outside $T goes here, whatever way the test ends; then lib.sh's cleanup.
akc_cleanup() {
	local rc=$?
	[ -z "$SSHD_PID" ] || stop_pid "$SSHD_PID" || true
	rm -rf "$LIBEXEC"
	rm -f "$PAMFILE"
	[ -z "$CGROUP" ] || rmdir "$CGROUP" 2>/dev/null || true
	# saw_cleanup takes the test's status from $?; without set -e, a failing one is passed on
	# instead of ending the shell here (which would leave $T and the fake guestd behind).
	set +e
	(exit "$rc")
	saw_cleanup
}
trap akc_cleanup EXIT

set_state() {
	printf '%s\n' "$1" >"$STATE.tmp"
	mv "$STATE.tmp" "$STATE"
}

# session NAME FP EXPIRES [EXTRA JSON MEMBERS]: one session object for set_state.
session() {
	printf '{"session":"%s","user":"root","fp":"%s","expires":%s%s}' "$1" "$2" "$3" "${4:-}"
}

# start_fake: (re)starts the fake guestd and waits until it listens (a socket file left by a
# previous one does not count: it is removed first).
start_fake() {
	local i
	rm -f "$SOCK"
	python3 "$SAW_SRC/tests/tools/fake-guestd.py" --socket "$SOCK" --state "$STATE" \
		--log "$REQLOG" --akc-uid "$(id -u nobody)" 2>>"$T/fake.log" &
	FAKE_PID=$!
	track "$FAKE_PID" "$T/fake.log"
	for ((i = 0; i < 100; i++)); do
		[ -S "$SOCK" ] && return 0
		kill -0 "$FAKE_PID" 2>/dev/null || break
		sleep 0.1
	done
	fail "fake guestd did not start"
}

# login KEY [SSH OPTIONS...] [-- COMMAND...]: ssh root@sshd with only that key. Sets RC; output
# in $T/out, $T/err.
login() {
	local key=$1 opts=() cmd=()
	shift
	while [ $# -gt 0 ]; do
		if [ "$1" = -- ]; then
			shift
			cmd=("$@")
			break
		fi
		opts+=("$1")
		shift
	done
	[ ${#cmd[@]} -gt 0 ] || cmd=(echo logged-in)
	RC=0
	timeout -k 5 30 ssh "${opts[@]}" -F /dev/null -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null \
		-o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none \
		-o PreferredAuthentications=publickey -o ConnectTimeout=10 -o LogLevel=ERROR \
		-i "$key" -p "$SSHD_PORT" root@127.0.0.1 "${cmd[@]}" </dev/null \
		>"$T/out" 2>"$T/err" || RC=$?
}

expect_refused() {
	if [ "$RC" -eq 255 ] && ! [ -s "$T/out" ]; then
		pass "$1: refused"
	else
		fail_soft "$1: not refused (exit $RC)"
		show_file "$T/out"
		show_file "$T/err"
	fi
}

# last_request OP: the last request of that op the fake received (JSON of {"uid","pid","req"}).
last_request() {
	grep -F "\"op\": \"$1\"" "$REQLOG" 2>/dev/null | tail -n 1 || true
}

# json_get JSON PYTHON-EXPR: evaluates EXPR on the parsed JSON (as j).
json_get() {
	python3 -c 'import json, sys; j = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' \
		"${1:-null}" "$2" 2>/dev/null || echo "(no such request)"
}

# --- keys, sshd, PAM service ----------------------------------------------------------------
live=$(make_key live)
other=$(make_key other)
expired=$(make_key expired)
fp() { ssh-keygen -lf "$1.pub" | awk '{ print $2 }'; }
LIVE_FP=$(fp "$live")
OTHER_FP=$(fp "$other")
EXPIRED_FP=$(fp "$expired")
NOW=$(date +%s)
LIVE_SESSION=$(session s-live "$LIVE_FP" $((NOW + 3600)))
set_state '{"sessions":['"$LIVE_SESSION"','"$(session s-old "$EXPIRED_FP" $((NOW - 60)))"']}'
start_fake

install -d -o root -g root -m 0755 "$LIBEXEC"
install -o root -g root -m 0755 "$AKC" "$LIBEXEC/saw-authorized-keys"
ln -s /usr/sbin/sshd "$LIBEXEC/$SVC"
cat >"$PAMFILE" <<EOF
# saw-broker e2e test akc-sshd (pid $$); removed when the test ends.
auth     required pam_deny.so
account  required $PAM_SO socket=$SOCK debug
session  required $PAM_SO socket=$SOCK debug
password required pam_deny.so
EOF
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$T/ssh_host_ed25519_key"
SSHD_PORT=$(free_port)
# Test-specific values first: sshd keeps the first value of a keyword, so the drop-in under
# test supplies everything else (ListenAddress, AuthorizedKeysFile none, UsePAM, forwarding…).
cat >"$T/sshd_config" <<EOF
Port $SSHD_PORT
HostKey $T/ssh_host_ed25519_key
PidFile $T/sshd.pid
AuthorizedKeysCommand $LIBEXEC/saw-authorized-keys -s $SOCK %u %f %k %t
PermitRootLogin prohibit-password
UseDNS no
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
# This test is about the keys and PAM; the sandbox entry (ForceCommand saw-session) has its
# own test (tests/e2e/sandbox.sh).
ForceCommand none
Include $SAW_SRC/conf/sshd-saw.conf
EOF
"$LIBEXEC/$SVC" -t -f "$T/sshd_config" 2>"$T/sshd-t.log" ||
	fail "sshd rejects the config with conf/sshd-saw.conf: $(cat "$T/sshd-t.log")"
pass "sshd -t accepts conf/sshd-saw.conf"
"$LIBEXEC/$SVC" -T -f "$T/sshd_config" >"$T/sshd-T.txt" 2>&1 || true
assert_contains "$T/sshd-T.txt" "authorizedkeysfile none" "drop-in: AuthorizedKeysFile none"
assert_contains "$T/sshd-T.txt" "authorizedkeyscommanduser nobody" \
	"drop-in: AuthorizedKeysCommandUser nobody"
assert_contains "$T/sshd-T.txt" "usepam yes" "drop-in: UsePAM yes"
assert_contains "$T/sshd-T.txt" "listenaddress 127.0.0.1:$SSHD_PORT" "drop-in: loopback only"
assert_contains "$T/sshd-T.txt" "allowtcpforwarding no" "drop-in: no TCP forwarding"
"$LIBEXEC/$SVC" -D -e -f "$T/sshd_config" 2>"$T/sshd.log" &
SSHD_PID=$!
track "$SSHD_PID" "$T/sshd.log"
wait_for_port "$SSHD_PORT" 10 "$SSHD_PID" || fail "sshd did not start"

# --- sshd -------------------------------------------------------------------------------------
log "a key bound to a live session logs in"
# The remote command prints its ancestors, so the pid pam_saw registered can be checked.
# shellcheck disable=SC2016 # expanded by the remote shell
login "$live" -- 'echo logged-in; p=$$; while [ "$p" -gt 1 ]; do echo "ancestor=$p"; p=$(awk "/^PPid:/ { print \$2 }" /proc/$p/status); done'
assert_status "$RC" 0 "login with the bound key"
assert_contains "$T/out" "logged-in" "the command ran"
assert_contains "$T/sshd.log" "Accepted publickey for root" "sshd accepted the key"
akc_req=$(last_request authorized_keys)
assert_eq "$(json_get "$akc_req" 'j["uid"]')" "$(id -u nobody)" \
	"saw-authorized-keys ran as AuthorizedKeysCommandUser nobody"
assert_eq "$(json_get "$akc_req" 'j["req"]["fp"]')" "$LIVE_FP" "it asked about the offered key"
acct_req=$(last_request pam_account)
assert_eq "$(json_get "$acct_req" 'j["req"]["user"]')" "root" "pam_saw account asked about root"
open_req=$(last_request pam_open)
open_pid=$(json_get "$open_req" 'j["req"]["pid"]')
check "pam_open sent a pid ($open_pid) that is an ancestor of the user's command" \
	grep -qx "ancestor=$open_pid" "$T/out"
check "the peer (SO_PEERCRED) is the process whose pid was sent" \
	test "$(json_get "$open_req" 'j["pid"]')" = "$open_pid"
assert_eq "$(json_get "$open_req" 'j["req"].get("cgroup", "none")')" "none" \
	"no cgroup sent for a cgroup shared with other processes"
assert_eq "$(json_get "$open_req" 'j["req"].get("tty")')" "ssh" "PAM_TTY sent"
for ((i = 0; i < 50; i++)); do
	[ -z "$(last_request pam_close)" ] || break
	sleep 0.1
done
close_req=$(last_request pam_close)
assert_eq "$(json_get "$close_req" 'j["req"]["pid"]')" "$open_pid" \
	"pam_close sent the same pid when the login ended"

log "the key line's restrictions: a terminal works, forwarding does not"
login "$live" -tt -- tty
assert_status "$RC" 0 "login with a terminal (-tt)"
assert_contains "$T/out" "/dev/pts/" "pty allowed"
login "$live" -o ExitOnForwardFailure=yes -R 127.0.0.1:0:127.0.0.1:22 -- echo forwarded
check "remote port forwarding refused (exit $RC)" test "$RC" -ne 0
assert_not_contains "$T/out" "forwarded" "no command ran with a refused forward"

log "any other key is refused"
login "$other"
expect_refused "a key with no session"
assert_eq "$(json_get "$(last_request authorized_keys)" 'j["req"]["fp"]')" "$OTHER_FP" \
	"guestd was asked about the other key"

log "expired session"
login "$expired"
expect_refused "a key whose session expired (guestd says no)"
set_state '{"sessions":['"$LIVE_SESSION"','"$(session s-old "$EXPIRED_FP" $((NOW - 60)) ',"force_ok":true')"']}'
login "$expired"
expect_refused "a key whose session expired, guestd still says ok"

log "pam_saw's account and session refusals keep the user out"
set_state '{"sessions":['"$(session s-live "$LIVE_FP" $((NOW + 3600)) ',"deny_account":true')"']}'
login "$live"
expect_refused "key bound, but pam_account says no"
assert_contains "$T/sshd.log" "Access denied for user root by PAM account configuration" \
	"sshd names PAM's account check as the reason"
set_state '{"sessions":['"$(session s-live "$LIVE_FP" $((NOW + 3600)) ',"deny_open":true')"']}'
login "$live"
check "key bound, but pam_open says no: no shell (exit $RC)" test "$RC" -ne 0
assert_not_contains "$T/out" "logged-in" "the command did not run"

log "fail closed: guestd stopped"
set_state '{"sessions":['"$LIVE_SESSION"']}'
stop_pid "$FAKE_PID" || true
login "$live"
expect_refused "the bound key with guestd stopped"
assert_contains "$T/sshd.log" "$LIVE_FP $(cut -d' ' -f2 "$live.pub") ssh-ed25519 failed, status 1" \
	"sshd logs the command's failure"
start_fake
login "$live"
assert_status "$RC" 0 "the bound key logs in again once guestd is back"

# --- pam_saw.so without sshd --------------------------------------------------------------------
log "pam_saw.so: account, open (pid, tty, cgroup), close"
harness() {
	RC=0
	"$HARNESS" "$@" >"$T/pam.out" 2>&1 || RC=$?
}
: >"$REQLOG"
harness "$SVC" root -t /dev/pts/77 acct open close
assert_status "$RC" 0 "live session: account, open and close succeed"
assert_contains "$T/pam.out" "acct=PAM_SUCCESS" "account ok"
assert_contains "$T/pam.out" "open=PAM_SUCCESS" "open ok"
hpid=$(sed -n 's/^pid=//p' "$T/pam.out")
open_req=$(last_request pam_open)
assert_eq "$(json_get "$open_req" 'j["req"]["pid"]')" "$hpid" "open_session sends the caller's pid"
assert_eq "$(json_get "$open_req" 'j["req"]["tty"]')" "/dev/pts/77" "open_session sends PAM_TTY"
assert_eq "$(json_get "$open_req" 'j["uid"]')" "0" "asked as root"
assert_eq "$(json_get "$(last_request pam_close)" 'j["req"]["pid"]')" "$hpid" \
	"close_session sends the pid"

harness "$SVC" bob acct
assert_contains "$T/pam.out" "acct=PAM_PERM_DENIED" "no session for bob: account denied"
assert_contains "$T/pam.out" "msg: SAW: no live brokered session for bob; log in through the broker" \
	"the user is told why"
harness "$SVC" -bob acct open
assert_contains "$T/pam.out" "acct=PAM_USER_UNKNOWN" "an invalid user name is refused"
assert_eq "$(grep -c -- '"user": "-bob"' "$REQLOG" || true)" "0" "and never sent to guestd"
set_state '{"sessions":['"$(session s-live "$LIVE_FP" $((NOW + 3600)) ',"deny_open":true')"']}'
harness "$SVC" root acct open
assert_contains "$T/pam.out" "open=PAM_SESSION_ERR" "guestd refuses the registration: session error"

# A cgroup v2 of its own (the harness alone in it) is sent; one shared with another process is
# not. Only where this machine lets us make a v2 cgroup.
set_state '{"sessions":['"$LIVE_SESSION"']}'
for root in /sys/fs/cgroup /sys/fs/cgroup/unified; do
	if [ -f "$root/cgroup.controllers" ] && mkdir "$root/$SVC" 2>/dev/null; then
		CGROUP=$root/$SVC
		break
	fi
done
if [ -n "$CGROUP" ]; then
	RC=0
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$CGROUP" \
		"$HARNESS" "$SVC" root open >"$T/pam.out" 2>&1 || RC=$?
	assert_status "$RC" 0 "open from a cgroup of its own"
	assert_eq "$(json_get "$(last_request pam_open)" 'j["req"].get("cgroup")')" "$CGROUP" \
		"that cgroup is sent"
	sleep 30 &
	sleeper=$!
	echo "$sleeper" >"$CGROUP/cgroup.procs"
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$CGROUP" \
		"$HARNESS" "$SVC" root open >"$T/pam.out" 2>&1 || true
	kill "$sleeper" 2>/dev/null || true
	wait "$sleeper" 2>/dev/null || true
	assert_eq "$(json_get "$(last_request pam_open)" 'j["req"].get("cgroup", "none")')" "none" \
		"a cgroup shared with another process is not sent"
else
	log "no writable cgroup v2 hierarchy: cgroup checks skipped"
fi

stop_pid "$FAKE_PID" || true
harness "$SVC" root acct
assert_contains "$T/pam.out" "acct=PAM_PERM_DENIED" "guestd stopped: account denied (fail closed)"
assert_contains "$T/pam.out" "saw-guestd is not answering" "the user is told why"
harness "$SVC" root open
assert_contains "$T/pam.out" "open=PAM_SESSION_ERR" "guestd stopped: session refused"
harness "$SVC" root close
assert_contains "$T/pam.out" "close=PAM_SUCCESS" "close never fails"

finish
