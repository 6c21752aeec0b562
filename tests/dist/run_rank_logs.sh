#!/usr/bin/env bash
# The recipe's log_all_ranks under MPI: `mpiexec -n 2 txl_train ... --log_all_ranks`
# writes train_log_rank_0.log and train_log_rank_1.log (train.py's
# f'train_log_rank_{rank}.log', tests/fixtures/recipe/log_formats.txt) and no
# train_log.log; every line of rank 1's file has the prefix
# "%(asctime)s - %(levelname)s - %(rank)s - %(message)s" with rank 1, and its messages
# include the recipe's training, evaluation and end lines in their formats; rank 1's
# console lines start with "1: ".
# Usage: tests/dist/run_rank_logs.sh BIN_DIR [WORK_DIR]; exit 0 when every check passed.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(cd "${1:?usage: $0 BIN_DIR [WORK_DIR]}" && pwd)
work=${2:-$(mktemp -d /tmp/txl-rank-logs.XXXXXX)}
rm -rf "$work"
mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 TXL_COLLECTIVE_TIMEOUT_S=120
failed=0
fail() {
  echo "FAIL $*"
  failed=1
}

"$bin/txl_prep" --dataset wt2 --data "$root/data_prep/samples/wikitext-2" --out "$work/corpus.h5" >"$work/prep.log" 2>&1 ||
  { cat "$work/prep.log"; echo "error: txl_prep failed"; exit 1; }
# The small model of tests/dist/equivalence.yaml, 4 steps, one evaluation.
mpiexec -n 2 --oversubscribe "$bin/txl_train" "$root/tests/dist/equivalence.yaml" --data "$work/corpus.h5" \
  --max_step 4 --log_interval 2 --eval_interval 4 --eval_max_steps 2 --log_all_ranks --work_dir "$work/run" \
  >"$work/console.log" 2>&1 || { cat "$work/console.log"; echo "error: txl_train failed"; exit 1; }

log=$work/run/train_log_rank_1.log
[[ -f $log ]] || fail "no $log"
[[ -f $work/run/train_log_rank_0.log ]] || fail "no train_log_rank_0.log"
[[ ! -e $work/run/train_log.log ]] || fail "train_log.log written although every rank has its own file"
[[ ! -e $work/run/train_log_rank1.log ]] || fail "train_log_rank1.log (not the recipe's name) written"
prefix='^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} - INFO - 1 - '
if [[ -f $log ]]; then
  [[ -s $log ]] || fail "$log is empty"
  bad=$(grep -cvE "$prefix" "$log")
  [[ $bad -eq 0 ]] || fail "$bad lines of $log without the rank-1 prefix: $(grep -vE "$prefix" "$log" | head -1)"
  # The recipe's format strings (train.py: '| epoch {:3d} step {:>8d} | batches {:>6d} / {:d} | lr {:.3e} '
  # '| ms/batch {:5.1f} | tok/s {:7.0f} | loss {:5.2f}' + ' | ppl {:9.2f}'; the eval and end lines).
  train='\| epoch [ 0-9]{3,} step [ 0-9]{8,} \| batches [ 0-9]{6,} / [0-9]+ \| lr [0-9]\.[0-9]{3}e[-+][0-9]{2} \| ms/batch [ 0-9]{3,}\.[0-9] \| tok/s [ 0-9]{7,} \| loss [ 0-9]{2,}\.[0-9]{2} \| ppl [ 0-9]{5,}\.[0-9]{2}$'
  eval='\| Eval [ 0-9]{3,} at step [ 0-9]{8,} \| time: [ 0-9]{2,}\.[0-9]{2}s \| valid loss [ 0-9]{2,}\.[0-9]{2} \| valid ppl [ 0-9]{5,}\.[0-9]{3}$'
  end='\| End of training \| test time: [ 0-9]{2,}\.[0-9]{2}s \| test loss [ 0-9]{2,}\.[0-9]{2} \| test ppl [ 0-9]{5,}\.[0-9]{3}$'
  n=$(grep -cE "$prefix$train" "$log")
  [[ $n -eq 2 ]] || fail "$n training lines in the recipe's format in $log (expected 2: steps 2 and 4)"
  [[ $(grep -c -- "- 1 - | epoch" "$log") -eq $n ]] || fail "a training line of $log is not in the recipe's format"
  grep -qE "$prefix$eval" "$log" || fail "no evaluation line in the recipe's format in $log"
  grep -qE "$prefix$end" "$log" || fail "no end-of-training line in the recipe's format in $log"
  grep -qE "${prefix}Training time: [0-9]+\.[0-9]{2} minutes$" "$log" || fail "no 'Training time' line in $log"
fi
grep -q '^1: | epoch' "$work/console.log" || fail "rank 1's console lines do not start with '1: '"
grep -q '^0: | epoch' "$work/console.log" || fail "rank 0's console lines do not start with '0: '"

if [[ $failed -ne 0 ]]; then
  echo "--- $log"; cat "$log" 2>/dev/null | head -40
  exit 1
fi
echo "rank logs: passed"
