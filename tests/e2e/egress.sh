#!/usr/bin/env bash
# Issue 5, "Egress: deny by default" end to end on loopback: saw-guestd's egress proxy for a
# live brokered session (real IdP, broker, sawctl; egress-lib.sh), with a PolicyFile.
#
#  v1 policy: an egress rule allows 127.0.0.1, ::1, 0.0.0.0 and localhost on every port, but
#     no addresses.allow_private: every one of them is refused by the address classifier
#     (CONNECT 127.0.0.1, [::1], [::ffff:127.0.0.1], 0.0.0.0, localhost, a forwarded
#     http://127.0.0.1/ request), with the JSON 403 naming the rule and an OCSF refuse event;
#     an unlisted host is refused by default-deny.
#  v2 policy (SIGHUP): the same plus allow_private 127.0.0.1/32 — the loopback test server is
#     now reachable through CONNECT and as a forwarded http:// request (the one place a test
#     may name a loopback address: tests never send a packet off the machine, so the only
#     server they can reach is a loopback one, and the policy has to name it explicitly);
#     ::1 and 0.0.0.0 are still refused; a deny rule for one port beats the allow.
#  Names (*.names.test) are resolved by guestd itself through a loopback DNS server
#     (ProxyResolvConf): refused like the addresses they resolve to under v1; under v2 served
#     with one lookup per CONNECT (no second lookup at the dial), a name with a named and an
#     unnamed address dialled only at the named one, 0.0.0.0 still refused; an unknown name
#     is a 502.
#  After the session is revoked, the proxy refuses again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/egress-lib.sh"
. "$(dirname "$0")/broker-common.sh"

ORIGIN_PORT=$(free_port)
DENIED_PORT=$(free_port)
python3 "$EGRESS_HELPERS" http "$ORIGIN_PORT" >"$T/origin.out" 2>"$T/origin.log" &
track $! "$T/origin.log"
python3 "$EGRESS_HELPERS" http "$DENIED_PORT" >"$T/denied.out" 2>"$T/denied.log" &
track $! "$T/denied.log"
wait_for_port "$ORIGIN_PORT" 10 && wait_for_port "$DENIED_PORT" 10 || fail "origin servers"
# guestd's resolver: a DNS server on loopback (ProxyResolvConf) whose names answer loopback
# addresses, so that the proxy's own lookups and its classification of what they return are
# exercised without a packet leaving the machine
DNS_PORT=$(free_port)
# (A records only: guestd asks for AAAA only where the host has IPv6 routes, AI_ADDRCONFIG)
cat >"$T/names" <<NAMES
lo4.names.test 127.0.0.1
two.names.test 127.0.0.2
two.names.test 127.0.0.1
zero.names.test 0.0.0.0
NAMES
python3 "$EGRESS_HELPERS" dns "$DNS_PORT" "$T/names" "$T/dns-queries" >"$T/dns.out" 2>"$T/dns.log" &
track $! "$T/dns.log"
wait_for_text "$T/dns.out" READY 10 || fail "the test DNS server did not start"
echo "nameserver 127.0.0.1:$DNS_PORT" >"$T/resolv.conf"
# dns_queries NAME TYPE: how many queries for NAME of TYPE the DNS server got
dns_queries() { awk -v n="$1" -v t="$2" '$1 == n && $2 == t' "$T/dns-queries" 2>/dev/null | wc -l; }

# write_policy VERSION [ALLOW_PRIVATE JSON]
write_policy() {
	cat >"$T/policy.json.tmp" <<JSON
{
  "version": $1,
  "profile": "public",
  "egress": [
    { "id": "loopback-test-servers", "action": "allow",
      "hosts": ["127.0.0.1", "::1", "0.0.0.0", "localhost", "*.localhost", "*.names.test"],
      "ports": ["1-65535"] },
    { "id": "deny-one-port", "action": "deny", "hosts": ["127.0.0.1"], "ports": [$DENIED_PORT] }
  ],
  "addresses": { "allow_private": ${2:-[]} }
}
JSON
	mv "$T/policy.json.tmp" "$T/policy.json"
}
write_policy 1
# two event loops whatever the machine (guestd's own and a thread, each accepting on its socket
# of the listener): everything below runs on both
egress_up "$T/policy.json" "ProxyResolvConf $T/resolv.conf" "ProxyThreads 2"
check "guestd serves the egress proxy with 2 event loops" grep -q "egress proxy: 2 event loops" "$GUESTD_LOG"

