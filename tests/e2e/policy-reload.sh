#!/usr/bin/env bash
# saw-guestd's PolicyFile and DecisionSocket (issue #5): a broken policy at start is fatal
# with the reason; SIGHUP reloads atomically - a broken file, or a lower version, keeps the
# last good policy (and the log says why, with the file and the JSON path), a good file
# switches version; the decision socket answers for an identity (root) and refuses what it
# must. guestd dials a broker address where nothing listens: it keeps retrying in the
# background, which is all this test needs. Loopback and unix sockets only.
#
#   policy-reload.sh PATH/TO/saw-guestd
. "$(dirname "$0")/lib.sh"

GUESTD=${1:?usage: policy-reload.sh SAW_GUESTD}
POLICY=$T/policy.json
CONF=$T/guestd.conf
DSOCK=$T/decide.sock
GLOG=$T/guestd.log

make_key ws >/dev/null
make_key broker >/dev/null
cat >"$CONF" <<CONF
BrokerAddress 127.0.0.1:$(free_port)
BrokerHostKey $T/keys/broker.pub
WorkspaceName policy-ws
WorkspaceKey $T/keys/ws
ControlSocket $T/guestd.sock
DecisionSocket $DSOCK
ProxyListen 127.0.0.1:$(free_port)
PolicyFile $POLICY
CONF

# put_policy TEXT: replaces the policy file atomically, as an operator's tooling would.
put_policy() {
	printf '%s\n' "$1" >"$POLICY.tmp"
	mv "$POLICY.tmp" "$POLICY"
}

# ask JSON: one request on the decision socket; the answer line on stdout.
ask() {
	python3 - "$DSOCK" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
print(buf.decode().strip())
PY
}

# expect_answer DESC JSON FIELD=VALUE...: the answer's members (a string member compared as
# is, any other as JSON text: ok=true, version=2).
expect_answer() {
	local desc=$1 req=$2 ans
	shift 2
	ans=$(ask "$req") || ans="(no answer)"
	if python3 - "$ans" "$@" <<'PY'; then
import json, sys
a = json.loads(sys.argv[1])
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    got = a.get(k)
    if (got if isinstance(got, str) else json.dumps(got)) != v:
        sys.exit(1)
PY
		pass "$desc"
	else
		fail_soft "$desc: answer $ans, want $*"
	fi
}

connect_req() { # USER HOST PORT [GROUPS-JSON]
	printf '{"op":"connect","user":"%s","groups":%s,"host":"%s","port":%s}' "$1" \
		"${4:-[]}" "$2" "$3"
}

V1='{"version":1,"profile":"corporate",
 "egress":[
  {"id":"pypi","action":"allow","hosts":["pypi.org","*.pythonhosted.org"],"ports":[443]},
  {"id":"dev-npm","action":"allow","hosts":["registry.npmjs.org"],"ports":[443],
   "select":{"groups":["dev"]}},
  {"id":"no-evil","action":"deny","hosts":["evil.pythonhosted.org"]}],
 "corporate":[{"name":"git","host":"git.corp.example","port":22}],
 "filesystem":{"writable":["/srv/data"],"protected":[".git/hooks"]}}'
V2='{"version":2,"profile":"corporate",
 "egress":[{"id":"npm-for-all","action":"allow","hosts":["registry.npmjs.org"],"ports":[443]}]}'
BROKEN='{"version":3,"profile":"corporate",
 "egress":[{"id":"oops","action":"alow","hosts":["x.org"],"ports":[443]}]}'

# ---- a broken policy at start ----------------------------------------------------------
put_policy "$BROKEN"
rc=0
"$GUESTD" -t -f "$CONF" >"$T/check.out" 2>&1 || rc=$?
assert_status "$rc" 1 "saw-guestd -t refuses a broken PolicyFile"
assert_contains "$T/check.out" "PolicyFile $POLICY: \$.egress[0].action: must be \"allow\" or \"deny\"" \
	"-t names the file and the JSON path"
rc=0
timeout 10 "$GUESTD" -f "$CONF" >"$T/start.out" 2>&1 || rc=$?
assert_status "$rc" 1 "saw-guestd does not start with a broken PolicyFile"
assert_contains "$T/start.out" "\$.egress[0].action: must be \"allow\" or \"deny\"" \
	"the start-up error says why"

