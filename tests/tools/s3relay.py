#!/usr/bin/python3
"""s3relay: an HTTP relay between crstream and the S3 test server that cuts
the connection on a chosen request, for fault tests.

    s3relay.py --upstream 127.0.0.1:PORT --port-file FILE --log FILE
               [--method M] [--path RE] [--query RE] [--body RE]
               [--when before|after] [--times N]

Every request is relayed as is (the signatures stay valid) and logged as
"METHOD TARGET STATUS" in --log. A request that matches all of --method,
--path, --query and --body (regular expressions, searched) is cut instead,
logged as "CUT-BEFORE METHOD TARGET" or "CUT-AFTER METHOD TARGET STATUS":

    before  the server never sees it: the client's connection is reset
            once the whole request has arrived;
    after   the server carries it out, its answer is dropped and the
            client's connection reset (the client cannot know it happened).

--times N cuts the first N matching requests (default 0: every one). The
relay listens on a free port of 127.0.0.1 and writes "port=PORT" to
--port-file (for testtool wait-status); it exits when its parent does.
"""
import argparse
import os
import re
import socket
import struct
import sys
import threading


class Closed(Exception):
    pass


class Conn:
    """A socket with a read buffer, for HTTP/1.1 framing."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise Closed()
        self.buf += data

    def read_until(self, sep):
        while sep not in self.buf:
            self.fill()
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_some(self, limit):
        if not self.buf:
            self.fill()
        out, self.buf = self.buf[:limit], self.buf[limit:]
        return out


def header(head, name):
    m = re.search(rb"\r\n" + name.encode() + rb":\s*([^\r\n]*)", head, re.I)
    return m.group(1).strip().decode() if m else None


def body_chunks(conn, head, no_body):
    """Yields the message body's raw bytes (framing included) piece by piece."""
    if no_body:
        return
    if (header(head, "Transfer-Encoding") or "").lower() == "chunked":
        while True:
            line = conn.read_until(b"\r\n")
            yield line
            size = int(line.split(b";")[0], 16)
            if size == 0:
                yield conn.read_until(b"\r\n")  # no trailers from our peers
                return
            left = size + 2
            while left:
                piece = conn.read_some(left)
                left -= len(piece)
                yield piece
        return
    length = header(head, "Content-Length")
    left = int(length) if length is not None else 0
    while left:
        piece = conn.read_some(min(left, 1 << 20))
        left -= len(piece)
        yield piece


def reset(sock):
    """Close with a RST, as a crashing server would."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Relay:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.cuts = 0
        host, port = args.upstream.rsplit(":", 1)
        self.upstream = (host, int(port))

    def log(self, line):
        with self.lock:
            with open(self.args.log, "a") as f:
                f.write(line + "\n")

    def should_cut(self, method, target, body):
        a = self.args
        path, _, query = target.partition("?")
        if a.method and method != a.method:
            return False
        if a.path and not re.search(a.path, path):
            return False
        if a.query and not re.search(a.query, query):
            return False
        if a.body and not re.search(a.body.encode(), body):
            return False
        with self.lock:
            if a.times and self.cuts >= a.times:
                return False
            self.cuts += 1
            return True

    def serve(self, client_sock):
        client = Conn(client_sock)
        up = None
        try:
            up = Conn(socket.create_connection(self.upstream))
            while True:
                head = client.read_until(b"\r\n\r\n")
                method, target = head.split(b" ", 2)[:2]
                method, target = method.decode(), target.decode()
                body = b"".join(body_chunks(client, head, False))
                cut = self.should_cut(method, target, body)
                if cut and self.args.when == "before":
                    self.log("CUT-BEFORE %s %s" % (method, target))
                    return
                up.sock.sendall(head + body)
                rhead = up.read_until(b"\r\n\r\n")
                status = int(rhead.split(b" ", 2)[1])
                no_body = method == "HEAD" or status in (204, 304) or status < 200
                if cut:
                    for _ in body_chunks(up, rhead, no_body):
                        pass
                    self.log("CUT-AFTER %s %s %d" % (method, target, status))
                    return
                client.sock.sendall(rhead)
                for piece in body_chunks(up, rhead, no_body):
                    client.sock.sendall(piece)
                self.log("%s %s %d" % (method, target, status))
        except (Closed, OSError, ValueError, IndexError):
            pass
        finally:
            reset(client_sock)
            if up:
                up.sock.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upstream", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--method")
    p.add_argument("--path")
    p.add_argument("--query")
    p.add_argument("--body")
    p.add_argument("--when", choices=("before", "after"), default="before")
    p.add_argument("--times", type=int, default=0)
    args = p.parse_args()
    relay = Relay(args)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    lsock.settimeout(0.2)
    parent = os.getppid()
    open(args.log, "a").close()
    with open(args.port_file + ".tmp", "w") as f:
        f.write("port=%d\n" % lsock.getsockname()[1])
    os.rename(args.port_file + ".tmp", args.port_file)
    while os.getppid() == parent:
        try:
            c, _ = lsock.accept()
        except socket.timeout:
            continue
        c.settimeout(None)
        threading.Thread(target=relay.serve, args=(c,), daemon=True).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
