#!/usr/bin/env bash
# Installs Debian's SLURM daemons and client (idempotent; needs root and apt-get).
set -euo pipefail
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
   && [[ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/mpi_pmix.so || -n "$(ls /usr/lib/*/slurm-wlm/mpi_pmix.so 2>/dev/null)" ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "error: SLURM is not installed and installing it needs root (apt-get install slurmctld slurmd slurm-client)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends slurmctld slurmd slurm-client >/tmp/txl-slurm-apt.log 2>&1; then
  apt-get update >>/tmp/txl-slurm-apt.log 2>&1
  apt-get install -y --no-install-recommends slurmctld slurmd slurm-client >>/tmp/txl-slurm-apt.log 2>&1 || {
    tail -n 20 /tmp/txl-slurm-apt.log >&2
    echo "error: apt-get install slurmctld slurmd slurm-client failed (log: /tmp/txl-slurm-apt.log)" >&2
    exit 1
  }
fi
