#!/usr/bin/python3
"""An independent gRPC client for crstream's daemon, used by the tests.

Python's gRPC (Debian python3-grpcio) with stubs generated from the .proto
files in tests/daemon/proto by protoc and grpc_python_plugin, at first use
(into --gen DIR). Those files are written from the API's wire facts, not
from the daemon's own proto files.

  dc.py [options] SERVICE.METHOD [REQUEST]

SERVICE is "daemon" (daemon.Daemon) or "v1" (crstream.v1.Crstream);
REQUEST is the request message in protobuf's JSON mapping, with the
.proto's field names ({"Details": {"Process": {"PID": 12}}}).

Options:
  --addr ADDR         unix:///path/to/socket (default) or host:port
  --tls CA,CERT,KEY   TLS: the CA to trust, and the client's certificate
                      and key ("-" for none: a client without certificate)
  --raw HEX           send these bytes as the request, unparsed
  --stream            the method streams its answer: one JSON line each
  --timeout S         deadline (default 300)
  --gen DIR           where the generated stubs go (default $DC_GEN)

Prints the answer as JSON on stdout and exits 0; on a gRPC error prints
{"code": "NOT_FOUND", "details": "..."} and exits 1 (after any streamed
messages). Exit 2: misuse.

  dc.py --serve DIR   the same calls, one after the other, through FIFOs
                      in DIR (see serve()): one Python for a whole test.
"""
import argparse
import importlib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = ["criu_rpc.proto", "daemon.proto", "crstream_v1.proto"]


def generate(gen):
    stamp = os.path.join(gen, ".generated")
    if os.path.exists(stamp):
        return
    os.makedirs(gen, exist_ok=True)
    proto_dir = os.path.join(HERE, "proto")
    plugin = subprocess.run(["sh", "-c", "command -v grpc_python_plugin"], capture_output=True,
                            text=True).stdout.strip()
    if not plugin:
        raise SystemExit("dc.py: grpc_python_plugin not found (Debian protobuf-compiler-grpc)")
    present = [p for p in PROTOS if os.path.exists(os.path.join(proto_dir, p))]
    subprocess.run(["protoc", "-I", proto_dir, "--python_out", gen, "--grpc_python_out", gen,
                    "--plugin=protoc-gen-grpc_python=" + plugin] + present, check=True)
    open(stamp, "w").close()


def call(argv, out):
    """One call as the command line says; its answer to out; the exit status."""
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("call")
    ap.add_argument("request", nargs="?", default="{}")
    ap.add_argument("--addr", default=os.environ.get("DC_ADDR", ""))
    ap.add_argument("--tls")
    ap.add_argument("--raw")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--gen", default=os.environ.get("DC_GEN", ""))
    a = ap.parse_args(argv)
    if not a.gen or not a.addr or "." not in a.call:
        ap.print_usage(sys.stderr)
        return 2
    generate(a.gen)
    if a.gen not in sys.path:
        sys.path.insert(0, a.gen)
    import grpc
    from google.protobuf import json_format

    service, method = a.call.split(".", 1)
    if service == "daemon":
        pb, pb_grpc, stub_name, full = "daemon_pb2", "daemon_pb2_grpc", "DaemonStub", "daemon.Daemon"
    elif service == "v1":
        pb, pb_grpc, stub_name, full = ("crstream_v1_pb2", "crstream_v1_pb2_grpc", "CrstreamStub",
                                        "crstream.v1.Crstream")
    else:
        print("dc.py: unknown service %s" % service, file=sys.stderr)
        return 2
    pb = importlib.import_module(pb)
    pb_grpc = importlib.import_module(pb_grpc)

    if a.tls:
        ca, cert, key = a.tls.split(",")
        read = lambda p: None if p == "-" else open(p, "rb").read()
        creds = grpc.ssl_channel_credentials(read(ca), read(key), read(cert))
        channel = grpc.secure_channel(a.addr, creds)
    else:
        channel = grpc.insecure_channel(a.addr)

    desc = pb.DESCRIPTOR.services_by_name[full.rsplit(".", 1)[1]].methods_by_name[method]
    resp_class = getattr(pb, desc.output_type.name)
    if a.raw is not None:
        # Bytes as they are: a malformed message reaches the daemon.
        path = "/%s/%s" % (full, method)
        rpc = (channel.unary_stream if a.stream else channel.unary_unary)(
            path, request_serializer=lambda b: b, response_deserializer=resp_class.FromString)
        request = bytes.fromhex(a.raw)
    else:
        stub = getattr(pb_grpc, stub_name)(channel)
        rpc = getattr(stub, method)
        request = json_format.Parse(a.request, getattr(pb, desc.input_type.name)())

    def show(msg):
        print(json.dumps(json_format.MessageToDict(msg, preserving_proto_field_name=True)),
              file=out, flush=True)

    try:
        if a.stream:
            for msg in rpc(request, timeout=a.timeout):
                show(msg)
        else:
            show(rpc(request, timeout=a.timeout))
    except grpc.RpcError as e:
        print(json.dumps({"code": e.code().name, "details": e.details()}), file=out, flush=True)
        return 1
    finally:
        channel.close()
    return 0


def serve(directory):
    """Calls one after the other, each a JSON array of arguments written to
    DIR/in; the answer, then a line "#rc=N", read from DIR/out. Saves the
    tests a Python start-up per call."""
    import io
    fifo_in, fifo_out = os.path.join(directory, "in"), os.path.join(directory, "out")
    for f in (fifo_in, fifo_out):
        if not os.path.exists(f):
            os.mkfifo(f, 0o600)
    while True:
        with open(fifo_in) as f:
            line = f.read().strip()
        if not line:
            continue
        out = io.StringIO()
        try:
            rc = call(json.loads(line), out)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 2
        except Exception as e:  # a client bug must not hang the caller
            print(json.dumps({"code": "CLIENT_ERROR", "details": repr(e)}), file=out)
            rc = 3
        with open(fifo_out, "w") as f:
            f.write(out.getvalue() + "#rc=%d\n" % rc)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
    sys.exit(call(sys.argv[1:], sys.stdout))


if __name__ == "__main__":
    main()
