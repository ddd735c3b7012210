#!/usr/bin/env python3
"""Builds a checkpoint in the layout of Cedana's streamer (the generation
with a small-file shard) from a plain CRIU image directory, for the restore
tests: `mkcedana.py IMAGES_DIR OUT_DIR N` writes OUT_DIR/img-0 .. img-(N-1).

The layout, from Cedana's capture code:
- shard 0 holds the small image files (everything but pages-*, ghost-file-*
  and non-.img files) and, last, metadata.json: a JSON list of every file
  name. Its markers are numbered by a counter of their own from 0, and it
  carries no image_eof.
- shards 1..N-1 hold the big files, chunked and spread over them, numbered
  by a second counter from 0; image_eof ends them.
- records are [u32 LE length][protobuf marker][payload], the marker being
  {uint64 seq = 1; oneof {string filename = 2; uint32 file_data = 3;
  bool file_eof = 4; bool image_eof = 5}}; encoded here by hand.
"""
import json
import os
import re
import struct
import sys

from protowire import varint

CHUNK = 256 * 1024 - 4096


def marker(seq, field, value):
    body = b""
    if seq:
        body += b"\x08" + varint(seq)
    if field == 2:
        name = value.encode()
        body += b"\x12" + varint(len(name)) + name
    else:
        body += bytes([field << 3]) + varint(value)
    return struct.pack("<I", len(body)) + body


def is_small(name):
    if not name.endswith(".img"):
        return False
    return not re.match(r"^(pages|ghost-file|rw-layer)-[0-9]+\.img$", name)


class Stream:
    """One seq counter writing over a set of shard files."""

    def __init__(self, shards):
        self.shards = shards
        self.seq = 0
        self.turn = 0

    def put(self, field, value, payload=b""):
        shard = self.shards[self.turn % len(self.shards)]
        self.turn += 1
        shard.write(marker(self.seq, field, value) + payload)
        self.seq += 1

    def file(self, name, data):
        self.put(2, name)
        for off in range(0, len(data), CHUNK):
            chunk = data[off:off + CHUNK]
            self.put(3, len(chunk), chunk)
        self.put(4, 1)


def main():
    src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if n < 2:
        sys.exit("mkcedana: Cedana's layout needs at least 2 shards")
    os.makedirs(out, exist_ok=True)
    shards = [open(os.path.join(out, "img-%d" % i), "wb") for i in range(n)]
    small = Stream(shards[:1])
    big = Stream(shards[1:])
    names = sorted(os.listdir(src))
    for name in names:
        with open(os.path.join(src, name), "rb") as f:
            data = f.read()
        (small if is_small(name) else big).file(name, data)
    small.file("metadata.json", json.dumps(names).encode())
    big.put(5, 1)
    for s in shards:
        s.close()


if __name__ == "__main__":
    main()
