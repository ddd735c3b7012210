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
        sys.exit("dc.py: grpc_python_plugin not found (Debian protobuf-compiler-grpc)")
    present = [p for p in PROTOS if os.path.exists(os.path.join(proto_dir, p))]
    subprocess.run(["protoc", "-I", proto_dir, "--python_out", gen, "--grpc_python_out", gen,
                    "--plugin=protoc-gen-grpc_python=" + plugin] + present, check=True)
    open(stamp, "w").close()


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("call")
    ap.add_argument("request", nargs="?", default="{}")
    ap.add_argument("--addr", default=os.environ.get("DC_ADDR", ""))
    ap.add_argument("--tls")
    ap.add_argument("--raw")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--gen", default=os.environ.get("DC_GEN", ""))
    a = ap.parse_args()
    if not a.gen or not a.addr or "." not in a.call:
        ap.print_usage(sys.stderr)
        sys.exit(2)
    generate(a.gen)
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
        sys.exit("dc.py: unknown service %s" % service)
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
        call = (channel.unary_stream if a.stream else channel.unary_unary)(
            path, request_serializer=lambda b: b, response_deserializer=resp_class.FromString)
        request = bytes.fromhex(a.raw)
    else:
        stub = getattr(pb_grpc, stub_name)(channel)
        call = getattr(stub, method)
        request = json_format.Parse(a.request, getattr(pb, desc.input_type.name)())

    def show(msg):
        print(json.dumps(json_format.MessageToDict(msg, preserving_proto_field_name=True)),
              flush=True)

    try:
        if a.stream:
            for msg in call(request, timeout=a.timeout):
                show(msg)
        else:
            show(call(request, timeout=a.timeout))
    except grpc.RpcError as e:
        print(json.dumps({"code": e.code().name, "details": e.details()}), flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
