// Recipe behaviours that need a (tiny) run: --data with the raw corpus directory, --debug
// (nothing written), --no_eval / --no_test, the benchmark targets' exit code, a run ending
// inside the warm-up, and CPU affinity.
#include <gtest/gtest.h>
#include <omp.h>
#include <sched.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "train_test_util.h"
#include "txl/dist/communicator.h"
#include "txl/programs/corpus_directory.h"
#include "txl/train/cpu_affinity.h"
#include "txl/programs/programs.h"
#include "txl/train/trainer.h"

namespace txl {
namespace {

namespace fs = std::filesystem;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class RecipeRuns : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    config_file_ = test::write_preset_file(test::tiny_train_config(dir_ + "/work"), dir_ + "/tiny.yaml");
    comm_ = make_single_process_communicator();
  }
  std::string dir_, config_file_;
  std::unique_ptr<Communicator> comm_;
};

// --data DIR prepares DIR/txl_<dataset>.h5 once and reads it; --debug writes no work dir.
TEST_F(RecipeRuns, CorpusDirectoryIsPreparedOnceAndDebugWritesNothing) {
  const std::string corpus_dir = dir_ + "/wikitext-2";
  fs::copy(std::string(TXL_SOURCE_DIR) + "/data_prep/samples/wikitext-2", corpus_dir);
  const std::string work = dir_ + "/debug_work";
  const std::vector<std::string> args{config_file_, "--data",    corpus_dir + "/", "--dataset", "wt2",
                                      "--max_step",  "2",         "--debug",        "--no_test", "--work_dir",
                                      work};
  EXPECT_EQ(run_train_program(args, *comm_), kExitOk);
  const std::string prepared = corpus_file_in_directory(corpus_dir + "/", "wt2");
  ASSERT_TRUE(fs::exists(prepared));
  EXPECT_FALSE(fs::exists(work));  // debug: no work dir, logs or checkpoints
  const auto written = fs::last_write_time(prepared);
  EXPECT_EQ(run_train_program(args, *comm_), kExitOk);
  EXPECT_EQ(fs::last_write_time(prepared), written);  // prepared once
  EXPECT_EQ(prepare_corpus_directory(corpus_dir, "wt2", *comm_),
            "data: " + corpus_dir + " is a corpus directory; using " + corpus_file_in_directory(corpus_dir, "wt2"));
  // A directory that is not the dataset's download: one line naming it, no corpus file left.
  const std::string empty = dir_ + "/empty";
  fs::create_directories(empty);
  std::string error;
  try {
    run_train_program({config_file_, "--data", empty, "--dataset", "wt2", "--debug"}, *comm_);
  } catch (const Error& e) {
    error = e.what();
  }
  EXPECT_NE(error.find(empty), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(corpus_file_in_directory(empty, "wt2")));
}

// The recipe's benchmark: exp(best validation loss) against target_perplexity, exit 1 on
// a miss; no validation (no_eval) means no check. A run ending inside its warm-up runs.
TEST_F(RecipeRuns, TargetsUseBestValidationAndExitOne) {
  const std::string work = dir_ + "/work";
  EXPECT_EQ(run_train_program({config_file_, "--max_step", "2", "--warmup_step", "5", "--max_step_scheduler", "0",
                               "--no_test", "--target_perplexity", "1.5"},
                              *comm_),
            1);
  const std::string log = read_text(work + "/train_log.log");
  EXPECT_NE(log.find("Perplexity achieved: "), std::string::npos) << log;
  EXPECT_NE(log.find("Perplexity test failed"), std::string::npos) << log;
  EXPECT_EQ(log.find("End of training | test"), std::string::npos);  // --no_test

  EXPECT_EQ(run_train_program({config_file_, "--work_dir", dir_ + "/w2", "--max_step", "2", "--no_test",
                               "--target_perplexity", "1e9"},
                              *comm_),
            kExitOk);
  EXPECT_NE(read_text(dir_ + "/w2/train_log.log").find("Perplexity test passed"), std::string::npos);

  const std::string w3 = dir_ + "/w3";
  EXPECT_EQ(run_train_program({config_file_, "--work_dir", w3, "--max_step", "2", "--no_eval", "--no_test",
                               "--target_perplexity", "1.5", "--txtlog_file", "bench.log"},
                              *comm_),
            kExitOk);
  EXPECT_NE(read_text(w3 + "/bench.log").find("target_perplexity not checked: no validation ran"), std::string::npos);
  EXPECT_FALSE(fs::exists(w3 + "/checkpoint_last.h5"));  // no_eval: no checkpoints
}

