#!/usr/bin/env python3
"""Loopback peers for the egress and credential-proxy tests (and the benchmark).

  sink PORT [HOST]                accept connections on HOST (127.0.0.1; another 127/8 address
                                  as a trap), print "connection from IP:PORT" for each, read
                                  and discard (guestd's LocalSSH)
  http PORT                       HTTP/1.1 origin: any request -> 200, JSON of what it got
  https PORT CERT KEY SENTLOG     the credential proxy's upstream over TLS: echoes the
                                  request's headers as JSON; a body with "stream": true gets
                                  5 server-sent events 200 ms apart (send times to SENTLOG)
  sse URL TOKEN BODY              client: POST BODY with the capability, print the arrival
                                  time of each "data:" line (time.time())
  hold PROXY TARGET N SECONDS     client: N tunnels through the proxy on 127.0.0.1:PROXY to
                                  TARGET (CONNECT), print "HELD N" once all are up (or
                                  "REFUSED i HEAD" and exit 1), then wait up to SECONDS for
                                  the proxy to close them (the origin sends nothing on an
                                  idle tunnel) and print "CLOSED n": how many it closed
  dns PORT NAMES QUERYLOG         a DNS server on UDP 127.0.0.1:PORT answering A and AAAA
                                  queries from NAMES (lines "name address"), NXDOMAIN for
                                  other names; each query is appended to QUERYLOG as
                                  "name TYPE"
Loopback only: every server binds 127.0.0.1 (sink: an address of 127.0.0.0/8).
"""
import http.server
import json
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.request


class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # head and body go in two writes: without this a keep-alive client's delayed ACK holds
    # the body back 40 ms (Nagle), which the credential-proxy benchmark would measure
    disable_nagle_algorithm = True
    sent_log = None

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        got = {
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": body.decode(errors="replace"),
            "port": self.server.server_address[1],
        }
        stream = False
        try:
            stream = bool(json.loads(body or b"{}").get("stream"))
        except ValueError:
            pass
        if stream:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(5):
                self.wfile.write(b"data: {\"event\": %d}\n\n" % i)
                self.wfile.flush()
                if self.sent_log:
                    with open(self.sent_log, "a") as f:
                        f.write("%d %.6f\n" % (i, time.time()))
                if i < 4:
                    time.sleep(0.2)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True
            return
        out = json.dumps(got).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def sink(port, host="127.0.0.1"):
    if not host.startswith("127."):
        sys.exit("sink: %s is not a loopback address" % host)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(64)
    print("READY", flush=True)

    def drain(c):
        with c:
            while c.recv(65536):
                pass

    while True:
        c, peer = s.accept()
        print("connection from %s:%d" % peer, flush=True)
        threading.Thread(target=drain, args=(c,), daemon=True).start()


def sse_client(url, token, body):
    req = urllib.request.Request(url, data=body.encode(), method="POST",
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    t0 = time.time()
    print("start %.6f" % t0, flush=True)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=20) as r:
        print("status %d %s" % (r.status, r.headers.get("Content-Type")), flush=True)
        while True:
            line = r.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                print("data %.6f %s" % (time.time(), line.decode().strip()), flush=True)


def hold(proxy, target, n, secs):
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", proxy), timeout=10)
        s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
        head = b""
        while b"\r\n\r\n" not in head:  # a byte at a time: nothing of the tunnel is read
            d = s.recv(1)
            if not d:
                break
            head += d
        if not head.startswith(b"HTTP/1.1 200"):
            print("REFUSED", i, head, flush=True)
            sys.exit(1)
        socks.append(s)
    print("HELD", n, flush=True)
    closed, deadline = 0, time.time() + secs
    for s in socks:
        s.settimeout(max(0.1, deadline - time.time()))
        try:
            if s.recv(1) == b"":
                closed += 1
        except ConnectionResetError:
            closed += 1
        except socket.timeout:
            pass
    print("CLOSED", closed, flush=True)


def dns(port, names_file, log):
    names = {}
    with open(names_file) as f:
        for line in f:
            if line.strip():
                n, a = line.split()
                names.setdefault(n.lower().rstrip("."), []).append(a)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    print("READY", flush=True)
    while True:
        q, peer = s.recvfrom(512)
        if len(q) < 12:
            continue
        labels, i = [], 12
        while i < len(q) and q[i] != 0:
            labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace"))
            i += 1 + q[i]
        qtype = int.from_bytes(q[i + 1:i + 3], "big")
        question = q[12:i + 5]
        name = ".".join(labels).lower()
        with open(log, "a") as f:
            f.write("%s %s\n" % (name, {1: "A", 28: "AAAA"}.get(qtype, str(qtype))))
        fam = {1: socket.AF_INET, 28: socket.AF_INET6}.get(qtype)
        answers = []
        for a in names.get(name, []):
            try:
                answers.append(socket.inet_pton(fam, a) if fam else None)
            except OSError:
                pass  # an address of the other family
        answers = [a for a in answers if a]
        rcode = 0 if name in names else 3
        head = q[:2] + bytes([0x84 | (q[2] & 0x01), 0x80 | rcode]) + b"\x00\x01" + \
            len(answers).to_bytes(2, "big") + b"\x00\x00\x00\x00"
        rr = b"".join(b"\xc0\x0c" + qtype.to_bytes(2, "big") + b"\x00\x01" +
                      (5).to_bytes(4, "big") + len(a).to_bytes(2, "big") + a for a in answers)
        s.sendto(head + question + rr, peer)


def main():
    mode = sys.argv[1]
    if mode == "sink":
        sink(int(sys.argv[2]), *sys.argv[3:4])
    elif mode == "http":
        srv = Server(("127.0.0.1", int(sys.argv[2])), Origin)
        print("READY", flush=True)
        srv.serve_forever()
    elif mode == "https":
        Origin.sent_log = sys.argv[5]
        srv = Server(("127.0.0.1", int(sys.argv[2])), Origin)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        print("READY", flush=True)
        srv.serve_forever()
    elif mode == "sse":
        sse_client(sys.argv[2], sys.argv[3], sys.argv[4])
    elif mode == "hold":
        hold(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    elif mode == "dns":
        dns(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
