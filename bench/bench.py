#!/usr/bin/env python3
"""crstream end-to-end benchmark: plain CRIU (baselines A and B) against
crstream's streaming dump/restore, on the same subject in the same run.

Run it through bench/run.sh (which builds, provisions CRIU, mounts nothing
itself and runs this under build/tools/subreaper).  This file only measures
and reports; it asserts nothing about speed.  Every restore is verified by
the subject itself (SIGUSR1 -> state=verified); a failed verification, a
failed dump or a failed restore aborts the whole benchmark.

Method, in short (RESULTS.md repeats it):
  * One subject per configuration (size / kind) is started once and kept
    alive for the whole run: every repetition dumps the process that the
    previous repetition restored (same pid, same memory).
  * Repetitions are interleaved: for rep in 1..N: for row in rows, so slow
    drifts of a shared machine hit every row alike.  Medians are reported.
  * Wall times are measured here around each command (monotonic clock).
    "frozen" is CRIU's own frozen_time from its dump statistics (freeze ->
    kill): decoded from stats-dump for the baselines, from crstream's JSON
    (which reads the same statistic) for crstream.
"""

import argparse
import csv
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRSTREAM = os.path.join(ROOT, "build", "crstream")
SUBJECT = os.path.join(ROOT, "build", "subjects", "subject")
TESTTOOL = os.path.join(ROOT, "build", "tools", "testtool")
GB = 1e9  # CPU seconds per GB: 10^9 bytes of CRIU image
MB = 1e6

# crstream reports getrusage()'s ru_maxrss as its peak RSS, and Linux carries
# ru_maxrss over exec() from the process that forked: started straight from
# this Python process (~15-20 MB), crstream would report Python's size. A
# small bash in between forks crstream (the command is not bash's last), so
# the inherited floor is bash's ~4 MB, as when a user runs it from a shell.
LAUNCH = ["/bin/bash", "-c", '"$@"; exit $?', "launch"]

