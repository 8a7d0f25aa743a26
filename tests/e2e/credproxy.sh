#!/usr/bin/env bash
# Issue 5, "Credential proxy and routed inference" end to end on loopback: a live brokered
# session (egress-lib.sh) holds capabilities (ControlSocket session_env); saw-guestd's
# credential proxy (CredentialListen) checks them, strips every client auth header, injects
# the real secret (from a root-only file, and from a CredentialCommand) and forwards over TLS
# to a python3 HTTPS upstream on loopback whose self-signed CA the test gives guestd with
# CredentialCAFile; the upstream echoes the headers it got. Server-sent events stream
# through as they are sent; wrong, foreign-route or revoked capabilities get 403 + audit.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/egress-lib.sh"
. "$(dirname "$0")/broker-common.sh"

SECRET_A="sk-real-openai-$RANDOM$RANDOM-do-not-leak"
SECRET_B="sk-ant-real-$RANDOM$RANDOM-do-not-leak"

# --- a CA and a server certificate for 127.0.0.1 ---------------------------------------------
make_test_pki "$T/pki"

UP_PORT=$(free_port)
python3 "$EGRESS_HELPERS" https "$UP_PORT" "$T/pki/srv.pem" "$T/pki/srv.key" "$T/sent.log" \
	>"$T/upstream.out" 2>"$T/upstream.log" &
track $! "$T/upstream.log"
wait_for_port "$UP_PORT" 10 || fail "the HTTPS upstream did not start"

# the secrets: a root-only file, and a command that prints one
printf '%s\n' "$SECRET_A" >"$T/secret-a"
chmod 0600 "$T/secret-a"
printf '%s\n' "$SECRET_B" >"$T/secret-b"
chmod 0600 "$T/secret-b"

cat >"$T/policy.json" <<JSON
{
  "version": 1,
  "profile": "public",
  "egress": [],
  "credentials": [
    { "name": "openai", "kind": "openai", "upstream": "https://127.0.0.1:$UP_PORT",
      "secret": "file:$T/secret-a" },
    { "name": "claude", "kind": "anthropic", "upstream": "https://127.0.0.1:$UP_PORT",
      "secret": "command:catb" }
  ]
}
JSON
CRED_PORT=$(free_port)
egress_up "$T/policy.json" "CredentialListen 127.0.0.1:$CRED_PORT" \
	"CredentialCAFile $T/pki/ca.pem" "CredentialCommand \"catb /bin/cat $T/secret-b\""
wait_for_port "$CRED_PORT" 10 || fail "the credential proxy does not listen"

