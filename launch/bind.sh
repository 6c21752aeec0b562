#!/usr/bin/env bash
# Per-rank environment and binding, run by the launcher in front of every rank:
#   srun launch/bind.sh txl_train ...      mpirun -np 8 launch/bind.sh txl_train ...
# Finds this rank's place on its node (SLURM, Open MPI, MPICH or PMIx variables), then
#   CPU   TXL_CPU_BIND=none   leave placement to the launcher (default)
#                     cores   pin the rank to its share of the node's CPUs (taskset)
#                     numa    run the rank on one NUMA node, CPUs and memory (numactl)
#         OMP_NUM_THREADS     when unset: the rank's CPUs (its share of the node)
#   GPU   TXL_GPU_BIND=app    txl picks device local_rank % devices itself (default)
#                     visible CUDA_VISIBLE_DEVICES = this rank's device only
# and execs the command. TXL_BIND_VERBOSE=1 prints what it chose, one line per rank.
set -euo pipefail
if [[ $# -eq 0 ]]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

first_set() {  # prints the first non-empty variable's value among the names given
  local name
  for name in "$@"; do
    if [[ -n "${!name:-}" ]]; then
      echo "${!name}"
      return
    fi
  done
}

local_rank=$(first_set SLURM_LOCALID OMPI_COMM_WORLD_LOCAL_RANK MPI_LOCALRANKID PMI_LOCAL_RANK)
local_rank=${local_rank:-0}
local_size=$(first_set OMPI_COMM_WORLD_LOCAL_SIZE MPI_LOCALNRANKS PMI_LOCAL_SIZE)
if [[ -z "$local_size" && -n "${SLURM_STEP_TASKS_PER_NODE:-}" ]]; then
  # "4(x2),3" -> this node's count; nodes are listed in SLURM_NODEID order
  local_size=$(awk -v spec="$SLURM_STEP_TASKS_PER_NODE" -v node="${SLURM_NODEID:-0}" 'BEGIN {
    n = split(spec, parts, ",")
    for (i = 1; i <= n; i++) {
      count = parts[i]; times = 1
      if (match(parts[i], /\(x[0-9]+\)/)) { times = substr(parts[i], RSTART + 2, RLENGTH - 3); count = substr(parts[i], 1, RSTART - 1) }
      if (node < times) { print count; exit }
      node -= times
    }
    print 1 }')
fi
local_size=${local_size:-1}

# CPUs this process may use, as a list, split into local_size contiguous shares.
allowed=$(taskset -pc $$ 2>/dev/null | sed 's/.*: //' || true)
expand_cpus() {  # "0-3,8" -> "0 1 2 3 8"
  local part out=()
  IFS=',' read -ra parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ "$part" == *-* ]]; then
      out+=($(seq "${part%-*}" "${part#*-}"))
    else
      out+=("$part")
    fi
  done
  echo "${out[@]}"
}
cpus=($(expand_cpus "${allowed:-0-$(( $(nproc) - 1 ))}"))
per_rank=$(( ${#cpus[@]} / local_size ))
(( per_rank < 1 )) && per_rank=1
mine=("${cpus[@]:$(( (local_rank % local_size) * per_rank )):$per_rank}")
(( ${#mine[@]} == 0 )) && mine=("${cpus[@]}")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${#mine[@]}}

prefix=()
case "${TXL_CPU_BIND:-none}" in
  none) ;;
  cores)
    cpu_list=$(IFS=','; echo "${mine[*]}")
    prefix=(taskset -c "$cpu_list")
    export OMP_PROC_BIND=${OMP_PROC_BIND:-close} OMP_PLACES=${OMP_PLACES:-cores}
    ;;
  numa)
    if ! command -v numactl >/dev/null; then
      echo "error: TXL_CPU_BIND=numa needs numactl (apt-get install numactl)" >&2
      exit 1
    fi
    nodes=$(numactl --hardware | awk '/^available:/ {print $2}')
    node=$(( local_rank * ${nodes:-1} / local_size ))
    prefix=(numactl --cpunodebind="$node" --membind="$node")
    ;;
  *)
    echo "error: TXL_CPU_BIND='${TXL_CPU_BIND}' (expected none, cores or numa)" >&2
    exit 1
    ;;
esac

case "${TXL_GPU_BIND:-app}" in
  app) ;;
  visible)
    if [[ -n "${CUDA_VISIBLE_DEVICES:-}" ]]; then
      IFS=',' read -ra devices <<<"$CUDA_VISIBLE_DEVICES"
    else
      count=$(nvidia-smi -L 2>/dev/null | wc -l || echo 0)
      devices=($(seq 0 $(( count > 0 ? count - 1 : 0 ))))
    fi
    export CUDA_VISIBLE_DEVICES=${devices[$(( local_rank % ${#devices[@]} ))]}
    ;;
  *)
    echo "error: TXL_GPU_BIND='${TXL_GPU_BIND}' (expected app or visible)" >&2
    exit 1
    ;;
esac

if [[ "${TXL_BIND_VERBOSE:-0}" == 1 ]]; then
  echo "bind: $(hostname) local rank ${local_rank}/${local_size} cpus ${mine[*]} omp ${OMP_NUM_THREADS}" \
       "cpu_bind ${TXL_CPU_BIND:-none} gpu ${CUDA_VISIBLE_DEVICES:-(app picks)}" >&2
fi
exec "${prefix[@]}" "$@"
