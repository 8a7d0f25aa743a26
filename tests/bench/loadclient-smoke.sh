#!/bin/bash
# Smoke test of the benchmark's load client (ctest bench/loadclient-smoke, label e2e):
# against an OpenSSH sshd started by hand on loopback, "rate -n 20" must complete 20 logins
# and "hold -n 20" must hold 20 authenticated connections, both without errors.
# usage: loadclient-smoke.sh PATH/TO/saw-loadclient
set -euo pipefail

client=${1:?usage: loadclient-smoke.sh PATH/TO/saw-loadclient}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib-sshd.sh
. "$here/lib-sshd.sh"

[[ -x $client ]] || bench_die "no load client at $client (build the saw-loadclient target)"
tmp=$(mktemp -d /tmp/saw-smoke.XXXXXX)
SSHD_PID=
HOLD_PID=
cleanup() {
	if [[ -n ${HOLD_PID:-} ]]; then kill "$HOLD_PID" 2>/dev/null || true; fi
	bench_stop_sshd
	rm -rf "$tmp"
}
trap cleanup EXIT

bench_make_user_key "$tmp"
bench_start_sshd "$tmp"
user=$(id -un)
args=(-H 127.0.0.1 -p "$SSHD_PORT" -u "$user" -i "$tmp/user_ed25519")

fail=0
line=$("$client" rate "${args[@]}" -c 4 -n 20 -t 60) || true
echo "rate: $line"
if [[ $(bench_field "$line" connections) != 20 || $(bench_field "$line" errors) != 0 ]]; then
	bench_log "FAIL: rate did not complete 20 logins without errors"
	fail=1
fi

if bench_hold_start "$tmp" "$client" 60 "${args[@]}" -c 4 -n 20 -t 120; then
	echo "hold: $HOLD_LINE"
	# The connections must really be there: one sshd child (at least) per connection.
	kids=$(($(bench_descendants "$SSHD_PID" | wc -l) - 1))
	echo "hold: sshd processes besides the listener: $kids"
	if [[ $(bench_field "$HOLD_LINE" held) != 20 || $(bench_field "$HOLD_LINE" errors) != 0 ]]; then
		bench_log "FAIL: hold did not hold 20 connections without errors"
		fail=1
	fi
	if ((kids < 20)); then
		bench_log "FAIL: sshd has fewer than 20 connection processes"
		fail=1
	fi
else
	bench_log "FAIL: hold printed no held= line; stderr: $(cat "$tmp/hold.err")"
	fail=1
fi
bench_hold_stop
if ((HOLD_RC != 0)); then
	bench_log "FAIL: hold exited with status $HOLD_RC; stderr: $(cat "$tmp/hold.err")"
	fail=1
fi
if ((fail)); then
	bench_log "sshd log: $(tail -20 "$tmp/sshd.log")"
	exit 1
fi
echo "PASS"
