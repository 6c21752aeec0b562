// detect_launch: which environments mean "MPI job", and the one-line message when srun
// cannot wire MPI up.
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <mpi.h>  // OPEN_MPI: which MPI txl was built with

#include "txl/dist/world.h"

namespace txl {
namespace {

LaunchInfo detect(const std::map<std::string, std::string>& env) {
  return detect_launch([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(DetectLaunch, PlainProcessIsNotAnMpiJob) {
  const LaunchInfo info = detect({{"HOME", "/root"}});
  EXPECT_FALSE(info.under_launcher);
  EXPECT_TRUE(info.problem.empty());
}

TEST(DetectLaunch, Mpirun) {
  const LaunchInfo info = detect({{"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_RANK", "1"}});
  EXPECT_TRUE(info.under_launcher);
  EXPECT_EQ(info.launcher, "mpirun");
  EXPECT_EQ(info.expected_size, 4);
}

TEST(DetectLaunch, MpirunInsideAnAllocationIgnoresSlurmVariables) {
  // mpirun in a batch script starts its daemons with srun; ranks inherit that step's
  // task count, which is the number of nodes, not of ranks.
  const LaunchInfo info = detect({{"OMPI_COMM_WORLD_SIZE", "8"},
                                  {"SLURM_STEP_ID", "0"},
                                  {"SLURM_PROCID", "0"},
                                  {"SLURM_STEP_NUM_TASKS", "2"}});
  EXPECT_EQ(info.launcher, "mpirun");
  EXPECT_EQ(info.expected_size, 8);
}

TEST(DetectLaunch, SrunWithPmix) {
  const LaunchInfo info = detect({{"SLURM_STEP_ID", "0"},
                                  {"SLURM_PROCID", "1"},
                                  {"SLURM_STEP_NUM_TASKS", "2"},
                                  {"PMIX_RANK", "1"},
                                  {"PMIX_NAMESPACE", "slurm.pmix.5.0"}});
  EXPECT_TRUE(info.under_launcher);
  EXPECT_EQ(info.launcher, "srun");
  EXPECT_EQ(info.expected_size, 2);
  EXPECT_TRUE(info.problem.empty());
}

TEST(DetectLaunch, SrunWithoutPmixExplainsTheFix) {
  const LaunchInfo info =
      detect({{"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "1"}, {"SLURM_STEP_NUM_TASKS", "2"}, {"SLURM_NTASKS", "2"}});
#if defined(OPEN_MPI)
  EXPECT_FALSE(info.under_launcher);
  EXPECT_NE(info.problem.find("srun --mpi=pmix"), std::string::npos) << info.problem;
  EXPECT_NE(info.problem.find("2 tasks"), std::string::npos) << info.problem;
  EXPECT_EQ(info.problem.find('\n'), std::string::npos) << "one line";
#endif
}

TEST(DetectLaunch, SrunWithPmi2UnderOpenMpiExplainsTheFix) {
  const LaunchInfo info = detect(
      {{"SLURM_STEP_ID", "3"}, {"SLURM_PROCID", "0"}, {"SLURM_STEP_NUM_TASKS", "4"}, {"PMI_FD", "7"}, {"PMI_RANK", "0"}});
#if defined(OPEN_MPI)
  EXPECT_NE(info.problem.find("--mpi=pmi2"), std::string::npos) << info.problem;
  EXPECT_NE(info.problem.find("srun --mpi=pmix"), std::string::npos) << info.problem;
#else
  EXPECT_TRUE(info.under_launcher);
#endif
}

TEST(DetectLaunch, SingleTaskSrunStepRunsAlone) {
  const LaunchInfo info = detect({{"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "0"}, {"SLURM_STEP_NUM_TASKS", "1"}});
  EXPECT_FALSE(info.under_launcher);
  EXPECT_TRUE(info.problem.empty());
}

TEST(DetectLaunch, BatchScriptWithoutSrunRunsAlone) {
  // The batch step of `sbatch -N 2` has SLURM_NTASKS but is not an srun step.
  const LaunchInfo info = detect({{"SLURM_JOB_ID", "12"}, {"SLURM_NTASKS", "2"}, {"SLURM_NNODES", "2"}});
  EXPECT_FALSE(info.under_launcher);
  EXPECT_TRUE(info.problem.empty());
}

TEST(DetectLaunch, MpichHydra) {
  const LaunchInfo info = detect({{"PMI_RANK", "2"}, {"PMI_SIZE", "3"}});
  EXPECT_TRUE(info.under_launcher);
  EXPECT_EQ(info.launcher, "hydra");
  EXPECT_EQ(info.expected_size, 3);
}

}  // namespace
}  // namespace txl
