#!/usr/bin/env bash
# End-to-end data-parallel checks with the real txl_train (CPU, Open MPI):
#  1. equivalence: the parameters after k steps with `mpirun -np 2` and global batch B
#     equal those of one process with the same B (relative difference ||A-B||/||A|| of
#     all parameters <= 1e-6), with and without batch_chunk, with local_batch_size, with
#     dropout and attention dropout on;
#  2. multi-rank evaluation: txl_eval on 2 ranks gives the loss of 1 rank;
#  3. ranks with different configurations stop at start-up, naming the rank;
#  4. a killed rank: SIGKILL to one rank of a 2-rank run ends the other non-zero within 60 s;
#  5. a 2-rank job into a work dir another job holds stops on every rank.
# Usage: tests/dist/run_equivalence.sh BIN_DIR [WORK_DIR]
# Prints one line per check and "equivalence: N passed, M failed"; exit 0 when all passed.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(cd "${1:?usage: $0 BIN_DIR [WORK_DIR]}" && pwd)
work=${2:-$(mktemp -d /tmp/txl-equivalence.XXXXXX)}
mkdir -p "$work"
config=$root/tests/dist/equivalence.yaml
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 TXL_COLLECTIVE_TIMEOUT_S=120
passed=0
failed=0
check() {  # check NAME COMMAND...: runs the command, counts and reports
  local name=$1
  shift
  if "$@"; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
}

corpus=$work/corpus.h5
rm -f "$corpus"
"$bin/txl_prep" --dataset wt2 --data "$root/data_prep/samples/wikitext-2" --out "$corpus" >"$work/prep.log" 2>&1 ||
  { cat "$work/prep.log"; echo "error: txl_prep failed"; exit 1; }

train() {  # train NAME RANKS ARGS...: a fresh run into $work/NAME
  local name=$1 ranks=$2
  shift 2
  rm -rf "${work:?}/$name"
  local launcher=()
  ((ranks > 1)) && launcher=(mpiexec -n "$ranks")
  if ! timeout 300 "${launcher[@]}" "$bin/txl_train" "$config" --data "$corpus" --work_dir "$work/$name" "$@" \
      >"$work/$name.out" 2>&1; then
    tail -n 20 "$work/$name.out"
    echo "error: training run '$name' failed (log $work/$name.out)"
    return 1
  fi
  [[ -f "$work/$name/checkpoint_last.h5" ]] || { echo "error: $name wrote no checkpoint_last.h5"; return 1; }
}

same_params() {  # same_params A B: parameters of two runs within 1e-6
  local out
  out=$("$bin/txl_checkpoint_diff" "$work/$1/checkpoint_last.h5" "$work/$2/checkpoint_last.h5" 1e-6)
  local rc=$?
  echo "  $1 vs $2: $(tail -n 1 <<<"$out")"
  return $rc
}

check "np1 reference run" train np1 1
check "np2, batch_size 4" train np2 2
check "np2, batch_chunk 2" train np2_chunk2 2 --batch_chunk 2
check "np1, batch_chunk 2" train np1_chunk2 1 --batch_chunk 2
check "np2, local_batch_size 2" train np2_local2 2 --batch_size 0 --local_batch_size 2
check "np2 == np1" same_params np1 np2
check "np2 batch_chunk 2 == np1" same_params np1 np2_chunk2
check "np1 batch_chunk 2 == np1" same_params np1 np1_chunk2
check "np2 local_batch_size 2 == np1" same_params np1 np2_local2

# Multi-rank evaluation: txl_eval on 2 ranks splits each batch's streams and reduces the
# loss; it must report the loss of one process (relative difference <= 1e-6).
evaluate() {  # evaluate NAME RANKS
  rm -f "$work/$1.json"
  local launcher=()
  (($2 > 1)) && launcher=(mpiexec -n "$2")
  timeout 300 "${launcher[@]}" "$bin/txl_eval" --model "$work/np1/checkpoint_last.h5" --data "$corpus" --split valid \
    --batch_size 4 --max_size 20 --json "$work/$1.json" >"$work/$1.out" 2>&1 || { tail -n 20 "$work/$1.out"; return 1; }
}
json_loss() { grep -o '"loss": *[-0-9.eE+]*' "$1" | head -n 1 | sed 's/.*: *//'; }
same_eval_loss() {
  local a b
  a=$(json_loss "$work/eval_np1.json")
  b=$(json_loss "$work/eval_np2.json")
  echo "  valid loss: 1 rank $a, 2 ranks $b"
  [[ -n "$a" && -n "$b" ]] && awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-6 * (a < 0 ? -a : a)) }'
}
check "txl_eval, 1 rank" evaluate eval_np1 1
check "txl_eval, 2 ranks" evaluate eval_np2 2
check "txl_eval 2 ranks == 1 rank" same_eval_loss

