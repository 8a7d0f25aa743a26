#!/usr/bin/env bash
# saw-authorized-keys against a fake saw-guestd (tests/tools/fake-guestd.py): the line it prints
# for a live session, and that it prints nothing - fails closed - for every other answer, for a
# silent, absent or misbehaving guestd, and for bad arguments. Needs no root and no sshd.
#
#   akc-client.sh PATH/TO/saw-authorized-keys
. "$(dirname "$0")/lib.sh"

AKC=${1:?usage: akc-client.sh SAW_AUTHORIZED_KEYS}
SOCK=$T/guestd.sock
STATE=$T/state.json
REQLOG=$T/requests.log
NOW=$(date +%s)

# set_state JSON: the fake's answers from now on (atomic: it re-reads the file per request).
set_state() {
	printf '%s\n' "$1" >"$STATE.tmp"
	mv "$STATE.tmp" "$STATE"
}

# set_raw TEXT: the fake sends TEXT verbatim (printf escapes allowed) instead of an answer.
set_raw() {
	# shellcheck disable=SC2059 # TEXT is a printf format on purpose
	printf "$1" | python3 -c 'import json, sys; print(json.dumps({"raw": sys.stdin.read()}))' \
		>"$STATE.tmp"
	mv "$STATE.tmp" "$STATE"
}

# akc ARGS...: runs saw-authorized-keys -s $SOCK ARGS; sets RC, output in $T/out, $T/err.
akc() {
	RC=0
	"$AKC" -s "$SOCK" "$@" >"$T/out" 2>"$T/err" || RC=$?
}

# expect_nothing DESC STATUS: nothing printed, and the exit status.
expect_nothing() {
	if [ -s "$T/out" ]; then
		fail_soft "$1: printed something"
		show_file "$T/out"
	else
		pass "$1: prints nothing"
	fi
	assert_status "$RC" "$2" "$1"
}

# alice_state EXPIRES [EXTRA MEMBERS] [TOP-LEVEL EXTRA]: one session of alice bound to her key.
alice_state() {
	printf '{"sessions":[{"session":"s-alice","user":"alice","fp":"%s","expires":%s%s}]%s}' \
		"$a_fp" "$1" "${2:-}" "${3:-}"
}

requests() { wc -l <"$REQLOG" 2>/dev/null || echo 0; }

alice=$(make_key alice)
bob=$(make_key bob)
read -r a_type a_key _ <"$alice.pub"
read -r b_type b_key _ <"$bob.pub"
a_fp=$(ssh-keygen -lf "$alice.pub" | awk '{ print $2 }')
b_fp=$(ssh-keygen -lf "$bob.pub" | awk '{ print $2 }')
EXP=$((NOW + 3600))
LIVE=$(alice_state "$EXP")

set_state "$LIVE"
python3 "$SAW_SRC/tests/tools/fake-guestd.py" --socket "$SOCK" --state "$STATE" \
	--log "$REQLOG" --akc-uid "$(id -u)" 2>"$T/fake.log" &
FAKE_PID=$!
track "$FAKE_PID" "$T/fake.log"
wait_for_text "$T/fake.log" "ready" 10 || fail "fake guestd did not start"

log "a live session bound to the key: one restricted line with the session's expiry"
akc alice "$a_fp" "$a_key" "$a_type"
assert_status "$RC" 0 "live session"
want="expiry-time=\"$(date -u -d "@$EXP" +%Y%m%d%H%M%SZ)\",restrict,pty $a_type $a_key"
assert_eq "$(cat "$T/out")" "$want" "the line is the offered key with expiry-time,restrict,pty"
assert_eq "$(wc -l <"$T/out")" 1 "exactly one line"
check "sshd's own parser (ssh-keygen -l) reads the line as alice's key" \
	grep -qF "$a_fp" <(ssh-keygen -lf "$T/out")
assert_contains "$REQLOG" '"op": "authorized_keys", "user": "alice", "fp": "'"$a_fp"'"' \
	"the request names the user and the fingerprint"

log "guestd says no"
akc bob "$a_fp" "$a_key" "$a_type"
expect_nothing "another user with the bound key" 0
akc alice "$b_fp" "$b_key" "$b_type"
expect_nothing "the user with another key" 0
set_state "$(alice_state $((NOW - 60)))"
akc alice "$a_fp" "$a_key" "$a_type"
expect_nothing "an expired session" 0
set_state "$(alice_state $((NOW - 60)) ',"force_ok":true')"
akc alice "$a_fp" "$a_key" "$a_type"
expect_nothing "guestd says ok for a session that has already expired" 0

