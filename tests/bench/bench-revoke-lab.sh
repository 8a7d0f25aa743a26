#!/usr/bin/env bash
# Revocation benchmark, the workspace half (issue #4): how fast does a revocation reach the
# user's processes inside the workspace?
#
# In the network-namespace lab of the e2e tests (tests/e2e/netns-lab.sh: broker + IdP in b,
# saw-guestd and the workspace's OpenSSH sshd with ForceCommand saw-session in ws, jump hosts
# for the per-session tunnel), SAW_BENCH_ROUNDS (20) rounds of:
#   - a live session bound to the user's key (the first one through a real browser login,
#     then rows inserted into the broker's sqlite database as bench-revoke.sh does);
#   - the user logs in with `ssh -J user@broker WS 'sleep 600'` (the sleep runs in a guestd
#     sandbox; the session is attached to the workspace and its tunnel is up);
#   - the user is revoked by a SET (CAEP session-revoked, iss_sub) pushed to
#     POST /v1/revocation/events;
#   - from just before the request is sent, polled every 5 ms (bounded to 10 s): the 202;
#     the ssh -J client's TCP connection to the broker closed by the broker (its socket leaves
#     ESTABLISHED in /proc/net/tcp: the FIN arrived); the ssh client's exit (pidfd); no running
#     process of the user left (what `pgrep -u USER` lists, less zombies); and pgrep -u USER
#     finding nothing at all (zombies included: orphaned sshd/saw-session zombies wait for
#     pid 1 of the machine to reap them, which on some machines is not immediate).
# Prints p50, p99, max, mean of each (with 20 rounds p99 is the maximum).
#
# Measures, does not pass or fail (exit 1 only if something failed to run). Root only (the
# lab); build first, then:  tests/bench/bench-revoke-lab.sh   (knobs: SAW_BENCH_ROUNDS,
# SAW_BUILD_DIR, SAW_KEEP_TMP=1)
. "$(dirname "$0")/../e2e/netns-lab.sh"
. "$(dirname "$0")/../e2e/sandbox-lib.sh"

ROUNDS=${SAW_BENCH_ROUNDS:-20}
if [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 500 ]; then fail "SAW_BENCH_ROUNDS must be 1..500"; fi

SIGN=$SAW_SRC/tests/tools/set-sign
SSF_ISS=https://ssf.bench.example
"$SIGN" keygen "$T/ssf" --kid bench
serve_dir "$T/ssf"
JWKS_PORT=$SERVE_PORT
HTTP_PORT=$(free_port)

lab_up
mapfile -t jump_lines < <(lab_jump_lines)
lab_saw_up "HttpListenAddress 127.0.0.1:$HTTP_PORT" "SSFTransmitterIssuer $SSF_ISS" \
	"SSFTransmitterJWKS http://127.0.0.1:$JWKS_PORT/jwks.json" "${jump_lines[@]}"
wait_for_text "$BROKER_LOG" "SSF transmitter $SSF_ISS: 1 signing keys" 10 ||
	fail "the broker did not fetch the transmitter's keys"
lab_ws_sshd_sandbox

key=$(make_key user)
cfg=$(lab_ssh_config "$key")
cfg_key=$T/ssh_config.keyonly
sed -e 's/^  PreferredAuthentications .*/  PreferredAuthentications publickey/' "$cfg" >"$cfg_key"
echo "  NumberOfPasswordPrompts 0" >>"$cfg_key"
jump=$LAB_USER@127.0.0.1:$BROKER_PORT

# One real browser login: its row gives iss, sub and groups for the inserted ones.
rc=0
lab_ssh -F "$cfg" -J "$jump" "$LAB_WS_NAME" 'id -un' >"$T/login.out" 2>"$T/login.err" || rc=$?
[ "$rc" -eq 0 ] || { show_file "$T/login.err"; fail "the browser login failed (exit $rc)"; }
"$SAW_BUILD/broker/sawctl" -s "$BROKER_DIR/admin.sock" revoke --user "$LAB_USER" >/dev/null ||
	fail "could not revoke the first session"
sbx_wait_no_user_procs 10 || log "warning: processes of $LAB_USER left after the first login"

log "$ROUNDS rounds"
python3 - "$BROKER_DB" "$(ssh-keygen -lf "$key.pub" -E sha256 | awk '{print $2}')" "$cfg_key" \
	"$jump" "$LAB_WS_NAME" "$LAB_USER" "$BROKER_PORT" "$HTTP_PORT" "$T/ssf/key.pem" "$SSF_ISS" \
	"$ROUNDS" <<'PY'
import base64, http.client, json, os, pwd, secrets, select, sqlite3, statistics, subprocess
import sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

(db, key_fp, cfg, jump, ws, user, ssh_port, http_port, signkey, ssf_iss,
 rounds) = sys.argv[1:12]
rounds, ssh_port = int(rounds), int(ssh_port)
uid = pwd.getpwnam(user).pw_uid
priv = serialization.load_pem_private_key(open(signkey, "rb").read(), password=None)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
EV = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"

dbc = sqlite3.connect(db, timeout=10)
iss, sub, groups = dbc.execute("SELECT iss, sub, groups FROM sessions WHERE username = ? "
                               "ORDER BY created DESC LIMIT 1", (user,)).fetchone()

def set_for():
    h = b64(json.dumps({"alg": "ES256", "kid": "bench", "typ": "secevent+jwt"}).encode())
    p = b64(json.dumps({"iss": ssf_iss, "aud": "saw-broker", "iat": int(time.time()),
                        "jti": secrets.token_hex(12),
                        "sub_id": {"format": "iss_sub", "iss": iss, "sub": sub},
                        "events": {EV: {}}}).encode())
    r, s = decode_dss_signature(priv.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256())))
    return f"{h}.{p}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