gsock "{\"op\":\"session_env\",\"session\":\"$SESSION_ID\"}" >"$T/env.json"
CAP_A=$(python3 -c 'import json,sys
for e in json.load(open(sys.argv[1]))["env"]:
    if e.startswith("SAW_CAP_OPENAI="): print(e.split("=",1)[1])' "$T/env.json")
CAP_B=$(python3 -c 'import json,sys
for e in json.load(open(sys.argv[1]))["env"]:
    if e.startswith("SAW_CAP_CLAUDE="): print(e.split("=",1)[1])' "$T/env.json")
check "the session has a capability for route openai (SAW_CAP_OPENAI)" test -n "$CAP_A"
check "the session has a capability for route claude (SAW_CAP_CLAUDE)" test -n "$CAP_B"
assert_not_contains "$T/env.json" "$SECRET_A" "the session's environment holds no secret (file)"
assert_not_contains "$T/env.json" "$SECRET_B" "the session's environment holds no secret (command)"
gsock "{\"op\":\"session_env\",\"session\":\"$SESSION_ID\"}" >"$T/env2.json"
check "capabilities are stable for the session" cmp -s "$T/env.json" "$T/env2.json"

URL=http://127.0.0.1:$CRED_PORT
# cred [curl args...]: prints the HTTP status; body in $T/body.
cred() {
	curl -sS --max-time 15 -o "$T/body" -w '%{http_code}' "$@" 2>>"$T/curl.err" || true
}
# got_header NAME: the value of header NAME the upstream got (first), or empty.
got_header() {
	python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
v = [h[1] for h in r["headers"] if h[0].lower() == sys.argv[2].lower()]
print(v[0] if v else "")' "$T/body" "$1" 2>/dev/null
}

# --- the real header is injected; the client's are stripped --------------------------------
code=$(cred -X POST "$URL/openai/v1/chat/completions?x=1" -H "Authorization: Bearer $CAP_A" \
	-H "x-api-key: client-sneaks-this" -H "Cookie: session=abc" -H "OpenAI-Beta: assistants=v2" \
	-H "Content-Type: application/json" --data '{"model":"m","messages":[]}')
assert_eq "$code" 200 "openai route: POST /openai/v1/chat/completions forwarded"
assert_eq "$(got_header Authorization)" "Bearer $SECRET_A" "the upstream got the real Authorization header"
assert_eq "$(got_header x-api-key)" "" "the client's x-api-key was stripped"
assert_eq "$(got_header Cookie)" "" "the client's Cookie was stripped"
assert_eq "$(got_header OpenAI-Beta)" "assistants=v2" "other client headers pass"
assert_contains "$T/body" '"path": "/v1/chat/completions?x=1"' "the route prefix is replaced by the upstream's path"
assert_contains "$T/body" '"body": "{\"model\":\"m\",\"messages\":[]}"' "the request body arrived"
assert_not_contains "$T/body" "$CAP_A" "the capability never reaches the upstream"

code=$(cred -X POST "$URL/claude/v1/messages" -H "x-api-key: $CAP_B" \
	-H "anthropic-version: 2023-06-01" -H "Authorization: Bearer sneaky" --data '{}')
assert_eq "$code" 200 "anthropic route (secret from a CredentialCommand)"
assert_eq "$(got_header x-api-key)" "$SECRET_B" "the upstream got the real x-api-key"
assert_eq "$(got_header Authorization)" "" "the client's Authorization was stripped"
assert_eq "$(got_header anthropic-version)" "2023-06-01" "anthropic-version passes"

# keep-alive: two requests on one connection
code=$(curl -sS --max-time 15 -o /dev/null -w '%{http_code} %{num_connects} ' \
	-X POST "$URL/openai/v1/responses" -H "Authorization: Bearer $CAP_A" --data '{}' \
	--next -o /dev/null -w '%{http_code} %{num_connects} ' \
	-X POST "$URL/openai/v1/responses" -H "Authorization: Bearer $CAP_A" --data '{}' \
	2>>"$T/curl.err" || true)
assert_eq "$code" "200 1 200 0 " "two requests on one kept-alive connection (/v1/responses)"

# --- refusals -----------------------------------------------------------------------------
code=$(cred -X POST "$URL/openai/v1/chat/completions" --data '{}')
assert_eq "$code" 403 "no capability: 403"
code=$(cred -X POST "$URL/openai/v1/chat/completions" -H "Authorization: Bearer sawcap_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" --data '{}')
assert_eq "$code" 403 "an unknown capability: 403"
assert_contains "$T/body" "unknown or revoked capability" "unknown capability: the reason"
code=$(cred -X POST "$URL/claude/v1/messages" -H "x-api-key: $CAP_A" --data '{}')
assert_eq "$code" 403 "openai's capability on route claude: 403"
code=$(cred -X POST "$URL/openai/v1/chat/completions" -H "Authorization: Bearer $SECRET_A" --data '{}')
assert_eq "$code" 403 "the real secret itself is not a capability"
code=$(cred "$URL/openai/v1/models" -H "Authorization: Bearer $CAP_A")
assert_eq "$code" 404 "a path the openai route does not offer: 404"
code=$(cred -X POST "$URL/openai/../admin" -H "Authorization: Bearer $CAP_A" --path-as-is --data '{}')
check "dot segments are refused ($code)" test "$code" = 404 -o "$code" = 403
n=$(audit_lines 4002 6)
check "OCSF HTTP Activity events for the credential proxy ($n)" test "$n" -ge 6
assert_not_contains "$GUESTD_LOG" "$SECRET_A" "no secret in guestd's log (file)"
assert_not_contains "$GUESTD_LOG" "$SECRET_B" "no secret in guestd's log (command)"

# --- streaming: events arrive as they are sent ------------------------------------------------
: >"$T/sent.log"
python3 "$EGRESS_HELPERS" sse "$URL/openai/v1/chat/completions" "$CAP_A" '{"stream": true}' \
	>"$T/sse.out" 2>"$T/sse.err" || fail_soft "the SSE client failed ($(head -c 300 "$T/sse.err"))"
assert_contains "$T/sse.out" "status 200 text/event-stream" "SSE: 200 text/event-stream"
python3 - "$T/sse.out" "$T/sent.log" >"$T/sse.check" <<'PY' || true
import sys
got = [float(l.split()[1]) for l in open(sys.argv[1]) if l.startswith("data ")]
sent = [float(l.split()[1]) for l in open(sys.argv[2]) if l.strip()]
print("events received %d, sent %d" % (len(got), len(sent)))
if len(got) >= 5 and len(sent) == 5:
    print("first received %.0f ms after it was sent; last sent %.0f ms after the first was received"
          % ((got[0] - sent[0]) * 1000, (sent[4] - got[0]) * 1000))
    print("OK" if got[0] < sent[4] - 0.5 and got[0] - sent[0] < 0.15 else "BUFFERED")
PY
cat "$T/sse.check"
assert_contains "$T/sse.check" "events received 6, sent 5" "SSE: every event (and [DONE]) arrived"
assert_contains "$T/sse.check" "OK" "SSE: the first event arrived well before the last was sent"

# --- the session ends: its capabilities die ---------------------------------------------------
revoke_session || fail_soft "guestd did not end the revoked session"
code=$(cred -X POST "$URL/openai/v1/chat/completions" -H "Authorization: Bearer $CAP_A" --data '{}')
assert_eq "$code" 403 "after the session ended, its capability is refused"
assert_contains "$T/body" "unknown or revoked capability" "after revoke: the reason"
assert_contains "$GUESTD_LOG" "capabilities revoked" "guestd dropped the session's capabilities"

# --- issue 6: guestd's events in the broker's audit log, and no secret in any record ----------
assert_audit 6 "audit: the credential proxy's HTTP Activity reached the broker's audit log" \
	class_uid=4002 metadata.product.name=saw-guestd unmapped.workspace=alice-ws \
	unmapped.proxy=credential
assert_audit 1 "audit: a forwarded request names method, host and path, and the response" \
	class_uid=4002 activity_id=6 http_request.http_method=POST \
	http_request.url.hostname=127.0.0.1 http_request.url.path~/openai/ http_response.code=200
# no_leak FILE...: none of the secrets, none of the session's SAW_CAP_ values, no capability-
# shaped string (sawcap_…, including the unknown one this test sent) and no 64-hex string
# outside the hash chain's "prev" (the shape of a per-session tunnel token) in FILE.
python3 - "$T/env.json" "$SECRET_A" "$SECRET_B" "$BROKER_AUDIT" "$GUESTD_LOG" "$BROKER_LOG" \
	>"$T/leaks.txt" <<'PY' || true
import json, re, sys
env = json.load(open(sys.argv[1]))
values = [sys.argv[2], sys.argv[3]]
entries = env.get("env", env) if isinstance(env, dict) else env
for e in entries:
    if isinstance(e, str) and e.startswith("SAW_CAP_"):
        values.append(e.split("=", 1)[1])
caps = len(values) - 2
shapes = [re.compile(r"sawcap_[A-Za-z0-9_-]{16,}"),
          re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")]
chain = re.compile(r'"prev":"[0-9a-f]{64}"')
leaks = 0
for path in sys.argv[4:]:
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except FileNotFoundError:
        print("missing %s" % path); leaks += 1; continue
    text = chain.sub('"prev":"-"', text)
    for v in values:
        if v and v in text:
            print("%s: holds a secret or capability value" % path); leaks += 1
    for r in shapes:
        for m in r.finditer(text):
            print("%s: token-shaped string %s…" % (path, m.group(0)[:12])); leaks += 1
print("checked %d capability value(s), 2 secrets; leaks %d" % (caps, leaks))
PY
cat "$T/leaks.txt"
assert_contains "$T/leaks.txt" "leaks 0" \
	"no secret, capability or token in the broker's audit log, guestd's log or the broker's log"
check "the leak check saw the session's capabilities" grep -q "checked [1-9]" "$T/leaks.txt"
finish
