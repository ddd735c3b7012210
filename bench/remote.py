#!/usr/bin/env python3
"""crstream over a rate-limited network to object storage, against what
users do today.  Run it through bench/remote.sh, which makes the two network
namespaces, the veth pair between them, starts Swift in the server namespace
and runs this in the client namespace under build/tools/subreaper.

Rows (same subject, same run, repetitions interleaved, medians reported):
  A  criu dump to local disk, then `aws s3 cp --recursive` up; restore:
     `aws s3 cp --recursive` down, then criu restore.
  B  criu dump, then `tar | lz4 -1 | aws s3 cp - s3://...` (one streamed,
     compressed archive); restore the reverse.
  C  criu dump straight into an s3fs mount of the bucket, criu restore
     from it (the mount is remounted in between: a restore elsewhere).
  D  crstream dump --dir s3://... / restore --path s3://..., N streams x
     codec.

Every restored subject checks all of its memory (SIGUSR1); a failed
verification, dump or restore aborts the run.  Bytes over the link are the
client veth's counters (/proc/net/dev of this namespace).  This measures and
reports; it asserts nothing about speed.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402  (the local benchmark's helpers)
from bench import BenchError, log, median, run  # noqa: E402

ROOT = B.ROOT
CRSTREAM = B.CRSTREAM
LINKEM = os.path.join(ROOT, "build", "tools", "linkem")
AWS = "/usr/bin/aws"	# Debian's awscli, its default settings
MB = 1e6
CODEC_LABEL = {"none": "none", "lz4": "lz4", "zstd": "zstd", "auto": "auto"}


# --------------------------------------------------------------------------
# links
# --------------------------------------------------------------------------

UNITS = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}


class Link:
    """RATE:DELAY, e.g. 1gbit:5ms (one-way delay); "unshaped" for neither."""

    def __init__(self, spec):
        self.spec = spec
        if spec == "unshaped":
            self.rate_bps, self.delay_us = None, 0
            self.label = "unshaped"
            return
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(kbit|mbit|gbit):(\d+(?:\.\d+)?)(us|ms)", spec)
        if not m:
            raise argparse.ArgumentTypeError("link %r: want RATE:DELAY like 1gbit:5ms" % spec)
        self.rate_bps = float(m.group(1)) * UNITS[m.group(2)]
        self.delay_us = int(float(m.group(3)) * (1000 if m.group(4) == "ms" else 1))
        self.label = "%s %s, %s ms one way" % (m.group(1), {"kbit": "kbit/s", "mbit": "Mbit/s",
                                                             "gbit": "Gbit/s"}[m.group(2)],
                                               ("%g" % (self.delay_us / 1000)))

    @property
    def key(self):
        return self.spec.replace(":", "-")

    def payload_MBps(self):
        """What TCP can carry at this rate: tbf counts every segment's
        Ethernet, IP and TCP headers (66 bytes per 1448 of payload)."""
        return None if self.rate_bps is None else self.rate_bps / 8 / MB * 1448 / 1514


class Net:
    """The link between the namespaces: tbf on each veth's egress (rate),
    linkem for the one-way delay."""

    def __init__(self, o):
        self.o = o
        self.linkem = None

    def _linkem_stop(self):
        if self.linkem:
            self.linkem.send_signal(signal.SIGTERM)
            try:
                _, err = self.linkem.communicate(timeout=10)
                for line in err.strip().splitlines():
                    log("    " + line)
            except subprocess.TimeoutExpired:
                self.linkem.kill()
                self.linkem.wait()
            self.linkem = None

    def set(self, link):
        self._linkem_stop()
        for ns, dev in ((self.o.ns_client, self.o.dev_client), (self.o.ns_server, self.o.dev_server)):
            subprocess.run(["tc", "-n", ns, "qdisc", "del", "dev", dev, "root"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if link.rate_bps:
                Bps = link.rate_bps / 8
                rtt = 2 * link.delay_us / 1e6
                # A bucket of ~1 ms at the rate (at least 256 KiB: a 64 KiB
                # TSO segment must fit), a queue of one bandwidth-delay
                # product (at least 1 MiB), as a router's buffer.
                burst = max(256 << 10, int(Bps * 0.001))
                limit = max(1 << 20, int(Bps * rtt))
                run(["tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate",
                     "%dbit" % link.rate_bps, "burst", str(burst), "limit", str(limit)])
        self.linkem = subprocess.Popen([LINKEM, str(link.delay_us), self.o.ns_client, self.o.ns_server],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if self.linkem.stdout.readline().strip() != "ready":
            err = self.linkem.stderr.read()
            raise BenchError("linkem did not start: %s" % err.strip())

    def stop(self):
        self._linkem_stop()

    def counters(self):
        """(bytes sent, bytes received) by the client's end of the link."""
        with open("/proc/net/dev") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name.strip() == self.o.dev_client:
                    v = rest.split()
                    return int(v[8]), int(v[0])
        raise BenchError("%s not in /proc/net/dev: not running in the client namespace?" % self.o.dev_client)


# --------------------------------------------------------------------------
# rows
# --------------------------------------------------------------------------

class Row:
    def __init__(self, kind, streams=None, codec=None, level=None):
        self.kind, self.streams, self.codec, self.level = kind, streams, codec, level
        if kind == "A":
            self.id, self.label = "A", "A: criu, then aws s3 cp --recursive"
        elif kind == "B":
            self.id, self.label = "B", "B: criu, then tar | lz4 -1 | aws s3 cp -"
        elif kind == "C":
            self.id, self.label = "C", "C: criu into an s3fs mount"
        else:
            lv = "" if codec in ("none", "lz4", "auto") else str(level)
            self.id = "%s%s-%d" % (codec, lv, streams)
            self.label = "D: crstream %s%s ×%d" % (codec, " -%d" % level if lv else "", streams)


