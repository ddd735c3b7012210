#!/usr/bin/python3
"""crstream daemon benchmark: what the daemon adds to a dump, and whether
its memory stays flat.

  bench/daemon.sh [--dumps N] [--requests N] [--mib S] [--update]

(bench/daemon.sh builds, provisions CRIU and runs this as root under
build/tools/subreaper.) Reported, never asserted:

  * Latency. The same subject (S MiB, `mem`) is dumped with --leave-running
    into tmpfs, alternately by the CLI (`crstream dump --json`, timed around
    the command) and through the daemon (daemon.Daemon/Dump from a warm
    gRPC channel, timed around the call), N times each. For both, the time
    beyond the checkpoint layer's own (`dump_ms` in the result object) is
    what the front end costs; the daemon's added latency is the difference
    of the medians. Targets: <= 5 ms on top of CRIU.
  * Memory. The daemon's RSS (VmRSS of its process, workers not counted:
    they are separate processes that exit) after a warm-up of 100 requests
    and after R more (default 1000): a mix of catalog and job queries,
    refused requests (bad fields, a malformed message, an unimplemented
    method), manifests and health checks (each a worker), and a real dump
    every 100th. Target: no growth beyond 1 MB after the warm-up.
"""
import argparse
import json
import os
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
sys.path.insert(0, os.path.join(ROOT, "tests", "daemon"))
import dc  # noqa: E402  (the tests' client: generates the stubs)


