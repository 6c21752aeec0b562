// `affinity`: which CPU cores each rank's threads may run on (the recipe's modes, for the
// ranks of one node). The cores of a socket are split among the node's ranks that share
// it: ranks fill the sockets in order, local_size / sockets ranks per socket.
//   single                     the first core of the rank's socket
//   single_unique              one core of its own (the k-th core for the socket's k-th rank)
//   socket                     every core of the rank's socket
//   socket_unique_interleaved  the socket's cores j with j % m == k (k-th of m ranks there)
//   socket_unique_continuous   the k-th of m contiguous blocks of the socket's cores
// Cores are logical CPUs (hyper-threads count as cores) among those the process may use.
#pragma once
#include <string>
#include <vector>

namespace txl {

struct CpuTopology {
  std::vector<std::vector<int>> sockets;  // usable logical CPUs of each socket, ascending
};

// The CPUs this process may use (sched_getaffinity), grouped by physical package as
// /sys/devices/system/cpu/cpu*/topology/physical_package_id says (one socket when unknown).
CpuTopology read_cpu_topology();

// The cores of `mode` for rank `local_rank` of `local_size` on the node; empty for
// "disabled". Throws txl::Error when the node has too few cores for the mode.
std::vector<int> cores_for_rank(const CpuTopology& topology, const std::string& mode, int local_rank,
                                int local_size);

// Binds the calling thread (and the threads it starts later, OpenMP's included) to
// `cores`; when OMP_NUM_THREADS is unset, OpenMP uses one thread per core. Returns the
// log line describing the binding.
std::string bind_to_cores(const std::vector<int>& cores, const std::string& mode, int rank);

}  // namespace txl
