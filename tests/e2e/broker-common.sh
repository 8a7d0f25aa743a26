# shellcheck shell=bash
# Helpers shared by the broker end-to-end tests (tests/e2e/broker-*.sh); sourced after lib.sh.
# Not a test by itself.

# db SQL: one read-only query against the broker's session database ($BROKER_DB).
db() {
	sqlite3 -readonly -batch "${BROKER_DB:?}" "$1"
}

# live_sessions [WHERE-CLAUSE]: number of live (state 0) sessions, optionally filtered more.
live_sessions() {
	db "SELECT count(*) FROM sessions WHERE state = 0${1:+ AND ($1)};"
}

# key_fp KEY: the SHA256 fingerprint of KEY (a private key path with KEY.pub next to it), as
# OpenSSH prints it ("SHA256:...").
key_fp() {
	ssh-keygen -lf "$1.pub" -E sha256 | awk '{print $2}'
}

# askpass_calls: how many prompts tests/tools/askpass has seen so far (in $SAW_ASKPASS_LOG,
# default $T/askpass.log, where ssh_login makes it write).
askpass_calls() {
	local f=${SAW_ASKPASS_LOG:-$T/askpass.log}
	if [ -f "$f" ]; then
		grep -c 'prompt:' "$f" || true
	else
		echo 0
	fi
}

# audit_count [FILTER...]: number of events in $BROKER_AUDIT matching every FILTER:
#   path=value  the field at the dotted path equals value (compared as text)
#   path~text   the field at the dotted path contains text
# e.g. audit_count class_uid=3002 activity_id=1 status_id=1 user.name=alice
audit_count() {
	python3 - "${BROKER_AUDIT:?}" "$@" <<'PY'
import json, sys

def get(ev, path):
    for part in path.split("."):
        if not isinstance(ev, dict) or part not in ev:
            return None
        ev = ev[part]
    return ev

def text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)

filters = []
for f in sys.argv[2:]:
    eq, sub = f.find("="), f.find("~")
    if eq < 0 or (0 <= sub < eq):
        path, want = f.split("~", 1)
        filters.append((path, want, False))
    else:
        path, want = f.split("=", 1)
        filters.append((path, want, True))
n = 0
try:
    lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
except FileNotFoundError:
    lines = []
for line in lines:
    if not line.strip():
        continue
    ev = json.loads(line)  # every line must be one JSON object
    ok = True
    for path, want, exact in filters:
        got = get(ev, path)
        if got is None or (text(got) != want if exact else want not in text(got)):
            ok = False
            break
    n += ok
print(n)
PY
}

# audit_wait N SECONDS FILTER...: wait until at least N events match (the sink may batch).
# Prints the final count; status 1 on timeout.
audit_wait() {
	local want=$1 secs=$2 i n=0
	shift 2
	for ((i = 0; i <= secs * 5; i++)); do
		n=$(audit_count "$@")
		if [ "$n" -ge "$want" ]; then
			echo "$n"
			return 0
		fi
		sleep 0.2
	done
	echo "$n"
	return 1
}

# assert_audit N DESC FILTER...: at least N audit events match FILTER (waits up to 5 s).
assert_audit() {
	local want=$1 desc=$2 n
	shift 2
	if n=$(audit_wait "$want" 5 "$@"); then
		pass "$desc ($n event(s))"
	else
		fail_soft "$desc (found $n event(s) matching: $*, want >= $want)"
		show_file "$BROKER_AUDIT"
	fi
}

# assert_audit_exactly N DESC FILTER...: exactly N audit events match (after a short settle).
assert_audit_exactly() {
	local want=$1 desc=$2 n
	shift 2
	n=$(audit_wait "$want" 5 "$@") || true
	sleep 0.3
	n=$(audit_count "$@")
	if [ "$n" -eq "$want" ]; then
		pass "$desc ($n event(s))"
	else
		fail_soft "$desc (found $n event(s) matching: $*, want exactly $want)"
	fi
}

# now_s: seconds since the epoch (fractional).
now_s() {
	date +%s.%N
}

# secs_since START: whole seconds elapsed since START (from now_s), rounded down.
secs_since() {
	python3 -c 'import sys, time; print(int(time.time() - float(sys.argv[1])))' "$1"
}

# broker_config [EXTRA CONFIG LINES...]: write_broker_config (lib.sh), plus what this broker
# build needs on a test machine that lib.sh does not write: an AdminSocket inside $BROKER_DIR
# (the default /run/saw/broker.sock needs systemd's RuntimeDirectory), when the broker knows
# that keyword and the config does not set it yet.
broker_config() {
	write_broker_config "$@"
	local bin=$SAW_BUILD/broker/saw-brokerd
	if ! grep -qi '^AdminSocket ' "$BROKER_CONF" &&
		"$bin" -T -f "$BROKER_CONF" 2>/dev/null | grep -qi '^AdminSocket '; then
		echo "AdminSocket $BROKER_DIR/admin.sock" >>"$BROKER_CONF"
	fi
}