# ---- start with version 1 --------------------------------------------------------------
put_policy "$V1"
rc=0
"$GUESTD" -t -f "$CONF" >"$T/check.out" 2>&1 || rc=$?
assert_status "$rc" 0 "saw-guestd -t accepts the good PolicyFile"
"$GUESTD" -d -f "$CONF" >"$GLOG" 2>&1 &
GPID=$!
track "$GPID" "$GLOG"
wait_for_text "$GLOG" "decision socket $DSOCK ready" 10 || fail "guestd did not open its decision socket"
kill -0 "$GPID" 2>/dev/null || fail "guestd exited"
assert_contains "$GLOG" "policy version 1 (corporate profile, 4 rules) loaded" "version 1 loaded"

expect_answer "version op" '{"op":"version"}' version=1 rules=4
expect_answer "pypi allowed" "$(connect_req alice pypi.org 443)" ok=true decision=allow \
	rule=pypi version=1
expect_answer "wildcard allowed" "$(connect_req alice files.pythonhosted.org 443)" \
	decision=allow rule=pypi
expect_answer "deny wins over the wildcard allow" \
	"$(connect_req alice evil.pythonhosted.org 443)" decision=deny rule=no-evil
expect_answer "wrong port: default deny" "$(connect_req alice pypi.org 80)" decision=deny \
	rule=default-deny
expect_answer "group selector: no group, no npm" "$(connect_req alice registry.npmjs.org 443)" \
	decision=deny rule=default-deny
expect_answer "group selector: dev gets npm" \
	"$(connect_req alice registry.npmjs.org 443 '["dev"]')" decision=allow rule=dev-npm
expect_answer "corporate service" "$(connect_req alice git.corp.example 22)" \
	decision=corporate rule=git
expect_answer "write under a writable path" \
	'{"op":"write","user":"nosuchuser-saw","path":"/srv/data/x"}' decision=allow \
	rule=writable:/srv/data
expect_answer "write to a protected path" \
	'{"op":"write","user":"nosuchuser-saw","path":"/srv/data/p/.git/hooks/pre-commit"}' \
	decision=deny rule=protected:.git/hooks
expect_answer "write outside: read-only" '{"op":"write","user":"nosuchuser-saw","path":"/etc/passwd"}' \
	decision=deny rule=read-only
expect_answer "unknown session refused" \
	'{"op":"connect","session":"no-such-session","host":"pypi.org","port":443}' ok=false \
	error='no live brokered session with this id'
expect_answer "bad request refused" '{"op":"connect","user":"alice","host":"pypi.org"}' ok=false
expect_answer "unknown op refused" '{"op":"rm"}' ok=false
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	ans=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
		/usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
s.sendall(b"{\"op\":\"connect\",\"user\":\"alice\",\"host\":\"pypi.org\",\"port\":443}\n")
print(s.recv(4096).decode().strip())' "$DSOCK" 2>&1) || true
	case $ans in
	*'"ok":false'*'only root may ask for an identity'*) pass "an unprivileged peer may not ask for an identity" ;;
	*) fail_soft "an unprivileged peer may not ask for an identity: $ans" ;;
	esac
fi

# ---- SIGHUP with a broken file keeps version 1 -----------------------------------------
put_policy "$BROKEN"
kill -HUP "$GPID"
wait_for_text "$GLOG" "keeping policy version 1" 10 || fail_soft "no log line for the broken reload"
assert_contains "$GLOG" "PolicyFile $POLICY: \$.egress[0].action: must be \"allow\" or \"deny\"; keeping policy version 1" \
	"the broken reload is logged with the file and the JSON path"
kill -0 "$GPID" 2>/dev/null || fail "guestd exited on a broken reload"
expect_answer "still version 1 after a broken reload" "$(connect_req alice pypi.org 443)" \
	decision=allow rule=pypi version=1

# ---- a good file switches to version 2 -------------------------------------------------
put_policy "$V2"
kill -HUP "$GPID"
wait_for_text "$GLOG" "policy version 2 (corporate profile, 1 rules) now active" 10 ||
	fail_soft "version 2 not reported active"
expect_answer "version 2 answers" "$(connect_req alice registry.npmjs.org 443)" \
	decision=allow rule=npm-for-all version=2
expect_answer "version 2 dropped pypi" "$(connect_req alice pypi.org 443)" decision=deny \
	rule=default-deny version=2

# ---- a lower version is not a silent rollback ------------------------------------------
put_policy "$V1"
kill -HUP "$GPID"
wait_for_text "$GLOG" "version 1 is lower than the active version 2" 10 ||
	fail_soft "the rollback refusal is not logged"
expect_answer "still version 2 after a rollback attempt" "$(connect_req alice pypi.org 443)" \
	decision=deny version=2

# ---- and guestd stops cleanly -----------------------------------------------------------
rc=0
stop_pid "$GPID" || rc=$?
assert_status "$rc" 0 "saw-guestd stops on SIGTERM"
check "the decision socket is removed" test ! -e "$DSOCK"
finish
