#!/usr/bin/env bash
# `sawctl audit verify` on the audit files of a real saw-brokerd (issue 6, tamper evidence):
# the broker writes refused logins to a file sink that rotates every 4 KiB; the untouched
# files verify (all oldest first, one alone, and with -r); copies with one record removed,
# two swapped, one edited, the last one cut short, or a rotated file missing are each
# reported at the right file and line with exit status 1; a missing file and usage errors
# give 2.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-common.sh"

SAWCTL=$SAW_BUILD/broker/sawctl
[ -x "$SAWCTL" ] || fail "no sawctl at $SAWCTL (build first, or set SAW_BUILD_DIR)"

# verify ARGS...: sawctl audit verify ARGS, output in $T/out, status in $RC.
verify() {
	RC=0
	"$SAWCTL" audit verify "$@" >"$T/out" 2>&1 || RC=$?
}

start_idp
broker_config "AuditSink file $T/broker/a.jsonl rotate=4K keep=50"
start_broker

# Refused logins (publickey only, no session): one SSH Activity Refuse event each.
N=24
for i in $(seq 1 "$N"); do
	timeout 10 ssh -o BatchMode=yes -o PreferredAuthentications=publickey "${SAW_SSH_OPTS[@]}" \
		-i "$(make_key "k$i")" -p "$BROKER_PORT" "alice@127.0.0.1" true \
		</dev/null >/dev/null 2>&1 || true
done
stop_pid() { kill "$1" 2>/dev/null && wait "$1" 2>/dev/null || true; }
stop_pid "$BROKER_PID" # every record written and the files closed

A=$T/broker/a.jsonl
[ -f "$A.2" ] || fail "the file sink did not rotate twice (see $T/broker)"
nrot=$(find "$T/broker" -name 'a.jsonl.*' | wc -l)
refused=$(cat "$A" "$A".* | grep -c '"class_uid":4007,.*"activity_id":5' || true)
check "$refused refused-login records (>= $N) in $((nrot + 1)) files" [ "$refused" -ge "$N" ]
rotated=()
for ((k = nrot; k >= 1; k--)); do rotated+=("$A.$k"); done

# --- untouched: verifies ----------------------------------------------------------------------
verify -r "$A"
check "-r: the untouched files verify (exit 0)" [ "$RC" -eq 0 ]
assert_contains "$T/out" "OK: seq 1 to"
verify "${rotated[@]}" "$A"
check "files oldest first: verify (exit 0)" [ "$RC" -eq 0 ]
verify "$A.1"
check "one rotated file alone verifies" [ "$RC" -eq 0 ]

# --- tampered copies --------------------------------------------------------------------------
mkdir -p "$T/x"
# tamper NAME SED-SCRIPT: a copy of $A.1 edited by sed, as $T/x/NAME.
tamper() {
	sed "$2" "$A.1" >"$T/x/$1"
}
lines=$(wc -l <"$A.1")
check "a rotated file has at least 4 records ($lines)" [ "$lines" -ge 4 ]

tamper removed '3d'
verify "$T/x/removed"
check "a removed record: exit 1" [ "$RC" -eq 1 ]
assert_contains "$T/out" "$T/x/removed:3: record seq"
assert_contains "$T/out" "was removed before this line"

awk 'NR == 2 { held = $0; next } { print } NR == 3 { print held }' "$A.1" >"$T/x/swapped"
verify "$T/x/swapped"
check "two records swapped: exit 1" [ "$RC" -eq 1 ]
assert_contains "$T/out" "$T/x/swapped:2: records were reordered"

tamper edited '3s/"Refuse"/"Open"/'
cmp -s "$A.1" "$T/x/edited" && fail "the edit did not change the copy"
verify "$T/x/edited"
check "an edited record: exit 1" [ "$RC" -eq 1 ]
assert_contains "$T/out" "$T/x/edited:4: the previous record (line 3,"
assert_contains "$T/out" "was edited"

head -c -1 "$A.1" >"$T/x/cut"
verify "$T/x/cut"
check "the last record cut short: exit 1" [ "$RC" -eq 1 ]
assert_contains "$T/out" "the last record is truncated"

if [ "$nrot" -ge 2 ]; then
	verify "$A.2" "$A"
	check "a rotated file missing in the middle: exit 1" [ "$RC" -eq 1 ]
	assert_contains "$T/out" "$A:1: records seq"
	assert_contains "$T/out" "were removed before this line"
fi

# --- errors -----------------------------------------------------------------------------------
verify "$T/x/no-such-file"
check "a missing file: exit 2" [ "$RC" -eq 2 ]
assert_contains "$T/out" "no-such-file"
RC=0
"$SAWCTL" audit >"$T/out" 2>&1 || RC=$?
check "sawctl audit without verify: usage, exit 2" [ "$RC" -eq 2 ]
assert_contains "$T/out" "audit: give verify"
RC=0
"$SAWCTL" audit verify -r "$A" "$A.1" >"$T/out" 2>&1 || RC=$?
check "-r with two files: usage, exit 2" [ "$RC" -eq 2 ]

finish
