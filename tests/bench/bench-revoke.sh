#!/usr/bin/env bash
# Revocation benchmark (issue #4): how fast does a revocation reach the wire?
#
# With SAW_BENCH_HOLD (1000) live brokered SSH connections held, one user who has
# SAW_BENCH_VICTIM_CONNS (10) of them is revoked by a SET (CAEP session-revoked, iss_sub) pushed
# to POST /v1/revocation/events, SAW_BENCH_ROUNDS (100) times. Measured from just before the
# request is sent to the moment the last of that user's ssh clients saw its connection closed
# (the process exits on the disconnect; reaped through pidfds): p50, p99, max. Then
# SAW_BENCH_BULK (100) users are revoked at once (concurrent SETs, sessions without connections)
# and the revocations per second are printed.
#
# Sessions are not made through the device flow (100 browser logins per run would measure the
# IdP): the script inserts live session rows into the broker's sqlite database directly, bound
# to the victim's key, one per round, exactly as store_session_create() would have written them.
# The background connections are held by saw-loadclient (hold mode) with another key and user.
#
# The workspace half (processes gone inside the workspace) is measured by bench-revoke-lab.sh,
# in the network-namespace lab with saw-guestd and sandboxed logins (ssh -J … 'sleep 600').
#
# Like bench-login.sh: measures, does not pass or fail (exit 1 only if something failed to run).
# Run as root (ulimit) after building saw-brokerd, sawctl and saw-loadclient:
#   tests/bench/bench-revoke.sh
. "$(dirname "$0")/../e2e/lib.sh"

HOLD=${SAW_BENCH_HOLD:-1000}
VICTIM_CONNS=${SAW_BENCH_VICTIM_CONNS:-10}
ROUNDS=${SAW_BENCH_ROUNDS:-100}
BULK=${SAW_BENCH_BULK:-100}
LOADCLIENT=${SAW_LOADCLIENT:-$SAW_BUILD/tests/saw-loadclient}
[ -x "$LOADCLIENT" ] || fail "no saw-loadclient at $LOADCLIENT (make saw-loadclient)"
ulimit -n 65536 2>/dev/null || ulimit -n 8192 2>/dev/null || true
[ "$(ulimit -n)" -gt $((HOLD * 2 + 200)) ] || fail "ulimit -n $(ulimit -n) is too low for $HOLD connections"

SIGN=$SAW_SRC/tests/tools/set-sign
SSF_ISS=https://ssf.bench.example
"$SIGN" keygen "$T/ssf" --kid bench
serve_dir "$T/ssf"
JWKS_PORT=$SERVE_PORT

start_idp
HTTP_PORT=$(free_port)
write_broker_config "HttpListenAddress 127.0.0.1:$HTTP_PORT" "SSFTransmitterIssuer $SSF_ISS" \
	"SSFTransmitterJWKS http://127.0.0.1:$JWKS_PORT/jwks.json" "AdminSocket $T/broker/admin.sock" \
	"MaxStartups 5000:100:5000" "PerSourceMaxStartups 5000" "PerSourcePenalty 100000 1s" \
	"SessionIdleTimeout 7d" "SessionMaxLifetime 7d"
start_broker
wait_for_text "$BROKER_LOG" "SSF transmitter $SSF_ISS: 1 signing keys" 10 ||
	fail "the broker did not fetch the transmitter's keys"

BULK_KEY=$(make_key bulk)
VICTIM_KEY=$(make_key victim)
fp() { ssh-keygen -lf "$1.pub" -E sha256 | awk '{print $2}'; }

# a live session row for the background key
python3 - "$BROKER_DB" "$IDP_URL" "$(fp "$BULK_KEY")" <<'PY'
import sqlite3, sys, time, secrets
db, iss, fp = sys.argv[1:4]
c = sqlite3.connect(db, timeout=10)
now = int(time.time())
c.execute("INSERT INTO sessions (id, iss, sub, username, groups, key_fp, created, expires,"
          " idle_deadline, state) VALUES (?,?,?,?,?,?,?,?,?,0)",
          (secrets.token_hex(16), iss, "bulk", "bulk", '["saw-users"]', fp, now,
           now + 7 * 86400, now + 7 * 86400))
c.commit()
PY

log "holding $((HOLD - VICTIM_CONNS)) background connections"
mkfifo "$T/hold.in"
"$LOADCLIENT" hold -H 127.0.0.1 -p "$BROKER_PORT" -u bulk -i "$BULK_KEY" -c 16 \
	-n $((HOLD - VICTIM_CONNS)) -t 3600 <"$T/hold.in" >"$T/hold.out" 2>"$T/hold.err" &
HOLD_PID=$!
track "$HOLD_PID" "$T/hold.err"
exec 7>"$T/hold.in"
for ((i = 0; i < 1200; i++)); do
	grep -q '^held=' "$T/hold.out" 2>/dev/null && break
	kill -0 "$HOLD_PID" 2>/dev/null || fail "saw-loadclient exited (see $T/hold.err)"
	sleep 0.1
done
grep -q "^held=$((HOLD - VICTIM_CONNS)) errors=0" "$T/hold.out" ||
	fail "the background connections are not all up: $(cat "$T/hold.out")"
log "$(cat "$T/hold.out")"

python3 - "$BROKER_DB" "$IDP_URL" "$(fp "$VICTIM_KEY")" "$VICTIM_KEY" "$BROKER_PORT" \
	"$HTTP_PORT" "$T/ssf/key.pem" "$SSF_ISS" "$BROKER_LOG" "$ROUNDS" "$VICTIM_CONNS" "$BULK" \
	"$HOLD" <<'PY'
import base64, http.client, json, os, secrets, select, sqlite3, statistics, subprocess, sys
import threading, time
from concurrent.futures import ThreadPoolExecutor
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

