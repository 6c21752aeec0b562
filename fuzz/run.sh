#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [TARGET...]: builds the libFuzzer targets fuzz/fuzz_*.cpp with clang
# (-fsanitize=fuzzer,address,undefined; its own build dir, build-fuzz/) and runs each for
# SECONDS (default 600), starting from fuzz/seeds/<name>/. New interesting inputs go to
# build-fuzz/corpus/<name>/, crashes to build-fuzz/crashes/<name>/ (add a crash input to
# fuzz/seeds/<name>/ once fixed: the regular test suite replays every seed). One line per
# target: executions, seconds, and whether it found a crash. JOBS=N runs N targets at once;
# NO_BUILD=1 runs what build-fuzz/ already holds; FORK=1 keeps fuzzing past crashes and timeouts
# (libFuzzer's fork mode; a hang inside libhdf5 on a crafted file is a known finding).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
build=${TXL_FUZZ_BUILD:-build-fuzz}
jobs=${JOBS:-1}
command -v clang++ >/dev/null || { echo "error: clang++ not found (apt-get install clang)" >&2; exit 1; }
[ -n "${NO_BUILD:-}" ] || cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DTXL_CUDA=OFF -DTXL_NATIVE=OFF -DTXL_BUILD_TESTS=OFF -DTXL_FUZZ=ON \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER} >/dev/null
if [ $# -gt 0 ]; then targets=("$@"); else
  targets=(); for f in fuzz/fuzz_*.cpp; do n=$(basename "$f" .cpp); targets+=("${n#fuzz_}"); done
fi
[ -n "${NO_BUILD:-}" ] || ninja -C "$build" "${targets[@]/#/fuzz_}"
run_one() {
  local name=$1 corpus="$build/corpus/$1" crashes="$build/crashes/$1/" log="$build/fuzz_$1.log"
  mkdir -p "$corpus" "$crashes"
  # OMP_NUM_THREADS=1: Eigen inside one process; detect_leaks off: HDF5 keeps global state.
  OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=0 TMPDIR=$(mktemp -d) "$build/bin/fuzz_$name" -max_total_time="$seconds" \
    ${FORK:+-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1} -timeout=30 -rss_limit_mb=4096 -max_len=262144 -artifact_prefix="$crashes" -print_final_stats=1 \
    "$corpus" "fuzz/seeds/$name" >"$log" 2>&1 || true
  local execs
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  # Fork mode prints "#N: cov: ..." progress lines instead.
  [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*:' "$log" | tail -n 1 | tr -d '#:' || true)
  local found="no crash"
  if ls "$crashes" | grep -q .; then found="CRASH: $(ls "$crashes" | head -3 | tr '\n' ' ')"; fi
  echo "fuzz_$name: ${execs:-?} executions in $seconds s, $found (log $log)"
}
export -f run_one; export build seconds
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'
