// Collectives of MpiCommunicator and the start-up helpers of txl/dist/world.h, on every rank.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "mpi_test_world.h"
#include "txl/core/error.h"
#include "txl/dist/mpi_communicator.h"
#include "txl/dist/world.h"

namespace txl::test {
namespace {

// Nodes the launcher spread the ranks over: srun says so; mpirun under ctest uses this machine.
int expected_nodes() {
  const char* nodes = std::getenv("SLURM_STEP_NUM_NODES");
  return nodes != nullptr && std::getenv("PMIX_RANK") != nullptr ? std::atoi(nodes) : 1;
}

TEST(MpiCommunicator, RanksAndNodes) {
  Communicator& comm = world();
  EXPECT_EQ(comm.name(), "mpi");
  EXPECT_GE(comm.rank(), 0);
  EXPECT_LT(comm.rank(), comm.size());
  EXPECT_GE(comm.local_rank(), 0);
  EXPECT_LT(comm.local_rank(), comm.local_size());
  // Local ranks number 0.. on every node: the local rank-0s count the nodes.
  double node_leaders = comm.local_rank() == 0 ? 1.0 : 0.0;
  comm.allreduce_sum(&node_leaders, 1);
  EXPECT_EQ(static_cast<int>(node_leaders), expected_nodes());
  if (expected_nodes() == 1) {
    EXPECT_EQ(comm.local_size(), comm.size());
    EXPECT_EQ(comm.local_rank(), comm.rank());
  }
  auto* mpi = dynamic_cast<MpiCommunicator*>(&comm);
  ASSERT_NE(mpi, nullptr);
  EXPECT_GE(mpi->thread_level(), MPI_THREAD_SERIALIZED);
}

TEST(MpiCommunicator, AllreduceSumsEveryRanksValues) {
  Communicator& comm = world();
  const int W = comm.size();
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{1000}, int64_t{70001}}) {
    std::vector<float> f(static_cast<size_t>(n));
    std::vector<double> d(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      f[i] = static_cast<float>((comm.rank() + 1) * (i % 17));  // small integers: the sum is exact
      d[i] = 0.25 * (comm.rank() + 1) + static_cast<double>(i);
    }
    comm.allreduce_sum(f.data(), n);
    comm.allreduce_sum(d.data(), n);
    const double ranks_sum = W * (W + 1) / 2.0;
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(f[i], static_cast<float>(ranks_sum * (i % 17))) << "n=" << n << " i=" << i;
      ASSERT_DOUBLE_EQ(d[i], 0.25 * ranks_sum + W * static_cast<double>(i)) << "n=" << n << " i=" << i;
    }
  }
}

TEST(MpiCommunicator, BroadcastFromEveryRoot) {
  Communicator& comm = world();
  for (int root = 0; root < comm.size(); ++root) {
    std::vector<unsigned char> bytes(1 << 20);
    std::mt19937 rng(1234 + root);
    std::vector<unsigned char> expected(bytes.size());
    for (auto& b : expected) b = static_cast<unsigned char>(rng());
    if (comm.rank() == root) bytes = expected;
    else std::fill(bytes.begin(), bytes.end(), 0xAB);
    comm.broadcast(bytes.data(), bytes.size(), root);
    EXPECT_EQ(bytes, expected) << "root " << root;
  }
  EXPECT_THROW(comm.broadcast(nullptr, 0, comm.size()), Error);
}

TEST(MpiCommunicator, BarrierWaitsForTheSlowestRank) {
  Communicator& comm = world();
  comm.barrier();
  const auto start = std::chrono::steady_clock::now();
  if (comm.rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  comm.barrier();
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(waited, 0.25) << "rank " << comm.rank() << " left the barrier before rank 0 entered it";
}

TEST(World, RequireSameOnAllRanksAcceptsEqualValues) {
  Communicator& comm = world();
  EXPECT_NO_THROW(require_same_on_all_ranks(comm, "config", "n_layer: 2\nd_model: 64\n"));
}

TEST(World, RequireSameOnAllRanksNamesTheDifferingRanks) {
  Communicator& comm = world();
  const std::string value = comm.rank() == comm.size() - 1 ? "corpus sha=bbbb" : "corpus sha=aaaa";
  try {
    require_same_on_all_ranks(comm, "corpus file", value);
    ADD_FAILURE() << "no error for differing values";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("corpus file differs between ranks"), std::string::npos) << message;
    EXPECT_NE(message.find("rank(s) " + std::to_string(comm.size() - 1)), std::string::npos) << message;
  }
}

TEST(World, DescribeWorldCountsNodes) {
  Communicator& comm = world();
  const std::string line = describe_world(comm);
  const int nodes = expected_nodes();
  EXPECT_EQ(line, fmt::format("mpi: {} ranks on {} node{} ({} on this node)", comm.size(), nodes,
                              nodes == 1 ? "" : "s", comm.local_size()));
}

TEST(World, DefaultThreadsShareTheNodesCpus) {
  Communicator& comm = world();
  const int threads = default_threads_per_rank(comm);
  EXPECT_GE(threads, 1);
  EXPECT_LE(threads, static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace
}  // namespace txl::test