CODEC_EXT = {"none": "", "lz4": ".lz4", "zstd": ".zst", "gzip": ".gz"}
CODECS = ["none", "lz4", "zstd", "gzip"]
STREAMS = [1, 2, 4]


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def run(cmd, timeout=1800, shell=False, check=True, stdout=subprocess.PIPE):
    """Runs cmd; returns (CompletedProcess, wall seconds, CPU seconds of the
    command and the children it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(cmd, shell=shell, stdout=stdout, stderr=subprocess.PIPE,
                       timeout=timeout, text=True,
                       executable="/bin/bash" if shell else None)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if check and p.returncode != 0:
        shown = cmd if isinstance(cmd, str) else " ".join(cmd)
        raise BenchError("command failed (exit %d): %s\n--- stderr ---\n%s\n--- stdout ---\n%s"
                         % (p.returncode, shown, p.stderr[-4000:], (p.stdout or "")[-2000:]))
    return p, wall, cpu


def read_status(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                k, sep, v = line.rstrip("\n").partition("=")
                if sep:
                    out.setdefault(k, v)
    except FileNotFoundError:
        pass
    return out


def dir_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def read_varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def parse_proto(buf):
    """Minimal protobuf reader: {field: value or bytes} (last one wins)."""
    fields, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        field, wtype = key >> 3, key & 7
        if wtype == 0:
            fields[field], i = read_varint(buf, i)
        elif wtype == 2:
            n, i = read_varint(buf, i)
            fields[field] = buf[i:i + n]
            i += n
        elif wtype == 5:
            fields[field] = int.from_bytes(buf[i:i + 4], "little")
            i += 4
        elif wtype == 1:
            fields[field] = int.from_bytes(buf[i:i + 8], "little")
            i += 8
        else:
            raise BenchError("stats-dump: unsupported protobuf wire type %d" % wtype)
    return fields


def criu_dump_stats(images_dir):
    """CRIU's stats-dump: u32 0x55105940, u32 0x57093306, u32 len, then a
    stats_entry whose field 1 is dump_stats_entry {freezing_time=1,
    frozen_time=2, memdump_time=3, memwrite_time=4, pages_scanned=5,
    pages_skipped_parent=6, pages_written=7} (times in microseconds)."""
    path = os.path.join(images_dir, "stats-dump")
    with open(path, "rb") as f:
        data = f.read()
    m0, m1, n = (int.from_bytes(data[k:k + 4], "little") for k in (0, 4, 8))
    if m0 != 0x55105940 or m1 != 0x57093306:
        raise BenchError("%s: not a CRIU stats image (magic %08x %08x)" % (path, m0, m1))
    entry = parse_proto(data[12:12 + n])
    dump = parse_proto(entry.get(1, b""))
    names = {1: "freezing_us", 2: "frozen_us", 3: "memdump_us", 4: "memwrite_us",
             5: "pages_scanned", 7: "pages_written"}
    return {name: dump.get(f, 0) for f, name in names.items()}


def cpu_jiffies():
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def loadavg1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# --------------------------------------------------------------------------
# subjects
# --------------------------------------------------------------------------

class Subject:
    """A test subject (tests/subjects/subject.c) started once and kept alive
    across rows: dumps kill it, restores bring it back under the same pid."""

    def __init__(self, key, label, args, scratch):
        self.key, self.label, self.args = key, label, args
        self.dir = os.path.join(scratch, "subject-" + key)
        os.makedirs(self.dir, exist_ok=True)
        self.status = os.path.join(self.dir, "status")
        self.pid = None
        self.fill_ms = None
        self.alive = False

    def start(self):
        # setsid -f forks: the subject's parent exits at once, so the subject
        # is an orphan adopted by build/tools/subreaper (like a restored
        # tree), not a child of this script.
        cmd = ["setsid", "-f", SUBJECT] + self.args[:1] + ["--status", self.status] + self.args[1:]
        with open(os.path.join(self.dir, "stderr"), "w") as err:
            subprocess.run(cmd, cwd=self.dir, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=err, check=True)
        wait_status(self.status, ["state=ready"], 600,
                    "subject %s did not become ready: %s" % (self.label, self.stderr()))
        st = read_status(self.status)
        self.pid = int(st["pid"])
        self.fill_ms = st.get("fill_ms")
        self.alive = True
        log("  subject %s: pid %d (%s)" % (self.label, self.pid, st.get("detail", "")))

    def stderr(self):
        try:
            with open(os.path.join(self.dir, "stderr")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def counter(self):
        return int(read_status(self.status).get("counter", "0"))

    def wait_gone(self):
        run([TESTTOOL, "wait-gone", str(self.pid), "--timeout", "60"])
        self.alive = False

    def verify(self, counter_at_dump, timeout):
        """SIGUSR1 -> the subject checks all of its memory; anything but
        state=verified aborts the benchmark.  Returns the verify time (s)."""
        seq = int(read_status(self.status).get("verify_seq", "0"))
        try:
            os.kill(self.pid, signal.SIGUSR1)
        except ProcessLookupError:
            raise BenchError("VERIFICATION FAILED: subject %s (pid %d) is not running after the restore"
                             % (self.label, self.pid))
        t0 = time.monotonic()
        wait_status(self.status, ["verify_seq>%d" % seq], timeout,
                    "VERIFICATION FAILED: subject %s did not answer SIGUSR1" % self.label)
        elapsed = time.monotonic() - t0
        st = read_status(self.status)
        if st.get("state") != "verified" or st.get("pid") != str(self.pid):
            raise BenchError("VERIFICATION FAILED: subject %s: state=%s pid=%s: %s"
                             % (self.label, st.get("state"), st.get("pid"), st.get("detail")))
        wait_status(self.status, ["counter>%d" % counter_at_dump], 60,
                    "VERIFICATION FAILED: subject %s: counter stuck at %d after the restore"
                    % (self.label, counter_at_dump))
        self.alive = True
        return elapsed

    def kill(self):
        if self.pid and self.alive:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            subprocess.run([TESTTOOL, "wait-gone", str(self.pid), "--timeout", "30"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.alive = False


def wait_status(path, conds, timeout, message):
    p = subprocess.run([TESTTOOL, "wait-status", path] + conds + ["--timeout", str(timeout)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise BenchError("%s (%s)" % (message, p.stderr.strip()))


# --------------------------------------------------------------------------
# rows: one way of checkpointing
# --------------------------------------------------------------------------

class Row:
    def __init__(self, kind, streams=None, codec=None, target="tmpfs", sealed=False):
        self.kind, self.streams, self.codec, self.target = kind, streams, codec, target
        # sealed: streams encrypted with age, manifest signed, restored under
        # a trust policy (every chunk verified before CRIU sees it).
        self.sealed = sealed
        self.binary = CRSTREAM
        if kind == "A":
            self.id, self.label = "A", "A: criu dump/restore, tmpfs"
        elif kind == "B":
            self.id, self.label = "B", "B: criu, then tar + lz4 -1, tmpfs"
        else:
            self.id = "%s-%d-%s%s" % (codec, streams, target, "-sealed" if sealed else "")
            self.label = "crstream %s ×%d, %s%s" % (codec, streams, target,
                                                    ", age + signed" if sealed else "")

    def twin(self, binary, name):
        """The same row run with another crstream binary (bench/run.sh
        --against REV), interleaved with this one so both see the same
        machine."""
        t = Row(self.kind, self.streams, self.codec, self.target)
        t.kind, t.binary, t.of = "against", binary, self.id
        t.id, t.label = "%s@%s" % (self.id, name), "%s @%s" % (self.label, name)
        return t


class Bench:
    def __init__(self, opts, tmpfs, disk, scratch):
        self.o, self.tmpfs, self.disk, self.scratch = opts, tmpfs, disk, scratch
        self.criu = os.environ["CRSTREAM_CRIU"]
        self.records = []
        self.seq = 0
        self.config = os.path.join(scratch, "config.json")
        with open(self.config, "w") as f:
            f.write("{}\n")
        # crstream sees no machine configuration: only CRSTREAM_CRIU.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CRSTREAM_")}
        self.env["CRSTREAM_CRIU"] = self.criu
        self.env["CRSTREAM_CONFIG"] = self.config
        self.keys = None

    def sealing_keys(self):
        """An age identity and a signing key for the sealed rows, made once
        with crstream keygen: (dump args, restore args)."""
        if self.keys is None:
            kdir = os.path.join(self.scratch, "keys")
            os.makedirs(kdir, mode=0o700, exist_ok=True)
            ident, sign = os.path.join(kdir, "id.txt"), os.path.join(kdir, "sign")
            p, _, _ = run([CRSTREAM, "keygen", "--output", ident])
            recipient = p.stdout.strip()
            run([CRSTREAM, "keygen", "--sign", "--output", sign])
            self.keys = (["--recipient", recipient, "--sign-key", sign],
                         ["--identity", ident, "--trusted-key", sign + ".pub"])
        return self.keys

    # ---- one repetition of one row: dump, wait-gone, restore, verify ----

    def cycle(self, subj, row, rep):
        self.seq += 1
        base = self.tmpfs if row.target == "tmpfs" else self.disk
        work = os.path.join(base, "c%04d-%s" % (self.seq, row.id))
        logs = os.path.join(self.scratch, "logs")
        os.makedirs(logs, exist_ok=True)
        counter = subj.counter()
        stat0 = cpu_jiffies()
        rec = {"subject": subj.key, "row": row.id, "label": row.label, "kind": row.kind,
               "streams": row.streams, "codec": row.codec or ("lz4" if row.kind == "B" else "none"),
               "target": row.target, "rep": rep, "pid": subj.pid,
               "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        verify_timeout = 120 + 120 * max(1, subj.mib // 1024)
        if row.kind in ("A", "B"):
            images = os.path.join(work, "images")
            os.makedirs(images)
            dlog = os.path.join(logs, "c%04d-dump.log" % self.seq)
            rlog = os.path.join(logs, "c%04d-restore.log" % self.seq)
            # Same verbosity as crstream's own CRIU runs (-v4), log outside
            # the image directory.
            _, criu_wall, criu_cpu = run([self.criu, "dump", "-D", images, "-t", str(subj.pid),
                                          "-o", dlog, "-v4"])
            dump_wall, dump_cpu = criu_wall, criu_cpu
            st = criu_dump_stats(images)
            rec.update(frozen_ms=st["frozen_us"] / 1000, freezing_ms=st["freezing_us"] / 1000,
                       memdump_ms=st["memdump_us"] / 1000, memwrite_ms=st["memwrite_us"] / 1000,
                       pages_written=st["pages_written"])
            image_bytes = dir_bytes(images)
            stored = image_bytes
            if row.kind == "B":
                archive = os.path.join(work, "images.tar.lz4")
                _, c_wall, c_cpu = run("set -o pipefail; tar -C %s -cf - images | lz4 -1 -q > %s"
                                       % (work, archive), shell=True)
                dump_wall += c_wall
                dump_cpu += c_cpu
                rec["compress_ms"] = c_wall * 1000
                stored = os.path.getsize(archive)
                shutil.rmtree(images)  # what a user keeps is the archive
            subj.wait_gone()
            restore_cpu = 0.0
            restore_wall = 0.0
            if row.kind == "B":
                _, x_wall, x_cpu = run("set -o pipefail; lz4 -dc %s | tar -C %s -xf -" % (archive, work),
                                       shell=True)
                restore_wall += x_wall
                restore_cpu += x_cpu
                rec["decompress_ms"] = x_wall * 1000
            _, r_wall, r_cpu = run([self.criu, "restore", "-D", images, "-d", "-o", rlog, "-v4"])
            restore_wall += r_wall
            restore_cpu += r_cpu
            rec.update(dump_ms=dump_wall * 1000, restore_ms=restore_wall * 1000,
                       criu_dump_ms=criu_wall * 1000, criu_restore_ms=r_wall * 1000,
                       image_bytes=image_bytes, stored_bytes=stored,
                       all_cpu_dump_s=dump_cpu, all_cpu_restore_s=restore_cpu)
        else:
            os.makedirs(work)
            cmd = [row.binary, "dump", str(subj.pid), "--dir", work, "--name", "ck",
                   "--streams", str(row.streams), "--compression", row.codec,
                   "--json", "--no-progress"]
            if row.codec != "none":
                cmd += ["--level", "1"]
            dump_keys, restore_keys = self.sealing_keys() if row.sealed else ([], [])
            p, d_wall, d_cpu = run(LAUNCH + cmd + dump_keys, stdout=subprocess.PIPE)
            dj = json.loads(p.stdout)
            subj.wait_gone()
            p, r_wall, r_cpu = run(LAUNCH + [row.binary, "restore", "--path", os.path.join(work, "ck"),
                                             "--json"] + restore_keys, stdout=subprocess.PIPE)
            rj = json.loads(p.stdout)
            if rj.get("pid") != subj.pid:
                raise BenchError("restore of %s came back as pid %s, not %d" % (row.id, rj.get("pid"), subj.pid))
            rec.update(frozen_ms=dj["frozen_ms"], dump_ms=d_wall * 1000, restore_ms=r_wall * 1000,
                       criu_dump_ms=dj.get("criu_ms"), criu_restore_ms=rj.get("criu_ms"),
                       json_dump_ms=dj.get("dump_ms"), json_restore_ms=rj.get("restore_ms"),
                       image_bytes=dj["image_bytes"], stored_bytes=dj["stored_bytes"],
                       dump_cpu_s=dj["cpu_seconds"], restore_cpu_s=rj["cpu_seconds"],
                       dump_rss_bytes=dj["peak_rss_bytes"], restore_rss_bytes=rj["peak_rss_bytes"],
                       restore_peak_buffered_bytes=rj.get("peak_buffered_bytes"),
                       restore_spilled_bytes=rj.get("spilled_bytes"),
                       all_cpu_dump_s=d_cpu, all_cpu_restore_s=r_cpu)
        rec["verify_s"] = subj.verify(counter, verify_timeout)
        stat1 = cpu_jiffies()
        rec["machine_busy_cores"] = (os.cpu_count() or 1) * (stat1[0] - stat0[0]) / max(1, stat1[1] - stat0[1])
        rec["loadavg1"] = loadavg1()
        rec["ratio"] = rec["image_bytes"] / rec["stored_bytes"] if rec["stored_bytes"] else None
        shutil.rmtree(work)
        self.records.append(rec)
        log("    %-34s rep %d: frozen %7.0f ms  dump %7.0f ms  restore %7.0f ms  stored %7.1f MB  verified"
            % (row.label, rep, rec["frozen_ms"], rec["dump_ms"], rec["restore_ms"], rec["stored_bytes"] / MB))
        return rec

    # ---- a group: one subject, some rows, N interleaved repetitions ----

    def group(self, subj, rows, repeat):
        log("== %s: %d rows x %d repetitions (interleaved)" % (subj.label, len(rows), repeat))
        subj.start()
        try:
            if self.o.warmup:
                # One unrecorded cycle first: loads binaries and libraries,
                # faults in CRIU's and the kernel's caches.
                log("    (warm-up cycle, not recorded)")
                n = len(self.records)
                self.cycle(subj, rows[0], 0)
                del self.records[n:]
            for rep in range(1, repeat + 1):
                for row in rows:
                    self.cycle(subj, row, rep)
        finally:
            subj.kill()


# --------------------------------------------------------------------------
# summaries, tables, targets
# --------------------------------------------------------------------------

def summarize(records):
    """Median per (subject, row); ratios to the same subject's baseline A."""
    groups = {}
    for r in records:
        groups.setdefault((r["subject"], r["row"]), []).append(r)
    out = []
    for (subject, row), rs in groups.items():
        s = {"subject": subject, "row": row, "label": rs[0]["label"], "kind": rs[0]["kind"],
             "streams": rs[0]["streams"], "codec": rs[0]["codec"], "target": rs[0]["target"], "n": len(rs)}
        for key in ("frozen_ms", "dump_ms", "restore_ms", "image_bytes", "stored_bytes", "ratio",
                    "dump_cpu_s", "restore_cpu_s", "dump_rss_bytes", "restore_rss_bytes",
                    "all_cpu_dump_s", "all_cpu_restore_s", "criu_dump_ms", "criu_restore_ms",
                    "restore_spilled_bytes", "restore_peak_buffered_bytes", "compress_ms", "decompress_ms",
                    "verify_s", "machine_busy_cores", "loadavg1"):
            s[key] = median([r.get(key) for r in rs])
        for key in ("frozen_ms", "dump_ms", "restore_ms"):
            vals = [r[key] for r in rs]
            s[key + "_min"], s[key + "_max"] = min(vals), max(vals)
        gb = s["image_bytes"] / GB
        s["dump_cpu_s_per_gb"] = median([r["dump_cpu_s"] / (r["image_bytes"] / GB)
                                         for r in rs if r.get("dump_cpu_s") is not None])
        s["restore_cpu_s_per_gb"] = median([r["restore_cpu_s"] / (r["image_bytes"] / GB)
                                            for r in rs if r.get("restore_cpu_s") is not None])
        s["image_gb"] = gb
        out.append(s)
    by_key = {(s["subject"], s["row"]): s for s in out}
    for s in out:
        a = by_key.get((s["subject"], "A"))
        for key in ("frozen_ms", "dump_ms", "restore_ms"):
            s[key.replace("_ms", "_vs_A")] = s[key] / a[key] if a and a[key] else None
    return out


