#!/usr/bin/env bash
# Compile-only checks of the CPU code (src/core, src/cpu: Eigen's SIMD paths) for CPU
# targets other than this machine's, with warnings as errors, so a warning that only one
# instruction set produces (GCC 12's AVX-512 false positives in Eigen, src/cpu/
# eigen_core.h) cannot come back unnoticed on a machine that lacks that instruction set.
# Nothing is run. Part of tests/run_all.sh.
#
# Usage: tests/compile_targets.sh [TARGET...]   (default: x86-64-v4 x86-64-v4:O1 x86-64-v3 aarch64)
#   x86-64-vN[:O1]  CMake build of txl_cpu with -DTXL_MARCH=x86-64-vN (Release, or -O1 as the
#                   sanitizer build uses: GCC reports other uninitialized warnings there)
#   aarch64         Debian's cross compiler (g++-aarch64-linux-gnu) for Grace (-march=armv9-a: its ISA; GCC 12 has no -mcpu=neoverse-v2)
# Exit status: the number of targets that failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
targets=("$@")
((${#targets[@]})) || targets=(x86-64-v4 x86-64-v4:O1 x86-64-v3 aarch64)
failed=0

x86_target() {  # x86_target MARCH OPT
  local march=$1 opt=$2 dir="$root/build-target-$1${2:+-$2}"
  local flags=()
  [[ $opt == O1 ]] && flags=(-DCMAKE_BUILD_TYPE=None "-DCMAKE_CXX_FLAGS=-O1 -g1") || flags=(-DCMAKE_BUILD_TYPE=Release)
  mkdir -p "$dir"
  cmake -S "$root" -B "$dir" -G Ninja "${flags[@]}" -DTXL_MARCH="$march" -DTXL_CUDA=OFF -DTXL_WERROR=ON \
    -DTXL_BUILD_TESTS=OFF >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; return 1; }
  ninja -C "$dir" -j "$jobs" txl_cpu
}

aarch64_target() {
  local cxx=aarch64-linux-gnu-g++ dir="$root/build-target-aarch64"
  command -v "$cxx" >/dev/null || { echo "error: $cxx not found (apt-get install g++-aarch64-linux-gnu)"; return 1; }
  # Only the header-only dependencies, so the cross compiler never sees the host's libc headers.
  mkdir -p "$dir/include"
  ln -sfn /usr/include/eigen3/Eigen "$dir/include/Eigen"
  ln -sfn /usr/include/fmt "$dir/include/fmt"
  local srcs=("$root"/src/core/*.cpp "$root"/src/cpu/*.cpp) pids=() status=0
  for src in "${srcs[@]}"; do
    while (($(jobs -rp | wc -l) >= jobs)); do wait -n || status=1; done
    "$cxx" -std=c++20 -O2 -march=armv9-a -fopenmp -Wall -Wextra -Werror -I"$root/include" -isystem "$dir/include" \
      -c "$src" -o "$dir/$(basename "$src").o" &
  done
  while (($(jobs -rp | wc -l))); do wait -n || status=1; done
  ((status == 0)) && echo "aarch64: compiled ${#srcs[@]} files"
  return $status
}

for t in "${targets[@]}"; do
  printf -- '-- compile check: %s\n' "$t"
  case $t in
    x86-64-v*:O1) x86_target "${t%:O1}" O1 ;;
    x86-64-v*) x86_target "$t" "" ;;
    aarch64) aarch64_target ;;
    *) echo "error: unknown target '$t'"; false ;;
  esac || { echo "FAILED: compile check $t"; failed=$((failed + 1)); }
done
exit $failed
