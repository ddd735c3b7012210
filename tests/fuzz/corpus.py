#!/usr/bin/python3
"""Writes the fuzz harnesses' seed corpora (tests/fuzz/corpus/<harness>/)
from real checkpoints: the ones tests/fuzz/make-corpus.sh has just made with
the real CRIU through crstream, and the third-party shards in
tests/fixtures (criu-image-streamer 1.0.0, Cedana).

Seeds are kept small so that the fuzzer mutates the structure, not a
megabyte of page data: every shard keeps all its records (the real file
names, seq numbers and interleaving across shards, the real marker
encodings) but each file_data payload is cut to its first bytes, which hold
the CRIU image's magic and first entries.

    corpus.py CKPT-DIR FIXTURES-DIR OUT-DIR

CKPT-DIR holds the checkpoints make-corpus.sh names (see there); OUT-DIR is
tests/fuzz/corpus. The seed directories listed in OWNED are rewritten
whole; the others (S3, config) are left alone.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from protowire import read_varint, varint  # noqa: E402

SEPARATOR = b"\n--next-part--\n"  # tests/fuzz/fuzz.h FUZZ_SEPARATOR
# The seed directories this script writes whole (the others, S3 and config,
# come from elsewhere).
OWNED = ["fuzz_marker", "fuzz_shard_reader", "fuzz_manifest", "fuzz_layout", "fuzz_criu_request",
         "fuzz_files_patch"] + [f"fuzz_codec_{c}" for c in ("none", "lz4", "zstd", "gzip", "zlib")]
PAYLOAD_KEEP = 48                  # bytes of each file_data payload kept


def marker_fields(body):
    """The fields of a marker body: {field number: int or bytes}."""
    fields, i = {}, 0
    while i < len(body):
        key, i = read_varint(body, i)
        if key & 7 == 0:
            fields[key >> 3], i = read_varint(body, i)
        elif key & 7 == 2:
            n, i = read_varint(body, i)
            fields[key >> 3] = body[i:i + n]
            i += n
        else:
            raise ValueError("unexpected wire type in a marker")
    return fields


def records(shard):
    """(marker body, payload) for each record of a shard."""
    pos, out = 0, []
    while pos < len(shard):
        (n,) = struct.unpack_from("<I", shard, pos)
        body = shard[pos + 4:pos + 4 + n]
        pos += 4 + n
        data_len = marker_fields(body).get(3, 0)
        out.append((body, shard[pos:pos + data_len]))
        pos += data_len
    return out


def shrink(shard, keep=PAYLOAD_KEEP):
    """The shard with each payload cut to `keep` bytes, markers re-encoded
    only where their length changed (field order as the writer's)."""
    out = bytearray()
    for body, payload in records(shard):
        f = marker_fields(body)
        if 3 in f and f[3] > keep:
            payload = payload[:keep]
            body = (b"\x08" + varint(f[1]) if f.get(1) else b"") + b"\x18" + varint(len(payload))
        out += struct.pack("<I", len(body)) + body + payload
    return bytes(out)


class Corpus:
    def __init__(self, root):
        self.root = root
        self.count = {}

    def add(self, harness, name, data):
        d = os.path.join(self.root, harness)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        self.count[harness] = self.count.get(harness, 0) + 1


def compress(codec, data, level=1, cli_defaults=False):
    """The codec's standard format, made by the standard tools: with the
    frame settings crstream's encoders use, or (cli_defaults) the tools'
    defaults, which restore also meets (criu-image-streamer setups)."""
    if codec == "none":
        return data
    if codec == "zlib":
        return zlib.compress(data, level)
    if codec == "gzip" and cli_defaults:
        # As gzip compresses a file: its name goes into the header (FNAME).
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "img-0")
            with open(path, "wb") as f:
                f.write(data)
            return subprocess.run(["gzip", "-c", f"-{level}", path], stdout=subprocess.PIPE,
                                  check=True).stdout
    cmd = {
        "lz4": ["lz4", "-q", "-c", f"-{level}"] + ([] if cli_defaults else ["-B4", "-BX", "--no-frame-crc"]),
        "zstd": ["zstd", "-q", "-c", f"-{level}"] + ([] if cli_defaults else ["--check"]),
        "gzip": ["gzip", "-c", f"-{level}"] + ([] if cli_defaults else ["-n"]),
    }[codec]
    return subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True).stdout


def shard_seeds(c, name, shards, cedana=False):
    """fuzz_shard_reader: the options byte, then the shards; each way of
    consuming payloads, from regular files and from pipes."""
    joined = SEPARATOR.join(shards)
    for opts, how in ((0, "read"), (2, "skip"), (4, "splice")):
        for kind, bit in (("file", 0), ("pipe", 8)):
            c.add("fuzz_shard_reader", f"{name}-{how}-{kind}", bytes([opts | bit | cedana]) + joined)
    # Each shard limited to its length, as serve limits them to the raw
    # sizes a manifest records.
    c.add("fuzz_shard_reader", f"{name}-limited", bytes([0x10 | cedana]) + joined)


