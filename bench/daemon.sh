#!/bin/bash
# The daemon's benchmark (bench/daemon.py: its added latency per dump, its
# RSS over 1,000 requests). As root; builds what it needs.
#   bench/daemon.sh [--dumps N] [--requests N] [--mib S] [--update]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/setup.sh >&2
source build/env.sh
make -s -j2 all subjects >/dev/null
exec build/tools/subreaper /usr/bin/python3 bench/daemon.py "$@"