def fmt(v, spec="%.0f", none="–"):
    return none if v is None else spec % v


def spread(s):
    """Largest (max - min) / median over frozen, dump and restore, in %."""
    worst = 0.0
    for key in ("frozen_ms", "dump_ms", "restore_ms"):
        if s[key]:
            worst = max(worst, (s[key + "_max"] - s[key + "_min"]) / s[key])
    return "%.0f%%" % (100 * worst)


TABLE_HEAD = ("| way of checkpointing | frozen ms | dump ms | restore ms | stored MB | ratio "
              "| dump CPU s/GB | restore CPU s/GB | dump RSS MB | restore RSS MB "
              "| frozen ÷A | dump ÷A | restore ÷A | spread |\n"
              "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")


def table(summary, subject, row_order):
    rows = {s["row"]: s for s in summary if s["subject"] == subject}
    lines = [TABLE_HEAD]
    for rid in row_order:
        s = rows.get(rid)
        if not s:
            continue
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            s["label"], fmt(s["frozen_ms"]), fmt(s["dump_ms"]), fmt(s["restore_ms"]),
            fmt(s["stored_bytes"] / MB, "%.1f"), fmt(s["ratio"], "%.2f"),
            fmt(s["dump_cpu_s_per_gb"], "%.2f"), fmt(s["restore_cpu_s_per_gb"], "%.2f"),
            fmt(s["dump_rss_bytes"] and s["dump_rss_bytes"] / MB, "%.1f"),
            fmt(s["restore_rss_bytes"] and s["restore_rss_bytes"] / MB, "%.1f"),
            fmt(s["frozen_vs_A"], "%.2f"), fmt(s["dump_vs_A"], "%.2f"), fmt(s["restore_vs_A"], "%.2f"),
            spread(s)))
    return "\n".join(lines)


