// affinity on a real GPU node (include/txl/train/cpu_affinity.h): the CUDA device's PCI
// bus id names a sysfs entry with the CPUs near it, and every mode binds within them.
// (The modes themselves are checked on a fake sysfs tree in
// tests/train/affinity_topology_test.cpp.)
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "gpu_test_util.h"
#include "txl/train/backend.h"
#include "txl/train/cpu_affinity.h"

namespace txl {
namespace {

using gpu_test::GpuTest;

class GpuAffinity : public GpuTest {};

TEST_F(GpuAffinity, EachModeBindsWithinTheCpusNearTheGpu) {
  if (!require_cuda()) GTEST_SKIP() << "skipped: needs the CUDA backend";
  const std::string id = cuda_pci_bus_id(0);
  const GpuLocality g = read_gpu_locality(id, usable_cpus());
  EXPECT_TRUE(std::filesystem::exists("/sys/bus/pci/devices/" + g.pci_address)) << id;
  ASSERT_FALSE(g.cpus.empty()) << id << ": no usable CPU near the GPU";
  const std::vector<std::string> ids = gpu_bus_ids_of_local_ranks(1);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0], id);
  for (const char* mode : {"socket", "single", "single_unique", "socket_unique_interleaved",
                           "socket_unique_continuous"}) {
    const std::vector<int> cores = gpu_affinity_for_rank(ids, mode, 0, usable_cpus()).cores;
    ASSERT_FALSE(cores.empty()) << mode;
    for (int c : cores) EXPECT_TRUE(std::find(g.cpus.begin(), g.cpus.end(), c) != g.cpus.end()) << mode << " " << c;
  }
  std::printf("GPU %s: NUMA node %d, near CPUs %s\n", g.pci_address.c_str(), g.numa_node,
              cpu_list_string(g.cpus).c_str());
}

}  // namespace
}  // namespace txl