(db, iss, fp, key, ssh_port, http_port, signkey, ssf_iss, broker_log, rounds, nconn, bulk,
 hold) = sys.argv[1:14]
rounds, nconn, bulk, hold = int(rounds), int(nconn), int(bulk), int(hold)
priv = serialization.load_pem_private_key(open(signkey, "rb").read(), password=None)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
EV = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"

def set_for(sub):
    h = b64(json.dumps({"alg": "ES256", "kid": "bench", "typ": "secevent+jwt"}).encode())
    p = b64(json.dumps({"iss": ssf_iss, "aud": "saw-broker", "iat": int(time.time()),
                        "jti": secrets.token_hex(12),
                        "sub_id": {"format": "iss_sub", "iss": iss, "sub": sub},
                        "events": {EV: {}}}).encode())
    r, s = decode_dss_signature(priv.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256())))
    return f"{h}.{p}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

dbc = sqlite3.connect(db, timeout=10)
def insert(sub, user, key_fp):
    now = int(time.time())
    dbc.execute("INSERT INTO sessions (id, iss, sub, username, groups, key_fp, created, expires,"
                " idle_deadline, state) VALUES (?,?,?,?,?,?,?,?,?,0)",
                (secrets.token_hex(16), iss, sub, user, '["saw-users"]', key_fp, now,
                 now + 86400, now + 86400))
    dbc.commit()

logf = open(broker_log, "rb")
logf.seek(0, 2)
def wait_logins(n, timeout=30):
    seen, deadline, buf = 0, time.time() + timeout, b""
    while seen < n and time.time() < deadline:
        chunk = logf.read()
        if not chunk:
            time.sleep(0.005)
            continue
        buf += chunk
        *lines, buf = buf.split(b"\n")
        seen += sum(1 for l in lines if b"victim logged in with key" in l)
    return seen >= n

conn = http.client.HTTPConnection("127.0.0.1", int(http_port), timeout=10)
def post(body, c=None):
    c = c or conn
    c.request("POST", "/v1/revocation/events", body=body,
              headers={"Content-Type": "application/secevent+jwt"})
    r = c.getresponse()
    r.read()
    return r.status

ssh = ["ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o",
       "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
       "-o", "IdentityAgent=none", "-o", "PreferredAuthentications=publickey",
       "-o", "LogLevel=ERROR", "-i", key, "-p", ssh_port, "-N", "victim@127.0.0.1"]
last, first, resp = [], [], []
for rnd in range(rounds):
    insert("victim", "victim", fp)
    procs = [subprocess.Popen(ssh, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(nconn)]
    if not wait_logins(nconn):
        sys.exit(f"round {rnd}: the victim's {nconn} connections did not all log in")
    time.sleep(0.05)  # let the last ones settle (the broker logs before answering)
    body = set_for("victim")
    fds = {os.pidfd_open(p.pid): p for p in procs}
    poll = select.poll()
    for fd in fds:
        poll.register(fd, select.POLLIN)
    t0 = time.monotonic()
    st = post(body)
    t_resp = time.monotonic()
    if st != 202:
        sys.exit(f"round {rnd}: HTTP {st}")
    ends, left = [], set(fds)
    deadline = t0 + 10
    while left and time.monotonic() < deadline:
        for fd, _ in poll.poll(100):
            if fd in left:
                ends.append(time.monotonic())
                left.discard(fd)
                poll.unregister(fd)
    for fd, p in fds.items():
        os.close(fd)
        if p.poll() is None:
            p.kill()
        p.wait()
    if left:
        sys.exit(f"round {rnd}: {len(left)} connections still open 10 s after the SET")
    last.append((max(ends) - t0) * 1000)
    first.append((min(ends) - t0) * 1000)
    resp.append((t_resp - t0) * 1000)

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(q / 100 * len(v) + 0.5)) - 1))]

print(f"revocation of 1 user with {nconn} connections among {hold} held, {rounds} rounds "
      f"(SET session-revoked pushed to /v1/revocation/events):")
for name, v in (("request sent -> last connection closed", last),
                ("request sent -> first connection closed", first),
                ("request sent -> 202 received", resp)):
    print(f"  {name:42s} p50 {pct(v, 50):7.2f} ms  p99 {pct(v, 99):7.2f} ms  "
          f"max {max(v):7.2f} ms  mean {statistics.mean(v):7.2f} ms")

# --- many users at once -----------------------------------------------------------------------
for i in range(bulk):
    insert(f"bulk-{i}", f"bulkuser{i}", None)
bodies = [set_for(f"bulk-{i}") for i in range(bulk)]
tl = threading.local()
def one(b):
    if not hasattr(tl, "c"):
        tl.c = http.client.HTTPConnection("127.0.0.1", int(http_port), timeout=30)
    return post(b, tl.c)
t0 = time.monotonic()
with ThreadPoolExecutor(max_workers=16) as ex:
    statuses = list(ex.map(one, bodies))
dt = time.monotonic() - t0
live = dbc.execute("SELECT count(*) FROM sessions WHERE state = 0 AND sub LIKE 'bulk-%'").fetchone()[0]
print(f"{bulk} users revoked at once (16 concurrent senders, one SET each, sessions without "
      f"connections): {dt * 1000:.1f} ms, {bulk / dt:.0f} revocations/s "
      f"(202: {statuses.count(202)}/{bulk}, still live afterwards: {live})")
print("workspace processes gone: see tests/bench/bench-revoke-lab.sh (saw-guestd in the "
      "netns lab)")
PY
rc=$?
exec 7>&-
[ "$rc" -eq 0 ] || fail "the benchmark driver failed"
log "broker RSS: $(ps -o rss= -p "$BROKER_PID") KiB with the connections held"
finish
