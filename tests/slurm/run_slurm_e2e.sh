#!/usr/bin/env bash
# SLURM end-to-end test on one machine (about 2 minutes):
#   tests/slurm/run_slurm_e2e.sh BIN_DIR [WORK_DIR]
# BIN_DIR holds txl_train, txl_prep and txl_checkpoint_diff (e.g. build/bin). Needs root
# the first time (apt-get install slurmctld slurmd slurm-client).
#  1. starts a private cluster of two emulated nodes (tests/slurm/cluster.sh),
#  2. `sbatch -N 2 slurm/run.sub train`: a 2-rank run of the tiny preset (configs/tiny.yaml,
#     its `smoke` variant), one rank per node launched by srun --mpi=pmix; checks the job's
#     output and the train log (2 ranks on 2 nodes), the checkpoint, and that the
#     parameters equal a `mpirun -np 2` run's,
#     then `run.sub eval` on 2 ranks of one node reports the loss of a 1-process txl_eval,
#     and `srun --mpi=none|pmi2` fails with one line naming `srun --mpi=pmix`,
#  3. a longer job is interrupted three times: USR1 to the batch script (what
#     --signal=B:USR1@180 sends before the time limit), `scancel --signal=TERM` (SIGTERM to
#     the step alone) -- run.sub requeues the job itself after both -- and `scontrol
#     requeue`; it must resume every time, finish, and end with the parameters of an
#     uninterrupted run; a plain `scancel` must cancel for good,
#  4. SIGKILL to one rank of a running job ends the job within 60 s,
# then stops the daemons it started (by PID). Prints PASS/FAIL per check and a summary
# line "slurm e2e: N passed, M failed"; exit 0 when all passed.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(cd "${1:?usage: $0 BIN_DIR [WORK_DIR]}" && pwd)
work=${2:-$(mktemp -d /tmp/txl-slurm-e2e.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
# The short job runs the tiny preset's smoke variant; the longer jobs a smaller model whose
# steps take milliseconds, so that they can be interrupted at chosen steps.
tiny_config=$root/configs/tiny.yaml
tiny_preset=smoke
config=$root/tests/dist/equivalence.yaml
start_time=$SECONDS

for tool in txl_train txl_prep txl_checkpoint_diff; do
  [[ -x "$bin/$tool" ]] || { echo "error: $bin/$tool is missing (build it first)"; exit 1; }
done
"$root/tests/slurm/install_slurm.sh" || exit 1

passed=0
failed=0
check() {  # check NAME COMMAND...
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

# A free port for slurmctld (+1, +2 for the two slurmd): another cluster may be running.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=${TXL_SLURM_PORT:-6817}
while port_in_use "$port" || port_in_use $((port + 1)) || port_in_use $((port + 2)); do port=$((port + 10)); done
export TXL_SLURM_PORT=$port

cluster=$work/cluster
cleanup() {
  if [[ -f "$cluster/slurm.conf" ]]; then
    SLURM_CONF=$cluster/slurm.conf scancel --quiet --user="$(id -un)" 2>/dev/null
    sleep 1
  fi
  "$root/tests/slurm/cluster.sh" stop "$cluster"
}
trap cleanup EXIT
"$root/tests/slurm/cluster.sh" start "$cluster" || { echo "FAIL start the two-node test cluster"; exit 1; }

export SLURM_CONF=$cluster/slurm.conf
# MPI on loopback only, TCP between the two emulated nodes (one host: shared memory
# between "nodes" is not safe); root allowed; a short collective deadline.
export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl=self,tcp
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 TXL_COLLECTIVE_TIMEOUT_S=120
export TXL_BIN=$bin TXL_ROOT=$root CONFIG=$config PRESET=default

corpus=$work/corpus.h5
"$bin/txl_prep" --dataset wt2 --data "$root/data_prep/samples/wikitext-2" --out "$corpus" >"$work/prep.log" 2>&1 ||
  { cat "$work/prep.log"; echo "FAIL txl_prep"; exit 1; }
export DATA=$corpus

last_step() {  # last training step in a work dir's metrics file (0 when none)
  local s
  s=$(grep -o '"step":[0-9]*' "$1/train_log.jsonl" 2>/dev/null | tail -n 1 | cut -d: -f2)
  echo "${s:-0}"
}
job_field() { scontrol show job "$1" -o 2>/dev/null | tr ' ' '\n' | grep "^$2=" | cut -d= -f2; }
wait_for() {  # wait_for SECONDS COMMAND...: polls until the command succeeds
  local limit=$1
  shift
  local until=$((SECONDS + limit))
  while ((SECONDS < until)); do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}
same_params() {  # same_params A.h5 B.h5
  local out rc
  out=$("$bin/txl_checkpoint_diff" "$1" "$2" 1e-6)
  rc=$?
  echo "  $(tail -n 1 <<<"$out")"
  return $rc
}

# ---- 2. a short training job on two nodes -------------------------------------------
reference() {  # reference NAME CONFIG PRESET MAX_STEP [ARGS...]: the same training with mpirun -np 2
  local name=$1 file=$2 preset=$3 steps=$4
  shift 4
  rm -rf "${work:?}/$name"
  timeout 300 mpiexec -n 2 "$bin/txl_train" "$file" --config "$preset" --data "$corpus" --work_dir "$work/$name" \
    --max_step "$steps" --restart auto "$@" >"$work/$name.out" 2>&1 || { tail -n 20 "$work/$name.out"; return 1; }
}
check "mpirun -np 2 reference run (tiny preset)" reference mpirun_np2 "$tiny_config" "$tiny_preset" 10

short_job() {
  cd "$root" || return 1
  local out=$work/short.out
  rm -rf "$work/short"
  if ! CONFIG=$tiny_config PRESET=$tiny_preset WORK_DIR=$work/short MAX_STEP=10 timeout 180 \
       sbatch --wait -N 2 -o "$out" slurm/run.sub train >/dev/null; then
    echo "  the job failed:"
    tail -n 20 "$out"
    return 1
  fi
  grep -q "run.sub: train finished" "$out" || { echo "  no 'train finished' in $out"; return 1; }
  grep -q "mpi: 2 ranks on 2 nodes" "$work/short/train_log.log" ||
    { echo "  the train log does not show 2 ranks on 2 nodes"; grep "ranks\|rank" "$work/short/train_log.log" | head -3; return 1; }
  grep -q "End of training" "$work/short/train_log.log" || { echo "  the train log has no end line"; return 1; }
  [[ -f "$work/short/checkpoint_last.h5" ]] || { echo "  no checkpoint_last.h5"; return 1; }
  [[ "$(last_step "$work/short")" == 10 ]] || { echo "  last step $(last_step "$work/short"), expected 10"; return 1; }
}
check "sbatch -N 2 slurm/run.sub train: log, 2 ranks on 2 nodes, checkpoint" short_job
check "srun 2-node result == mpirun -np 2 result" same_params "$work/mpirun_np2/checkpoint_last.h5" \
  "$work/short/checkpoint_last.h5"

# Multi-rank evaluation on one node: `sbatch -N 1 --ntasks-per-node=2 run.sub eval` must
# report the loss of a one-process txl_eval of the same checkpoint.
json_loss() { grep -o '"loss": *[-0-9.eE+]*' "$1" 2>/dev/null | head -n 1 | sed 's/.*: *//'; }
eval_job() {
  cd "$root" || return 1
  local out=$work/eval.out
  rm -f "$work/eval_slurm.json" "$work/eval_single.json"
  if ! CONFIG=$tiny_config PRESET=$tiny_preset WORK_DIR=$work/short EVAL_ARGS="--json $work/eval_slurm.json" timeout 120 \
       sbatch --wait -N 1 --ntasks-per-node=2 -o "$out" slurm/run.sub eval >/dev/null; then
    tail -n 20 "$out"
    return 1
  fi
  grep -q "run.sub: eval finished" "$out" || { echo "  no 'eval finished' in $out"; return 1; }
  grep -q '"world": *2' "$work/eval_slurm.json" || { echo "  txl_eval did not run on 2 ranks"; return 1; }
  "$bin/txl_eval" "$tiny_config" --config "$tiny_preset" --work_dir "$work/short" --data "$corpus" \
    --json "$work/eval_single.json" \
    >"$work/eval_single.out" 2>&1 || { tail -n 20 "$work/eval_single.out"; return 1; }
  local a b
  a=$(json_loss "$work/eval_single.json")
  b=$(json_loss "$work/eval_slurm.json")
  echo "  loss: 1 process $a, 2 ranks under srun $b"
  [[ -n "$a" && -n "$b" ]] && awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-6 * (a < 0 ? -a : a)) }'
}
check "sbatch -N 1 --ntasks-per-node=2 run.sub eval == one-process txl_eval" eval_job

# srun without PMIx (--mpi=none, or pmi2 which Debian's Open MPI lacks): one clear line.
no_pmix() {
  local how out rc
  for how in none pmi2; do
    out=$work/no_pmix_$how.out
    rc=0
    timeout 60 srun -N 2 -n 2 --mpi="$how" "$bin/txl_train" "$config" --data "$corpus" --work_dir "$work/no_pmix" \
      >"$out" 2>&1 || rc=$?
    echo "  srun --mpi=$how: exit $rc: $(grep -m 1 '^error:' "$out")"
    ((rc != 0)) || return 1
    [[ $(grep -c "srun --mpi=pmix" "$out") == 1 ]] || { cat "$out"; return 1; }
  done
}
check "srun --mpi=none / pmi2: one line naming srun --mpi=pmix" no_pmix

# ---- 3. interrupted twice, requeued, resumed, finished --------------------------------
long_steps=${TXL_E2E_LONG_STEPS:-600}
interrupt() {  # interrupt JOB HOW AFTER_STEP: waits for the step, signals, releases the requeued job
  local job=$1 how=$2 after=$3
  wait_for 120 bash -c "[[ \$(grep -o '\"step\":[0-9]*' '$work/long/train_log.jsonl' 2>/dev/null | tail -n 1 | cut -d: -f2) -ge $after ]]" ||
    { echo "  the job did not reach step $after"; return 1; }
  local restarts
  restarts=$(job_field "$job" Restarts)
  echo "  $how at step $(last_step "$work/long") (restarts so far: $restarts)"
  case "$how" in
    usr1) scancel --batch --signal=USR1 "$job" ;;  # what --signal=B:USR1@180 does before the time limit
    scancel) scancel --signal=TERM "$job" ;;
    requeue) scontrol requeue "$job" ;;
  esac
  wait_for 60 bash -c "[[ \$(scontrol show job $job -o | grep -o 'Restarts=[0-9]*' | cut -d= -f2) -gt $restarts ]]" ||
    { echo "  the job was not requeued"; return 1; }
  # SLURM holds a requeued job for about two minutes; release it now.
  wait_for 60 bash -c "scontrol show job $job -o | grep -q 'JobState=PENDING'" &&
    scontrol update JobId="$job" StartTime=now >/dev/null 2>&1
  return 0
}
long_job() {
  cd "$root" || return 1
  rm -rf "$work/long"
  local job
  job=$(WORK_DIR=$work/long MAX_STEP=$long_steps EVAL_INTERVAL=100 LOG_INTERVAL=10 sbatch --parsable -N 2 -o "$work/long.out" \
        slurm/run.sub train) || return 1
  echo "  job $job"
  interrupt "$job" usr1 50 || return 1
  interrupt "$job" scancel $(( $(last_step "$work/long") + 50 )) || return 1
  interrupt "$job" requeue $(( $(last_step "$work/long") + 50 )) || return 1
  wait_for 240 bash -c "scontrol show job $job -o | grep -Eq 'JobState=(COMPLETED|FAILED|CANCELLED|TIMEOUT)'" ||
    { echo "  the job did not finish"; return 1; }
  local state
  state=$(job_field "$job" JobState)
  echo "  final state $state after $(job_field "$job" Restarts) restarts"
  [[ "$state" == COMPLETED ]] || { tail -n 20 "$work/long.out"; return 1; }
  local resumed
  resumed=$(grep -c "resumed from" "$work/long/train_log.log")
  echo "  the train log shows $resumed resumptions; last step $(last_step "$work/long")"
  ((resumed == 3)) && [[ "$(last_step "$work/long")" == "$long_steps" ]] &&
    grep -q "run.sub: train finished" "$work/long.out"
}
check "USR1 to the batch script, SIGTERM to the step, scontrol requeue: resumed 3 times, finished" long_job
check "mpirun -np 2 uninterrupted run of the same length" reference long_reference "$config" default "$long_steps" \
  --eval_interval 100 --log_interval 10
