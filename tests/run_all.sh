#!/usr/bin/env bash
# The full test suite (README command 2; .ci/run calls exactly this):
#  1. install missing Debian packages,
#  2. Release build (CUDA sources compiled when nvcc is present) + every ctest test
#     (GPU tests report "skipped: no GPU" without a GPU),
#  3. compile-only checks of the CPU code for x86-64-v4 (also at -O1), x86-64-v3 and
#     aarch64 (tests/compile_targets.sh), warnings as errors; of x86-64-v3/v4, the one
#     this machine's -march=native release build already was is not compiled twice,
#  4. ASan+UBSan build (portable target: TXL_NATIVE=OFF) of the CPU libraries and tests
#     + ctest -L cpu,
#  5. the two-node SLURM end-to-end test.
# Our own code builds with -DTXL_WERROR=ON here; a user's build never fails on a warning.
# Ends with one summary line "tests: N passed, M failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)
passed=0
failed=0
skipped=0

tally() {  # tally LOGFILE: adds ctest's "N tests failed out of M" to the totals
  local line
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$1" | tail -n 1)
  if [[ -z "$line" ]]; then
    failed=$((failed + 1))
    return
  fi
  local f t
  f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  t=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
  local s
  s=$(grep -cE "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*\*\*\*Skipped" "$1")
  passed=$((passed + t - f - s))
  failed=$((failed + f))
  skipped=$((skipped + s))
}

start=$SECONDS
section() { printf '\n==== %s (at %d s) ====\n' "$*" $((SECONDS - start)); }

section "dependencies"
launch/install_deps.sh --test || { echo "error: installing dependencies failed"; exit 1; }

section "release build"
mkdir -p build build-asan
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTXL_WERROR=ON >build/configure.log 2>&1 || { cat build/configure.log; exit 1; }
ninja -C build -j "$jobs" || { echo "error: release build failed"; exit 1; }

# The compile checks for other CPU targets (step 3) build alongside the release tests, at
# a lower priority: the tests leave about a fifth of the cores idle (processes that wait
# on each other), and the two together take about a minute less than one after the other.
# The release build above compiled the CPU code at -O3 with -march=native and -Werror. On
# an AVX-512 machine (x86-64-v4 features) that already was the x86-64-v4 check, on an
# AVX2 one the x86-64-v3 check; only the other one is compiled again here.
# The macro list is read whole first: `g++ ... | grep -q` under pipefail fails whenever grep
# stops reading early and g++ dies of SIGPIPE, which made AVX-512 machines look like AVX2
# ones (and skipped the x86-64-v3 check).
native_macros=$(echo | g++ -march=native -dM -E - 2>/dev/null)
native_has() { grep -q "^#define $1 " <<<"$native_macros"; }
compile_targets=(x86-64-v4:O1 aarch64)
if native_has __AVX512F__ && native_has __AVX512BW__ && native_has __AVX512DQ__ && native_has __AVX512VL__; then
  compile_targets+=(x86-64-v3)
elif native_has __AVX2__ && native_has __FMA__ && native_has __BMI2__; then
  compile_targets+=(x86-64-v4)
else
  compile_targets+=(x86-64-v4 x86-64-v3)
fi
nice -n 10 tests/compile_targets.sh "${compile_targets[@]}" >build/compile_targets.log 2>&1 &
compile_targets_pid=$!

section "tests (release)"
ctest --test-dir build --output-on-failure -j "$jobs" 2>&1 | tee build/ctest.log
tally build/ctest.log

section "compile checks for other CPU targets: ${compile_targets[*]} (the release build covered this machine's own)"
wait "$compile_targets_pid"
rc=$?
cat build/compile_targets.log
passed=$((passed + ${#compile_targets[@]} - rc))
failed=$((failed + rc))

section "sanitizer build (ASan + UBSan, CPU, portable target)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g1" -DTXL_SANITIZE=ON -DTXL_CUDA=OFF -DTXL_WERROR=ON -DTXL_NATIVE=OFF \
  >build-asan/configure.log 2>&1 || { cat build-asan/configure.log; exit 1; }
# The engine's own suites (the trainer's program tests start many processes and are
# covered by the release pass; under ASan they would dominate the suite's time).
asan_targets=(test_core test_cpu test_model test_model_head test_data test_dist test_dist_mpi)
ninja -C build-asan -j "$jobs" "${asan_targets[@]}" || { echo "error: sanitizer build failed"; exit 1; }

section "tests (sanitizers)"
# OpenMPI's own allocations are reported as leaks by LeakSanitizer; leaks are off, the
# rest of ASan/UBSan is on and fatal.
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" -L '^(module:(core|cpu|model|model_head|data|dist)|mpi)$' \
    -LE slow 2>&1 | tee build-asan/ctest.log
tally build-asan/ctest.log

if [[ -x tests/slurm/run_slurm_e2e.sh ]]; then
  section "SLURM two-node end-to-end"
  if tests/slurm/run_slurm_e2e.sh build/bin; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
fi

echo
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped ($((SECONDS - start)) s)"
[[ $failed -eq 0 ]]
