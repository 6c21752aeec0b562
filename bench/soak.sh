#!/usr/bin/env bash
# bench/soak.sh [N] [BUILD_DIR]: N trials (default 10) of a small training run (the test
# suite's tiny model on the bundled WikiText-2 sample, 60 steps, a checkpoint every 10)
# that is interrupted 1-3 times at random moments by SIGTERM, SIGKILL or SIGUSR1 and
# continued each time with --restart auto, until it finishes. Every trial's final
# checkpoint must be bit-identical (/model and /memory, txl_checkpoint_diff with
# tolerance 0) to one uninterrupted run's. Prints one line per trial and a summary; exits
# 1 when any trial diverged or a restart failed. Run it under `nice -n 19` on a shared box.
set -uo pipefail
cd "$(dirname "$0")/.."
trials=${1:-10}
build=${2:-build}
bin=$build/bin
for b in txl_train txl_prep txl_checkpoint_diff; do
  [ -x "$bin/$b" ] || { echo "error: $bin/$b is not built (ninja -C $build $b)" >&2; exit 1; }
done
root=$(mktemp -d "${TMPDIR:-/tmp}/txl_soak.XXXXXX")
trap 'rm -rf "$root"' EXIT
# Private copies: a rebuild of $build during the soak (hours) must not change, or half-write,
# the binaries it compares.
mkdir -p "$root/bin"
for b in txl_train txl_prep txl_checkpoint_diff; do cp "$bin/$b" "$root/bin/"; done
bin=$root/bin
export OMP_NUM_THREADS=1 TXL_LOCK_HEARTBEAT_S=1
"$bin/txl_prep" --dataset wt2 --data data_prep/samples/wikitext-2 --out "$root/corpus.h5" --quiet >/dev/null
cat >"$root/soak.yaml" <<YAML
default:
  train:
    data: $root/corpus.h5
    dataset: wt2
    device: cpu
    n_layer: 2
    d_model: 32
    n_head: 2
    d_head: 16
    d_inner: 64
    adaptive: true
    cutoffs: [1000, 4000]
    div_val: 2
    dropout: 0.1
    dropatt: 0.1
    tgt_len: 16
    mem_len: 16
    eval_tgt_len: 16
    batch_size: 8
    batch_chunk: 2
    eval_batch_size: 64
    optim: lamb
    lr: 0.01
    warmup_step: 3
    max_step: 60
    max_step_scheduler: 400
    log_interval: 5
    eval_interval: 10
    eval_max_steps: 2
    roll: true
    seed: 7
YAML
train() { "$bin/txl_train" "$root/soak.yaml" --work_dir "$1" --restart auto; }
finished() { tail -n 1 "$1/train_log.jsonl" 2>/dev/null | grep -q '"type":"summary"'; }

now() { date +%s.%N; }
start=$(now)
train "$root/ref" >"$root/ref.log" 2>&1 || { echo "error: the reference run failed: $(tail -n 1 "$root/ref.log")" >&2; exit 1; }
ref_seconds=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
echo "reference run: $ref_seconds s"
# The moment of a signal is drawn within the expected length of a whole run, which follows
# the load of a shared machine: the mean of it and each uninterrupted whole run's length.
expected=$ref_seconds
signals=(TERM KILL USR1)
diverged=0 failed=0 interruptions=0 interrupted_trials=0 runs=0
declare -A by_signal=([TERM]=0 [KILL]=0 [USR1]=0)
late=0
for ((t = 1; t <= trials; t++)); do
  work="$root/trial"
  rm -rf "$work"
  kills=$((1 + RANDOM % 3)) sent="" restarts=0 ok=1
  while ! finished "$work"; do
    # The binary itself in the background (not a function: $! must be txl_train's pid).
    run_start=$(now) sig=""
    "$bin/txl_train" "$root/soak.yaml" --work_dir "$work" --restart auto >>"$root/trial.log" 2>&1 &
    pid=$!
    if ((kills > 0)); then
      # A random moment within the expected run time (milliseconds).
      sleep "$(awk -v r=$RANDOM -v s="$expected" 'BEGIN { printf "%.3f", (r % 1000) * s / 1000 }')"
      sig=${signals[RANDOM % 3]}
      kill -s "$sig" "$pid" 2>/dev/null || sig=""
      kills=$((kills - 1))
    fi
    wait "$pid"
    rc=$?
    if [ -n "$sig" ] && [ $rc -eq 0 ] && finished "$work"; then
      late=$((late + 1)) sig=""  # it came as the run ended (a process not yet reaped takes it)
    elif [ -n "$sig" ]; then
      sent+="$sig " interruptions=$((interruptions + 1))
      by_signal[$sig]=$((by_signal[$sig] + 1))
    elif ((restarts == 0)) && [ $rc -eq 0 ]; then
      expected=$(awk -v e="$expected" -v a="$run_start" -v b="$(now)" 'BEGIN { printf "%.3f", (e + b - a) / 2 }')
    fi
    restarts=$((restarts + 1)) runs=$((runs + 1))
    # 0: finished or stopped cleanly; 137: SIGKILL; 143 / 138: SIGTERM / SIGUSR1 before
    # the handlers were installed (start-up), which ends the process as they do by default.
    if [ $rc -ne 0 ] && [ $rc -ne 137 ] && [ $rc -ne 143 ] && [ $rc -ne 138 ]; then
      echo "trial $t: a run exited $rc: $(grep error: "$root/trial.log" | tail -n 1)"
      ok=0 failed=$((failed + 1))
      break
    fi
    if ((restarts > 10)); then echo "trial $t: no progress after 10 runs"; ok=0 failed=$((failed + 1)); break; fi
  done
  [ -z "$sent" ] || interrupted_trials=$((interrupted_trials + 1))
  ((ok)) || { : >"$root/trial.log"; continue; }
  result=identical
  for group in /model /memory; do
    if ! "$bin/txl_checkpoint_diff" "$root/ref/checkpoint_last.h5" "$work/checkpoint_last.h5" 0 "$group" 2>&1 |
      tail -n 1 | grep -q ' bit-identical'; then
      result="DIVERGED in $group"
    fi
  done
  if [ "$result" != identical ]; then
    diverged=$((diverged + 1))
    keep="${TMPDIR:-/tmp}/txl_soak_diverged_$t.$$"
    cp -r "$work" "$keep" && cp "$root/trial.log" "$keep/runs.log"
    result+=" (work dir and logs kept in $keep)"
  fi
  : >"$root/trial.log"
  echo "trial $t: signals ${sent:-none (finished first)}, $restarts runs, $result"
done
echo "soak: $trials trials ($interrupted_trials interrupted), $interruptions interruptions" \
  "(${by_signal[KILL]} KILL, ${by_signal[TERM]} TERM, ${by_signal[USR1]} USR1; $late more signals came as a" \
  "run ended), $runs txl_train runs, $diverged diverged, $failed failed runs; last expected run length $expected s"
[ $diverged -eq 0 ] && [ $failed -eq 0 ]