def targets(summary, main):
    """The issue's target ratios, evaluated on the main subject, tmpfs rows.
    Returns a list of (target, measured text, met: True/False/None)."""
    rows = {s["row"]: s for s in summary if s["subject"] == main}
    A, B = rows.get("A"), rows.get("B")
    g = rows.get
    out = []

    def ratio_target(text, num, den, limit, num_desc, den_desc):
        if num is None or den is None:
            out.append((text, "not measured in this run", None))
            return
        r = num / den
        out.append((text, "%.2f× (%s %.0f ms / %s %.0f ms)" % (r, num_desc, num, den_desc, den), r <= limit))

    l2, l1 = g("lz4-2-tmpfs"), g("lz4-1-tmpfs")
    n1, n2 = g("none-1-tmpfs"), g("none-2-tmpfs")
    val = lambda s, k: s[k] if s else None
    ratio_target("dump lz4 ×2: frozen ≤ 0.35 × baseline A frozen", val(l2, "frozen_ms"), val(A, "frozen_ms"),
                 0.35, "frozen", "A frozen")
    ratio_target("dump lz4 ×2: frozen ≤ 0.25 × baseline B dump+compress", val(l2, "frozen_ms"),
                 val(B, "dump_ms"), 0.25, "frozen", "B dump+compress")
    ratio_target("restore lz4 ×2 ≤ 1.2 × baseline A restore", val(l2, "restore_ms"), val(A, "restore_ms"),
                 1.2, "restore", "A restore")
    ratio_target("uncompressed ×1: frozen ≤ 1.0 × A frozen", val(n1, "frozen_ms"), val(A, "frozen_ms"),
                 1.0, "frozen", "A frozen")
    ratio_target("uncompressed ×2: frozen ≤ 0.6 × A frozen", val(n2, "frozen_ms"), val(A, "frozen_ms"),
                 0.6, "frozen", "A frozen")

    nones = [s for s in rows.values() if s["kind"] == "crstream" and s["codec"] == "none"
             and s["target"] == "tmpfs"]
    crs = [s for s in rows.values() if s["kind"] == "crstream"]

    def worst(text, items, key, limit, unit, scale=1.0):
        items = [s for s in items if s.get(key) is not None]
        if not items:
            out.append((text, "not measured in this run", None))
            return
        w = max(items, key=lambda s: s[key])
        b = min(items, key=lambda s: s[key])
        ok = sum(1 for s in items if s[key] * scale <= limit)
        out.append((text, "worst %.2f %s (%s), best %.2f (%s); %d of %d rows within"
                    % (w[key] * scale, unit, w["row"], b[key] * scale, b["row"], ok, len(items)),
                    w[key] * scale <= limit))

    worst("crstream CPU ≤ 0.1 s/GB captured, uncompressed", nones, "dump_cpu_s_per_gb", 0.1, "s/GB")
    worst("crstream CPU ≤ 0.5 s/GB served, uncompressed", nones, "restore_cpu_s_per_gb", 0.5, "s/GB")
    worst("peak RSS ≤ 8 MB during capture (every crstream row)", crs, "dump_rss_bytes", 8.0, "MB", 1 / MB)
    for s in crs:
        s["restore_rss_frac"] = s["restore_rss_bytes"] / s["image_bytes"] if s.get("restore_rss_bytes") else None
    worst("peak RSS ≤ 10% of image size during restore (every crstream row)", crs, "restore_rss_frac", 0.10,
          "of the image")
    if l1 and l2:
        sp = l1["dump_ms"] / l2["dump_ms"]
        spf = l1["frozen_ms"] / l2["frozen_ms"]
        out.append(("lz4: 1 → 2 streams speeds the dump up ≥ 1.7×",
                    "%.2f× dump wall (%.0f → %.0f ms); frozen %.2f× (%.0f → %.0f ms)"
                    % (sp, l1["dump_ms"], l2["dump_ms"], spf, l1["frozen_ms"], l2["frozen_ms"]), sp >= 1.7))
    else:
        out.append(("lz4: 1 → 2 streams speeds the dump up ≥ 1.7×", "not measured in this run", None))
    # Trusted checkpoints (bench/run.sh --crypto): the same row sealed, same run.
    if g("lz4-2-tmpfs-sealed"):
        sealed = g("lz4-2-tmpfs-sealed")
        ratio_target("lz4 ×2 encrypted + signed: frozen ≤ 1.1 × unsealed lz4 ×2", val(sealed, "frozen_ms"),
                     val(l2, "frozen_ms"), 1.1, "sealed frozen", "frozen")
        ratio_target("lz4 ×2 encrypted + signed, restored under a trust policy: restore ≤ 1.1 × unsealed",
                     val(sealed, "restore_ms"), val(l2, "restore_ms"), 1.1, "sealed restore", "restore")
    # --against REV: this tree against another revision, row by row, same run.
    for t in sorted((s for s in rows.values() if s["kind"] == "against"), key=lambda s: s["row"]):
        this = g(t["row"].split("@")[0])
        name = t["row"].split("@", 1)[1]
        ratio_target("%s: restore ≤ 1.03 × the same row @%s" % (t["label"].split(" @")[0], name),
                     val(this, "restore_ms"), val(t, "restore_ms"), 1.03, "restore", "@" + name)
        ratio_target("%s: frozen ≤ 1.03 × the same row @%s" % (t["label"].split(" @")[0], name),
                     val(this, "frozen_ms"), val(t, "frozen_ms"), 1.03, "frozen", "@" + name)
    return out


def targets_md(tlist):
    lines = ["| target | measured | |", "|---|---|---|"]
    for text, measured, met in tlist:
        lines.append("| %s | %s | %s |" % (text, measured,
                                           "**met**" if met else "not measured" if met is None else "**not met**"))
    return "\n".join(lines)


