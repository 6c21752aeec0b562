#include "txl/train/cpu_affinity.h"

#include <linux/mempolicy.h>
#include <omp.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/ranges.h>

#include "txl/core/error.h"

namespace txl {
namespace {

bool read_first_line(const std::string& path, std::string& line) {
  std::ifstream in(path);
  return static_cast<bool>(std::getline(in, line));
}

std::string cpu_dir(const std::string& sysfs_root, int cpu) {
  return sysfs_root + "/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
}

std::vector<int> intersect(const std::vector<int>& a, const std::vector<int>& usable) {
  std::vector<int> out;
  std::set_intersection(a.begin(), a.end(), usable.begin(), usable.end(), std::back_inserter(out));
  return out;
}

// The near set without later hyper-threads: the recipe's "cores".
std::vector<int> first_threads(const std::vector<int>& cpus, const CpuTopology& t) {
  std::vector<int> out;
  for (int c : cpus)
    if (!t.first_thread_of.count(c)) out.push_back(c);
  return out;
}

// Cores plus the usable later hyper-threads of each, ascending.
std::vector<int> with_siblings(const std::vector<int>& cores, const CpuTopology& t) {
  std::vector<int> out = cores;
  for (const auto& [thread, first] : t.first_thread_of)
    if (std::find(cores.begin(), cores.end(), first) != cores.end()) out.push_back(thread);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<int> parse_cpu_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    part.erase(std::remove_if(part.begin(), part.end(), [](unsigned char ch) { return std::isspace(ch); }),
               part.end());
    if (part.empty()) continue;
    const size_t dash = part.find('-');
    try {
      size_t used = 0;
      const int lo = std::stoi(part.substr(0, dash), &used);
      if (used != (dash == std::string::npos ? part.size() : dash)) throw std::invalid_argument(part);
      int hi = lo;
      if (dash != std::string::npos) {
        const std::string rest = part.substr(dash + 1);
        hi = std::stoi(rest, &used);
        if (used != rest.size()) throw std::invalid_argument(part);
      }
      if (lo < 0 || hi < lo) throw std::invalid_argument(part);
      for (int c = lo; c <= hi; ++c) out.push_back(c);
    } catch (const std::logic_error&) {
      failf("affinity: '{}' is not a CPU list (expected e.g. 0-3,8-11)", text);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string cpu_list_string(const std::vector<int>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? std::to_string(cpus[i]) : fmt::format("{}-{}", cpus[i], cpus[j]);
    i = j + 1;
  }
  return out;
}

std::vector<int> usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) fail("affinity: sched_getaffinity failed");
  std::vector<int> out;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) out.push_back(cpu);
  return out;
}

CpuTopology read_cpu_topology(const std::vector<int>& usable, const std::string& sysfs_root) {
  std::map<int, std::vector<int>> by_package;
  CpuTopology t;
  for (int cpu : usable) {
    std::string line;
    int package = 0;
    if (read_first_line(cpu_dir(sysfs_root, cpu) + "physical_package_id", line)) package = std::atoi(line.c_str());
    by_package[package].push_back(cpu);
    if (read_first_line(cpu_dir(sysfs_root, cpu) + "thread_siblings_list", line)) {
      const std::vector<int> siblings = parse_cpu_list(line);
      if (!siblings.empty() && siblings.front() != cpu) t.first_thread_of[cpu] = siblings.front();
    }
  }
  for (auto& [package, cpus] : by_package) {
    std::sort(cpus.begin(), cpus.end());
    t.sockets.push_back(cpus);
  }
  return t;
}

CpuTopology read_cpu_topology() { return read_cpu_topology(usable_cpus(), "/sys"); }

GpuLocality read_gpu_locality(const std::string& pci_bus_id, const std::vector<int>& usable,
                              const std::string& sysfs_root) {
  // sysfs names a device dddd:bb:dd.f in lower case; NVML writes an 8-digit domain.
  std::string address;
  for (char ch : pci_bus_id) address += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const size_t colon = address.find(':');
  if (colon == std::string::npos || address.find(':', colon + 1) == std::string::npos)
    failf("affinity: '{}' is not a PCI bus id (expected domain:bus:device.function)", pci_bus_id);
  if (colon > 4) address = address.substr(colon - 4);
  if (colon < 4) address = std::string(4 - colon, '0') + address;
  GpuLocality g;
  g.pci_address = address;
  const std::string dir = sysfs_root + "/bus/pci/devices/" + address + "/";
  std::string line;
  if (!read_first_line(dir + "local_cpulist", line))
    failf("affinity: cannot read {}local_cpulist (the CPUs near GPU {}); use affinity disabled", dir, pci_bus_id);
  g.cpus = intersect(parse_cpu_list(line), usable);
  if (read_first_line(dir + "numa_node", line)) g.numa_node = std::atoi(line.c_str());
  return g;
}