check "interrupted-and-resumed result == uninterrupted result" same_params \
  "$work/long_reference/checkpoint_last.h5" "$work/long/checkpoint_last.h5"

# A plain scancel cancels: the job must not come back.
cancelled_job() {
  cd "$root" || return 1
  rm -rf "$work/cancelled"
  local job
  job=$(WORK_DIR=$work/cancelled MAX_STEP=100000 EVAL_INTERVAL=0 LOG_INTERVAL=5 sbatch --parsable -N 2 \
        -o "$work/cancelled.out" slurm/run.sub train) || return 1
  wait_for 120 bash -c "[[ \$(grep -o '\"step\":[0-9]*' '$work/cancelled/train_log.jsonl' 2>/dev/null | tail -n 1 | cut -d: -f2) -ge 5 ]]" ||
    { echo "  job $job did not start training"; return 1; }
  scancel "$job"
  wait_for 60 bash -c "scontrol show job $job -o | grep -q 'JobState=CANCELLED'" ||
    { echo "  job $job is $(job_field "$job" JobState) after scancel"; return 1; }
  sleep 3
  echo "  job $job: $(job_field "$job" JobState), restarts $(job_field "$job" Restarts)"
  [[ "$(job_field "$job" JobState)" == CANCELLED && "$(job_field "$job" Restarts)" == 0 ]]
}
check "plain scancel cancels (no requeue)" cancelled_job

