#!/usr/bin/env bash
# End-to-end test of the broker's OIDC client (broker-oidc.c on broker-http.c) against the
# test IdP: a device login approved as alice (claims checked), one denied in the browser, an
# IdP that stops after discovery, and an unreachable issuer; both of the latter must fail fast.
#
#   oidc-devflow.sh PATH/TO/oidc-devflow
. "$(dirname "$0")/lib.sh"

bin=${1:?usage: oidc-devflow.sh PATH/TO/oidc-devflow}
[ -x "$bin" ] || fail "no test program at $bin"
approver=$SAW_SRC/tests/tools/saw-approve

start_idp

# run NAME ARGS...: one oidc-devflow run, its output kept for the failure report.
run() {
	local name=$1 rc=0
	shift
	timeout -k 5 120 "$bin" --approver "$approver" "$@" >"$T/$name.out" 2>"$T/$name.err" ||
		rc=$?
	SAW_LOGS+=("$T/$name.err")
	cat "$T/$name.out"
	assert_status "$rc" 0 "$name"
}

run approve --issuer "$IDP_URL" --mode approve --login alice --expect-group saw-users
assert_contains "$T/approve.out" "preferred_username=alice" "approved as alice"
run deny --issuer "$IDP_URL" --mode deny --login bob
assert_contains "$T/deny.out" "PASS: denied" "denied by the user"

# The IdP answered discovery, then goes away: the login fails at the device authorization
# step at once (this stops the IdP, so it comes last but one).
run down --issuer "$IDP_URL" --mode down --idp-pid "$IDP_PID"
assert_contains "$T/down.out" "device authorization: connection refused" "IdP down after discovery"

# A loopback port that nobody listens on: connection refused.
closed=$(free_port)
run unreachable --issuer "http://127.0.0.1:$closed" --mode unreachable
assert_contains "$T/unreachable.out" "identity provider unreachable" "unreachable issuer reported"

finish
