// test_dist_mpi: GoogleTest cases that need several MPI ranks, plus failure scenarios.
// ctest runs it as `mpiexec -n 2|3 test_dist_mpi` (tests/dist/mpi_tests.cmake); every rank
// runs every test, rank 0 prints the usual report, other ranks print only their failures,
// and the exit code is non-zero when any rank failed.
//   test_dist_mpi --scenario=NAME   runs one failure scenario instead (test_dist drives
//   these and checks that the job ends, and how fast): abort, die, timeout.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "mpi_test_world.h"
#include "txl/core/error.h"
#include "txl/dist/grad_reducer.h"
#include "txl/dist/world.h"

namespace txl::test {

Communicator* g_world = nullptr;

Communicator& world() { return *g_world; }

namespace {

// Other ranks print their failures only, prefixed with the rank.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_, result.file_name() ? result.file_name() : "?",
                 result.line_number(), result.summary());
  }

 private:
  int rank_;
};

int run_scenario(Communicator& comm, const std::string& name) {
  const bool victim = comm.rank() == comm.size() - 1;
  comm.barrier();
  if (name == "abort") {
    // A rank fails with an error while the others wait in a collective.
    if (victim) fail("simulated failure on the last rank");
    comm.barrier();
  } else if (name == "die") {
    // A rank is killed while the others are in a loop of all-reduces.
    float x = 1.0f;
    for (int i = 0; i < 1000000; ++i) {
      if (victim && i == 3) std::raise(SIGKILL);
      comm.allreduce_sum(&x, 1);
      x = 1.0f;
    }
  } else if (name == "timeout") {
    // A rank takes another path (never enters the collective) but stays alive.
    if (victim) {
      std::this_thread::sleep_for(std::chrono::seconds(60));
      return 0;
    }
    comm.barrier();
  } else {
    failf("unknown scenario '{}' (abort, die, timeout)", name);
  }
  return 0;
}

}  // namespace
}  // namespace txl::test

int main(int argc, char** argv) {
  std::string scenario;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--scenario=", 11) == 0) scenario = argv[i] + 11;
  }
  std::unique_ptr<txl::Communicator> comm;
  try {
    comm = txl::init_world(argc, argv);
    if (!scenario.empty()) return txl::test::run_scenario(*comm, scenario);
    TXL_CHECK(comm->size() >= 2, "test_dist_mpi must run under mpiexec with at least 2 ranks (it has {})",
              comm->size());
    txl::test::g_world = comm.get();
    ::testing::InitGoogleTest(&argc, argv);
    if (comm->rank() != 0) {
      auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
      delete listeners.Release(listeners.default_result_printer());
      listeners.Append(new txl::test::RankFailurePrinter(comm->rank()));
    }
    double failed = RUN_ALL_TESTS() != 0 ? 1.0 : 0.0;
    comm->allreduce_sum(&failed, 1);
    if (comm->rank() == 0) {
      std::printf("test_dist_mpi: %d ranks, %s\n", comm->size(),
                  failed > 0 ? "FAILED on at least one rank" : "passed on every rank");
    }
    return failed > 0 ? 1 : 0;
  } catch (const std::exception& e) {
    return txl::exit_after_error(comm.get(), e);
  }
}
