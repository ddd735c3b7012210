"""Protobuf wire-format varints, for the test tools that write or read shard
markers by hand (tests/tools/mkcedana.py, tests/fuzz/corpus.py): they build
inputs byte by byte on purpose, independently of crstream's protobuf-c code.
"""


def varint(v):
    """The base-128 varint encoding of a non-negative integer."""
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def read_varint(b, i):
    """(value, index after it) of the varint starting at b[i]."""
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i
