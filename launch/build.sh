#!/usr/bin/env bash
# Configures and builds txl into build/ (Release). Extra arguments go to cmake, e.g.
#   launch/build.sh -DTXL_CUDA=OFF
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${TXL_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
ninja -C "$build" -j "$(nproc)"
