#!/usr/bin/env bash
# tunnel/sshc.c against a real OpenSSH sshd on a free loopback port: pinned and known_hosts
# host key checks, refused port, refused key, cancel.
# Usage: sshc.sh PATH_TO_sshc-test
. "$(dirname "$0")/lib.sh"
# shellcheck source=../bench/lib-sshd.sh
. "$SAW_SRC/tests/bench/lib-sshd.sh"

CLIENT=$1
D=$T/sshd
mkdir -p "$D"
bench_make_user_key "$D"
bench_start_sshd "$D"
track "$SSHD_PID" "$D/sshd.log"
ME=$(id -un)

ssh-keygen -q -t ed25519 -N '' -f "$T/other_host" >/dev/null
ssh-keygen -q -t ed25519 -N '' -f "$T/other_user" >/dev/null

run() { # run OUTFILE ARGS...
	local out=$1
	shift
	"$CLIENT" "$@" >"$out" 2>&1 || true
}

run "$T/good" -k "$D/ssh_host_ed25519_key.pub" 127.0.0.1 "$SSHD_PORT" "$ME" "$D/user_ed25519"
assert_contains "$T/good" "connected" "pinned host key: session handed over, non-blocking"

run "$T/mismatch" -k "$T/other_host.pub" 127.0.0.1 "$SSHD_PORT" "$ME" "$D/user_ed25519"
assert_contains "$T/mismatch" "host key mismatch" "wrong pinned key: host key mismatch"
assert_contains "$T/mismatch" "$(ssh-keygen -lf "$T/other_host.pub" | awk '{print $2}')" \
	"mismatch message names the expected fingerprint"
assert_contains "$T/mismatch" "$(ssh-keygen -lf "$D/ssh_host_ed25519_key.pub" | awk '{print $2}')" \
	"mismatch message names the server's fingerprint"

echo "[127.0.0.1]:$SSHD_PORT $(cat "$D/ssh_host_ed25519_key.pub")" >"$T/known_hosts"
run "$T/kh" -K "$T/known_hosts" 127.0.0.1 "$SSHD_PORT" "$ME" "$D/user_ed25519"
assert_contains "$T/kh" "connected" "known_hosts: session handed over"

echo "[127.0.0.1]:$SSHD_PORT $(cat "$T/other_host.pub")" >"$T/known_hosts_bad"
run "$T/khbad" -K "$T/known_hosts_bad" 127.0.0.1 "$SSHD_PORT" "$ME" "$D/user_ed25519"
assert_contains "$T/khbad" "host key mismatch" "known_hosts with another key: mismatch"

: >"$T/known_hosts_empty"
run "$T/khnone" -K "$T/known_hosts_empty" 127.0.0.1 "$SSHD_PORT" "$ME" "$D/user_ed25519"
assert_contains "$T/khnone" "is not in" "host missing from known_hosts: refused"

run "$T/badkey" -k "$D/ssh_host_ed25519_key.pub" 127.0.0.1 "$SSHD_PORT" "$ME" "$T/other_user"
assert_contains "$T/badkey" "authentication refused" "unknown user key: authentication refused"

FREE=$(bench_free_port)
run "$T/refused" -k "$D/ssh_host_ed25519_key.pub" 127.0.0.1 "$FREE" "$ME" "$D/user_ed25519"
assert_contains "$T/refused" "cannot connect to 127.0.0.1:$FREE" "refused port: error"

run "$T/cancel" -c -k "$D/ssh_host_ed25519_key.pub" 127.0.0.1 "$SSHD_PORT" "$ME" "$D/user_ed25519"
assert_contains "$T/cancel" "cancelled" "cancelled attempt: the callback never runs"

finish