def insert():
    now = int(time.time())
    dbc.execute("INSERT INTO sessions (id, iss, sub, username, groups, key_fp, created, expires,"
                " idle_deadline, state) VALUES (?,?,?,?,?,?,?,?,?,0)",
                (secrets.token_hex(16), iss, sub, user, groups, key_fp, now, now + 86400,
                 now + 86400))
    dbc.commit()

def user_procs():
    """(running, all) processes of uid: what pgrep -u lists, and the same less zombies."""
    running = total = 0
    for e in os.scandir("/proc"):
        if not e.name.isdigit():
            continue
        try:
            if e.stat().st_uid != uid:
                continue
            with open(f"/proc/{e.name}/stat", "rb") as f:
                st = f.read()
        except OSError:
            continue
        total += 1
        if st[st.rindex(b")") + 2:st.rindex(b")") + 3] != b"Z":
            running += 1
    return running, total

def sleeping():
    for e in os.scandir("/proc"):
        if not e.name.isdigit():
            continue
        try:
            if e.stat().st_uid != uid:
                continue
            with open(f"/proc/{e.name}/cmdline", "rb") as f:
                if f.read().startswith(b"sleep\x00600\x00"):
                    return True
        except OSError:
            continue
    return False

def client_socks():
    """Local ports of established client sockets to 127.0.0.1:ssh_port."""
    out = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            if p[2] == f"0100007F:{ssh_port:04X}" and p[3] == "01":
                out.add(p[1])
    return out

conn = http.client.HTTPConnection("127.0.0.1", int(http_port), timeout=10)
def post(body):
    conn.request("POST", "/v1/revocation/events", body=body,
                 headers={"Content-Type": "application/secevent+jwt"})
    r = conn.getresponse()
    r.read()
    return r.status

env = dict(os.environ, SSH_ASKPASS="/bin/false", SSH_ASKPASS_REQUIRE="never")
ssh = ["timeout", "-k", "5", "120", "ssh", "-F", cfg, "-J", jump, ws, "sleep 600"]
res = {k: [] for k in ("resp", "tcp", "exit", "running", "pgrep")}
for rnd in range(rounds):
    if client_socks():
        sys.exit(f"round {rnd}: a client connection to the broker is left over")
    insert()
    p = subprocess.Popen(ssh, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env, start_new_session=True)
    deadline = time.time() + 30
    while time.time() < deadline and not (sleeping() and client_socks()):
        if p.poll() is not None:
            sys.exit(f"round {rnd}: ssh -J exited ({p.returncode}): {p.stderr.read()!r}")
        time.sleep(0.02)
    socks = client_socks()
    if len(socks) != 1 or not sleeping():
        procs = []
        for e in os.scandir("/proc"):
            try:
                if e.name.isdigit() and e.stat().st_uid == uid:
                    procs.append(open(f"/proc/{e.name}/cmdline", "rb").read())
            except OSError:
                pass
        if p.poll() is None:
            os.killpg(p.pid, 9)
        sys.exit(f"round {rnd}: the login did not come up (client sockets {socks}, processes "
                 f"of the user {procs}, ssh: {p.stderr.read()!r})")
    time.sleep(0.1)  # let the login settle (the sandbox's processes, the tunnel)
    body = set_for()
    pfd = os.pidfd_open(p.pid)
    poll = select.poll()
    poll.register(pfd, select.POLLIN)
    t = {}
    t0 = time.monotonic()
    st = post(body)
    t["resp"] = time.monotonic()
    if st != 202:
        sys.exit(f"round {rnd}: HTTP {st}")
    deadline = t0 + 10
    while time.monotonic() < deadline:
        now = time.monotonic()
        if "tcp" not in t and not (client_socks() & socks):
            t["tcp"] = now
        if "exit" not in t and poll.poll(0):
            t["exit"] = now
        if "pgrep" not in t:
            running, total = user_procs()
            if running == 0 and "running" not in t:
                t["running"] = now
            if total == 0:
                t["pgrep"] = now
        if len(t) == 5:
            break
        poll.poll(5)
    os.close(pfd)
    if p.poll() is None:
        os.killpg(p.pid, 9)
    p.wait()
    p.stderr.close()
    missing = [k for k in res if k not in t]
    if missing:
        sys.exit(f"round {rnd}: not reached within 10 s: {missing}")
    for k in res:
        res[k].append((t[k] - t0) * 1000)

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(q / 100 * len(v) + 0.5)) - 1))]

print(f"revocation of 1 user logged in with ssh -J into a sandboxed workspace login "
      f"(sleep 600), {rounds} rounds, SET session-revoked pushed to /v1/revocation/events, "
      f"polled every 5 ms:")
for k, name in (("resp", "request sent -> 202 received"),
                ("tcp", "request sent -> ssh -J TCP connection closed"),
                ("exit", "request sent -> ssh client exited"),
                ("running", "request sent -> no running process of user"),
                ("pgrep", "request sent -> pgrep -u user finds nothing")):
    v = res[k]
    print(f"  {name:46s} p50 {pct(v, 50):7.1f} ms  p99 {pct(v, 99):7.1f} ms  "
          f"max {max(v):7.1f} ms  mean {statistics.mean(v):7.1f} ms")
PY
rc=$?
[ "$rc" -eq 0 ] || fail "the benchmark driver failed"
finish
