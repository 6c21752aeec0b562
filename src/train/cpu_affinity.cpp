#include "txl/train/cpu_affinity.h"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>

#include <fmt/ranges.h>

#include "txl/core/error.h"

namespace txl {

CpuTopology read_cpu_topology() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) fail("affinity: sched_getaffinity failed");
  std::map<int, std::vector<int>> by_package;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    int package = 0;
    std::ifstream in("/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/physical_package_id");
    if (!(in >> package)) package = 0;
    by_package[package].push_back(cpu);
  }
  CpuTopology t;
  for (auto& [package, cpus] : by_package) t.sockets.push_back(cpus);
  return t;
}

std::vector<int> cores_for_rank(const CpuTopology& topology, const std::string& mode, int local_rank,
                                int local_size) {
  if (mode == "disabled") return {};
  TXL_CHECK(local_size >= 1 && local_rank >= 0 && local_rank < local_size, "affinity: bad local rank {} of {}",
            local_rank, local_size);
  const int n_sockets = static_cast<int>(topology.sockets.size());
  if (n_sockets == 0) fail("affinity: no usable CPU found");
  // Ranks fill sockets in order: socket s holds ranks [s*n/S, (s+1)*n/S) (rounded down).
  const int socket = static_cast<int>(static_cast<int64_t>(local_rank) * n_sockets / local_size);
  int first = 0, count = 0;
  for (int r = 0; r < local_size; ++r) {
    if (static_cast<int64_t>(r) * n_sockets / local_size != socket) continue;
    if (count == 0) first = r;
    ++count;
  }
  const int k = local_rank - first;  // this rank is the k-th of `count` on its socket
  const std::vector<int>& cores = topology.sockets[static_cast<size_t>(socket)];
  const int c = static_cast<int>(cores.size());
  if (mode == "socket") return cores;
  if (mode == "single") return {cores.front()};
  if (c < count)
    failf("affinity: {}: socket {} has {} usable cores for its {} ranks; use fewer ranks per node, or affinity "
          "socket or disabled",
          mode, socket, c, count);
  if (mode == "single_unique") return {cores[static_cast<size_t>(k)]};
  std::vector<int> out;
  if (mode == "socket_unique_interleaved") {
    for (int j = k; j < c; j += count) out.push_back(cores[static_cast<size_t>(j)]);
    return out;
  }
  if (mode == "socket_unique_continuous") {
    const int64_t begin = static_cast<int64_t>(k) * c / count, end = static_cast<int64_t>(k + 1) * c / count;
    for (int64_t j = begin; j < end; ++j) out.push_back(cores[static_cast<size_t>(j)]);
    return out;
  }
  failf("affinity: unknown mode '{}'", mode);
}

std::string bind_to_cores(const std::vector<int>& cores, const std::string& mode, int rank) {
  if (cores.empty()) return fmt::format("affinity {}: rank {} is not bound", mode, rank);
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cores) CPU_SET(c, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) failf("affinity: {}: sched_setaffinity failed", mode);
  if (!std::getenv("OMP_NUM_THREADS")) omp_set_num_threads(static_cast<int>(cores.size()));
  return fmt::format("affinity {}: rank {} bound to CPU cores {} ({} OpenMP threads)", mode, rank,
                     fmt::join(cores, ","), omp_get_max_threads());
}

}  // namespace txl