log "bad arguments: refused before guestd is asked"
set_state "$LIVE"
n0=$(requests)
akc -- -alice "$a_fp" "$a_key" "$a_type"
expect_nothing "user name starting with -" 1
akc 'alice x' "$a_fp" "$a_key" "$a_type"
expect_nothing "user name with a space" 1
akc alice "$b_fp" "$a_key" "$a_type"
expect_nothing "fingerprint of another key" 1
akc alice "MD5:${a_fp#SHA256:}" "$a_key" "$a_type"
expect_nothing "MD5 fingerprint" 1
akc alice "$a_fp" "$a_key" ssh-dss
expect_nothing "DSA key type" 1
akc alice "$a_fp" "$a_key" ssh-ed25519-cert-v01@openssh.com
expect_nothing "certificate key type" 1
akc alice "$a_fp" "${a_key}%" "$a_type"
expect_nothing "key with a non-base64 character" 1
akc alice "$a_fp" "$b_key" "$a_type"
expect_nothing "key that is not the fingerprint's" 1
akc alice "$a_fp" "$a_key"
expect_nothing "three arguments" 1
akc alice "$a_fp" "$a_key" "$a_type" extra
expect_nothing "five arguments" 1
assert_eq "$(requests)" "$n0" "no bad argument reached guestd"
assert_contains "$T/err" "expected 4 arguments" "the error says what is wrong"

log "misbehaving guestd: nothing printed, exit 1"
ok_line='{"ok":true,"session":"s","expires":'$EXP'}'
set_raw 'garbage\n'
akc alice "$a_fp" "$a_key" "$a_type"
expect_nothing "not JSON" 1
set_raw '[1,2]\n'
akc alice "$a_fp" "$a_key" "$a_type"
expect_nothing "JSON but not an object" 1
set_raw "$ok_line"
akc alice "$a_fp" "$a_key" "$a_type"
expect_nothing "a valid ok answer without its newline (connection closed)" 1
assert_contains "$T/err" "closed the connection" "unterminated answer explained"
set_raw "$ok_line\\n{}\\n"
akc alice "$a_fp" "$a_key" "$a_type"
expect_nothing "a second line after the answer" 1
assert_contains "$T/err" "unexpected bytes after" "trailing bytes explained"
set_raw '{"ok":true,"ok":true,"session":"s","expires":'$EXP'}\n'
akc alice "$a_fp" "$a_key" "$a_type"
expect_nothing "duplicate keys" 1
set_raw '{"ok":true,"session":"s"}\n'
akc alice "$a_fp" "$a_key" "$a_type"
expect_nothing "ok without expires" 1
set_raw '{"ok":true,"session":"s","expires":"'$EXP'"}\n'
akc alice "$a_fp" "$a_key" "$a_type"
expect_nothing "expires as a string" 1
set_raw '{"ok":"yes","session":"s","expires":'$EXP'}\n'
akc alice "$a_fp" "$a_key" "$a_type"
expect_nothing "ok that is not a boolean" 0
set_raw '{"ok":true,"session":"s","expires":'$EXP',"pad":"'"$(head -c 5000 /dev/zero | tr '\0' x)"'"}\n'
akc alice "$a_fp" "$a_key" "$a_type"
expect_nothing "an answer over GSOCK_MAX_LINE" 1
assert_contains "$T/err" "longer than 4096" "oversized answer explained"

log "silent guestd: the total timeout (2 s) holds"
set_state "$(alice_state "$EXP" '' ',"delay_ms":4000')"
t0=$(date +%s%N)
akc alice "$a_fp" "$a_key" "$a_type"
ms=$((($(date +%s%N) - t0) / 1000000))
expect_nothing "guestd answering after 4 s" 1
check "gave up after about 2 s (took ${ms} ms)" test "$ms" -ge 1900 -a "$ms" -lt 3500
assert_contains "$T/err" "did not answer within 2000 ms" "timeout explained"

log "no guestd"
set_state "$LIVE"
stop_pid "$FAKE_PID" || true
rm -f "$SOCK"
akc alice "$a_fp" "$a_key" "$a_type"
expect_nothing "no socket" 1
assert_contains "$T/err" "is saw-guestd running?" "says what to check"
akc_default_rc=0
"$AKC" alice "$a_fp" "$a_key" "$a_type" >"$T/out" 2>"$T/err" || akc_default_rc=$?
RC=$akc_default_rc
if [ -S /run/saw/guestd.sock ]; then
	log "a real guestd listens on the default socket: default-path check skipped"
else
	expect_nothing "default socket path, nobody listening" 1
	assert_contains "$T/err" "/run/saw/guestd.sock" "the default path is /run/saw/guestd.sock"
fi

finish
