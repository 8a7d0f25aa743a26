#!/usr/bin/env bash
# Issue #5, the sandbox's own listeners, from inside a real brokered login (sandbox.sh's
# setup: ssh -J through the netns lab to an sshd whose ForceCommand is saw-session):
#   credential proxy 127.0.0.1:3129  $SAW_CAP_OPENAI gets the real Authorization header
#                    injected (a recording HTTPS upstream in the workspace namespace sees it
#                    and answers without echoing it); no capability: 403. The secret is in no
#                    /proc/*/environ of the sandbox, nor in its home or its /tmp. After the
#                    session is revoked, the capability is refused (403) on CredentialListen.
#   egress proxy     127.0.0.1:3128: an allowed loopback origin (forward and CONNECT) 200,
#                    a denied one 403 with the rule.
#   decision API     127.0.0.1:3130: answers for the sandbox's own session (with or without
#                    its id); another session id (existing or not) and the root-only "user"
#                    form are refused with the same sentence; the host's DecisionSocket is
#                    not visible inside.
. "$(dirname "$0")/netns-lab.sh"
. "$(dirname "$0")/sandbox-lib.sh"
. "$(dirname "$0")/broker-common.sh"

SECRET="sk-real-sandbox-$RANDOM$RANDOM-do-not-leak"
lab_up