# raw_connect TARGET [DELAY [PAUSE]]: a CONNECT with exactly this target, sent DELAY seconds
# after the connection opened, its head in two writes PAUSE seconds apart when PAUSE is given;
# prints the status code, then the response body (for refusals) on the next line.
raw_connect() {
	python3 - "$PROXY_PORT" "$1" "${2:-0}" "${3:-}" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
t = sys.argv[2]
time.sleep(float(sys.argv[3]))
head = ("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (t, t)).encode()
if sys.argv[4]:
    s.sendall(head[:9])
    time.sleep(float(sys.argv[4]))
    head = head[9:]
s.sendall(head)
buf = b""
while b"\r\n\r\n" not in buf:
    d = s.recv(4096)
    if not d:
        break
    buf += d
head, _, body = buf.partition(b"\r\n\r\n")
status = head.split(b" ")[1].decode() if b" " in head else "000"
if status != "200":
    s.settimeout(3)
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            body += d
    except socket.timeout:
        pass
print(status)
print(body.decode(errors="replace").strip())
PY
}

# proxy_curl URL [curl options]: through the proxy; prints "HTTP_CODE CONNECT_CODE".
proxy_curl() {
	local url=$1
	shift
	env -u NO_PROXY -u no_proxy curl -sS --max-time 10 -x "http://127.0.0.1:$PROXY_PORT" "$@" \
		"$url" -o "$T/body" -w '%{http_code} %{http_connect}' 2>>"$T/curl.err" || true
}

# json_field FILE-OR-TEXT FIELD
jfield() {
	python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2]))' "$1" "$2" 2>/dev/null
}

# --- v1: loopback allowed by a rule but not by the address policy -------------------------
for target in "127.0.0.1:$ORIGIN_PORT" "[::1]:$ORIGIN_PORT" "[::ffff:127.0.0.1]:$ORIGIN_PORT" \
	"0.0.0.0:$ORIGIN_PORT" "localhost:$ORIGIN_PORT" "foo.localhost:$ORIGIN_PORT" \
	"lo4.names.test:$ORIGIN_PORT" "two.names.test:$ORIGIN_PORT" "zero.names.test:$ORIGIN_PORT"; do
	out=$(raw_connect "$target")
	status=$(head -n1 <<<"$out")
	body=$(sed -n 2p <<<"$out")
	assert_eq "$status" 403 "v1: CONNECT $target refused"
	rule=$(jfield "$body" rule)
	case $rule in
	address-class:*) pass "v1: $target refused by the address classifier ($rule)" ;;
	*) fail_soft "v1: $target: rule '$rule' (body: $body)" ;;
	esac
	assert_eq "$(jfield "$body" policy_version)" 1 "v1: $target: the body names policy version 1"
	assert_eq "$(jfield "$body" how_to_request)" \
		"ask your platform team to add it to the egress allowlist" "v1: $target: how to request"
done
# those three names were looked up by guestd itself, through ProxyResolvConf
for n in lo4 two zero; do
	assert_eq "$(dns_queries $n.names.test A)" 1 "v1: guestd asked its resolver for $n.names.test once"
