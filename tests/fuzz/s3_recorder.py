#!/usr/bin/python3
"""A recording HTTP proxy for the S3 seed corpora (tests/fuzz/s3-corpus.sh):
forwards every request to the real S3 endpoint unchanged (the Host header
too, so SigV4 signatures still match) and writes each answer's head and,
when it is a small XML document, its body as seeds.

    s3_recorder.py LISTEN-PORT UPSTREAM-PORT OUT-DIR

Seeds: OUT-DIR/fuzz_s3_header/NNN-METHOD-STATUS (the head as libcurl sees
it: status line and header lines, CRLF-terminated) and
OUT-DIR/fuzz_s3_xml/NNN-METHOD-STATUS (the body). Runs until killed.
"""
import http.client
import http.server
import itertools
import os
import sys

LISTEN, UPSTREAM, OUT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
XML_MAX = 16 << 10
counter = itertools.count(1)


def save(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        up = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=60)
        up.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            up.putheader(k, v)
        up.endheaders(body)
        r = up.getresponse()
        data = r.read()
        up.close()

        n = next(counter)
        name = f"{n:03d}-{self.command}-{r.status}"
        head = f"HTTP/1.1 {r.status} {r.reason}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in r.getheaders()) + "\r\n"
        save("fuzz_s3_header", name, head.encode("latin-1"))
        if data and len(data) <= XML_MAX and data.lstrip().startswith(b"<"):
            save("fuzz_s3_xml", name, data)

        # The body was read whole: it goes back with its length (a HEAD
        # answer keeps the object's).
        self.send_response_only(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(k, v)
        length = r.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", LISTEN), Proxy).serve_forever()