# --- the upstream (HTTPS, records what it got, never echoes it) and two origins, all in ws ---
make_test_pki "$T/pki"
ws_port() {
	lab_exec ws python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
UP_PORT=$(ws_port)
ORIGIN_PORT=$(ws_port)
DENIED_PORT=$(ws_port)
lab_bg ws "$T/upstream.log" python3 -c '
import http.server, json, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        with open(sys.argv[4], "a") as f:
            f.write(json.dumps({"path": self.path, "headers": [[k, v] for k, v in self.headers.items()]}) + "\n")
        out = b"{\"ok\": true}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
srv = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()' "$UP_PORT" "$T/pki/srv.pem" "$T/pki/srv.key" "$T/upstream-got.jsonl"
lab_bg ws "$T/origin.log" python3 "$SAW_SRC/tests/e2e/egress-servers.py" http "$ORIGIN_PORT"
lab_bg ws "$T/denied.log" python3 "$SAW_SRC/tests/e2e/egress-servers.py" http "$DENIED_PORT"
for p in "$UP_PORT" "$ORIGIN_PORT" "$DENIED_PORT"; do
	lab_wait_listen ws "$p" 10 || fail "a test server on ws 127.0.0.1:$p did not start"
done

printf '%s\n' "$SECRET" >"$T/secret"
chmod 0600 "$T/secret"
cat >"$T/policy.json" <<JSON
{
  "version": 1,
  "profile": "corporate",
  "egress": [
    { "id": "loopback-origin", "action": "allow", "hosts": ["127.0.0.1"], "ports": [$ORIGIN_PORT] },
    { "id": "deny-denied-port", "action": "deny", "hosts": ["127.0.0.1"], "ports": [$DENIED_PORT] }
  ],
  "addresses": { "allow_private": ["127.0.0.1/32"] },
  "credentials": [
    { "name": "openai", "kind": "openai", "upstream": "https://127.0.0.1:$UP_PORT",
      "secret": "file:$T/secret" }
  ],
  "filesystem": { "protected": [".git/hooks"] }
}
JSON
chmod 0644 "$T/policy.json"
CRED_PORT=$(ws_port)
LAB_GUESTD_EXTRA+=("SandboxLandlock required" "PolicyFile $T/policy.json"
	"CredentialListen 127.0.0.1:$CRED_PORT" "CredentialCAFile $T/pki/ca.pem")
lab_saw_up
lab_ws_sshd_sandbox
install -m 0755 -o root -g root "$SAW_SRC/tests/e2e/sandbox-credprobe.sh" "$LAB_LIBDIR/sandbox-credprobe.sh"
GLOG=$LAB_DIR/ws/guestd.log
audit_secret "$SECRET"

key=$(make_key user)
cfg=$(lab_ssh_config "$key")
jump=$LAB_USER@127.0.0.1:$BROKER_PORT
H=$(getent passwd "$LAB_USER" | cut -d: -f6)

SSH_TIMEOUT=120 lab_ssh -F "$cfg" -J "$jump" "$LAB_WS_NAME" \
	"bash $LAB_LIBDIR/sandbox-credprobe.sh $ORIGIN_PORT $DENIED_PORT $LAB_DIR/ws/decide.sock" \
	>"$T/probe.out" 2>"$T/probe.err" &
longpid=$!
wait_for_text "$T/probe.out" "ready" 90 || { show_file "$T/probe.err"; show_file "$GLOG"; fail "the probe did not finish"; }
sed '/^cap=/d' "$T/probe.out"
val() { sed -n "s/^$1=//p" "$T/probe.out" | head -n1; }
CAP=$(val cap)
[ -z "$CAP" ] || audit_secret "$CAP"
sid=$(lab_sawctl sessions --user "$LAB_USER" 2>/dev/null | awk 'NR > 1 && $1 != "" { print $1; exit }')
check "sawctl lists the session ($sid)" test -n "$sid"

# --- credential proxy ------------------------------------------------------------------------
assert_eq "$(val cap_set)" yes "the sandbox has its capability SAW_CAP_OPENAI"
assert_eq "$(val cred_status)" 200 "POST through the sandbox's credential proxy (127.0.0.1:3129)"
assert_eq "$(val cred_nocap)" 403 "no capability: 403"
got=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    for k, v in r["headers"]:
        if k.lower() == "authorization": print(r["path"], v)' "$T/upstream-got.jsonl" 2>/dev/null | head -n1)
assert_eq "$got" "/v1/chat/completions Bearer $SECRET" "the upstream got the real Authorization header"
check "the upstream never saw the capability" bash -c "! grep -qF -- '$CAP' '$T/upstream-got.jsonl'"
# The sandbox's processes: every one of the user's (their environ, as root from outside),
# the home, and the sandbox's own /tmp (through a sandbox process's root).
spids=$(pgrep -u "$LAB_USER" | tr '\n' ' ')
check "the sandbox's processes are there ($spids)" test -n "$spids"
leak=0 nenv=0
for p in $spids; do
	[ -r "/proc/$p/environ" ] || continue
	nenv=$((nenv + 1))
	grep -qaF -- "$SECRET" "/proc/$p/environ" && leak=1 && log "secret in /proc/$p/environ"
done
check "no sandbox process holds the secret in its environment ($nenv checked)" test "$leak" = 0 -a "$nenv" -ge 1
check "some sandbox process holds the capability instead" bash -c "cat /proc/{${spids// /,}}/environ 2>/dev/null | grep -qaF -- '$CAP'"
check "the home holds no secret" bash -c "! grep -rqaF -- '$SECRET' '$H'"
sroot=
for p in $spids; do
	# a sandbox's process: a pid namespace of its own (sshd's processes share ours)
	[ "$(readlink "/proc/$p/ns/pid")" != "$(readlink /proc/self/ns/pid)" ] && sroot=/proc/$p/root && break
done
check "found a sandbox process to look at its /tmp through" test -n "$sroot"
[ -z "$sroot" ] || check "… it is the sandbox's own /tmp (the probe's marker is there)" test -s "$sroot/tmp/sbx-cred-marker"
[ -z "$sroot" ] || check "the sandbox's /tmp holds no secret" bash -c "! grep -rqaF -- '$SECRET' '$sroot/tmp'"

# --- egress proxy ----------------------------------------------------------------------------
assert_eq "$(val egress_allowed)" 200 "the egress proxy (127.0.0.1:3128) forwards to an allowed origin"
assert_eq "$(val egress_connect)" 200 "… and tunnels CONNECT to it"
assert_eq "$(val egress_denied)" 403 "a denied destination: 403"
assert_eq "$(val egress_direct)" denied "the origin is not reachable without the proxy"

# --- decision API ----------------------------------------------------------------------------
NOTYOURS="error not allowed: inside a sandbox, decisions are about its own session only"
assert_eq "$(val decision_addr)" 127.0.0.1:3130 "SAW_DECISION_ADDR names the sandbox's decision listener"
assert_eq "$(val decide_own)" "allow loopback-origin $sid" "a decision for the sandbox's own session (no id given)"
assert_eq "$(val decide_own_sid)" "deny deny-denied-port $sid" "… and with its own id"
assert_eq "$(val decide_write)" "deny protected:.git/hooks $sid" "a write decision: a protected path"
assert_eq "$(val decide_write_home)" "allow home $sid" "a write decision: the home"
assert_eq "$(val decide_other)" "$NOTYOURS" "another session id (unknown) is refused"
assert_eq "$(val decide_other2)" "$NOTYOURS" "another session id: the same sentence (nothing learnt)"
assert_eq "$(val decide_user)" "$NOTYOURS" "the root-only identity form is refused"
assert_eq "$(val decide_version)" "version 1 corporate" "the policy version is answered"
assert_eq "$(val host_decide_socket)" absent "the host's DecisionSocket is not visible in the sandbox"

# --- the session ends: the capability is dead ------------------------------------------------
lab_sawctl revoke "$sid" --message "sandbox cred test" >"$T/revoke.out" 2>&1 ||
	{ show_file "$T/revoke.out"; fail_soft "sawctl revoke $sid"; }
sbx_wait_no_user_procs 10 || fail_soft "processes of $LAB_USER are left after the revocation"
rc=0
wait "$longpid" || rc=$?
assert_status "$rc" 255 "the revoked login's ssh exits 255"
wait_for_text "$GLOG" "capabilities revoked" 10 || log "no 'capabilities revoked' in guestd's log"
code=$(lab_exec ws curl -sS --max-time 10 -o "$T/after.body" -w '%{http_code}' -X POST \
	"http://127.0.0.1:$CRED_PORT/openai/v1/chat/completions" -H "Authorization: Bearer $CAP" --data '{}' 2>/dev/null || true)
assert_eq "$code" 403 "after the session ended, its capability is refused"
assert_contains "$T/after.body" "unknown or revoked capability" "… and the answer says why"
assert_not_contains "$GLOG" "$SECRET" "no secret in guestd's log"
finish