def marker_seeds(c, shards):
    """fuzz_marker: one body of each kind, and every distinct file name."""
    seen = set()
    for shard in shards:
        for body, _ in records(shard):
            f = marker_fields(body)
            key = f.get(2) or min(k for k in f if k != 1)
            if key in seen:
                continue
            seen.add(key)
            # Named without the pid in CRIU's file names, so that a new
            # run rewrites the same seeds.
            label = (b"filename-" + f[2].split(b"-")[0].split(b".")[0]).decode(errors="replace") \
                if 2 in f else {3: "file_data", 4: "file_eof", 5: "image_eof"}[key]
            c.add("fuzz_marker", label, body)


def codec_seeds(c, name, raw):
    for codec in ("none", "lz4", "zstd", "gzip", "zlib"):
        h = f"fuzz_codec_{codec}"
        # Options byte 0x31: 3-byte reads from below, 4 KiB reads above.
        frame = compress(codec, raw)
        c.add(h, f"{name}", b"\x31" + frame)
        if codec == "none":
            continue
        # Two frames, as a stream of concatenated members/frames.
        half = len(raw) // 2
        c.add(h, f"{name}-two-frames", b"\x24" + compress(codec, raw[:half]) + compress(codec, raw[half:]))
        c.add(h, f"{name}-cli-defaults", b"\x05" + compress(codec, raw, level=3, cli_defaults=True))
        c.add(h, "empty-frame", b"\x00" + compress(codec, b""))


def request(name):
    """A CRIU request as CRIU sends it: u32 length (host order), then the
    protobuf streamer_request {filename = 1}."""
    body = b"\x0a" + varint(len(name)) + name
    return struct.pack("=I", len(body)) + body


def chunk(tag, payload=b"", length=None):
    n = len(payload) if length is None else length
    return bytes([tag]) + struct.pack("<H", n) + payload


def request_seeds(c, name, files):
    """fuzz_criu_request: the files CRIU asked for on dump (each request
    followed by its pipe's read end) and on restore (the write end)."""
    for opts, kind, mode in ((0, 0, "capture"), (1, 1, "serve")):
        data = bytes([opts])
        for f in files:
            data += chunk(0, request(f.encode())) + chunk(1, length=kind)
        c.add("fuzz_criu_request", f"{name}-{mode}", data)


def listing(path, names=None):
    names = sorted(names if names is not None else os.listdir(path))
    return "".join(f"{os.path.getsize(os.path.join(path, n))} {n}\n" for n in names).encode()


def main():
    ck, fixtures, out = sys.argv[1:4]
    c = Corpus(out)
    for h in OWNED:
        shutil.rmtree(os.path.join(out, h), ignore_errors=True)

    # crstream checkpoints of the real CRIU (make-corpus.sh names them).
    all_shards = []
    for name in sorted(os.listdir(ck)):
        d = os.path.join(ck, name)
        manifest = open(os.path.join(d, "manifest.json"), "rb").read()
        m = json.loads(manifest)
        c.add("fuzz_manifest", name, manifest)
        c.add("fuzz_layout", name, listing(d) + SEPARATOR + manifest)
        if m["streams"] == 0:
            request_seeds(c, name, [f["name"] for f in m["files"]])
            files_img = open(os.path.join(d, "files.img"), "rb").read()
            # The port the subject listened on, if it did (make-corpus.sh).
            port = os.environ.get("CORPUS_LISTEN_PORT") if "files" in name else None
            spec = f"{port}:{int(port) + 1}" if port else "1:2"
            c.add("fuzz_files_patch", name, spec.encode() + SEPARATOR + files_img)
            c.add("fuzz_files_patch", f"{name}-two-remaps", (spec + ",1:2").encode() + SEPARATOR + files_img)
            c.add("fuzz_files_patch", f"{name}-image-only", files_img)
            continue
        if m["compression"] == "none":
            shards = [shrink(open(os.path.join(d, s["file"]), "rb").read()) for s in m["stream_files"]]
            all_shards += shards
            shard_seeds(c, name, shards)
            codec_seeds(c, name, shards[0])
    # A stub: what a dump writes first, and what an interrupted one leaves.
    stub = dict(m, complete=False, error="CRIU dump failed")
    c.add("fuzz_manifest", "incomplete", json.dumps(stub, indent=2).encode())
    c.add("fuzz_layout", "incomplete", SEPARATOR + json.dumps(stub).encode())

    # Third-party streamers' shards and directory layouts.
    for sub, nshards, cedana in (("criu-image-streamer-1.0.0", 2, 0),
                                 ("cedana-image-streamer", 2, 1),
                                 ("cedana-image-streamer/4-shards", 4, 1)):
        d = os.path.join(fixtures, sub)
        name = sub.replace("/", "-")
        shards = [shrink(open(os.path.join(d, f"img-{i}"), "rb").read()) for i in range(nshards)]
        all_shards += shards
        shard_seeds(c, name, shards, cedana)
        c.add("fuzz_layout", name, listing(d, [n for n in os.listdir(d) if os.path.isfile(os.path.join(d, n))]))
    marker_seeds(c, all_shards)

    for h, n in sorted(c.count.items()):
        print(f"  {h}: {n} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
