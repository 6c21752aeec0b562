#!/usr/bin/env bash
# A private SLURM cluster of two emulated nodes (n1, n2) on this one machine, for tests.
#   tests/slurm/cluster.sh start DIR   writes DIR/slurm.conf, starts slurmctld and two slurmd
#                                      (in the foreground, as background jobs of this script;
#                                      PIDs in DIR/pids), waits until both nodes are idle
#   tests/slurm/cluster.sh stop DIR    stops exactly those daemons (by PID)
# Afterwards use the cluster with   export SLURM_CONF=DIR/slurm.conf
# No munge daemon: AuthType=auth/none + CredType=cred/none (test clusters only!). Each
# node has its own spool and TmpFS directory (else their PMIx directories clash).
# Ports: slurmctld TXL_SLURM_PORT (default 6817), slurmd n1/n2 on the next two.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi

stop_cluster() {
  [[ -f "$dir/pids" ]] || return 0
  local pid
  while read -r pid; do
    [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true
  done <"$dir/pids"
  for _ in $(seq 50); do
    local alive=0
    while read -r pid; do
      [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && alive=1
    done <"$dir/pids"
    [[ $alive -eq 0 ]] && break
    sleep 0.1
  done
  while read -r pid; do
    [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
  done <"$dir/pids"
  rm -f "$dir/pids"
}

case "$cmd" in
  stop)
    stop_cluster
    exit 0
    ;;
  start) ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac

[[ -f "$dir/pids" ]] && stop_cluster
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
port=${TXL_SLURM_PORT:-6817}
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 4 ))
user=$(id -un)
mkdir -p "$dir/ctld" "$dir/log" "$dir/spool/n1" "$dir/spool/n2" "$dir/tmp/n1" "$dir/tmp/n2"
cat >"$dir/slurm.conf" <<CONF
# Written by tests/slurm/cluster.sh: two emulated nodes on one machine, for tests only.
ClusterName=txltest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/none
CredType=cred/none
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/spool/%n
TmpFS=$dir/tmp/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SlurmdParameters=config_overrides
MpiDefault=none
JobRequeue=1
ReturnToService=2
KillWait=15
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
NodeName=n1 NodeAddr=127.0.0.1 NodeHostname=$(hostname) Port=$((port + 1)) CPUs=$cpus RealMemory=$mem State=UNKNOWN
NodeName=n2 NodeAddr=127.0.0.1 NodeHostname=$(hostname) Port=$((port + 2)) CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
export SLURM_CONF=$dir/slurm.conf

: >"$dir/pids"
slurmctld -D -i -f "$dir/slurm.conf" >"$dir/log/slurmctld.out" 2>&1 &
echo $! >>"$dir/pids"
for node in n1 n2; do
  slurmd -D -N "$node" -f "$dir/slurm.conf" >"$dir/log/slurmd.$node.out" 2>&1 &
  echo $! >>"$dir/pids"
done

# Ready when both nodes are idle (about a second).
for _ in $(seq 150); do
  states=$(sinfo -h -N -o '%N %t' 2>/dev/null | sort -u | tr '\n' ' ')
  if [[ "$states" == *"n1 idle"* && "$states" == *"n2 idle"* ]]; then
    echo "slurm test cluster up in $dir (nodes: $states)"
    exit 0
  fi
  while read -r pid; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: a SLURM daemon (pid $pid) exited during start-up; logs in $dir/log:" >&2
      tail -n 5 "$dir"/log/*.out "$dir"/log/*.log >&2 2>/dev/null || true
      stop_cluster
      exit 1
    fi
  done <"$dir/pids"
  sleep 0.2
done
echo "error: the SLURM test cluster in $dir did not become ready in 30 s (sinfo: ${states:-nothing}); logs in $dir/log" >&2
tail -n 5 "$dir"/log/*.log >&2 2>/dev/null || true
stop_cluster
exit 1
