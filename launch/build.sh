#!/usr/bin/env bash
# Configures and builds txl into build/ (Release). Extra arguments go to cmake, e.g.
#   launch/build.sh -DTXL_CUDA=OFF
# TXL_BUILD_TARGETS="txl_train txl_eval" builds only those targets (default: everything,
# tests and benchmarks included).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${TXL_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
# shellcheck disable=SC2086  # a list of target names
ninja -C "$build" -j "$(nproc)" ${TXL_BUILD_TARGETS:-}