# --------------------------------------------------------------------------
# charts (gnuplot)
# --------------------------------------------------------------------------

def charts(summary, plan, outdir):
    """Two PNG charts; returns their paths (empty if gnuplot is missing)."""
    if not shutil.which("gnuplot"):
        log("gnuplot not found: no charts")
        return []
    made = []
    data = os.path.join(outdir, "chart-size.dat")
    scale = [s for s in summary if s["subject"] in plan["scaling_subjects"]]
    with open(data, "w") as f:
        f.write("# image_GiB A_frozen_s A_restore_s lz4x2_frozen_s lz4x2_dump_s lz4x2_restore_s\n")
        sizes = sorted({s["image_bytes"] for s in scale if s["row"] == "A"})
        for key in plan["scaling_subjects"]:
            a = next((s for s in scale if s["subject"] == key and s["row"] == "A"), None)
            l = next((s for s in scale if s["subject"] == key and s["row"] == "lz4-2-tmpfs"), None)
            if not a or not l:
                continue
            f.write("%.3f %.3f %.3f %.3f %.3f %.3f\n" % (
                a["image_bytes"] / 2**30, a["frozen_ms"] / 1000, a["restore_ms"] / 1000,
                l["frozen_ms"] / 1000, l["dump_ms"] / 1000, l["restore_ms"] / 1000))
    if sizes and len(sizes) >= 2:
        png = os.path.join(outdir, "chart-size.png")
        gp = """set terminal pngcairo size 900,560 font ',10'
set output '{png}'
set title 'Time vs image size (mem subject; medians)'
set xlabel 'CRIU image size (GiB)'
set ylabel 'seconds'
set key top left
set grid
set logscale xy 2
plot '{d}' u 1:2 w lp lw 2 pt 7 lc rgb '#555555' t 'A criu: frozen', \\
     '{d}' u 1:3 w lp lw 2 pt 5 dt 2 lc rgb '#555555' t 'A criu: restore', \\
     '{d}' u 1:4 w lp lw 2 pt 7 lc rgb '#1f77b4' t 'crstream lz4 x2: frozen', \\
     '{d}' u 1:5 w lp lw 1 pt 6 lc rgb '#1f77b4' t 'crstream lz4 x2: dump total', \\
     '{d}' u 1:6 w lp lw 2 pt 5 dt 2 lc rgb '#d62728' t 'crstream lz4 x2: restore'
""".format(png=png, d=data)
        if gnuplot(gp):
            made.append(png)

    main = plan["main_subject"]
    rows = {s["row"]: s for s in summary if s["subject"] == main}
    data = os.path.join(outdir, "chart-streams.dat")
    with open(data, "w") as f:
        f.write("# streams " + " ".join("%s_frozen_s %s_restore_s %s_dump_s" % (c, c, c) for c in CODECS) + "\n")
        for n in STREAMS:
            vals = []
            for c in CODECS:
                s = rows.get("%s-%d-tmpfs" % (c, n))
                vals += [s[k] / 1000 if s else float("nan") for k in ("frozen_ms", "restore_ms", "dump_ms")]
            f.write("%d %s\n" % (n, " ".join("%.3f" % v for v in vals)))
    a = rows.get("A")
    if a and any(("%s-%d-tmpfs" % (c, n)) in rows for c in CODECS for n in STREAMS):
        png = os.path.join(outdir, "chart-streams.png")
        colors = {"none": "#2ca02c", "lz4": "#1f77b4", "zstd": "#9467bd", "gzip": "#ff7f0e"}
        plots_f, plots_r, plots_d = [], [], []
        for i, c in enumerate(CODECS):
            plots_f.append("'%s' u 1:%d w lp lw 2 pt 7 lc rgb '%s' t '%s'" % (data, 2 + 3 * i, colors[c], c))
            plots_r.append("'%s' u 1:%d w lp lw 2 pt 5 lc rgb '%s' t '%s'" % (data, 3 + 3 * i, colors[c], c))
            plots_d.append("'%s' u 1:%d w lp lw 2 pt 9 lc rgb '%s' t '%s'" % (data, 4 + 3 * i, colors[c], c))
        gp = """set terminal pngcairo size 1500,480 font ',10'
set output '{png}'
set multiplot layout 1,3 title 'Time vs stream count ({label}, tmpfs; medians)'
set xlabel 'streams'
set ylabel 'seconds'
set xtics (1,2,4)
set xrange [0.8:4.2]
set yrange [0:*]
set grid
set key top right
set title 'dump: frozen (freeze -> kill)'
plot {pf}, {af} w l lw 2 dt 2 lc rgb '#555555' t 'A criu frozen'
set title 'dump total (wall)'
plot {pd}, {ad} w l lw 2 dt 2 lc rgb '#555555' t 'A criu dump'
set title 'restore (wall)'
plot {pr}, {ar} w l lw 2 dt 2 lc rgb '#555555' t 'A criu restore'
unset multiplot
""".format(png=png, label=plan["main_label"], pf=", ".join(plots_f), pr=", ".join(plots_r), pd=", ".join(plots_d), ad="%.3f" % (a["dump_ms"] / 1000),
           af="%.3f" % (a["frozen_ms"] / 1000), ar="%.3f" % (a["restore_ms"] / 1000))
        if gnuplot(gp):
            made.append(png)
    return made


