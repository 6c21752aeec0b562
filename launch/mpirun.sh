#!/usr/bin/env bash
# One node without SLURM: N ranks of a txl program under Open MPI's mpirun, each placed by
# launch/bind.sh (cores or NUMA node, threads, GPU), e.g.
#   launch/mpirun.sh 4 build/bin/txl_train configs/wt103_base.yaml --data wt103.h5
#   TXL_CPU_BIND=numa launch/mpirun.sh 2 build/bin/txl_eval --work_dir results/run1
# mpirun's own binding is switched off (--bind-to none) so that bind.sh decides; extra
# mpirun options go in MPIRUN_ARGS. Running as root and more ranks than cores are allowed.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 RANKS PROGRAM [ARGS...]" >&2
  exit 2
fi
ranks=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
export TXL_CPU_BIND=${TXL_CPU_BIND:-cores}
# shellcheck disable=SC2086  # MPIRUN_ARGS is a list of words on purpose
exec mpirun -np "$ranks" --bind-to none ${MPIRUN_ARGS:-} "$here/bind.sh" "$@"