done
out=$(raw_connect "gone.names.test:$ORIGIN_PORT")
assert_eq "$(head -n1 <<<"$out")" 502 "v1: a name the resolver does not know: 502"
sed -n 2p <<<"$out" >"$T/gone.body"
assert_contains "$T/gone.body" "cannot resolve gone.names.test" "v1: … saying it cannot be resolved"
read -r code conn <<<"$(proxy_curl "http://127.0.0.1:$ORIGIN_PORT/x")"
assert_eq "$code" 403 "v1: forwarded http://127.0.0.1:$ORIGIN_PORT/x refused"
assert_contains "$T/body" '"rule":"address-class:loopback"' "v1: forwarded request: the rule"
out=$(raw_connect "unlisted.example.test:443")
assert_eq "$(head -n1 <<<"$out")" 403 "v1: an unlisted host is refused"
assert_eq "$(jfield "$(sed -n 2p <<<"$out")" rule)" default-deny "v1: unlisted: rule default-deny"
check "no request reached the origin under v1" test ! -s "$T/origin.log"
n=$(audit_lines 4001 5)
check "OCSF Network Activity refuse events were recorded ($n)" test "$n" -ge 8
# Issue 6: guestd forwards them over CTL_AUDIT; the broker adds provenance and the workspace.
assert_audit 8 "audit: guestd's Network Activity refusals reached the broker's audit log" \
	class_uid=4001 activity_id=5 status_id=2 metadata.product.name=saw-guestd \
	unmapped.workspace=alice-ws
assert_audit 1 "audit: the forwarded refusal names the user and the session" \
	class_uid=4001 activity_id=5 actor.user.name=alice "actor.session.uid=$SESSION_ID" \
	dst_endpoint.hostname=unlisted.example.test dst_endpoint.port=443 unmapped.rule=default-deny

# --- v2: allow_private names 127.0.0.1 -----------------------------------------------------
write_policy 2 '["127.0.0.1/32"]'
kill -HUP "$GUESTD_PID"
wait_for_text "$GUESTD_LOG" "version 2" 10 || log "warning: no 'version 2' in the guestd log"
sleep 0.3
read -r code conn <<<"$(proxy_curl "http://127.0.0.1:$ORIGIN_PORT/via-connect" -p)"
assert_eq "$conn $code" "200 200" "v2: CONNECT 127.0.0.1:$ORIGIN_PORT reaches the allowlisted loopback server"
assert_contains "$T/body" '"path": "/via-connect"' "v2: the origin answered through the tunnel"
read -r code conn <<<"$(proxy_curl "http://127.0.0.1:$ORIGIN_PORT/forwarded?q=1" \
	-H "Proxy-Authorization: Basic c2VjcmV0" -H "X-Test: yes")"
assert_eq "$code" 200 "v2: forwarded http://127.0.0.1:$ORIGIN_PORT/forwarded reaches the origin"
assert_contains "$T/body" '"path": "/forwarded?q=1"' "v2: origin-form path sent upstream"
assert_contains "$T/body" '["X-Test", "yes"]' "v2: end-to-end headers kept"
assert_contains "$T/body" '["Connection", "close"]' "v2: one request per connection"
assert_not_contains "$T/body" "Proxy-Authorization" "v2: proxy credentials not forwarded"
assert_contains "$T/body" "[\"Host\", \"127.0.0.1:$ORIGIN_PORT\"]" "v2: Host from the URL"
n=$(audit_lines 4001 1)
check "OCSF Network Activity open events were recorded ($n)" test "$n" -ge 2
assert_audit 2 "audit: guestd's Network Activity opens reached the broker's audit log" \
	class_uid=4001 activity_id=1 metadata.product.name=saw-guestd unmapped.workspace=alice-ws

# A name: resolved once, then only its validated addresses are dialled (no second lookup)
out=$(raw_connect "lo4.names.test:$ORIGIN_PORT")
assert_eq "$(head -n1 <<<"$out")" 200 "v2: CONNECT lo4.names.test (resolving to 127.0.0.1, now named) is served"
assert_eq "$(dns_queries lo4.names.test A)" 2 "v2: one more lookup for that CONNECT, none at the dial"
# a trap on 127.0.0.2, the name's first address: any connection there is recorded
python3 "$EGRESS_HELPERS" sink "$ORIGIN_PORT" 127.0.0.2 >"$T/trap.out" 2>&1 &
track $! "$T/trap.out"
wait_for_text "$T/trap.out" READY 10 || fail "the 127.0.0.2 trap did not start"
read -r code conn <<<"$(proxy_curl "http://two.names.test:$ORIGIN_PORT/two" -p)"
assert_eq "$conn $code" "200 200" "v2: two.names.test (127.0.0.2, 127.0.0.1): served through 127.0.0.1"
check "v2: 127.0.0.2, which the policy does not name, was not dialled" \
	test "$(grep -c connection "$T/trap.out")" -eq 0