def gnuplot(script):
    p = subprocess.run(["gnuplot"], input=script, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        log("gnuplot failed: %s" % p.stderr.strip())
        return False
    return True


# --------------------------------------------------------------------------
# machine description
# --------------------------------------------------------------------------

def machine_info(criu):
    info = {"cores": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            info["cpu"] = m.group(1).strip() if m else "?"
    except OSError:
        info["cpu"] = "?"
    try:
        with open("/proc/meminfo") as f:
            info["mem_gib"] = round(int(re.search(r"MemTotal:\s*(\d+)", f.read()).group(1)) / 2**20, 1)
    except (OSError, AttributeError):
        info["mem_gib"] = None
    p = subprocess.run([criu, "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    m = re.search(r"Version:\s*(\S+)", p.stdout)
    info["criu"] = m.group(1) if m else "?"
    g = lambda *a: subprocess.run(["git", "-C", ROOT] + list(a), stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True).stdout.strip()
    info["commit"] = g("rev-parse", "--short=12", "HEAD")
    info["branch"] = g("rev-parse", "--abbrev-ref", "HEAD")
    info["src_dirty"] = bool(g("status", "--porcelain", "--", "src", "Makefile", "proto"))
    try:
        with open("/proc/loadavg") as f:
            info["loadavg_start"] = " ".join(f.read().split()[:3])
    except OSError:
        pass
    lscpu = subprocess.run(["lscpu"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    m = re.search(r"^Hypervisor vendor:\s*(\S+)", lscpu, re.M)
    info["virt"] = ("%s VM" % m.group(1)) if m else "no hypervisor reported"
    return info


# --------------------------------------------------------------------------
# plan
# --------------------------------------------------------------------------

def make_plan(o):
    main_rows = [Row("A"), Row("B")]
    if o.quick:
        crs = [("none", 1), ("none", 2), ("lz4", 1), ("lz4", 2), ("lz4", 4), ("zstd", 2), ("gzip", 2)]
        main_rows += [Row("crstream", n, c, "tmpfs") for c, n in crs]
        main_rows += [Row("crstream", 2, "lz4", "disk")]
    else:
        for target in ("tmpfs", "disk"):
            for c in CODECS:
                for n in STREAMS:
                    main_rows.append(Row("crstream", n, c, target))
    if o.crypto:
        # Right after its unsealed twin, so that both see the same machine.
        i = next((k for k, r in enumerate(main_rows) if r.id == "lz4-2-tmpfs"), None)
        sealed = Row("crstream", 2, "lz4", "tmpfs", sealed=True)
        if i is None:
            main_rows += [Row("crstream", 2, "lz4", "tmpfs"), sealed]
        else:
            main_rows.insert(i + 1, sealed)
    if o.rows:
        rx = re.compile(o.rows)
        main_rows = [r for r in main_rows if r.id == "A" or rx.search(r.id)]
    if o.against_bin:
        twins = []
        for r in main_rows:
            twins.append(r)
            # Not the sealed row: the other revision may have no keys.
            if r.kind == "crstream" and not r.sealed:
                twins.append(r.twin(o.against_bin, o.against_name))
        main_rows = twins
    plan = {"groups": [], "scaling_subjects": [], "main_subject": "mem-%d" % o.mib,
            "main_label": "mem %d MiB" % o.mib}
    plan["groups"].append(("mem-%d" % o.mib, "mem %d MiB" % o.mib, ["mem", "--mib", str(o.mib)], o.mib,
                           main_rows))
    if not o.no_threads:
        t_rows = [Row("A"), Row("B"), Row("crstream", 1, "none"), Row("crstream", 2, "none"),
                  Row("crstream", 1, "lz4"), Row("crstream", 2, "lz4"), Row("crstream", 4, "lz4")]
        if o.quick:
            t_rows = [Row("A"), Row("crstream", 2, "none"), Row("crstream", 2, "lz4")]
        mib = o.threads_mib
        plan["groups"].append(("threads-%d" % o.threads, "threads %d × %d MiB" % (o.threads, mib // o.threads),
                               ["threads", "--threads", str(o.threads), "--mib", str(mib)], mib, t_rows))
    if not o.no_scaling:
        sizes = [s for s in o.scaling_sizes if s != o.mib]
        for s in sorted(set(sizes + [o.mib])):
            plan["scaling_subjects"].append("mem-%d" % s)
        for s in sizes:
            rows = [Row("A"), Row("crstream", 2, "lz4")]
            plan["groups"].append(("mem-%d" % s, "mem %d MiB" % s, ["mem", "--mib", str(s)], s, rows))
    return plan


def mem_available_mib():
    with open("/proc/meminfo") as f:
        return int(re.search(r"MemAvailable:\s*(\d+)", f.read()).group(1)) // 1024


# --------------------------------------------------------------------------
# output files
# --------------------------------------------------------------------------

def write_outputs(outdir, records, summary):
    os.makedirs(outdir, exist_ok=True)
    keys = []
    for r in records:
        for k in r:
            if k not in keys:
                keys.append(k)
    with open(os.path.join(outdir, "raw.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in records:
            w.writerow(r)
    skeys = []
    for s in summary:
        for k in s:
            if k not in skeys:
                skeys.append(k)
    with open(os.path.join(outdir, "summary.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=skeys)
        w.writeheader()
        for s in summary:
            w.writerow(s)


def report_text(meta, plan, summary, tlist, chart_paths, rel_to, notes_md):
    """The Markdown report: printed on stdout and, with --update-results,
    bench/RESULTS.md."""
    m = meta["machine"]
    out = []
    out.append("# crstream benchmark results\n")
    out.append("Generated by `bench/run.sh %s` on %s (UTC), %s of benchmarking. "
               "Raw per-run numbers: `%s`.\n" % (
                   " ".join(meta["argv"]), meta["date"], meta["duration"],
                   os.path.relpath(os.path.join(meta["outdir"], "raw.csv"), ROOT)))
    out.append("**Machine:** %s cores (%s, %s), %s GiB RAM, Linux %s; CRIU %s; crstream %s (branch %s%s). "
               "Load average at the start: %s.\n" % (
                   m["cores"], m["cpu"], m["virt"], m["mem_gib"], m["kernel"], m["criu"], m["commit"],
                   m["branch"], ", src/ modified" if m["src_dirty"] else "", m.get("loadavg_start", "?")))
    runs = meta.get("load")
    if runs:
        out.append("**Load during the run** (the machine is shared; other jobs run on the same 2 cores): "
                   "1-min load average median %.1f (%.1f–%.1f); CPUs busy during a cycle, median %.2f of %s "
                   "cores (max %.2f). Spread columns show how much repetitions differed.\n" % (
                       runs["load_med"], runs["load_min"], runs["load_max"], runs["busy_med"], m["cores"],
                       runs["busy_max"]))
    a = next((s for s in summary if s["subject"] == plan["main_subject"] and s["row"] == "A"), None)
    l2 = next((s for s in summary if s["subject"] == plan["main_subject"] and s["row"] == "lz4-2-tmpfs"), None)
    b = next((s for s in summary if s["subject"] == plan["main_subject"] and s["row"] == "B"), None)
    if a and l2:
        out.append("## Headline (%s, medians of %d)\n" % (plan["main_label"], meta["repeat"]))
        out.append("- crstream lz4 ×2 to tmpfs: frozen **%.0f ms = %.2f× baseline A** (%.0f ms)%s; "
                   "restore **%.0f ms = %.2f× A** (%.0f ms); stored %.0f MB vs A's %.0f MB (%.2f:1)." % (
                       l2["frozen_ms"], l2["frozen_vs_A"], a["frozen_ms"],
                       ", %.2f× baseline B's dump+compress (%.0f ms)" % (l2["frozen_ms"] / b["dump_ms"], b["dump_ms"])
                       if b else "",
                       l2["restore_ms"], l2["restore_vs_A"], a["restore_ms"], l2["stored_bytes"] / MB,
                       a["stored_bytes"] / MB, l2["ratio"]))
        for rid, what in (("none-1-tmpfs", "uncompressed ×1"), ("none-2-tmpfs", "uncompressed ×2"),
                          ("zstd-2-tmpfs", "zstd ×2"), ("lz4-2-disk", "lz4 ×2 to disk")):
            s = next((x for x in summary if x["subject"] == plan["main_subject"] and x["row"] == rid), None)
            if s:
                out.append("- crstream %s: frozen %.2f× A, restore %.2f× A, stored %.0f MB." % (
                    what, s["frozen_vs_A"], s["restore_vs_A"], s["stored_bytes"] / MB))
        out.append("")
    out.append("## Targets (reported, not asserted)\n")
    out.append("Evaluated on %s, tmpfs rows, medians. \"A frozen\" is plain CRIU's own frozen time "
               "(its dump wall time is within a few %% of it, see the table).\n" % plan["main_label"])
    out.append(targets_md(tlist) + "\n")
    for g in plan["groups"]:
        key, label = g["subject"], g["label"]
        title = {"mem": "Main table", "threads": "Multi-threaded subject"}[key.split("-")[0]]
        if key != plan["main_subject"] and key.startswith("mem"):
            title = "Scaling"
        out.append("## %s: %s\n" % (title, label))
        out.append(table(summary, key, g["rows"]) + "\n")
    if plan["scaling_subjects"]:
        out.append("## Scaling: image size\n")
        lines = ["| subject | image MiB | A frozen ms | A restore ms | lz4 ×2 frozen ms | lz4 ×2 dump ms "
                 "| lz4 ×2 restore ms | frozen ÷A | restore ÷A | restore RSS MB |", "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
        for key in plan["scaling_subjects"]:
            a_ = next((s for s in summary if s["subject"] == key and s["row"] == "A"), None)
            l_ = next((s for s in summary if s["subject"] == key and s["row"] == "lz4-2-tmpfs"), None)
            if a_ and l_:
                lines.append("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %.0f |" % (
                    key, a_["image_bytes"] / 2**20, a_["frozen_ms"], a_["restore_ms"], l_["frozen_ms"],
                    l_["dump_ms"], l_["restore_ms"], l_["frozen_vs_A"], l_["restore_vs_A"],
                    l_["restore_rss_bytes"] / MB))
        out.append("\n".join(lines) + "\n")
    if chart_paths:
        out.append("## Charts\n")
        for p in chart_paths:
            out.append("![%s](%s)\n" % (os.path.basename(p), os.path.relpath(p, rel_to)))
    out.append(METHOD_MD % meta)
    if notes_md:
        out.append(notes_md.rstrip() + "\n")
    return "\n".join(out)


METHOD_MD = """## How this was measured

- **Rows.** *A*: `criu dump -D DIR -t PID` then `criu restore -D DIR -d`, DIR
  on a tmpfs the script mounts (`mount -t tmpfs`). *B*: the same dump, then
  `tar -cf - DIR | lz4 -1 > DIR.tar.lz4` (the image directory is then
  removed); restore is `lz4 -dc | tar -x` and `criu restore`; the archive is
  on the same tmpfs. *crstream*: `crstream dump PID --streams N
  --compression C --level 1` (no level for `none`) into a directory on the
  tmpfs or on the root disk (`%(disk)s`), and `crstream restore --path`
  from there. All CRIU runs log with `-v4` (as crstream runs CRIU), logs
  outside the image directory for A and B. crstream runs with an empty
  config file (its defaults otherwise, e.g. `--memory-limit 64M` with spill
  to `$TMPDIR` = %(tmpdir)s).
- **Columns.** *frozen*: CRIU's `frozen_time` from its dump statistics
  (from the tasks frozen to the tasks killed; for crstream this includes
  its post-dump hook, which finishes, fsyncs and seals every stream before
  CRIU may kill): decoded from `stats-dump` for A and B, crstream's JSON
  `frozen_ms` (the same statistic) for crstream. *dump* / *restore*: wall
  time of the whole command(s), measured by the script (B: dump + tar|lz4;
  lz4 -dc|tar + restore). *stored*: bytes on the target (A: the image
  directory; B: the .tar.lz4; crstream: the streams). *ratio*: CRIU image
  bytes ÷ stored. *CPU s/GB* and *RSS*: crstream's own `cpu_seconds` and
  `peak_rss_bytes` (CPU from getrusage, RSS from VmHWM, crstream only, not CRIU; started from a
  small bash, see *Where the time goes*) per 10^9 bytes of
  CRIU image, captured (dump) or served (restore). *÷A*: the row's median
  over the same subject's baseline-A median. *spread*: the largest
  (max − min) ÷ median among frozen, dump and restore over the repetitions.
- **Repetitions.** %(repeat)d per row, interleaved (repetition 1 of every
  row, then repetition 2, ...) so that a slow phase of this shared machine
  hits all rows alike; one unrecorded warm-up cycle per subject first.
  Medians are reported; every per-run number is in the raw CSV.
- **Subject lifetime.** One subject per table, started once and kept alive:
  every repetition dumps the process that the previous restore brought back
  (same pid, same memory), then waits until the old pid is gone
  (`testtool wait-gone`; everything runs under `build/tools/subreaper`),
  restores, and verifies: SIGUSR1 makes the subject check every page
  (`state=verified`) and its counter must advance. A failed verification,
  dump or restore aborts the benchmark.
- **Subjects.** `mem N`: N MiB, ~40%% zero / ~30%% random / ~30%% text-like
  pages (compressible ~2.2:1). `threads T × M`: T threads, each rewriting
  its own region of random pages (incompressible) while being dumped.
- **Disk rows.** The root disk of a VM; caches cannot be dropped in a
  meaningful way here, so disk restores read mostly from the page cache and
  disk dumps are bounded by crstream's fsync of every stream. The tmpfs
  rows are the like-for-like comparison with A.
"""


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description="crstream benchmark (run through bench/run.sh)")
    ap.add_argument("--mib", type=int, default=1024, help="main mem subject size in MiB (default 1024)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions per row (>= 3, default 3)")
    ap.add_argument("--quick", action="store_true", help="fewer rows (about 7 minutes)")
    ap.add_argument("--rows", help="regex: only crstream rows whose id matches (A is always run)")
    ap.add_argument("--crypto", action="store_true",
                    help="add the row lz4-2-tmpfs-sealed (age-encrypted, signed, restored under a trust "
                         "policy) next to lz4-2-tmpfs; with --rows lz4-2-tmpfs --no-threads --no-scaling "
                         "only those (see bench/CRYPTO.md)")
    ap.add_argument("--against-bin", metavar="BIN",
                    help="another crstream binary: each main-subject crstream row is also run with it, "
                         "interleaved (bench/run.sh --against REV builds one from a git revision)")
    ap.add_argument("--against-name", default="other", help="the name of --against-bin's rows (e.g. its revision)")
    ap.add_argument("--no-threads", action="store_true", help="skip the multi-threaded subject")
    ap.add_argument("--threads", type=int, default=4, help="threads of the threads subject (default 4)")
    ap.add_argument("--threads-mib", type=int, default=512, help="threads subject memory (default 512)")
    ap.add_argument("--no-scaling", action="store_true", help="skip the 256 MiB / 4 GiB rows")
    ap.add_argument("--scaling-sizes", default="256,4096", help="other mem sizes for scaling (MiB)")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false")
    ap.add_argument("--update-results", action="store_true", help="write bench/RESULTS.md and its charts")
    ap.add_argument("--disk-dir", default="/var/tmp/crstream-bench", help="disk target (root disk)")
    ap.add_argument("--tmpfs", help="mounted tmpfs to use (bench/run.sh mounts one)")
    ap.add_argument("--from-results", metavar="DIR",
                    help="no benchmark: rebuild the report (and with --update-results bench/RESULTS.md) "
                         "from DIR/results.json")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    o = ap.parse_args()
    if o.repeat < 3:
        ap.error("--repeat must be at least 3 (medians of fewer are not worth reporting)")
    o.scaling_sizes = [int(x) for x in o.scaling_sizes.split(",") if x]
    if o.from_results:
        return rerender(o)
    if not o.tmpfs:
        ap.error("--tmpfs DIR is required (bench/run.sh mounts one and passes it)")

    started = time.monotonic()
    date = datetime.datetime.now(datetime.timezone.utc)
    stamp = date.strftime("%Y%m%dT%H%M%SZ")
    outdir = os.path.join(o.out, "%s-mem%d%s" % (stamp, o.mib, "-quick" if o.quick else ""))
    criu = os.environ.get("CRSTREAM_CRIU")
    if not criu:
        raise BenchError("CRSTREAM_CRIU is not set (bench/run.sh sets it)")
    plan = make_plan(o)

    # Memory: a subject of S MiB needs about 2.6 x S at peak (the process,
    # its image on tmpfs, B's archive or crstream's restore buffer).
    avail = mem_available_mib()
    kept = []
    for g in plan["groups"]:
        need = int(2.6 * g[3]) + 1024
        if need > avail:
            log("SKIPPED %s: needs about %d MiB of free memory, %d available" % (g[1], need, avail))
            plan["scaling_subjects"] = [k for k in plan["scaling_subjects"] if k != g[0]]
        else:
            kept.append(g)
    plan["groups"] = kept

    argv, skip = [], False
    for a in sys.argv[1:]:  # the tmpfs path is run.sh's business, not the user's
        if skip or a == "--tmpfs" or a.startswith("--tmpfs="):
            skip = a == "--tmpfs"
            continue
        argv.append(a)
    meta = {"argv": argv, "date": date.strftime("%Y-%m-%d %H:%M"), "repeat": o.repeat,
            "outdir": outdir, "disk": o.disk_dir, "tmpdir": os.environ.get("TMPDIR", "/tmp"),
            "machine": machine_info(criu)}
    log("crstream bench: %s; results to %s" % (", ".join(g[1] for g in plan["groups"]), outdir))
    log("subject policy: one subject per table kept alive; each repetition re-dumps the restored process")

    scratch = os.path.join(o.tmpfs, "scratch")
    os.makedirs(scratch, exist_ok=True)
    disk = os.path.join(o.disk_dir, stamp)
    os.makedirs(disk, exist_ok=True)
    bench = Bench(o, o.tmpfs, disk, scratch)
    failed = None
    try:
        for key, label, args, mib, rows in plan["groups"]:
            subj = Subject(key, label, args, scratch)
            subj.mib = mib
            bench.group(subj, rows, o.repeat)
    except BenchError as e:
        failed = str(e)
    except KeyboardInterrupt:
        failed = "interrupted"
    finally:
        shutil.rmtree(disk, ignore_errors=True)

    summary = summarize(bench.records)
    minutes = (time.monotonic() - started) / 60
    meta["duration"] = "%.1f min" % minutes
    os.makedirs(outdir, exist_ok=True)
    write_outputs(outdir, bench.records, summary)
    if failed:
        log("\n*** BENCHMARK ABORTED ***\n%s\n(partial raw data: %s)" % (failed, outdir))
        return 1

    jplan = dict(plan, groups=[{"subject": g[0], "label": g[1], "args": g[2], "mib": g[3],
                                "rows": [r.id for r in g[4]]} for g in plan["groups"]])
    render(meta, jplan, summary, bench.records, outdir, o.update_results)
    log("done in %.1f min; raw data in %s" % (minutes, outdir))
    return 0



def note_load(meta, records):
    """meta["load"]: the load average and busy cores over the run's cycles
    (the machine is shared; every report states it)."""
    loads = [r["loadavg1"] for r in records if r.get("loadavg1") is not None]
    busy = [r["machine_busy_cores"] for r in records if r.get("machine_busy_cores") is not None]
    if loads and busy:
        meta["load"] = {"load_med": median(loads), "load_min": min(loads), "load_max": max(loads),
                        "busy_med": median(busy), "busy_max": max(busy)}


def place_charts(paths, outdir, update_results):
    """The charts' paths and the directory the report links them from: the
    results directory, or bench/ (copied there) with --update-results."""
    if not update_results:
        return paths, outdir
    rel = os.path.join(ROOT, "bench")
    moved = []
    for p in paths:
        dst = os.path.join(rel, os.path.basename(p))
        shutil.copyfile(p, dst)
        moved.append(dst)
    return moved, rel

def render(meta, plan, summary, records, outdir, update_results):
    """Targets, charts, the Markdown report (stdout, report.md and, with
    update_results, bench/RESULTS.md) and results.json."""
    note_load(meta, records)
    tlist = targets(summary, plan["main_subject"])
    paths, rel = place_charts(charts(summary, plan, outdir), outdir, update_results)
    notes_path = os.path.join(ROOT, "bench", "where-the-time-goes.md")
    notes = open(notes_path).read() if os.path.exists(notes_path) else ""
    text = report_text(meta, plan, summary, tlist, paths, rel, notes)
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"meta": meta, "plan": plan,
                   "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in tlist],
                   "summary": summary, "runs": records}, f, indent=1)
    if update_results:
        with open(os.path.join(ROOT, "bench", "RESULTS.md"), "w") as f:
            f.write(text)
        log("wrote bench/RESULTS.md")
    print(text)


def rerender(o):
    """--from-results DIR: the report of an earlier run, from its results.json
    (e.g. after editing bench/where-the-time-goes.md)."""
    with open(os.path.join(o.from_results, "results.json")) as f:
        saved = json.load(f)
    meta = saved["meta"]
    meta["outdir"] = os.path.abspath(o.from_results)
    summary = summarize(saved["runs"])
    render(meta, saved["plan"], summary, saved["runs"], meta["outdir"], o.update_results)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log("*** BENCHMARK ABORTED ***\n%s" % e)
        sys.exit(1)
