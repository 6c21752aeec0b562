// The recipe's affinity modes on a fake sysfs tree (include/txl/train/cpu_affinity.h): a
// node with two NUMA nodes / sockets of 4 cores with 2 hyper-threads each (CPUs 0-3 and
// their siblings 8-11 on node 0, 4-7 and 12-15 on node 1) and four GPUs, two on each
// node, numbered so that the GPUs alternate between the nodes: a rank must be bound near
// ITS GPU, not by its local-rank order.
#include <gtest/gtest.h>

#include <linux/mempolicy.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "txl/core/error.h"
#include "txl/train/cpu_affinity.h"

namespace txl {
namespace {

namespace fs = std::filesystem;
using V = std::vector<int>;

void write(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text << "\n";
}

class FakeSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("txl_fake_sysfs_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    for (int cpu = 0; cpu < 16; ++cpu) {
      const int core = cpu % 8, node = core / 4;
      const fs::path topo = root_ / "devices/system/cpu" / ("cpu" + std::to_string(cpu)) / "topology";
      write(topo / "physical_package_id", std::to_string(node));
      write(topo / "thread_siblings_list", std::to_string(core) + "," + std::to_string(core + 8));
    }
    // local rank r uses GPU r (make_backend: local rank mod device count).
    gpu(kBusIds[0], "0-3,8-11", 0);
    gpu(kBusIds[1], "4-7,12-15", 1);
    gpu(kBusIds[2], "0-3,8-11", 0);
    gpu(kBusIds[3], "4-7,12-15", 1);
  }
  void TearDown() override { fs::remove_all(root_); }

  void gpu(const std::string& sysfs_name, const std::string& cpus, int node) {
    write(root_ / "bus/pci/devices" / sysfs_name / "local_cpulist", cpus);
    write(root_ / "bus/pci/devices" / sysfs_name / "numa_node", std::to_string(node));
  }
  V cores(const std::string& mode, int rank, const V& usable = all()) {
    return gpu_affinity_for_rank(cuda_ids(), mode, rank, usable, root_.string()).cores;
  }
  static V all() {
    V v;
    for (int c = 0; c < 16; ++c) v.push_back(c);
    return v;
  }
  // As cudaDeviceGetPCIBusId spells them (upper-case hex).
  static std::vector<std::string> cuda_ids() {
    return {"0000:1B:00.0", "0000:89:00.0", "0000:3D:00.0", "0000:B2:00.0"};
  }
  static constexpr const char* kBusIds[4] = {"0000:1b:00.0", "0000:89:00.0", "0000:3d:00.0", "0000:b2:00.0"};
  fs::path root_;
};

TEST_F(FakeSysfs, TopologyAndGpuLocalityComeFromSysfs) {
  const CpuTopology t = read_cpu_topology(all(), root_.string());
  ASSERT_EQ(t.sockets.size(), 2u);
  EXPECT_EQ(t.sockets[0], (V{0, 1, 2, 3, 8, 9, 10, 11}));
  EXPECT_EQ(t.sockets[1], (V{4, 5, 6, 7, 12, 13, 14, 15}));
  EXPECT_EQ(t.first_thread_of.size(), 8u);
  EXPECT_EQ(t.first_thread_of.at(13), 5);
  EXPECT_FALSE(t.first_thread_of.count(5));

  const GpuLocality g = read_gpu_locality("0000:89:00.0", all(), root_.string());
  EXPECT_EQ(g.pci_address, "0000:89:00.0");
  EXPECT_EQ(g.cpus, (V{4, 5, 6, 7, 12, 13, 14, 15}));
  EXPECT_EQ(g.numa_node, 1);
  // NVML's spelling (8-digit domain) names the same device; only usable CPUs count.
  const GpuLocality n = read_gpu_locality("00000000:3D:00.0", {0, 1, 9, 12}, root_.string());
  EXPECT_EQ(n.pci_address, "0000:3d:00.0");
  EXPECT_EQ(n.cpus, (V{0, 1, 9}));
  EXPECT_EQ(n.numa_node, 0);

  std::string error;
  try {
    read_gpu_locality("0000:AA:00.0", all(), root_.string());
  } catch (const Error& e) {
    error = e.what();
  }
  EXPECT_NE(error.find("cannot read " + (root_ / "bus/pci/devices/0000:aa:00.0/local_cpulist").string()),
            std::string::npos)
      << error;
}