def plan_rows(o, link, big):
    rows = [Row("A"), Row("B"), Row("C")]
    if big:
        d = [("lz4", None, 4), ("zstd", 1, 4), ("auto", None, 4)]
    elif o.quick:
        d = [("none", None, 4), ("lz4", None, 4), ("zstd", 1, 4), ("auto", None, 4)]
    else:
        d = [(c, l, n) for c, l in (("none", None), ("lz4", None), ("zstd", 1)) for n in (1, 2, 4, 8)]
        if link.rate_bps and link.rate_bps <= 1e9:
            d += [("zstd", 3, 4), ("zstd", 3, 8)]
        d += [("auto", None, 4), ("auto", None, 8)]
    rows += [Row("D", n, c, l) for c, l, n in d]
    want = o.fast_rows if o.fast_rows and link.rate_bps and link.rate_bps > 1e9 else o.rows
    if want:
        rx = re.compile(want)
        rows = [r for r in rows if r.id == "A" or rx.search(r.id)]
    return rows


# --------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------

class Remote:
    def __init__(self, o, net, scratch):
        self.o, self.net, self.scratch = o, net, scratch
        self.criu = os.environ["CRSTREAM_CRIU"]
        self.records = []
        self.seq = 0
        self.run_prefix = "run-" + datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.images = os.path.join(o.work, "images")
        self.logs = os.path.join(scratch, "logs")
        os.makedirs(self.images, exist_ok=True)
        os.makedirs(self.logs, exist_ok=True)
        config = os.path.join(scratch, "config.json")
        with open(config, "w") as f:
            f.write("{}\n")
        # Every tool gets the same credentials and endpoint, nothing else.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRSTREAM_", "AWS"))}
        env.update(CRSTREAM_CRIU=self.criu, CRSTREAM_CONFIG=config, AWS_ACCESS_KEY_ID="test:tester",
                   AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
                   AWS_ENDPOINT_URL=o.endpoint, AWS_EC2_METADATA_DISABLED="true", AWS_PAGER="",
                   AWS_CONFIG_FILE=os.path.join(scratch, "aws-config"),
                   AWS_SHARED_CREDENTIALS_FILE=os.path.join(scratch, "aws-credentials"),
                   # s3fs reads its keys from here (its passwd file splits
                   # Swift's "test:tester" at the colon).
                   AWSACCESSKEYID="test:tester", AWSSECRETACCESSKEY="testing")
        self.env = env
        os.environ.clear()
        os.environ.update(env)
        self.mount = os.path.join(o.mnt, "s3fs")

    def server_cpu(self):
        """CPU seconds Swift's processes (proxy, object, container, account
        servers, memcached) have used so far: same machine, same cores."""
        total = 0
        run_dir = os.path.join(self.o.swift_dir, "run")
        for name in os.listdir(run_dir):
            try:
                with open(os.path.join(run_dir, name)) as f:
                    pid = int(f.read().strip())
                with open("/proc/%d/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])	# utime, stime
            except (OSError, ValueError, IndexError):
                pass
        return total / os.sysconf("SC_CLK_TCK")

    def s3url(self, *parts):
        return "s3://%s/%s" % (self.o.bucket, "/".join((self.run_prefix,) + parts))

    def aws(self, *args):
        return [AWS, "--endpoint-url", self.o.endpoint] + list(args)

    # ---- s3fs (row C) ----

    def s3fs_mount(self):
        os.makedirs(self.mount, exist_ok=True)
        run(["s3fs", self.o.bucket, self.mount, "-o", "url=%s" % self.o.endpoint, "-o", "use_path_request_style",
             "-o", "endpoint=us-east-1", "-o", "dbglevel=warn"])
        # s3fs returns before the mount is in place.
        for _ in range(200):
            if os.path.ismount(self.mount):
                return
            time.sleep(0.05)
        raise BenchError("s3fs did not mount %s" % self.mount)

    def s3fs_umount(self):
        if os.path.ismount(self.mount):
            # fusermount -u waits for s3fs to upload what is still open.
            run(["umount", self.mount])
        for _ in range(200):
            if not os.path.ismount(self.mount):
                return
            time.sleep(0.05)

    # ---- one repetition of one row ----

    def cycle(self, link, subj, row, rep):
        self.seq += 1
        tag = "c%04d-%s" % (self.seq, row.id)
        counter = subj.counter()
        stat0 = B.cpu_jiffies()
        rec = {"link": link.key, "link_label": link.label, "subject": subj.key, "row": row.id,
               "label": row.label, "kind": row.kind, "streams": row.streams, "codec": row.codec,
               "level": row.level, "rep": rep, "pid": subj.pid,
               "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        up0, down0 = self.net.counters()
        srv0 = self.server_cpu()
        if row.kind == "D":
            self.dump_crstream(subj, row, tag, rec)
        else:
            self.dump_criu(subj, row, tag, rec)
        up1, down1 = self.net.counters()
        srv1 = self.server_cpu()
        subj.wait_gone()
        srv1b = self.server_cpu()
        if row.kind == "D":
            self.restore_crstream(subj, tag, rec)
        else:
            self.restore_criu(row, tag, rec)
        up2, down2 = self.net.counters()
        srv2 = self.server_cpu()
        rec.update(dump_up_bytes=up1 - up0, dump_down_bytes=down1 - down0,
                   restore_up_bytes=up2 - up1, restore_down_bytes=down2 - down1,
                   server_cpu_dump_s=srv1 - srv0, server_cpu_restore_s=srv2 - srv1b)
        rec["verify_s"] = subj.verify(counter, 120 + 120 * max(1, subj.mib // 1024))
        stat1 = B.cpu_jiffies()
        rec["machine_busy_cores"] = (os.cpu_count() or 1) * (stat1[0] - stat0[0]) / max(1, stat1[1] - stat0[1])
        rec["loadavg1"] = B.loadavg1()
        rec["ratio"] = rec["image_bytes"] / rec["stored_bytes"] if rec.get("stored_bytes") else None
        # What this cycle stored goes (not timed).
        run(self.aws("s3", "rm", "--recursive", "--only-show-errors", self.s3url(tag) + "/"))
        self.records.append(rec)
        log("    %-40s rep %d: frozen %6.2f s  dump %6.2f s  restore %6.2f s  up %7.1f MB  down %7.1f MB  verified"
            % (row.label, rep, rec["frozen_ms"] / 1000, rec["dump_ms"] / 1000, rec["restore_ms"] / 1000,
               rec["dump_up_bytes"] / MB, rec["restore_down_bytes"] / MB))

    def criu_dump(self, subj, images, tag):
        os.makedirs(images, exist_ok=True)
        _, wall, cpu = run([self.criu, "dump", "-D", images, "-t", str(subj.pid),
                            "-o", os.path.join(self.logs, tag + "-dump.log"), "-v4"])
        return wall, cpu

    def dump_criu(self, subj, row, tag, rec):
        """Rows A, B, C: criu dump, then (A, B) the upload."""
        local = os.path.join(self.images, tag)
        if row.kind == "C":
            self.s3fs_mount()
            images = os.path.join(self.mount, self.run_prefix, tag)
            wall, cpu = self.criu_dump(subj, images, tag)
            st = B.criu_dump_stats(images)
            image_bytes = B.dir_bytes(images)
            _, u_wall, u_cpu = run(["umount", self.mount])
            rec["upload_ms"] = u_wall * 1000	# what s3fs still had to send at umount
            wall += u_wall
            cpu += u_cpu
            stored = image_bytes
        else:
            wall, cpu = self.criu_dump(subj, local, tag)
            st = B.criu_dump_stats(local)
            image_bytes = stored = B.dir_bytes(local)
            if row.kind == "A":
                _, u_wall, u_cpu = run(self.aws("s3", "cp", "--recursive", "--only-show-errors", local,
                                                self.s3url(tag) + "/"))
            else:
                _, u_wall, u_cpu = run("set -o pipefail; tar -C %s -cf - . | lz4 -1 -q | %s s3 cp "
                                       "--only-show-errors - %s" % (local, " ".join(self.aws()),
                                                                    self.s3url(tag, "images.tar.lz4")),
                                       shell=True)
            rec["upload_ms"] = u_wall * 1000
            rec["criu_dump_ms"] = wall * 1000
            wall += u_wall
            cpu += u_cpu
            if row.kind == "B":
                p, _, _ = run(self.aws("s3api", "head-object", "--bucket", self.o.bucket, "--key",
                                       "%s/%s/images.tar.lz4" % (self.run_prefix, tag)))
                stored = json.loads(p.stdout)["ContentLength"]
            # The machine the dump was made on is gone: nothing local stays.
            shutil.rmtree(local)
        rec.update(frozen_ms=st["frozen_us"] / 1000, dump_ms=wall * 1000, image_bytes=image_bytes,
                   stored_bytes=stored, all_cpu_dump_s=cpu)

    def restore_criu(self, row, tag, rec):
        local = os.path.join(self.images, tag + "-restore")
        rlog = os.path.join(self.logs, tag + "-restore.log")
        if row.kind == "C":
            t0 = time.monotonic()
            self.s3fs_mount()
            images = os.path.join(self.mount, self.run_prefix, tag)
            _, r_wall, cpu = run([self.criu, "restore", "-D", images, "-d", "-o", rlog, "-v4"])
            wall = time.monotonic() - t0
            self.s3fs_umount()
        else:
            os.makedirs(local)
            if row.kind == "A":
                _, d_wall, d_cpu = run(self.aws("s3", "cp", "--recursive", "--only-show-errors",
                                                self.s3url(tag) + "/", local))
            else:
                _, d_wall, d_cpu = run("set -o pipefail; %s s3 cp --only-show-errors %s - | lz4 -dc | tar -C %s -xf -"
                                       % (" ".join(self.aws()), self.s3url(tag, "images.tar.lz4"), local),
                                       shell=True)
            rec["download_ms"] = d_wall * 1000
            _, r_wall, r_cpu = run([self.criu, "restore", "-D", local, "-d", "-o", rlog, "-v4"])
            wall, cpu = d_wall + r_wall, d_cpu + r_cpu
            shutil.rmtree(local)
        rec.update(restore_ms=wall * 1000, criu_restore_ms=r_wall * 1000, all_cpu_restore_s=cpu)

    def dump_crstream(self, subj, row, tag, rec):
        cmd = [CRSTREAM, "dump", str(subj.pid), "--dir", self.s3url(tag), "--name", "ck",
               "--streams", str(row.streams), "--compression", row.codec, "--json", "--no-progress"]
        if row.level:
            cmd += ["--level", str(row.level)]
        p, wall, cpu = run(B.LAUNCH + cmd)
        j = json.loads(p.stdout)
        rec.update(frozen_ms=j["frozen_ms"], dump_ms=wall * 1000, criu_dump_ms=j.get("criu_ms"),
                   image_bytes=j["image_bytes"], stored_bytes=j["stored_bytes"], dump_cpu_s=j["cpu_seconds"],
                   dump_rss_bytes=j["peak_rss_bytes"], all_cpu_dump_s=cpu)
        for k in ("levels", "level_changes"):
            if k in j:
                rec["dump_" + k] = j[k]

    def restore_crstream(self, subj, tag, rec):
        p, wall, cpu = run(B.LAUNCH + [CRSTREAM, "restore", "--path", self.s3url(tag, "ck"), "--json"])
        j = json.loads(p.stdout)
        if j.get("pid") != subj.pid:
            raise BenchError("restore came back as pid %s, not %d" % (j.get("pid"), subj.pid))
        rec.update(restore_ms=wall * 1000, criu_restore_ms=j.get("criu_ms"), restore_cpu_s=j["cpu_seconds"],
                   restore_rss_bytes=j["peak_rss_bytes"], all_cpu_restore_s=cpu)

    # ---- a group: one subject, some rows, N interleaved repetitions ----

    def group(self, link, subj, rows, repeat):
        log("== %s, %s: %d rows x %d repetitions (interleaved)" % (link.label, subj.label, len(rows), repeat))
        subj.start()
        try:
            if self.o.warmup:
                log("    (warm-up cycle, not recorded)")
                n = len(self.records)
                self.cycle(link, subj, rows[0], 0)
                del self.records[n:]
            for rep in range(1, repeat + 1):
                for row in rows:
                    self.cycle(link, subj, row, rep)
        finally:
            subj.kill()

    # ---- the server's own ceiling ----

    def ceiling(self, mib, repeat):
        """Upload and download MB/s of one object of mib MiB with awscli's
        defaults (10 requests in flight, 8 MiB parts), the link unshaped."""
        src = os.path.join(self.scratch, "ceiling.bin")
        with open(src, "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
        dst = os.path.join(self.scratch, "ceiling.out")
        url = self.s3url("ceiling", "object")
        ups, downs = [], []
        srv_up, srv_down, cli_up, cli_down = [], [], [], []
        for rep in range(repeat):
            c0 = self.server_cpu()
            _, up, cu = run(self.aws("s3", "cp", "--only-show-errors", src, url))
            c1 = self.server_cpu()
            _, down, cd = run(self.aws("s3", "cp", "--only-show-errors", url, dst))
            c2 = self.server_cpu()
            os.unlink(dst)
            gb = mib * 2**20 / 1e9
            ups.append(mib * 2**20 / up / MB)
            downs.append(mib * 2**20 / down / MB)
            srv_up.append((c1 - c0) / gb)
            srv_down.append((c2 - c1) / gb)
            cli_up.append(cu / gb)
            cli_down.append(cd / gb)
            log("    ceiling rep %d: up %.0f MB/s, down %.0f MB/s (Swift %.1f / %.1f CPU s/GB, awscli %.1f / %.1f)"
                % (rep + 1, ups[-1], downs[-1], srv_up[-1], srv_down[-1], cli_up[-1], cli_down[-1]))
        run(self.aws("s3", "rm", "--only-show-errors", url))
        os.unlink(src)
        return {"mib": mib, "up_MBps": median(ups), "down_MBps": median(downs), "up_all": ups,
                "down_all": downs, "loadavg1": B.loadavg1(), "server_cpu_up_s_per_gb": median(srv_up),
                "server_cpu_down_s_per_gb": median(srv_down), "awscli_cpu_up_s_per_gb": median(cli_up),
                "awscli_cpu_down_s_per_gb": median(cli_down)}


# --------------------------------------------------------------------------
# summaries
# --------------------------------------------------------------------------

SUM_KEYS = ("frozen_ms", "dump_ms", "restore_ms", "image_bytes", "stored_bytes", "ratio", "upload_ms",
            "download_ms", "criu_dump_ms", "criu_restore_ms", "dump_up_bytes", "dump_down_bytes",
            "restore_up_bytes", "restore_down_bytes", "dump_cpu_s", "restore_cpu_s", "dump_rss_bytes",
            "restore_rss_bytes", "all_cpu_dump_s", "all_cpu_restore_s", "server_cpu_dump_s",
            "server_cpu_restore_s", "verify_s", "machine_busy_cores", "loadavg1")


def summarize(records, ceiling, links):
    groups = {}
    for r in records:
        groups.setdefault((r["link"], r["subject"], r["row"]), []).append(r)
    out = []
    for (link, subject, row), rs in groups.items():
        s = {k: rs[0][k] for k in ("link", "link_label", "subject", "row", "label", "kind", "streams", "codec",
                                    "level")}
        s["n"] = len(rs)
        for key in SUM_KEYS:
            s[key] = median([r.get(key) for r in rs])
        for key in ("frozen_ms", "dump_ms", "restore_ms"):
            vals = [r[key] for r in rs]
            s[key + "_min"], s[key + "_max"] = min(vals), max(vals)
        out.append(s)
    by = {(s["link"], s["subject"], s["row"]): s for s in out}
    for s in out:
        a = by.get((s["link"], s["subject"], "A"))
        for key in ("frozen_ms", "dump_ms", "restore_ms"):
            s[key.replace("_ms", "_vs_A")] = s[key] / a[key] if a and a[key] else None
        s["frozen_vs_A_dump"] = s["frozen_ms"] / a["dump_ms"] if a else None
        classify(s, ceiling, links.get(s["link"]))
    return out


def classify(s, ceiling, link):
    """What bounds the row, each way: 'server' when its rate over the link
    comes within 80% of the server's own ceiling (and not over 125% of
    it), 'link' within 80% of the link's payload rate, else 'CPU' (or
    anything else but the network).
    The rate is the bytes that crossed divided by the time spent crossing:
    for A and B the upload/download command, for C and D the whole dump
    (crstream: frozen time) / restore."""
    if s["kind"] in ("A", "B"):
        t_up, t_down = s.get("upload_ms"), s.get("download_ms")
    elif s["kind"] == "C":
        t_up, t_down = s["dump_ms"], s["restore_ms"]
    else:
        t_up, t_down = s["frozen_ms"], s["restore_ms"]
    for way, nbytes, t, ceil in (("up", s["dump_up_bytes"], t_up, ceiling and ceiling["up_MBps"]),
                                 ("down", s["restore_down_bytes"], t_down, ceiling and ceiling["down_MBps"])):
        rate = nbytes / MB / (t / 1000) if t else None
        s[way + "_MBps"] = rate
        bound = "CPU"
        lim = link.payload_MBps() if link else None
        # The ceiling is Swift's with awscli as the client on the same 2
        # cores: a lighter client leaves Swift more CPU and passes it, and
        # a row well above it was not held back by it.
        if rate is not None and ceil and 0.8 * ceil <= rate <= 1.25 * ceil:
            bound = "server"
        elif rate is not None and lim and rate >= 0.8 * lim:
            bound = "link"
        s[way + "_bound"] = bound


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

fmt = B.fmt


spread = B.spread


HEAD = ("| way | frozen s | dump s | restore s | up MB | down MB | stored MB | crstream CPU s (dump / restore) "
        "| crstream RSS MB (dump / restore) | client CPU s (dump / restore) | Swift CPU s (dump / restore) "
        "| frozen ÷ A dump | dump ÷A | restore ÷A | up MB/s, bound | down MB/s, bound | spread |\n"
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--|--|--:|")


def table(summary, link, subject, order):
    rows = {s["row"]: s for s in summary if s["link"] == link and s["subject"] == subject}
    lines = [HEAD]
    for rid in order:
        s = rows.get(rid)
        if not s:
            continue
        pair = lambda a, b, spec: "%s / %s" % (fmt(a, spec), fmt(b, spec)) if a is not None else "–"
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            s["label"].replace("|", "\\|"), fmt(s["frozen_ms"] / 1000, "%.2f"), fmt(s["dump_ms"] / 1000, "%.2f"),
            fmt(s["restore_ms"] / 1000, "%.2f"), fmt(s["dump_up_bytes"] / MB, "%.0f"),
            fmt(s["restore_down_bytes"] / MB, "%.0f"), fmt(s["stored_bytes"] / MB, "%.0f"),
            pair(s["dump_cpu_s"], s["restore_cpu_s"], "%.1f"),
            pair(s["dump_rss_bytes"] and s["dump_rss_bytes"] / MB,
                 s["restore_rss_bytes"] and s["restore_rss_bytes"] / MB, "%.0f"),
            pair(s["all_cpu_dump_s"], s["all_cpu_restore_s"], "%.1f"),
            pair(s["server_cpu_dump_s"], s["server_cpu_restore_s"], "%.1f"),
            fmt(s["frozen_vs_A_dump"], "%.2f"), fmt(s["dump_vs_A"], "%.2f"), fmt(s["restore_vs_A"], "%.2f"),
            "%s, %s" % (fmt(s["up_MBps"], "%.0f"), s["up_bound"]),
            "%s, %s" % (fmt(s["down_MBps"], "%.0f"), s["down_bound"]), spread(s)))
    return "\n".join(lines)


def targets(summary, link, subject):
    """Item 3's targets on the slow link, 1 GiB subject."""
    rows = {s["row"]: s for s in summary if s["link"] == link.key and s["subject"] == subject}
    A, Bb, L = rows.get("A"), rows.get("B"), rows.get("lz4-4")
    out = []
    if not (A and L):
        return [("item 3 targets", "not measured in this run (needs rows A and lz4-4 on %s)" % link.spec, None)]
    r = L["frozen_ms"] / A["dump_ms"]
    out.append(("lz4 ×4 frozen ≤ 0.45 × A's dump + upload",
                "%.2f× (%.2f s / %.2f s)" % (r, L["frozen_ms"] / 1000, A["dump_ms"] / 1000), r <= 0.45))
    if Bb:
        r = L["frozen_ms"] / Bb["dump_ms"]
        out.append(("lz4 ×4 frozen ≤ 0.6 × B's dump + compressed upload",
                    "%.2f× (%.2f s / %.2f s)" % (r, L["frozen_ms"] / 1000, Bb["dump_ms"] / 1000), r <= 0.6))
    r = L["restore_ms"] / A["restore_ms"]
    out.append(("lz4 ×4 restore ≤ 0.5 × A's download + restore",
                "%.2f× (%.2f s / %.2f s)" % (r, L["restore_ms"] / 1000, A["restore_ms"] / 1000), r <= 0.5))
    wire = L["dump_up_bytes"] / MB / link.payload_MBps()
    r = L["frozen_ms"] / 1000 / wire
    out.append(("lz4 ×4 frozen ≤ 1.15 × (bytes sent ÷ link rate)",
                "%.2f× (%.2f s; %.0f MB at %.0f MB/s = %.2f s)" % (
                    r, L["frozen_ms"] / 1000, L["dump_up_bytes"] / MB, link.payload_MBps(), wire), r <= 1.15))
    au, lz, zs = rows.get("auto-4"), L, rows.get("zstd1-4")
    if au and zs:
        out.append(("auto ×4 on the slow link: bytes within 5% of zstd -1's at ≤ 1.15 × lz4's dump CPU",
                    "stored %.0f MB (zstd -1 %.0f, lz4 %.0f); dump CPU %.1f s (zstd -1 %.1f, lz4 %.1f); frozen %.2f s "
                    "(zstd -1 %.2f, lz4 %.2f)" % (au["stored_bytes"] / MB, zs["stored_bytes"] / MB,
                                                   lz["stored_bytes"] / MB, au["dump_cpu_s"], zs["dump_cpu_s"],
                                                   lz["dump_cpu_s"], au["frozen_ms"] / 1000, zs["frozen_ms"] / 1000,
                                                   lz["frozen_ms"] / 1000),
                    au["stored_bytes"] <= 1.05 * zs["stored_bytes"] and au["dump_cpu_s"] <= 1.15 * lz["dump_cpu_s"]))
    return out


def fast_targets(summary, link, subject):
    rows = {s["row"]: s for s in summary if s["link"] == link.key and s["subject"] == subject}
    au, lz = rows.get("auto-4"), rows.get("lz4-4")
    if not (au and lz):
        return []
    r = au["frozen_ms"] / lz["frozen_ms"]
    return [("auto ×4 on %s: frozen ≤ 1.1 × lz4 ×4's" % link.spec,
             "%.2f× (%.2f s / %.2f s)" % (r, au["frozen_ms"] / 1000, lz["frozen_ms"] / 1000), r <= 1.1)]


def best_crstream(summary, link, subject):
    ds = [s for s in summary if s["link"] == link and s["subject"] == subject and s["kind"] == "D"]
    return min(ds, key=lambda s: s["frozen_ms"] + s["restore_ms"]) if ds else None


def chart(summary, plan, outdir):
    """Frozen time and restore time against the link rate, for A, B, C and
    the best crstream row (least frozen + restore) of the main subject."""
    if not shutil.which("gnuplot"):
        log("gnuplot not found: no chart")
        return []
    main = plan["main_subject"]
    links = [l for l in plan["links"] if l["rate_bps"]]
    if not links:
        return []
    data = os.path.join(outdir, "chart-remote.dat")
    with open(data, "w") as f:
        f.write("# rate_Mbit A_frozen A_dump A_restore B_frozen B_dump B_restore C_frozen C_dump C_restore "
                "best_frozen best_dump best_restore best_row\n")
        for l in sorted(links, key=lambda l: l["rate_bps"]):
            vals = []
            for rid in ("A", "B", "C"):
                s = next((x for x in summary if x["link"] == l["key"] and x["subject"] == main and x["row"] == rid),
                         None)
                vals += [s[k] / 1000 if s else float("nan") for k in ("frozen_ms", "dump_ms", "restore_ms")]
            b = best_crstream(summary, l["key"], main)
            vals += [b[k] / 1000 if b else float("nan") for k in ("frozen_ms", "dump_ms", "restore_ms")]
            f.write("%g %s %s\n" % (l["rate_bps"] / 1e6, " ".join("%.3f" % v for v in vals),
                                    b["row"] if b else "-"))
    png = os.path.join(outdir, "chart-remote.png")
    gp = """set terminal pngcairo size 1300,520 font ',10'
set output '{png}'
set multiplot layout 1,2 title 'Object storage over an emulated link ({label}; medians)'
set xlabel 'link rate (Mbit/s)'
set ylabel 'seconds'
set logscale x
set yrange [0:*]
set grid
set key top right
set title 'until the checkpoint is in the bucket (A, B: dump + upload; C, crstream: frozen)'
plot '{d}' u 1:3 w lp lw 2 pt 7 lc rgb '#555555' t 'A: criu + aws s3 cp', \\
     '{d}' u 1:6 w lp lw 2 pt 5 lc rgb '#ff7f0e' t 'B: criu + tar|lz4|aws', \\
     '{d}' u 1:8 w lp lw 2 pt 9 lc rgb '#2ca02c' t 'C: criu into s3fs (frozen)', \\
     '{d}' u 1:11 w lp lw 3 pt 7 lc rgb '#1f77b4' t 'best crstream row: frozen', \\
     '{d}' u 1:2 w lp lw 1 dt 2 pt 6 lc rgb '#555555' t 'A: frozen (criu dump only)'
set title 'until the restored process runs (download + restore)'
plot '{d}' u 1:4 w lp lw 2 pt 7 lc rgb '#555555' t 'A', \\
     '{d}' u 1:7 w lp lw 2 pt 5 lc rgb '#ff7f0e' t 'B', \\
     '{d}' u 1:10 w lp lw 2 pt 9 lc rgb '#2ca02c' t 'C', \\
     '{d}' u 1:13 w lp lw 3 pt 7 lc rgb '#1f77b4' t 'best crstream row'
unset multiplot
""".format(png=png, d=data, label=plan["main_label"])
    return [png] if B.gnuplot(gp) else []


def report(meta, plan, summary, ceiling, paths, rel_to, notes):
    m = meta["machine"]
    out = ["# crstream to object storage over an emulated network\n"]
    out.append("Generated by `bench/remote.sh %s` on %s (UTC), %s of benchmarking. Raw per-run numbers: `%s`.\n" % (
        " ".join(meta["argv"]), meta["date"], meta["duration"],
        os.path.relpath(os.path.join(meta["outdir"], "raw.csv"), ROOT)))
    out.append("**Machine:** %s cores (%s, %s), %s GiB RAM, Linux %s; CRIU %s; awscli %s; s3fs %s; "
               "crstream %s (branch %s%s). Client and server share the machine's cores: Swift's CPU time "
               "competes with the client's.\n" % (
                   m["cores"], m["cpu"], m["virt"], m["mem_gib"], m["kernel"], m["criu"], meta.get("awscli", "?"),
                   meta.get("s3fs", "?"), m["commit"], m["branch"], ", src/ modified" if m["src_dirty"] else ""))
    ld = meta.get("load")
    if ld:
        out.append("**Load during the run** (the machine is shared with other jobs): 1-min load average at the "
                   "start %s, during the cycles median %.1f (%.1f–%.1f); CPUs busy during a cycle, median %.2f of "
                   "%s (max %.2f). Link-bound rows depend little on that load; CPU-bound ones do.\n" % (
                       m.get("loadavg_start", "?"), ld["load_med"], ld["load_min"], ld["load_max"], ld["busy_med"],
                       m["cores"], ld["busy_max"]))
    if ceiling:
        out.append("## The S3 server's own ceiling\n")
        out.append("Swift (single proxy, one object server, as `scripts/s3-server.sh` runs it) on this machine, "
                   "link unshaped, `aws s3 cp` of one %d MiB object of random bytes (awscli defaults: 8 MiB "
                   "parts, 10 in flight), %d repetitions: **upload %.0f MB/s, download %.0f MB/s** (medians; "
                   "up %s, down %s; load %.1f). A row whose rate over the link comes within 80%% of these is "
                   "marked *server*-bound (up to 125%% of it: a client lighter than awscli leaves Swift "
                   "more CPU), within 80%% of the link's payload rate *link*-bound, otherwise "
                   "*CPU* (the client's or the server's: they share 2 cores).\n" % (
                       ceiling["mib"], len(ceiling["up_all"]), ceiling["up_MBps"], ceiling["down_MBps"],
                       ", ".join("%.0f" % v for v in ceiling["up_all"]),
                       ", ".join("%.0f" % v for v in ceiling["down_all"]), ceiling["loadavg1"]))
        if ceiling.get("server_cpu_up_s_per_gb"):
            out.append("What that costs on this machine's 2 cores, per GB: Swift %.1f CPU·s up, %.1f down; awscli "
                       "%.1f up, %.1f down. Swift alone, on both cores and with a client that cost nothing, could "
                       "not pass %.0f MB/s up or %.0f MB/s down: the server and every client share the CPU, "
                       "which is why the *Swift CPU* column is in the tables.\n" % (
                           ceiling["server_cpu_up_s_per_gb"], ceiling["server_cpu_down_s_per_gb"],
                           ceiling["awscli_cpu_up_s_per_gb"], ceiling["awscli_cpu_down_s_per_gb"],
                           2 * 1000 / ceiling["server_cpu_up_s_per_gb"],
                           2 * 1000 / ceiling["server_cpu_down_s_per_gb"]))
    slow = next((Link(l["spec"]) for l in plan["links"] if l["rate_bps"] and l["rate_bps"] <= 1e9), None)
    tl = targets(summary, slow, plan["main_subject"]) if slow else []
    for l in plan["links"]:
        if l["rate_bps"] and l["rate_bps"] > 1e9:
            tl += fast_targets(summary, Link(l["spec"]), plan["main_subject"])
    if tl:
        out.append("## Targets (reported, not asserted)\n")
        out.append(B.targets_md(tl) + "\n")
    for g in plan["groups"]:
        out.append("## %s, %s\n" % (g["link_label"], g["subject_label"]))
        out.append(table(summary, g["link"], g["subject"], g["rows"]) + "\n")
    if paths:
        out.append("## Chart\n")
        for p in paths:
            out.append("![%s](%s)\n" % (os.path.basename(p), os.path.relpath(p, rel_to)))
    out.append(METHOD % meta)
    if notes:
        out.append(notes.rstrip() + "\n")
    return "\n".join(out)


METHOD = """## How this was measured

- **Network.** Two network namespaces on this machine, joined by a veth
  pair: the *client* (the subject, CRIU, crstream, awscli, s3fs) and the
  *server* (Swift). Each veth's egress is shaped by `tc tbf` at the link
  rate (queue: one bandwidth-delay product); every packet a side receives
  waits in a netfilter queue for the one-way delay (`bench/linkem.c`: this
  kernel has no `sch_netem`; packets stay in the kernel, only their ids
  are seen). TCP is the kernel's default here (BBR), MTU 1500 with
  segmentation offload. *up/down MB*: bytes the client's veth sent during
  the dump / received during the restore (headers included, one per
  offloaded segment of up to 64 KiB).
- **Rows.** *A*: `criu dump -D DIR` to the root disk, then `aws s3 cp
  --recursive DIR s3://…`; restore `aws s3 cp --recursive s3://… DIR2`, then
  `criu restore -D DIR2 -d`. *B*: `criu dump`, then `tar -cf - . | lz4 -1 |
  aws s3 cp - s3://…/images.tar.lz4`; restore `aws s3 cp s3://… - | lz4 -dc
  | tar -x`, then `criu restore`. *C*: s3fs mounts the bucket (defaults;
  credentials from `AWSACCESSKEYID`/`AWSSECRETACCESSKEY`), `criu dump -D
  MOUNT/…`, unmount (s3fs finishes its uploads); restore: mount again, `criu
  restore -D MOUNT/…`. *D*: `crstream dump PID --dir s3://… --streams N
  --compression C [--level L]` and `crstream restore --path s3://…`, its
  defaults otherwise (8 MiB parts, 4 in flight per stream). All CRIU runs
  with `-v4`, logs on local disk.
- **Columns.** *frozen*: CRIU's own frozen time (tasks frozen → killed) from
  its statistics; for C it includes s3fs's uploads of the files CRIU
  closed, for crstream the post-dump hook that completes every upload
  before the kill. *dump*: wall time until the checkpoint is in the bucket
  (A, B: dump + upload; C: dump + unmount). *restore*: wall time until the
  restored process runs (A, B: download + restore; C: mount + restore).
  *crstream CPU / RSS*: crstream's own, from its JSON. *client CPU*: every
  client-side process of the row (CRIU, awscli, tar, lz4, crstream; not
  s3fs's daemon), from getrusage. *Swift CPU*: what Swift's processes
  used meanwhile (/proc), on the same 2 cores. *÷A*: the row's
  median over row A's on the same link and subject. *up/down MB/s, bound*:
  bytes over the link ÷ the time spent sending them (A, B: the upload or
  download command; C, crstream: frozen time / restore), and what bounds it
  (see the ceiling above). *spread*: the largest (max − min) ÷ median over
  the repetitions among frozen, dump and restore.
- **Repetitions.** %(repeat)d per row, interleaved; one unrecorded warm-up
  cycle per subject. Every repetition dumps the process the previous
  restore brought back; it must verify every page (`SIGUSR1`), or the run
  aborts. What a cycle stored is deleted after it (not timed).
"""


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def tool_version(cmd, rx):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(rx, p.stdout)
    return m.group(1) if m else "?"


def on_term(sig, frame):
    raise KeyboardInterrupt


def main():
    # remote.sh runs this as a background job (SIGINT ignored) and passes
    # an interruption on as SIGTERM: either one stops the run, cleanly.
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ap = argparse.ArgumentParser(description="crstream to object storage over an emulated network "
                                             "(run through bench/remote.sh)")
    ap.add_argument("--links", default="1gbit:5ms,10gbit:1ms",
                    help="comma-separated RATE:DELAY links (one-way delay), default 1gbit:5ms,10gbit:1ms")
    ap.add_argument("--chart-links", default="",
                    help="more links for the chart, with rows A, B, C and crstream lz4 ×4 only "
                         "(e.g. 250mbit:5ms,2500mbit:2ms)")
    ap.add_argument("--mib", type=int, default=1024, help="main subject size in MiB (default 1024)")
    ap.add_argument("--big-mib", type=int, default=4096, help="second subject in MiB (default 4096; 0: none)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions per row (default 3)")
    ap.add_argument("--quick", action="store_true",
                    help="a check: first link only, fewer rows, no big subject, 1 repetition, no warm-up")
    ap.add_argument("--rows", help="regex: only rows whose id matches (A always runs)")
    ap.add_argument("--fast-rows", metavar="REGEX",
                    help="like --rows, for links faster than 1 Gbit/s (a smaller set when time is short)")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false")
    ap.add_argument("--no-ceiling", action="store_true", help="skip measuring the server's ceiling")
    ap.add_argument("--update-results", action="store_true", help="write bench/REMOTE.md and its chart")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--from-results", metavar="DIR", help="no benchmark: re-render DIR/results.json")
    # Set by bench/remote.sh:
    for a in ("ns-client", "ns-server", "dev-client", "dev-server", "endpoint", "bucket", "work", "mnt",
              "swift-dir"):
        ap.add_argument("--" + a, help=argparse.SUPPRESS)
    o = ap.parse_args()
    if o.from_results:
        return rerender(o)
    if o.quick:
        o.repeat, o.big_mib, o.warmup = 1, 0, False
    elif o.repeat < 3:
        ap.error("--repeat must be at least 3 (use --quick for a check)")
    if not o.ns_client:
        ap.error("run me through bench/remote.sh")
    links = [Link(s) for s in o.links.split(",") if s]
    if o.quick:
        links = links[:1]
    chart_links = [Link(s) for s in o.chart_links.split(",") if s]

    started = time.monotonic()
    date = datetime.datetime.now(datetime.timezone.utc)
    stamp = date.strftime("%Y%m%dT%H%M%SZ")
    outdir = os.path.join(o.out, "%s-remote%s" % (stamp, "-quick" if o.quick else ""))
    criu = os.environ.get("CRSTREAM_CRIU")
    if not criu:
        raise BenchError("CRSTREAM_CRIU is not set (bench/remote.sh sets it)")
    scratch = os.path.join(o.work, "scratch")
    os.makedirs(scratch, exist_ok=True)
    meta = {"argv": user_argv(sys.argv[1:]), "date": date.strftime("%Y-%m-%d %H:%M"), "repeat": o.repeat,
            "outdir": outdir, "machine": B.machine_info(criu),
            "awscli": tool_version([AWS, "--version"], r"aws-cli/(\S+)"),
            "s3fs": tool_version(["s3fs", "--version"], r"V(\d[\d.]*)")}

    groups = []	# (link, subject MiB, rows)
    for l in links:
        groups.append((l, o.mib, plan_rows(o, l, big=False)))
        if o.big_mib:
            groups.append((l, o.big_mib, plan_rows(o, l, big=True)))
    for l in chart_links:
        rows = [r for r in plan_rows(o, l, big=True) if r.id in ("A", "B", "C", "lz4-4")]
        groups.append((l, o.mib, rows))
    need = max(int(2.6 * g[1]) + 1024 for g in groups)
    if need > B.mem_available_mib():
        raise BenchError("needs about %d MiB of free memory, %d available" % (need, B.mem_available_mib()))

    net = Net(o)
    bench = Remote(o, net, scratch)
    ceiling = None
    failed = None
    try:
        if not o.no_ceiling:
            log("== the server's own ceiling (link unshaped)")
            net.set(Link("unshaped"))
            ceiling = bench.ceiling(256 if o.quick else 1024, 1 if o.quick else 3)
        for l, mib, rows in groups:
            net.set(l)
            subj = B.Subject("mem-%d" % mib, "mem %d MiB" % mib, ["mem", "--mib", str(mib)], scratch)
            subj.mib = mib
            bench.group(l, subj, rows, o.repeat)
    except BenchError as e:
        failed = str(e)
    except KeyboardInterrupt:
        failed = "interrupted"
    except Exception:  # keep what was measured, say where it broke
        failed = traceback.format_exc()
    finally:
        try:
            bench.s3fs_umount()
        except BenchError as e:
            log("could not unmount s3fs (remote.sh will): %s" % e)
        net.stop()

    all_links = {l.key: l for l in links + chart_links}
    summary = summarize(bench.records, ceiling, all_links)
    meta["duration"] = "%.1f min" % ((time.monotonic() - started) / 60)
    os.makedirs(outdir, exist_ok=True)
    B.write_outputs(outdir, bench.records, summary)
    plan = {"main_subject": "mem-%d" % o.mib, "main_label": "mem %d MiB" % o.mib,
            "links": [{"spec": l.spec, "key": l.key, "rate_bps": l.rate_bps, "label": l.label}
                      for l in links + chart_links],
            "groups": [{"link": l.key, "link_label": l.label, "subject": "mem-%d" % mib,
                        "subject_label": "mem %d MiB" % mib, "rows": [r.id for r in rows]}
                       for l, mib, rows in groups]}
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"meta": meta, "plan": plan, "ceiling": ceiling, "summary": summary,
                   "runs": bench.records}, f, indent=1)
    if failed:
        log("\n*** BENCHMARK ABORTED ***\n%s\n(partial raw data: %s)" % (failed, outdir))
        return 1
    render(meta, plan, summary, ceiling, bench.records, outdir, o.update_results)
    log("done in %s; raw data in %s" % (meta["duration"], outdir))
    return 0


def user_argv(args):
    """The options the user gave remote.sh (not the ones it adds)."""
    out, skip = [], False
    internal = ("--ns-client", "--ns-server", "--dev-client", "--dev-server", "--endpoint", "--bucket",
                "--work", "--mnt", "--swift-dir")
    for a in args:
        if skip:
            skip = False
            continue
        if a in internal:
            skip = True
            continue
        if a.split("=")[0] in internal:
            continue
        out.append(a)
    return out


def render(meta, plan, summary, ceiling, records, outdir, update_results):
    B.note_load(meta, records)
    paths, rel = B.place_charts(chart(summary, plan, outdir), outdir, update_results)
    notes_path = os.path.join(ROOT, "bench", "remote-notes.md")
    notes = open(notes_path).read() if os.path.exists(notes_path) else ""
    text = report(meta, plan, summary, ceiling, paths, rel, notes)
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write(text)
    if update_results:
        with open(os.path.join(ROOT, "bench", "REMOTE.md"), "w") as f:
            f.write(text)
        log("wrote bench/REMOTE.md")
    print(text)


def rerender(o):
    with open(os.path.join(o.from_results, "results.json")) as f:
        saved = json.load(f)
    meta = saved["meta"]
    meta["outdir"] = os.path.abspath(o.from_results)
    links = {l["key"]: Link(l["spec"]) for l in saved["plan"]["links"]}
    summary = summarize(saved["runs"], saved["ceiling"], links)
    render(meta, saved["plan"], summary, saved["ceiling"], saved["runs"], meta["outdir"], o.update_results)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log("*** BENCHMARK ABORTED ***\n%s" % e)
        sys.exit(1)