# Ranks started with different configurations stop at start-up with a message naming
# the rank (MPMD launch: rank 1 gets another seed).
mismatched_config() {
  rm -rf "$work/mismatch"
  local out=$work/mismatch.out rc=0
  timeout 120 mpiexec -n 1 "$bin/txl_train" "$config" --data "$corpus" --work_dir "$work/mismatch" --seed 1 : \
    -n 1 "$bin/txl_train" "$config" --data "$corpus" --work_dir "$work/mismatch" --seed 2 >"$out" 2>&1 || rc=$?
  echo "  exit code $rc: $(grep -m 1 'differs between ranks' "$out")"
  ((rc != 0)) && grep -q "configuration differs between ranks: rank(s) 1" "$out" &&
    [[ ! -e "$work/mismatch/checkpoint_last.h5" ]]
}
check "different configs on two ranks stop the job at start-up" mismatched_config

# A killed rank ends the job. Rank 1 is found among this run's processes by the
# OMPI_COMM_WORLD_RANK in its environment and killed by PID once training is under way.
kill_one_rank() {
  local dir=$work/killed
  rm -rf "$dir"
  mpiexec -n 2 "$bin/txl_train" "$config" --data "$corpus" --work_dir "$dir" --max_step 100000 --eval_interval 0 \
    >"$work/killed.out" 2>&1 &
  local launcher=$!
  local victim=""
  for _ in $(seq 300); do
    if [[ -f "$dir/train_log.jsonl" ]] && grep -q '"type":"train"' "$dir/train_log.jsonl"; then
      for pid in $(pgrep -f -- "--work_dir $dir" || true); do
        if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then victim=$pid; fi
      done
      [[ -n "$victim" ]] && break
    fi
    sleep 0.2
  done
  if [[ -z "$victim" ]]; then
    echo "  could not find rank 1 of the running job"
    kill -KILL "$launcher" 2>/dev/null
    return 1
  fi
  local start=$SECONDS
  kill -KILL "$victim"
  local rc=0
  for _ in $(seq 600); do
    kill -0 "$launcher" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$launcher" 2>/dev/null; then
    echo "  the job was still running 60 s after rank 1 was killed"
    kill -KILL "$launcher" 2>/dev/null
    return 1
  fi
  wait "$launcher" || rc=$?
  echo "  rank 1 killed; the job ended with exit code $rc after $((SECONDS - start)) s"
  ((rc != 0)) && ((SECONDS - start <= 60))
}
check "killing one of 2 ranks ends the job non-zero within 60 s" kill_one_rank

# The work-dir lock with several ranks: rank 0 cannot take the lock of a work dir another
# live job holds, and every rank of the 2-rank job stops (a non-zero exit well before the
# collective timeout; each rank that reports before the abort ends the others prints one
# error line, each naming the holder's pid); the holder goes on.
locked_work_dir() {
  local dir=$work/locked
  rm -rf "$dir"
  "$bin/txl_train" "$config" --data "$corpus" --work_dir "$dir" --max_step 100000 --eval_interval 0 \
    >"$work/lock_holder.out" 2>&1 &
  local holder=$!
  for _ in $(seq 600); do [[ -f "$dir/train_log.log" ]] && break; sleep 0.2; done
  local rc=0 start=$SECONDS
  timeout 100 mpiexec -n 2 "$bin/txl_train" "$config" --data "$corpus" --work_dir "$dir" --max_step 100000 \
    --restart auto >"$work/locked.out" 2>&1 || rc=$?
  local took=$((SECONDS - start)) holder_alive=0
  kill -0 "$holder" 2>/dev/null && holder_alive=1
  kill -TERM "$holder" 2>/dev/null
  wait "$holder"
  local holder_rc=$?
  local errors named
  errors=$(grep -c 'error:' "$work/locked.out")
  named=$(grep 'error:' "$work/locked.out" | grep -c "is in use by another txl_train job (host .*, pid $holder,")
  echo "  2-rank job: exit code $rc after $took s, $errors error line(s), $named naming the holder;" \
    "the holder $( ((holder_alive)) && echo "went on and stopped with exit code $holder_rc" || echo "had ended")"
  ((rc != 0 && rc != 124)) && ((holder_alive == 1 && holder_rc == 0)) && ((errors >= 1 && named == errors)) &&
    ! pgrep -f -- "--work_dir $dir --max_step 100000 --restart auto" >/dev/null
}
check "a 2-rank job into a locked work dir stops on every rank" locked_work_dir

echo "equivalence: $passed passed, $failed failed (work dir $work)"
((failed == 0))
