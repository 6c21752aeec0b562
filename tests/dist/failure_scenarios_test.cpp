// A 2-rank job ends, with a clear message and within a bounded time, when one rank
// fails, dies or never joins a collective (no silent hang). Runs test_dist_mpi's
// scenarios under mpiexec.
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

namespace {

struct JobResult {
  int exit_code = -1;
  double seconds = 0.0;
  std::string output;
};

JobResult run_job(const std::string& scenario, const std::string& env) {
  const std::string command = env + " OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " +
                              "OMPI_MCA_rmaps_base_oversubscribe=1 timeout -s KILL 170 mpiexec -n 2 " +
                              TXL_BINARY_DIR "/bin/test_dist_mpi --scenario=" + scenario + " 2>&1";
  JobResult r;
  const auto start = std::chrono::steady_clock::now();
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), static_cast<int>(buffer.size()), pipe) != nullptr) r.output += buffer.data();
  const int status = pclose(pipe);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

TEST(FailureScenarios, AnErrorOnOneRankEndsTheJob) {
  const JobResult r = run_job("abort", "TXL_COLLECTIVE_TIMEOUT_S=120");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(r.seconds, 30.0) << r.output;
  EXPECT_NE(r.output.find("error: rank 1: simulated failure on the last rank"), std::string::npos) << r.output;
}

TEST(FailureScenarios, AKilledRankEndsTheJobWithin60Seconds) {
  const JobResult r = run_job("die", "TXL_COLLECTIVE_TIMEOUT_S=120");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(r.seconds, 60.0) << r.output;
}

TEST(FailureScenarios, ARankThatNeverJoinsTimesOutWithAMessage) {
  const JobResult r = run_job("timeout", "TXL_COLLECTIVE_TIMEOUT_S=2");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(r.seconds, 30.0) << r.output;
  EXPECT_NE(r.output.find("error: rank 0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("barrier did not complete within 2 s"), std::string::npos) << r.output;
}

}  // namespace
