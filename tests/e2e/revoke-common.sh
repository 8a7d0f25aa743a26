# shellcheck shell=bash
# Helpers shared by the revocation end-to-end tests (tests/e2e/revoke-*.sh); sourced after
# lib.sh and broker-common.sh. Not a test by itself.

# revoke_broker [EXTRA CONFIG LINES...]: broker_config plus an HTTP listener on a free
# loopback port (plain HTTP: loopback only). Sets HTTP_PORT, HTTP_URL.
revoke_broker() {
	HTTP_PORT=${HTTP_PORT:-$(free_port)}
	HTTP_URL=http://127.0.0.1:$HTTP_PORT
	broker_config "HttpListenAddress 127.0.0.1:$HTTP_PORT" "$@"
	export HTTP_PORT HTTP_URL
}

# session_of JSONFILE: the session id in a `json` output (the broker's in-session command).
session_of() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["session"])' "$1" 2>/dev/null ||
		echo none
}

# login NAME LOGIN: a device-flow login (askpass approves it) whose `json` output goes to
# $T/NAME.json; prints the session id.
login() {
	local rc=0
	ssh_login "$2" -- json >"$T/$1.json" 2>"$T/$1.err" || rc=$?
	[ "$rc" -eq 0 ] || { show_file "$T/$1.err"; fail "$2 could not log in (exit $rc)"; }
	session_of "$T/$1.json"
}

# hold NAME LOGIN [SSH OPTIONS...]: `ssh -N` as LOGIN in the background with the session's
# key (no browser: askpass approves nothing). Output in $T/NAME.{out,err}; when ssh ends,
# "EXIT EPOCH_MS" goes to $T/NAME.end.
hold() {
	local name=$1 login=$2
	shift 2
	rm -f "$T/$name.end"
	{
		local rc=0
		SAW_APPROVE_LOGIN="" SSH_TIMEOUT=120 ssh_login "$login" -o NumberOfPasswordPrompts=0 \
			-o ServerAliveInterval=0 "$@" -N >"$T/$name.out" 2>"$T/$name.err" || rc=$?
		echo "$rc $(date +%s%3N)" >"$T/$name.end"
	} &
}

# wait_held NAME SESSION: the holder NAME is logged in (its connection counted in the audit).
wait_held() {
	local n
	n=$(audit_wait 2 10 class_uid=4007 activity_id=1 actor.session.uid="$2") || true
	[ "$n" -ge 2 ] || { show_file "$T/$1.err"; fail "the holder $1 did not log in"; }
	sleep 0.2
}

# ended_within NAME T0_MS MAX_MS: the holder NAME ended at most MAX_MS after T0_MS.
# Sets ENDED_MS (how long after T0_MS; empty if still running after MAX_MS + 2 s).
ended_within() {
	local name=$1 t0=$2 max=$3 deadline rc at
	ENDED_MS=""
	deadline=$(($(date +%s%3N) + max + 2000))
	while [ ! -s "$T/$name.end" ] && [ "$(date +%s%3N)" -lt "$deadline" ]; do
		sleep 0.02
	done
	[ -s "$T/$name.end" ] || return 1
	read -r rc at <"$T/$name.end"
	ENDED_MS=$((at - t0))
	[ "$ENDED_MS" -le "$max" ]
}

# still_held NAME: the holder NAME has not ended.
still_held() {
	[ ! -s "$T/$1.end" ]
}

# http METHOD PATH [curl options...]: a request to the broker's HTTP listener; status in
# $HTTP_STATUS, body in $T/http.body, headers in $T/http.headers.
http() {
	local method=$1 path=$2
	shift 2
	HTTP_STATUS=$(curl -sS -o "$T/http.body" -D "$T/http.headers" -w '%{http_code}' \
		--max-time 15 -X "$method" "$@" "$HTTP_URL$path") || HTTP_STATUS=000
}

# json_field FILE PATH: a field of a JSON file (dotted path; numbers index arrays).
json_field() {
	python3 - "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for p in sys.argv[2].split("."):
    v = v[int(p)] if isinstance(v, list) else v.get(p)
print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list, bool)) else v))
PY
}

# broker_alive: the broker still runs and answers /healthz.
broker_alive() {
	kill -0 "$BROKER_PID" 2>/dev/null &&
		[ "$(curl -s --max-time 5 "$HTTP_URL/healthz")" = ok ]
}