// txl_train binds itself and says so (a child process: the test process keeps its cores).
TEST_F(RecipeRuns, AffinityIsAppliedAndLogged) {
  std::string out;
  ASSERT_EQ(test::run_binary("txl_train", {config_file_, "--affinity", "socket_unique_continuous", "--max_step", "1",
                                           "--debug", "--no_eval", "--no_test"},
                             &out),
            0)
      << out;
  EXPECT_NE(out.find("| affinity socket_unique_continuous: rank 0 bound to CPU cores "), std::string::npos) << out;
  // train.py's console line: the local rank and the cores as a Python set.
  EXPECT_TRUE(std::regex_search(out, std::regex(R"((^|\n)0: thread affinity: \{\d+(, \d+)*\}\n)"))) << out;
}

TEST(CpuAffinity, CoresOfEachMode) {
  const CpuTopology two{{{0, 1, 2, 3}, {4, 5, 6, 7}}, {}};  // no hyper-threads
  using V = std::vector<int>;
  EXPECT_EQ(cores_for_rank(two, "disabled", 0, 4), V{});
  EXPECT_EQ(cores_for_rank(two, "socket", 3, 4), (V{4, 5, 6, 7}));
  EXPECT_EQ(cores_for_rank(two, "single", 3, 4), (V{4}));
  EXPECT_EQ(cores_for_rank(two, "single_unique", 3, 4), (V{5}));
  EXPECT_EQ(cores_for_rank(two, "socket_unique_interleaved", 2, 4), (V{4, 6}));
  EXPECT_EQ(cores_for_rank(two, "socket_unique_interleaved", 1, 4), (V{1, 3}));
  EXPECT_EQ(cores_for_rank(two, "socket_unique_continuous", 1, 4), (V{2, 3}));
  EXPECT_EQ(cores_for_rank(two, "socket_unique_continuous", 0, 1), (V{0, 1, 2, 3}));  // one rank: socket 0
  std::string error;
  try {
    cores_for_rank(two, "single_unique", 4, 16);  // ranks 0-7 share socket 0's 4 cores
  } catch (const Error& e) {
    error = e.what();
  }
  EXPECT_EQ(error,
            "affinity: single_unique: the 4 cores near local rank 4 (0-3) are all taken by lower local ranks; use "
            "fewer ranks per node, or affinity socket or disabled");
  EXPECT_EQ(cores_for_rank(two, "single_unique", 3, 16), V{3});
  error.clear();
  try {
    cores_for_rank(two, "socket_unique_continuous", 0, 16);
  } catch (const Error& e) {
    error = e.what();
  }
  EXPECT_EQ(error,
            "affinity: socket_unique_continuous: the 4 cores near local rank 0 (0-3) are too few for the 8 ranks "
            "sharing them; use fewer ranks per node, or affinity socket or disabled");
}

TEST(CpuAffinity, BindsTheCallingThread) {
  cpu_set_t before;
  ASSERT_EQ(sched_getaffinity(0, sizeof(before), &before), 0);
  const int threads = omp_get_max_threads();
  const CpuTopology t = read_cpu_topology();
  ASSERT_FALSE(t.sockets.empty());
  const std::vector<int> cores = cores_for_rank(t, "single", 0, 1);
  const std::string line = bind_to_cores(cores, "single", 0);
  cpu_set_t after;
  ASSERT_EQ(sched_getaffinity(0, sizeof(after), &after), 0);
  EXPECT_EQ(CPU_COUNT(&after), 1);
  EXPECT_TRUE(CPU_ISSET(cores.front(), &after));
  EXPECT_NE(line.find("affinity single: rank 0 bound to CPU cores " + std::to_string(cores.front())),
            std::string::npos)
      << line;
  ASSERT_EQ(sched_setaffinity(0, sizeof(before), &before), 0);  // the other tests keep every core
  omp_set_num_threads(threads);
}

}  // namespace
}  // namespace txl
