#!/usr/bin/env python3
"""SIEM stand-in for the audit tests and benchmark: a small HTTP/1.1 server on loopback.

Accepts POSTed audit batches (generic JSON arrays or Splunk HEC streams), writes one line
"SEQ UID" per event to --out (SEQ from the event's message "audit-drive seq N", -1 if none),
in arrival order. --fail N answers the first N requests with 503 (nothing stored). --token T
requires "Authorization: Splunk T" (HEC) or "Bearer T" (json) and answers 401 otherwise.
--count-only skips parsing (counts events by their "metadata" keys) for the benchmark.
"""
import argparse
import http.server
import json
import re
import sys

SEQ = re.compile(r'audit-drive seq (\d+)')


def events_of(body, fmt):
    if fmt == 'json':
        return json.loads(body)
    out, dec, i, n = [], json.JSONDecoder(), 0, len(body)
    while i < n:
        while i < n and body[i] in ' \r\n\t':
            i += 1
        if i >= n:
            break
        obj, i = dec.raw_decode(body, i)
        out.append(obj['event'])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--port-file')
    ap.add_argument('--out', required=True)
    ap.add_argument('--format', choices=['json', 'hec'], default='json')
    ap.add_argument('--fail', type=int, default=0)
    ap.add_argument('--token')
    ap.add_argument('--count-only', action='store_true')
    args = ap.parse_args()
    out = open(args.out, 'a', buffering=1)
    state = {'requests': 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'
        # The reply goes out as two writes (headers, body): with Nagle on, the body waits
        # for the client's delayed ACK (40 ms) on a kept-alive connection, which then
        # bounds a forwarder at one batch per 40 ms. A real collector does not do that.
        disable_nagle_algorithm = True

        def log_message(self, fmt, *a):
            pass

        def reply(self, code, text):
            data = text.encode()
            self.send_response(code)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            n = int(self.headers.get('Content-Length', '0'))
            body = self.rfile.read(n).decode('utf-8')
            state['requests'] += 1
            if state['requests'] <= args.fail:
                return self.reply(503, '{"text":"Server is busy","code":9}')
            if args.token is not None:
                want = ('Splunk ' if args.format == 'hec' else 'Bearer ') + args.token
                if self.headers.get('Authorization') != want:
                    return self.reply(401, '{"text":"Invalid token","code":4}')
            if args.count_only:
                out.write('count %d\n' % body.count('"metadata":'))
            else:
                lines = []
                for ev in events_of(body, args.format):
                    m = SEQ.search(ev.get('message', ''))
                    lines.append('%s %s\n' % (m.group(1) if m else -1, ev['metadata']['uid']))
                out.write(''.join(lines))
            self.reply(200, '{"text":"Success","code":0}')

    srv = http.server.HTTPServer(('127.0.0.1', args.port), Handler)
    if args.port_file:
        with open(args.port_file + '.tmp', 'w') as f:
            f.write('%d\n' % srv.server_address[1])
        import os
        os.rename(args.port_file + '.tmp', args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    sys.exit(main())
