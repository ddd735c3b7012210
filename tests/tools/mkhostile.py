#!/usr/bin/env python3
"""Builds hostile checkpoints for the hardening tests (test_hostile.sh):
inputs made to make a restore hang, allocate without bound, or write where
it should not. Every one must be refused with a one-line reason.

  mkhostile.py zstd-bomb OUT GIB        a zstd stream of about GIB/32 MiB
      that decodes to GIB GiB: a shard record for pages-1.img claiming
      4 GiB of file_data, then zeros as RLE blocks; no content size in
      the frame header ("claiming nothing")
  mkhostile.py names OUT N              a shard of N file names that all
      collide under an unseeded djb2 hash ("Ab" and "BA" blocks), each an
      empty file, no image_eof
  mkhostile.py manifest OUT CODEC RAW STREAM [NAME SIZE]...
      a complete crstream manifest for one stream file STREAM (its stored
      size and xxh128 taken from the file) claiming RAW raw bytes, listing
      the image files NAME of SIZE bytes
  mkhostile.py big-manifest OUT MIB     a syntactically valid manifest of
      MIB MiB (a long string field)
  mkhostile.py object-flood OUT MIB     a manifest of MIB MiB whose files
      array is full of empty objects ("{}" costs a parser ~1 KiB each)
  mkhostile.py shard OUT NAME TEXT [N]  a well-formed one-file image, the
      file TEXT repeated N times (default 1)
"""
import json
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mkcedana import marker  # noqa: E402  (the shard record encoder)

ZSTD_MAGIC = 0xFD2FB528
BLOCK = 128 * 1024


def zstd_block(kind, last, size, payload):
    """A zstd block: 3-byte header (last bit, type, size) and its content."""
    header = last | (kind << 1) | (size << 3)
    return struct.pack("<I", header)[:3] + payload


def zstd_bomb(out, gib):
    records = marker(0, 2, "pages-1.img") + marker(1, 3, 0xFFFFFFFF)
    with open(out, "wb") as f:
        # Frame header: no checksum, no content size, window 2^17.
        f.write(struct.pack("<I", ZSTD_MAGIC) + bytes([0x00, (17 - 10) << 3]))
        f.write(zstd_block(0, 0, len(records), records))
        blocks = gib * (1 << 30) // BLOCK
        f.write(zstd_block(1, 0, BLOCK, b"\0") * (blocks - 1))
        f.write(zstd_block(1, 1, BLOCK, b"\0"))


def colliding_names(n):
    bits = max(1, (n - 1).bit_length())
    for i in range(n):
        yield "".join("BA" if (i >> b) & 1 else "Ab" for b in range(bits)) + ".img"


def names(out, n):
    with open(out, "wb") as f:
        seq = 0
        for name in colliding_names(n):
            f.write(marker(seq, 2, name) + marker(seq + 1, 4, 1))
            seq += 2


def xxh128(path):
    return subprocess.check_output(["xxh128sum", path], text=True).split()[0]


def manifest(out, codec, raw, stream, files):
    m = {
        "format": "crstream-checkpoint",
        "format_version": 1,
        "complete": True,
        "streams": 1,
        "compression": codec,
        "level": 1,
        "checksum_algorithm": "xxh128",
        "stream_files": [{
            "file": os.path.basename(stream),
            "stored_bytes": os.path.getsize(stream),
            "raw_bytes": raw,
            "checksum": xxh128(stream),
        }],
        "files": [{"name": n, "size": s} for n, s in files],
    }
    with open(out, "w") as f:
        json.dump(m, f, indent=2)


def big_manifest(out, mib):
    with open(out, "w") as f:
        f.write('{"format": "crstream-checkpoint", "format_version": 1, "complete": true, '
                '"streams": 0, "files": [], "pad": "')
        chunk = "x" * (1 << 20)
        for _ in range(mib):
            f.write(chunk)
        f.write('"}\n')


def object_flood(out, mib):
    with open(out, "w") as f:
        f.write('{"format": "crstream-checkpoint", "format_version": 1, "complete": true, '
                '"streams": 0, "files": [{}')
        f.write(",{}" * (mib * (1 << 20) // 3))
        f.write(']}\n')


def shard(out, name, text, n):
    data = text.encode() * n
    with open(out, "wb") as f:
        f.write(marker(0, 2, name) + marker(1, 3, len(data)) + data + marker(2, 4, 1) +
                marker(3, 5, 1))


def main():
    cmd, out, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if cmd == "zstd-bomb":
        zstd_bomb(out, int(args[0]))
    elif cmd == "names":
        names(out, int(args[0]))
    elif cmd == "manifest":
        pairs = list(zip(args[3::2], (int(s) for s in args[4::2])))
        manifest(out, args[0], int(args[1]), args[2], pairs)
    elif cmd == "big-manifest":
        big_manifest(out, int(args[0]))
    elif cmd == "object-flood":
        object_flood(out, int(args[0]))
    elif cmd == "shard":
        shard(out, args[0], args[1], int(args[2]) if len(args) > 2 else 1)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