std::vector<std::vector<int>> near_cpus_by_socket(const CpuTopology& topology, int local_size) {
  TXL_CHECK(local_size >= 1, "affinity: bad local size {}", local_size);
  const int n_sockets = static_cast<int>(topology.sockets.size());
  if (n_sockets == 0) fail("affinity: no usable CPU found");
  std::vector<std::vector<int>> near;
  for (int r = 0; r < local_size; ++r)
    near.push_back(topology.sockets[static_cast<size_t>(static_cast<int64_t>(r) * n_sockets / local_size)]);
  return near;
}

std::vector<int> cores_for_rank(const std::vector<std::vector<int>>& near, const CpuTopology& topology,
                                const std::string& mode, int local_rank) {
  if (mode == "disabled") return {};
  const int n = static_cast<int>(near.size());
  TXL_CHECK(local_rank >= 0 && local_rank < n, "affinity: bad local rank {} of {}", local_rank, n);
  const std::vector<int>& mine = near[static_cast<size_t>(local_rank)];
  if (mine.empty()) failf("affinity: {}: local rank {} has no usable CPU near it; use affinity disabled", mode, local_rank);
  if (mode == "socket") return mine;
  if (mode == "single") return {mine.front()};
  const auto too_few = [&](size_t cores, const std::string& why) {
    failf("affinity: {}: the {} cores near local rank {} ({}) {}; use fewer ranks per node, or affinity socket or "
          "disabled",
          mode, cores, local_rank, cpu_list_string(mine), why);
  };
  if (mode == "single_unique") {
    std::set<int> taken;
    for (int r = 0; r <= local_rank; ++r) {
      const std::vector<int> cores = first_threads(near[static_cast<size_t>(r)], topology);
      const auto free = std::find_if(cores.begin(), cores.end(), [&](int c) { return !taken.count(c); });
      if (free == cores.end()) {
        if (r == local_rank) too_few(cores.size(), "are all taken by lower local ranks");
        continue;  // the recipe leaves such a rank out of the assignment
      }
      if (r == local_rank) return {*free};
      taken.insert(*free);
    }
  }
  if (mode == "socket_unique_interleaved" || mode == "socket_unique_continuous") {
    const std::vector<int> cores = first_threads(mine, topology);
    int count = 0, k = 0;
    for (int r = 0; r < n; ++r) {
      if (first_threads(near[static_cast<size_t>(r)], topology) != cores) continue;
      if (r == local_rank) k = count;
      ++count;
    }
    std::vector<int> share;
    const size_t c = cores.size(), m = static_cast<size_t>(count), kk = static_cast<size_t>(k);
    if (mode == "socket_unique_interleaved") {
      for (size_t j = kk; j < c; j += m) share.push_back(cores[j]);
    } else {
      const size_t per = c / m;
      for (size_t j = kk * per; j < (kk + 1) * per; ++j) share.push_back(cores[j]);
    }
    if (share.empty()) too_few(c, fmt::format("are too few for the {} ranks sharing them", count));
    return with_siblings(share, topology);
  }
  failf("affinity: unknown mode '{}'", mode);
}

std::vector<int> cores_for_rank(const CpuTopology& topology, const std::string& mode, int local_rank,
                                int local_size) {
  if (mode == "disabled") return {};
  TXL_CHECK(local_rank >= 0 && local_rank < local_size, "affinity: bad local rank {} of {}", local_rank, local_size);
  return cores_for_rank(near_cpus_by_socket(topology, local_size), topology, mode, local_rank);
}

GpuAffinity gpu_affinity_for_rank(const std::vector<std::string>& bus_ids_of_local_ranks, const std::string& mode,
                                  int local_rank, const std::vector<int>& usable, const std::string& sysfs_root) {
  const int n = static_cast<int>(bus_ids_of_local_ranks.size());
  TXL_CHECK(local_rank >= 0 && local_rank < n, "affinity: bad local rank {} of {}", local_rank, n);
  const CpuTopology topology = read_cpu_topology(usable, sysfs_root);
  std::vector<std::vector<int>> near;
  GpuAffinity a;
  for (int r = 0; r < n; ++r) {
    GpuLocality g = read_gpu_locality(bus_ids_of_local_ranks[static_cast<size_t>(r)], usable, sysfs_root);
    near.push_back(g.cpus);
    if (r == local_rank) a.gpu = std::move(g);
  }
  a.cores = cores_for_rank(near, topology, mode, local_rank);
  return a;
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

std::string prefer_numa_node(int numa_node) {
  if (numa_node < 0) return "the platform names no NUMA node for it";
  constexpr int kBits = 8 * static_cast<int>(sizeof(unsigned long));
  std::vector<unsigned long> mask(static_cast<size_t>(numa_node / kBits + 1), 0UL);
  mask[static_cast<size_t>(numa_node / kBits)] = 1UL << (numa_node % kBits);
  // glibc has no wrapper (libnuma's numa_set_preferred makes this call).
  if (syscall(SYS_set_mempolicy, MPOL_PREFERRED, mask.data(), static_cast<unsigned long>(mask.size()) * kBits + 1) != 0)
    return fmt::format("NUMA node {} (memory policy not changed: set_mempolicy failed)", numa_node);
  return fmt::format("NUMA node {}, memory preferred there", numa_node);
}

}  // namespace txl