def rss_kb(pid, key="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def start_subject(work, mib):
    status = os.path.join(work, "subject.status")
    subprocess.Popen(["setsid", SUBJECT, "mem", "--mib", str(mib), "--status", status],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([TESTTOOL, "wait-status", status, "state=ready", "--timeout", "120"], check=True,
                   stdout=subprocess.DEVNULL)
    with open(status) as f:
        return int([l.split("=", 1)[1] for l in f if l.startswith("pid=")][0])


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("--dumps", type=int, default=10)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--update", action="store_true", help="write bench/DAEMON.md")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="crstream-daemon-bench.", dir="/dev/shm")
    gen = os.path.join(work, "gen")
    dc.generate(gen)
    sys.path.insert(0, gen)
    import grpc
    import daemon_pb2 as pb
    import daemon_pb2_grpc as pb_grpc
    import crstream_v1_pb2 as v1
    import crstream_v1_pb2_grpc as v1_grpc
    import criu_rpc_pb2 as criu_pb

    env = dict(os.environ, CRSTREAM_CONFIG=os.path.join(work, "config.json"),
               CRSTREAM_CHECKPOINT_DIR=os.path.join(work, "ck"),
               CRSTREAM_DAEMON_JOB_LOGS=os.path.join(work, "logs"))
    with open(env["CRSTREAM_CONFIG"], "w") as f:
        f.write("{}\n")
    sock = os.path.join(work, "d.sock")
    log = open(os.path.join(work, "daemon.log"), "w")
    daemon = subprocess.Popen([CRSTREAM, "daemon", "--socket", sock, "--db", os.path.join(work, "d.db")],
                              env=env, stderr=log)
    channel = grpc.insecure_channel("unix://" + sock)
    grpc.channel_ready_future(channel).result(timeout=60)
    stub, v1stub = pb_grpc.DaemonStub(channel), v1_grpc.CrstreamStub(channel)
    pid = start_subject(work, a.mib)
    criu = criu_pb.criu_opts(images_dir_fd=-1, leave_running=True)
    report = []
    try:
        # ---- latency ----
        cli, via, cli_extra, via_extra = [], [], [], []
        for i in range(a.dumps):
            t = time.monotonic()
            out = subprocess.run(["/bin/bash", "-c", '"$@"', "x", CRSTREAM, "dump", str(pid),
                                  "--leave-running", "--json", "--dir", os.path.join(work, "cli"),
                                  "--name", "c%d" % i], env=env, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit("crstream dump: " + out.stderr.strip())
            out = out.stdout
            ms = (time.monotonic() - t) * 1000
            cli.append(ms)
            cli_extra.append(ms - json.loads(out)["dump_ms"])
            t = time.monotonic()
            resp = stub.Dump(pb.DumpReq(Details=pb.Details(Process=pb.Process(PID=pid)),
                                        Name="d%d" % i, Criu=criu))
            ms = (time.monotonic() - t) * 1000
            via.append(ms)
            via_extra.append(ms - json.loads(resp.Messages[-1])["dump_ms"])
        med = statistics.median
        report += [
            "## Latency of a dump (%d MiB subject, leave-running, tmpfs; %d each, medians)" % (a.mib, a.dumps),
            "",
            "| | wall | beyond the checkpoint layer's dump_ms |",
            "|---|--:|--:|",
            "| CLI (`crstream dump --json`) | %.1f ms | %.1f ms |" % (med(cli), med(cli_extra)),
            "| daemon (`daemon.Daemon/Dump`, warm channel) | %.1f ms | %.1f ms |" % (med(via), med(via_extra)),
            "| **daemon's added latency** (difference of the medians) | **%+.1f ms** | %+.1f ms |"
            % (med(via) - med(cli), med(via_extra) - med(cli_extra)),
            "",
            "Target: <= 5 ms on top of CRIU. The daemon's path adds the gRPC call, the "
            "catalog's two fsync'd commits (in progress, then complete) and the worker's "
            "exec; the CLI's adds its own exec.",
            "",
        ]

        # ---- memory ----
        ids = [c.ID for c in stub.ListCheckpoints(pb.ListCheckpointsReq()).Checkpoints]
        subprocess.run([TESTTOOL, "wait-status", os.path.join(work, "subject.status"), "state=ready"],
                       stdout=subprocess.DEVNULL)
        stub.Manage(pb.RunReq(JID="bench", Details=pb.Details(Process=pb.Process(PID=pid)), Action=1))
        bad_name = pb.DumpReq(Details=pb.Details(Process=pb.Process(PID=pid)), Name="a/b")
        raw = channel.unary_unary("/daemon.Daemon/Dump", request_serializer=lambda b: b,
                                  response_deserializer=pb.DumpResp.FromString)
        freeze = channel.unary_unary("/daemon.Daemon/Freeze", request_serializer=lambda b: b,
                                     response_deserializer=pb.DumpResp.FromString)

        def request(i):
            k = i % 10
            try:
                if i % 100 == 99:
                    stub.Dump(pb.DumpReq(Details=pb.Details(Process=pb.Process(PID=pid)),
                                         Name="m%d" % i, Criu=criu))
                elif i % 20 == 19:
                    stub.HealthCheck(pb.HealthCheckReq())
                elif i % 10 == 9:
                    v1stub.GetCheckpoint(v1.GetCheckpointRequest(id=ids[0], with_manifest=True))
                elif k == 0:
                    stub.ListCheckpoints(pb.ListCheckpointsReq())
                elif k == 1:
                    stub.GetCheckpoint(pb.GetCheckpointReq(ID=ids[i % len(ids)]))
                elif k == 2:
                    stub.List(pb.ListReq())
                elif k == 3:
                    stub.Get(pb.GetReq(JID="bench"))
                elif k == 4:
                    stub.Dump(bad_name)
                elif k == 5:
                    raw(b"\x0a\x05\x01")
                elif k == 6:
                    freeze(b"")
                elif k == 7:
                    v1stub.ListJobs(v1.ListJobsRequest())
                else:
                    stub.GetCheckpoint(pb.GetCheckpointReq(ID="0123456789abcdef"))
            except grpc.RpcError:
                pass

        for i in range(100):
            request(i)
        before = rss_kb(daemon.pid)
        t = time.monotonic()
        for i in range(a.requests):
            request(i)
        elapsed = time.monotonic() - t
        after = rss_kb(daemon.pid)
        report += [
            "## The daemon's memory over %d requests" % a.requests,
            "",
            "| | RSS |",
            "|---|--:|",
            "| after 100 requests (warm-up) | %.1f MB |" % (before / 1024),
            "| after %d more | %.1f MB |" % (a.requests, after / 1024),
            "| **growth** | **%+.2f MB** |" % ((after - before) / 1024),
            "| peak (VmHWM) | %.1f MB |" % (rss_kb(daemon.pid, "VmHWM") / 1024),
            "",
            "%d requests in %.1f s: catalog and job queries, refused requests, a manifest "
            "every 10th and a health check every 20th (each a worker process), a dump every "
            "100th. Target: no growth beyond 1 MB after the warm-up." % (a.requests, elapsed),
            "",
        ]
    finally:
        channel.close()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=120)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        subprocess.run(["rm", "-rf", work])

    load = open("/proc/loadavg").read().split()[0]
    text = "\n".join(["# crstream daemon: latency and memory", "",
                      "Machine: %d CPUs, load average %s at the end (shared machine: "
                      "indicative only). Run by `bench/daemon.sh`." % (os.cpu_count(), load), ""] + report)
    print(text)
    if a.update:
        with open(os.path.join(ROOT, "bench", "DAEMON.md"), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
