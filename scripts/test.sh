#!/bin/bash
# The whole test suite, from a fresh Debian 12 machine: installs what is
# needed (Debian packages, a pinned CRIU), builds crstream normally and under
# ASan+UBSan, then runs the unit and integration tests (tests/run.sh).
# Arguments are passed to tests/run.sh (e.g. `scripts/test.sh streamer`).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/setup.sh >&2
source build/env.sh
exec tests/run.sh "$@"