TEST_F(FakeSysfs, EachModeBindsNearTheRanksOwnGpu) {
  // socket: every CPU of the GPU's node; single: its first CPU.
  EXPECT_EQ(cores("socket", 0), (V{0, 1, 2, 3, 8, 9, 10, 11}));
  EXPECT_EQ(cores("socket", 1), (V{4, 5, 6, 7, 12, 13, 14, 15}));
  EXPECT_EQ(cores("socket", 2), (V{0, 1, 2, 3, 8, 9, 10, 11}));
  EXPECT_EQ(cores("single", 1), V{4});
  EXPECT_EQ(cores("single", 2), V{0});
  EXPECT_EQ(cores("single", 3), V{4});
  // single_unique: ranks in order take the first free core (no hyper-thread siblings).
  EXPECT_EQ(cores("single_unique", 0), V{0});
  EXPECT_EQ(cores("single_unique", 1), V{4});
  EXPECT_EQ(cores("single_unique", 2), V{1});
  EXPECT_EQ(cores("single_unique", 3), V{5});
  // Ranks 0 and 2 share node 0's cores 0-3, ranks 1 and 3 node 1's 4-7; each core brings
  // its sibling.
  EXPECT_EQ(cores("socket_unique_interleaved", 0), (V{0, 2, 8, 10}));
  EXPECT_EQ(cores("socket_unique_interleaved", 1), (V{4, 6, 12, 14}));
  EXPECT_EQ(cores("socket_unique_interleaved", 2), (V{1, 3, 9, 11}));
  EXPECT_EQ(cores("socket_unique_interleaved", 3), (V{5, 7, 13, 15}));
  EXPECT_EQ(cores("socket_unique_continuous", 0), (V{0, 1, 8, 9}));
  EXPECT_EQ(cores("socket_unique_continuous", 1), (V{4, 5, 12, 13}));
  EXPECT_EQ(cores("socket_unique_continuous", 2), (V{2, 3, 10, 11}));
  EXPECT_EQ(cores("socket_unique_continuous", 3), (V{6, 7, 14, 15}));
  EXPECT_EQ(cores("disabled", 3), V{});
  const GpuAffinity a = gpu_affinity_for_rank(cuda_ids(), "socket", 3, all(), root_.string());
  EXPECT_EQ(a.gpu.pci_address, "0000:b2:00.0");
  EXPECT_EQ(a.gpu.numa_node, 1);
}

TEST_F(FakeSysfs, OnlyUsableCpusAndTooFewCores) {
  // A launcher left the process CPUs 0-2 and 4 (cpuset): continuous splits 3 cores in
  // blocks of one, the remainder unused; node 1 has one core for two ranks.
  const V usable{0, 1, 2, 4};
  EXPECT_EQ(cores("socket", 0, usable), (V{0, 1, 2}));
  EXPECT_EQ(cores("socket_unique_continuous", 0, usable), V{0});
  EXPECT_EQ(cores("socket_unique_continuous", 2, usable), V{1});
  EXPECT_EQ(cores("socket_unique_interleaved", 2, usable), V{1});
  EXPECT_EQ(cores("single_unique", 1, usable), V{4});
  std::string error;
  try {
    cores("single_unique", 3, usable);
  } catch (const Error& e) {
    error = e.what();
  }
  EXPECT_EQ(error,
            "affinity: single_unique: the 1 cores near local rank 3 (4) are all taken by lower local ranks; use fewer "
            "ranks per node, or affinity socket or disabled");
}

// CPU runs: ranks fill the sockets in order, and the same modes apply within a socket.
TEST_F(FakeSysfs, CpuRunsUseTheSocketsInRankOrder) {
  const CpuTopology t = read_cpu_topology(all(), root_.string());
  EXPECT_EQ(cores_for_rank(t, "socket", 1, 4), (V{0, 1, 2, 3, 8, 9, 10, 11}));
  EXPECT_EQ(cores_for_rank(t, "socket", 2, 4), (V{4, 5, 6, 7, 12, 13, 14, 15}));
  EXPECT_EQ(cores_for_rank(t, "single_unique", 1, 4), V{1});
  EXPECT_EQ(cores_for_rank(t, "single_unique", 2, 4), V{4});
  EXPECT_EQ(cores_for_rank(t, "socket_unique_interleaved", 1, 4), (V{1, 3, 9, 11}));
  EXPECT_EQ(cores_for_rank(t, "socket_unique_continuous", 3, 4), (V{6, 7, 14, 15}));
  EXPECT_EQ(cores_for_rank(t, "socket_unique_continuous", 0, 1), (V{0, 1, 2, 3, 8, 9, 10, 11}));
}

// GPU ranks prefer their GPU's NUMA node for memory (checked with get_mempolicy, then
// reset, so the other tests keep the default policy).
TEST(NumaPreference, PreferredNodeIsSetAndUnknownNodesChangeNothing) {
  EXPECT_EQ(prefer_numa_node(-1), "the platform names no NUMA node for it");
  if (!fs::exists("/sys/devices/system/node/node0")) GTEST_SKIP() << "skipped: no NUMA node 0 on this machine";
  const std::string line = prefer_numa_node(0);
  if (line.find("set_mempolicy failed") != std::string::npos) GTEST_SKIP() << "skipped: " << line;  // a sandbox
  ASSERT_EQ(line, "NUMA node 0, memory preferred there");
  int mode = -1;
  unsigned long mask = 0;
  ASSERT_EQ(syscall(SYS_get_mempolicy, &mode, &mask, 8 * sizeof(mask), nullptr, 0UL), 0);
  EXPECT_EQ(mode, MPOL_PREFERRED);
  EXPECT_EQ(mask, 1UL);
  ASSERT_EQ(syscall(SYS_set_mempolicy, MPOL_DEFAULT, nullptr, 0UL), 0);
}

TEST(CpuList, ParsesAndPrintsTheKernelFormat) {
  EXPECT_EQ(parse_cpu_list("0-3,8-11\n"), (V{0, 1, 2, 3, 8, 9, 10, 11}));
  EXPECT_EQ(parse_cpu_list("5"), V{5});
  EXPECT_EQ(parse_cpu_list(""), V{});
  EXPECT_EQ(cpu_list_string({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
  std::string error;
  try {
    parse_cpu_list("0-x");
  } catch (const Error& e) {
    error = e.what();
  }
  EXPECT_EQ(error, "affinity: '0-x' is not a CPU list (expected e.g. 0-3,8-11)");
}

}  // namespace
}  // namespace txl
