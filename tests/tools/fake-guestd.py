#!/usr/bin/env python3
"""A stand-in for saw-guestd's ControlSocket (guestd/guestd-sock.h), for tests of its clients
(saw-authorized-keys, pam_saw.so). Tests only: canned answers from a JSON state file.

    fake-guestd.py --socket PATH --state FILE [--log FILE] [--akc-uid UID]

The state file is re-read for every request, so a test changes the answers by rewriting it
(write a temporary file and rename it over). Its shape:

    {"sessions": [{"session": "s1", "user": "alice", "fp": "SHA256:...", "expires": EPOCH,
                   "force_ok": false,     # answer ok even when expired (a lagging guestd)
                   "deny_account": false, # pam_account says no although the key is bound
                   "deny_open": false}],  # pam_open says no
     "raw": null,        # if a string: sent verbatim instead of any answer (no newline added)
     "delay_ms": 0}      # wait this long before answering

Like the real guestd it checks the peer with SO_PEERCRED: authorized_keys from root or
--akc-uid, pam_* from root only. Every request is appended to --log as one JSON line
{"uid": U, "pid": P, "req": {...}} so that tests can see what the clients sent.
"""
import argparse
import json
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time

MAX_LINE = 4096


def load_state(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"fake-guestd: cannot read state {path}: {e}", file=sys.stderr)
        return {"sessions": []}


def live(s, now):
    return s.get("force_ok") or int(s.get("expires", 0)) > now


def answer(state, req, uid, akc_uid):
    now = int(time.time())
    op = req.get("op")
    user = req.get("user")
    sessions = state.get("sessions", [])
    if op == "authorized_keys":
        if uid not in (0, akc_uid):
            return {"ok": False, "error": "permission denied"}
        for s in sessions:
            if s.get("user") == user and s.get("fp") == req.get("fp") and live(s, now):
                return {"ok": True, "session": s["session"], "expires": s["expires"]}
        return {"ok": False, "error": "no live brokered session for this key"}
    if op in ("pam_account", "pam_open", "pam_close", "status") and uid != 0:
        return {"ok": False, "error": "permission denied"}
    if op == "pam_account":
        for s in sessions:
            if s.get("user") == user and live(s, now) and not s.get("deny_account"):
                return {"ok": True, "session": s["session"], "expires": s["expires"]}
        return {"ok": False, "error": "no live brokered session"}
    if op == "pam_open":
        if not isinstance(req.get("pid"), int):
            return {"ok": False, "error": "pid missing"}
        for s in sessions:
            if s.get("user") == user and live(s, now) and not s.get("deny_open"):
                return {"ok": True, "session": s["session"]}
        return {"ok": False, "error": "no live brokered session"}
    if op == "pam_close":
        return {"ok": True}
    if op == "status":
        return {"ok": True, "online": True,
                "sessions": [{k: s[k] for k in ("session", "user", "expires")}
                             for s in sessions]}
    return {"ok": False, "error": "unknown op"}


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        srv = self.server
        creds = self.request.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                        struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", creds)
        self.request.settimeout(5)
        line = self.rfile.readline(MAX_LINE + 1)
        if not line.endswith(b"\n") or len(line) > MAX_LINE:
            return
        try:
            req = json.loads(line)
        except ValueError:
            req = None
        with srv.lock:
            if srv.log_path:
                with open(srv.log_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"uid": uid, "pid": pid, "req": req}) + "\n")
        state = load_state(srv.state_path)
        if state.get("delay_ms"):
            time.sleep(state["delay_ms"] / 1000.0)
        if isinstance(state.get("raw"), str):
            out = state["raw"].encode("utf-8")
        elif not isinstance(req, dict):
            out = b'{"ok":false,"error":"malformed request"}\n'
        else:
            out = json.dumps(answer(state, req, uid, srv.akc_uid)).encode() + b"\n"
        try:
            self.wfile.write(out)
        except OSError:
            pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--log")
    ap.add_argument("--akc-uid", type=int, default=-1)
    a = ap.parse_args()
    try:
        os.unlink(a.socket)
    except FileNotFoundError:
        pass
    srv = Server(a.socket, Handler)
    # Reachable by sshd's AuthorizedKeysCommandUser (nobody); the real guestd relies on the
    # directory's permissions and SO_PEERCRED the same way.
    os.chmod(a.socket, 0o666)
    srv.state_path = a.state
    srv.log_path = a.log
    srv.akc_uid = a.akc_uid
    srv.lock = threading.Lock()
    # SIGTERM (the tests' stop_pid) ends serve_forever through the finally below, so the
    # socket file goes away with the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("fake-guestd: ready", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    finally:
        try:
            os.unlink(a.socket)
        except OSError:
            pass


if __name__ == "__main__":
    main()