assert_audit 1 "audit: the open of two.names.test names the address dialled, 127.0.0.1" \
	class_uid=4001 activity_id=1 dst_endpoint.hostname=two.names.test dst_endpoint.ip=127.0.0.1
out=$(raw_connect "zero.names.test:$ORIGIN_PORT")
assert_eq "$(head -n1 <<<"$out")" 403 "v2: zero.names.test (0.0.0.0) is still refused"

# The listener accepts only once a request has begun (TCP_DEFER_ACCEPT) and reads the head
# at once: a client that waits before it speaks, or sends its head in pieces, is still served.
out=$(raw_connect "127.0.0.1:$ORIGIN_PORT" 1.5)
assert_eq "$(head -n1 <<<"$out")" 200 "v2: a CONNECT sent 1.5 s after the connection opened is served"
out=$(raw_connect "127.0.0.1:$ORIGIN_PORT" 0 0.5)
assert_eq "$(head -n1 <<<"$out")" 200 "v2: a CONNECT head sent in two writes 0.5 s apart is served"

out=$(raw_connect "127.0.0.1:$DENIED_PORT")
assert_eq "$(head -n1 <<<"$out")" 403 "v2: the deny rule beats the allow (127.0.0.1:$DENIED_PORT)"
assert_eq "$(jfield "$(sed -n 2p <<<"$out")" rule)" deny-one-port "v2: refused by rule deny-one-port"
check "nothing reached the denied server" test ! -s "$T/denied.log"
for target in "[::1]:$ORIGIN_PORT" "0.0.0.0:$ORIGIN_PORT"; do
	out=$(raw_connect "$target")
	assert_eq "$(head -n1 <<<"$out")" 403 "v2: CONNECT $target still refused (not named by the policy)"
done

# a malformed request and a method the egress proxy does not offer
out=$(python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n")
print(s.recv(4096).split(b" ")[1].decode())' "$PROXY_PORT")
assert_eq "$out" 405 "an origin-form request to the proxy is refused (405)"

# --- the session ends: its open tunnels are reset, on every loop, and it is refused again -------
HELD=16
python3 "$EGRESS_HELPERS" hold "$PROXY_PORT" "127.0.0.1:$ORIGIN_PORT" "$HELD" 30 \
	>"$T/held.out" 2>"$T/held.err" &
HELD_PID=$!
wait_for_text "$T/held.out" "HELD $HELD" 15 || { show_file "$T/held.out"; show_file "$T/held.err"; fail "could not hold $HELD tunnels"; }
revoke_session || fail_soft "guestd did not end the revoked session"
wait "$HELD_PID" || true
check "all $HELD tunnels held through the proxy were closed when the session ended" grep -qx "CLOSED $HELD" "$T/held.out"
# guestd says how many each loop closed: the kernel dealt the connections to both loops' sockets
# (SO_REUSEPORT hashes each connection; all 16 on one loop would happen once in 32,768 runs)
check "both event loops closed their share of the session's tunnels" test "$(grep -cE "egress connections? closed \(event loop [12] of 2\)" "$GUESTD_LOG")" -eq 2
check "the loops closed $HELD tunnels in all" test "$(grep -oE '[0-9]+ egress connections? closed \(event loop' "$GUESTD_LOG" | awk '{ n += $1 } END { print n + 0 }')" -eq "$HELD"
out=$(raw_connect "127.0.0.1:$ORIGIN_PORT")
assert_eq "$(head -n1 <<<"$out")" 403 "after the session is revoked, CONNECT is refused"
case $out in
*"no live brokered session"*) pass "after revoke: the reason says there is no live session" ;;
*) fail_soft "after revoke: reason ($out)" ;;
esac
finish
