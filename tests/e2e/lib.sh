# shellcheck shell=bash
# Helpers for SAW broker's end-to-end tests. Source it at the top of a test:
#
#   #!/usr/bin/env bash
#   . "$(dirname "$0")/lib.sh"          # sets -euo pipefail, makes $T, installs the cleanup trap
#   start_idp
#   write_broker_config                 # -> $BROKER_CONF, $BROKER_PORT, $BROKER_DIR
#   start_broker "$BROKER_CONF"
#   make_key alice                      # -> $T/keys/alice (+ .pub)
#   rc=0; ssh_login alice -- true >"$T/out" 2>"$T/err" || rc=$?
#   assert_contains "$T/err" "some text"
#   finish                              # prints the summary; exit status 1 if any check failed
#
# Every check prints one "PASS: ..." or "FAIL: ..." line. `fail` stops the test at once;
# `check`/`assert_*` record a failure and go on. On exit, everything started through this file
# is stopped, the logs of a failed test are shown, and $T is removed (kept with SAW_KEEP_TMP=1).
#
# Environment: SAW_TEST_SRCDIR (source tree; default: two levels up from this file),
# SAW_BUILD_DIR (default $SAW_TEST_SRCDIR/build), TMPDIR.
set -euo pipefail

SAW_SRC=${SAW_TEST_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SAW_BUILD=${SAW_BUILD_DIR:-$SAW_SRC/build}
SAW_TEST_NAME=${SAW_TEST_NAME:-$(basename "${0%.sh}")}
SAW_FAILS=0
SAW_PASSES=0
SAW_PIDS=()
SAW_LOGS=()

# Loopback only: never let curl, node or python go through a proxy.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export NO_PROXY='*' no_proxy='*'

# Per-test directory. 0711 so that the unprivileged broker (User saw) can reach its own
# subdirectory when the test runs as root, without being able to list the rest.
T=$(mktemp -d "${TMPDIR:-/tmp}/saw-e2e-$SAW_TEST_NAME.XXXXXX")
chmod 0711 "$T"
export T

log() { echo "[$SAW_TEST_NAME] $*" >&2; }

pass() {
	SAW_PASSES=$((SAW_PASSES + 1))
	echo "PASS: $*"
}

# fail MSG: a fatal failure: the test stops here (logs are shown by the exit trap).
fail() {
	SAW_FAILS=$((SAW_FAILS + 1))
	echo "FAIL: $*"
	exit 1
}

# fail_soft MSG: record a failure and go on.
fail_soft() {
	SAW_FAILS=$((SAW_FAILS + 1))
	echo "FAIL: $*"
}

# check DESC CMD...: run CMD, PASS/FAIL under DESC.
check() {
	local desc=$1
	shift
	if "$@"; then
		pass "$desc"
	else
		fail_soft "$desc (command: $*)"
	fi
}

# assert_contains FILE TEXT [DESC]: FILE contains the fixed string TEXT.
assert_contains() {
	local file=$1 text=$2 desc=${3:-"$(basename "$1") contains '$2'"}
	if [ -f "$file" ] && grep -qF -- "$text" "$file"; then
		pass "$desc"
	else
		fail_soft "$desc"
		show_file "$file"
	fi
}

# assert_not_contains FILE TEXT [DESC]
assert_not_contains() {
	local file=$1 text=$2 desc=${3:-"$(basename "$1") does not contain '$2'"}
	if [ -f "$file" ] && grep -qF -- "$text" "$file"; then
		fail_soft "$desc"
		show_file "$file"
	else
		pass "$desc"
	fi
}

# assert_eq GOT WANT [DESC]
assert_eq() {
	local desc=${3:-"'$1' = '$2'"}
	if [ "$1" = "$2" ]; then
		pass "$desc"
	else
		fail_soft "$desc (got '$1', want '$2')"
	fi
}

# assert_status GOT WANT DESC: an exit status.
assert_status() {
	if [ "$1" -eq "$2" ]; then
		pass "$3 (exit $1)"
	else
		fail_soft "$3 (exit $1, want $2)"
	fi
}

show_file() {
	echo "----- $1 (last 40 lines)"
	tail -n 40 "$1" 2>/dev/null || echo "(missing)"
	echo "-----"
}

# wait_for_text FILE TEXT [SECONDS=10]: wait until FILE contains TEXT. Status 1 on timeout.
wait_for_text() {
	local file=$1 text=$2 secs=${3:-10} i
	for ((i = 0; i < secs * 10; i++)); do
		grep -qF -- "$text" "$file" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# wait_for_port PORT [SECONDS=10] [PID]: wait until something listens on TCP 127.0.0.1:PORT;
# gives up early if PID exits. Looks at the socket table rather than connecting, so that the
# daemon under test sees no stray connection (which it would log, audit and maybe penalise).
wait_for_port() {
	local port=$1 secs=${2:-10} pid=${3:-} i
	for ((i = 0; i < secs * 10; i++)); do
		if command -v ss >/dev/null 2>&1; then
			[ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] || return 0
		elif (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# free_port: print a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# track PID [LOGFILE]: stop PID at exit, show LOGFILE if the test fails.
track() {
	SAW_PIDS+=("$1")
	[ -z "${2:-}" ] || SAW_LOGS+=("$2")
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s. Returns the process's exit status.
stop_pid() {
	local pid=$1 i rc=0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || rc=$?
	return $rc
}

# start_idp [idp.mjs options...]: start the test IdP on a free port.
# Sets IDP_URL, IDP_PORT, IDP_PID, IDP_LOG.
start_idp() {
	IDP_PORT=$(free_port)
	IDP_LOG=$T/idp.log
	node "$SAW_SRC/tests/idp/idp.mjs" --port "$IDP_PORT" "$@" >"$T/idp.out" 2>"$IDP_LOG" &
	IDP_PID=$!
	track "$IDP_PID" "$IDP_LOG"
	local i
	# Normally ready in half a second; minutes-long margins only for a loaded CI machine.
	for ((i = 0; i < 600; i++)); do
		grep -q '^READY ' "$T/idp.out" 2>/dev/null && break
		kill -0 "$IDP_PID" 2>/dev/null || fail "the test IdP exited at start (see $IDP_LOG)"
		sleep 0.1
	done
	IDP_URL=$(sed -n 's/^READY //p' "$T/idp.out")
	[ -n "$IDP_URL" ] || fail "the test IdP did not become ready within 60 s (see $IDP_LOG)"
	export IDP_URL IDP_PORT IDP_PID IDP_LOG
	log "IdP at $IDP_URL (pid $IDP_PID)"
}


# write_broker_config [EXTRA CONFIG LINES...]: a broker config in $BROKER_DIR for the running
# IdP ($IDP_URL), listening on a free port. Each extra argument is appended as one line.
# Sets BROKER_CONF, BROKER_PORT, BROKER_DIR, BROKER_DB, BROKER_AUDIT, BROKER_HOSTKEY.
write_broker_config() {
	[ -n "${IDP_URL:-}" ] || fail "write_broker_config: start_idp first"
	# Started as root, the broker drops to `User`: the test's broker files belong to it.
	local user=
	if [ "$(id -u)" -eq 0 ]; then
		id saw >/dev/null 2>&1 || fail "no 'saw' system user: run scripts/install-deps.sh"
		user=saw
	fi
	BROKER_DIR=$T/broker
	mkdir -p "$BROKER_DIR"
	chmod 0700 "$BROKER_DIR"
	BROKER_PORT=$(free_port)
	BROKER_CONF=$BROKER_DIR/broker.conf
	BROKER_DB=$BROKER_DIR/broker.db
	BROKER_AUDIT=$BROKER_DIR/audit.jsonl
	BROKER_HOSTKEY=$BROKER_DIR/ssh_host_ed25519_key
	[ -f "$BROKER_HOSTKEY" ] || ssh-keygen -q -t ed25519 -N '' -C saw-test-broker -f "$BROKER_HOSTKEY"
	{
		echo "# generated by tests/e2e/lib.sh for $SAW_TEST_NAME"
		echo "ListenAddress 127.0.0.1:$BROKER_PORT"
		echo "HostKey $BROKER_HOSTKEY"
		echo "StateDatabase $BROKER_DB"
		echo "AuditLog $BROKER_AUDIT"
		echo "OIDCIssuer $IDP_URL"
		echo "OIDCClientID saw-broker"
		echo "RequiredGroup saw-users"
		[ -z "$user" ] || echo "User $user"
		local line
		for line in "$@"; do
			echo "$line"
		done
	} >"$BROKER_CONF"
	[ -z "$user" ] || chown -R "$user:" "$BROKER_DIR"
	export BROKER_CONF BROKER_PORT BROKER_DIR BROKER_DB BROKER_AUDIT BROKER_HOSTKEY
}

# start_broker [CONFIG] [extra saw-brokerd options...]: run saw-brokerd in the foreground
# (-d) in the background, wait until its SSH port listens and, for up to 15 s, until it says
# it has fetched the IdP's metadata ($SAW_BROKER_READY_TEXT, default "identity provider
# ... ready"; only a warning if it does not). Sets BROKER_PID, BROKER_LOG.
start_broker() {
	local conf=${1:-$BROKER_CONF} port
	[ $# -eq 0 ] || shift
	local bin=$SAW_BUILD/broker/saw-brokerd
	[ -x "$bin" ] || fail "no broker binary at $bin (build first, or set SAW_BUILD_DIR)"
	port=$(sed -n 's/^ListenAddress .*:\([0-9][0-9]*\)$/\1/p' "$conf" | head -n1)
	[ -n "$port" ] || fail "start_broker: no ListenAddress HOST:PORT in $conf"
	BROKER_LOG=$T/broker.log
	"$bin" -f "$conf" -d "$@" >>"$BROKER_LOG" 2>&1 &
	BROKER_PID=$!
	track "$BROKER_PID" "$BROKER_LOG"
	wait_for_port "$port" 15 "$BROKER_PID" ||
		fail "saw-brokerd did not listen on 127.0.0.1:$port (see $BROKER_LOG)"
	export BROKER_PID BROKER_LOG
	local ready=${SAW_BROKER_READY_TEXT:-identity provider ${IDP_URL:-} ready}
	wait_for_text "$BROKER_LOG" "$ready" 15 ||
		log "warning: broker log has no '$ready' after 15 s; going on"
	log "broker on 127.0.0.1:$port (pid $BROKER_PID)"
}

# serve_dir DIR: DIR over HTTP on 127.0.0.1 (python3 http.server, e.g. a JWKS), on a free port
# put in SERVE_PORT; stopped with the test. Log in DIR.log.
serve_dir() {
	SERVE_PORT=$(free_port)
	python3 -m http.server "$SERVE_PORT" --bind 127.0.0.1 --directory "$1" >"$1.log" 2>&1 &
	track $! "$1.log"
	wait_for_port "$SERVE_PORT" 10 || fail "the HTTP server for $1 did not start"
}

# make_kill_command DIR: DIR/stop-vm, a KillCommand that appends its arguments to DIR/marker
# (the broker runs it as its User, so DIR is world-writable). Sets KILL_DIR.
make_kill_command() {
	KILL_DIR=$1
	mkdir -p "$KILL_DIR"
	chmod 0777 "$KILL_DIR"
	cat >"$KILL_DIR/stop-vm" <<EOS
#!/bin/sh
echo "\$*" >>"$KILL_DIR/marker"
echo "stopping \$2"
EOS
	chmod 0755 "$KILL_DIR/stop-vm"
}

# make_test_pki DIR: a throwaway CA (DIR/ca.pem) and a server certificate for 127.0.0.1 and
# localhost signed by it (DIR/srv.pem, DIR/srv.key), for the tests' HTTPS upstreams.
make_test_pki() {
	mkdir -p "$1"
	(
		cd "$1" &&
			openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
				-subj "/CN=saw test CA" -keyout ca.key -out ca.pem 2>/dev/null &&
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-subj "/CN=127.0.0.1" -keyout srv.key -out srv.csr 2>/dev/null &&
			printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >ext.cnf &&
			openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
				-days 2 -extfile ext.cnf -out srv.pem 2>/dev/null
	) || fail "cannot make the test certificates in $1"
}

# make_key NAME: an ed25519 client key pair at $T/keys/NAME (+ .pub); prints the path.
make_key() {
	mkdir -p "$T/keys"
	chmod 0700 "$T/keys"
	[ -f "$T/keys/$1" ] || ssh-keygen -q -t ed25519 -N '' -C "$1@saw-test" -f "$T/keys/$1"
	echo "$T/keys/$1"
}

# Options of every test ssh client: no user config, no known_hosts, no agent, askpass allowed.
# shellcheck disable=SC2054 # the comma in PreferredAuthentications is meant
SAW_SSH_OPTS=(-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o GlobalKnownHostsFile=/dev/null -o BatchMode=no -o IdentitiesOnly=yes -o IdentityAgent=none
	-o PreferredAuthentications=publickey,keyboard-interactive -o ConnectTimeout=10
	-o ServerAliveInterval=5 -o LogLevel=ERROR)

# ssh_login LOGIN [SSH OPTIONS...] [-- REMOTE COMMAND...]: the stock OpenSSH client against the
# broker as LOGIN, without a terminal; keyboard-interactive prompts are answered by
# tests/tools/askpass, which approves the device login at the IdP as $SAW_APPROVE_LOGIN
# (default: LOGIN; set it to "" to approve nothing; SAW_APPROVE_DENY=1 to deny).
# SSH OPTIONS come first on the command line, so they override the defaults (first value wins
# in ssh). Without a remote command, runs `true`. Key: $SSH_KEY (default: make_key LOGIN).
# Host/port: $BROKER_HOST (127.0.0.1), $BROKER_PORT. SSH_TIMEOUT (default 60 s) bounds it.
# Returns ssh's exit status: under `set -e` call it as `rc=0; ssh_login ... || rc=$?`.
ssh_login() {
	local login=$1
	shift
	local key=${SSH_KEY:-}
	[ -n "$key" ] || key=$(make_key "$login")
	local opts=() cmd=()
	while [ $# -gt 0 ]; do
		if [ "$1" = -- ]; then
			shift
			cmd=("$@")
			break
		fi
		opts+=("$1")
		shift
	done
	[ ${#cmd[@]} -gt 0 ] || cmd=(true)
	SAW_APPROVE_LOGIN=${SAW_APPROVE_LOGIN-$login} \
		SAW_APPROVE_DENY=${SAW_APPROVE_DENY:-0} \
		SAW_ASKPASS_LOG=${SAW_ASKPASS_LOG:-$T/askpass.log} \
		SSH_ASKPASS="$SAW_SRC/tests/tools/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
		timeout -k 5 "${SSH_TIMEOUT:-60}" setsid -w ssh "${opts[@]}" "${SAW_SSH_OPTS[@]}" \
		-i "$key" -p "${BROKER_PORT:?start the broker first}" -l "$login" \
		"${BROKER_HOST:-127.0.0.1}" "${cmd[@]}" </dev/null
}

# audit_secret VALUE...: values (tokens, capabilities, secrets) that must never appear in an
# audit record; `finish` hands them to tests/tools/ocsf-check.
SAW_AUDIT_SECRETS=${SAW_AUDIT_SECRETS:-}
audit_secret() {
	local v
	for v in "$@"; do
		SAW_AUDIT_SECRETS+="$v"$'\n'
	done
}

# audit_schema_check: every audit file of this test ($BROKER_AUDIT and its rotations, and the
# files in $SAW_AUDIT_FILES) checked against the committed OCSF 1.8.0 class definitions, and
# for the secrets given to audit_secret (tests/tools/ocsf-check). A failure is a failed check.
audit_schema_check() {
	local files=() f r out
	for f in ${BROKER_AUDIT:+"$BROKER_AUDIT"} ${SAW_AUDIT_FILES:-}; do
		[ -f "$f" ] || continue
		files+=("$f")
		for r in "$f".[0-9]*; do
			[ ! -f "$r" ] || files+=("$r")
		done
	done
	[ ${#files[@]} -gt 0 ] || return 0
	if out=$(OCSF_CHECK_SECRETS=$SAW_AUDIT_SECRETS python3 "$SAW_SRC/tests/tools/ocsf-check" \
		--quiet "${files[@]}" 2>&1); then
		pass "audit: every record is an OCSF 1.8.0 event of its class, no secret (${files[*]##*/})"
	else
		fail_soft "audit: records that are not compliant OCSF 1.8.0 or hold a secret"
		printf '%s\n' "$out" | head -n 40
	fi
}

# finish: check the audit files (audit_schema_check), print the summary line; exits 1 if any
# check failed.
finish() {
	audit_schema_check
	if [ "$SAW_FAILS" -eq 0 ]; then
		echo "$SAW_TEST_NAME: PASS ($SAW_PASSES checks)"
		exit 0
	fi
	echo "$SAW_TEST_NAME: FAIL ($SAW_FAILS of $((SAW_PASSES + SAW_FAILS)) checks failed)"
	exit 1
}

saw_cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	[ "$SAW_FAILS" -eq 0 ] || [ "$rc" -ne 0 ] || rc=1
	if [ "$rc" -ne 0 ]; then
		for ((i = 0; i < ${#SAW_LOGS[@]}; i++)); do
			show_file "${SAW_LOGS[$i]}"
		done
		[ ! -f "$T/askpass.log" ] || show_file "$T/askpass.log"
	fi
	for ((i = ${#SAW_PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${SAW_PIDS[$i]}" || true
	done
	if [ "${SAW_KEEP_TMP:-0}" = 1 ]; then
		echo "[$SAW_TEST_NAME] kept $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap saw_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
