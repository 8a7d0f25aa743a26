#!/bin/bash
# Runs INSIDE a brokered login's sandbox (tests/e2e/sandbox-cred.sh): the sandbox's own
# listeners on 127.0.0.1 — credential proxy :3129, egress proxy :3128, decision API :3130.
# Prints "name=value" lines, then "ready", and waits. Arguments: ORIGIN_PORT DENIED_PORT
# HOST_DECIDE_SOCKET
origin=$1 denied=$2 hostsock=$3
code() { curl -sS --max-time 15 -o /dev/null -w '%{http_code}' "$@" 2>/dev/null || true; }
echo "sandbox tmp $$" >/tmp/sbx-cred-marker
echo "cap_set=${SAW_CAP_OPENAI:+yes}"
echo "cap=$SAW_CAP_OPENAI"
echo "decision_addr=$SAW_DECISION_ADDR"
echo "cred_status=$(code -X POST "http://127.0.0.1:3129/openai/v1/chat/completions" \
	-H "Authorization: Bearer $SAW_CAP_OPENAI" -H "Content-Type: application/json" --data '{"model":"m"}')"
echo "cred_nocap=$(code -X POST "http://127.0.0.1:3129/openai/v1/chat/completions" --data '{}')"
echo "egress_allowed=$(code --noproxy '' -x http://127.0.0.1:3128 "http://127.0.0.1:$origin/x")"
echo "egress_connect=$(code --noproxy '' -p -x http://127.0.0.1:3128 "http://127.0.0.1:$origin/y")"
echo "egress_denied=$(code --noproxy '' -x http://127.0.0.1:3128 "http://127.0.0.1:$denied/z")"
echo "egress_direct=$(if timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$origin" 2>/dev/null; then echo ok; else echo denied; fi)"
echo "host_decide_socket=$(if [ -e "$hostsock" ]; then echo visible; else echo absent; fi)"
/usr/bin/python3 - "$origin" "$denied" "$SAW_SESSION" "$HOME" <<'PY'
import json, socket, sys
origin, denied, sid, home = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
def ask(name, req):
    try:
        s = socket.create_connection(("127.0.0.1", 3130), timeout=5)
        s.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            d = s.recv(4096)
            if not d:
                break
            buf += d
        r = json.loads(buf)
    except Exception as e:
        r = {"ok": False, "error": "no answer: %s" % e}
    if r.get("ok") and "decision" not in r:
        print("%s=version %s %s" % (name, r.get("version"), r.get("profile")))
    elif r.get("ok"):
        print("%s=%s %s %s" % (name, r.get("decision"), r.get("rule"), r.get("session", "-")))
    else:
        print("%s=error %s" % (name, r.get("error")))
ask("decide_own", {"op": "connect", "host": "127.0.0.1", "port": origin})
ask("decide_own_sid", {"op": "connect", "session": sid, "host": "127.0.0.1", "port": denied})
ask("decide_write", {"op": "write", "path": home + "/p/.git/hooks/pre-commit"})
ask("decide_write_home", {"op": "write", "path": home + "/notes.txt"})
ask("decide_other", {"op": "connect", "session": "0" * 32, "host": "127.0.0.1", "port": origin})
ask("decide_other2", {"op": "connect", "session": sid[:-1] + ("0" if sid[-1] != "0" else "1"), "host": "127.0.0.1", "port": origin})
ask("decide_user", {"op": "connect", "user": "root", "host": "127.0.0.1", "port": origin})
ask("decide_version", {"op": "version"})
PY
echo ready
exec sleep 600
