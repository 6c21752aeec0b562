// `affinity`: which CPU cores each rank's threads may run on, the recipe's modes for the
// ranks of one node. Each local rank starts from the CPUs "near" it:
//  - GPU runs: the CPUs local to the rank's GPU (sysfs `local_cpulist` of its PCI device,
//    the set NVML's CPU affinity reports), and its NUMA node;
//  - CPU runs: its socket; ranks fill the sockets in order, local_size / sockets each.
// Ranks whose near sets are the same share them (a group of m ranks, the rank is the k-th):
//   socket                     every CPU of the near set
//   single                     the first CPU of the near set
//   single_unique              one core of its own: ranks in order take the first core of
//                              their near set that no earlier rank took
//   socket_unique_interleaved  the near set's cores j with j % m == k, plus their
//                              hyper-thread siblings
//   socket_unique_continuous   the k-th of m equal blocks of the near set's cores
//                              (len / m each; a remainder stays unused), plus siblings
// "Cores" are the near set without the second (third, ...) hyper-threads of a core, as
// topology/thread_siblings_list gives them; only CPUs the process may use count.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace txl {

struct CpuTopology {
  std::vector<std::vector<int>> sockets;  // usable logical CPUs of each socket, ascending
  std::map<int, int> first_thread_of;     // a core's later hyper-thread -> its first one
};

// The CPUs this process may use (sched_getaffinity), ascending.
std::vector<int> usable_cpus();

// `usable` grouped by physical package and their hyper-thread siblings, as
// <sysfs_root>/devices/system/cpu/cpu<N>/topology/ says (one socket, no siblings, where
// it says nothing). sysfs_root is "/sys" except in tests.
CpuTopology read_cpu_topology(const std::vector<int>& usable, const std::string& sysfs_root = "/sys");
CpuTopology read_cpu_topology();  // usable_cpus() under /sys

// Where a GPU sits: its PCI device's local CPUs (those of `usable`) and NUMA node.
struct GpuLocality {
  std::string pci_address;  // sysfs spelling: dddd:bb:dd.f, lower-case hex
  std::vector<int> cpus;    // local and usable, ascending
  int numa_node = -1;       // -1: the platform names none
};
// `pci_bus_id` as CUDA (cudaDeviceGetPCIBusId: "0000:1B:00.0") or NVML ("00000000:1B:00.0")
// spells it. Reads <sysfs_root>/bus/pci/devices/<address>/{local_cpulist,numa_node};
// throws txl::Error naming the file when it is missing or unreadable.
GpuLocality read_gpu_locality(const std::string& pci_bus_id, const std::vector<int>& usable,
                              const std::string& sysfs_root = "/sys");

// CPU runs: each local rank's socket (ranks fill the sockets in order).
std::vector<std::vector<int>> near_cpus_by_socket(const CpuTopology& topology, int local_size);

// The cores of `mode` for `local_rank`, given every local rank's near set; empty for
// "disabled". Throws txl::Error when a rank's share would be empty.
std::vector<int> cores_for_rank(const std::vector<std::vector<int>>& near, const CpuTopology& topology,
                                const std::string& mode, int local_rank);
// CPU runs: the same with near_cpus_by_socket.
std::vector<int> cores_for_rank(const CpuTopology& topology, const std::string& mode, int local_rank,
                                int local_size);

// GPU runs: the cores of `mode` for `local_rank`, given the PCI bus id of every local
// rank's GPU (their near sets: read_gpu_locality), and that rank's GPU.
struct GpuAffinity {
  std::vector<int> cores;
  GpuLocality gpu;
};
GpuAffinity gpu_affinity_for_rank(const std::vector<std::string>& bus_ids_of_local_ranks, const std::string& mode,
                                  int local_rank, const std::vector<int>& usable,
                                  const std::string& sysfs_root = "/sys");

// "0-3,8-11" <-> {0,1,2,3,8,9,10,11} (the kernel's cpulist format).
std::vector<int> parse_cpu_list(const std::string& text);
std::string cpu_list_string(const std::vector<int>& cpus);

// Binds the calling thread (and the threads it starts later, OpenMP's included) to
// `cores`; when OMP_NUM_THREADS is unset, OpenMP uses one thread per core. Returns the
// log line describing the binding.
std::string bind_to_cores(const std::vector<int>& cores, const std::string& mode, int rank);

// Makes `numa_node` the preferred node of this process's memory (set_mempolicy
// MPOL_PREFERRED: allocations fall back to other nodes when it is full). Returns the log
// line; a node of -1 changes nothing.
std::string prefer_numa_node(int numa_node);

}  // namespace txl