# ---- 4. a killed rank ends the job ------------------------------------------------------
killed_job() {
  cd "$root" || return 1
  rm -rf "$work/killed"
  local job
  job=$(WORK_DIR=$work/killed MAX_STEP=100000 EVAL_INTERVAL=0 LOG_INTERVAL=5 sbatch --parsable -N 2 -o "$work/killed.out" \
        slurm/run.sub train) || return 1
  wait_for 120 bash -c "[[ \$(grep -o '\"step\":[0-9]*' '$work/killed/train_log.jsonl' 2>/dev/null | tail -n 1 | cut -d: -f2) -ge 5 ]]" ||
    { echo "  job $job did not start training"; return 1; }
  local victim="" pid
  for pid in $(pgrep -f -- "--work_dir $work/killed" || true); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx SLURM_PROCID=1 &&
       [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == txl_train ]]; then
      victim=$pid
    fi
  done
  [[ -n "$victim" ]] || { echo "  rank 1 of job $job not found"; return 1; }
  local start=$SECONDS
  kill -KILL "$victim"
  wait_for 60 bash -c "scontrol show job $job -o | grep -Eq 'JobState=(FAILED|CANCELLED|COMPLETED)'" ||
    { echo "  job $job still $(job_field "$job" JobState) 60 s after rank 1 was killed"; return 1; }
  echo "  rank 1 killed; job $job ended $(job_field "$job" JobState) (exit $(job_field "$job" ExitCode)) after $((SECONDS - start)) s"
  [[ "$(job_field "$job" JobState)" != COMPLETED ]]
}
check "SIGKILL to one rank ends the 2-node job within 60 s" killed_job

echo "slurm e2e: $passed passed, $failed failed in $((SECONDS - start_time)) s (work dir $work)"
((failed == 0))
