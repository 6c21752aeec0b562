// txl_plot on a real log (tests/fixtures/logs/tiny_wt2_60_steps: configs/tiny.yaml trained
// 60 steps by txl_train): both log formats give the same curves, and the PNG is written.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "train_test_util.h"
#include "txl/core/error.h"
#include "txl/train/training_curves.h"

namespace txl {
namespace {

namespace fs = std::filesystem;

const std::string kRun = std::string(TXL_SOURCE_DIR) + "/tests/fixtures/logs/tiny_wt2_60_steps";

TEST(TrainingCurves, MetricsAndDlloggerFilesGiveTheSameCurves) {
  const TrainingCurves a = read_training_curves(kRun);  // train_log.jsonl
  const TrainingCurves b = read_training_curves(kRun + "/train_log.json");
  EXPECT_EQ(a.name, "tiny_wt2_60_steps");
  EXPECT_FALSE(a.char_level);
  ASSERT_EQ(a.train.size(), 12u);  // log_interval 5
  ASSERT_EQ(a.valid.size(), 3u);   // eval_interval 20
  ASSERT_EQ(b.train.size(), a.train.size());
  ASSERT_EQ(b.valid.size(), a.valid.size());
  for (size_t i = 0; i < a.train.size(); ++i) {
    EXPECT_EQ(a.train[i].step, static_cast<int64_t>(5 * (i + 1)));
    EXPECT_EQ(a.train[i].tokens, 1024.0 * static_cast<double>(a.train[i].step));  // batch 16 x tgt_len 64
    EXPECT_EQ(b.train[i].step, a.train[i].step);
    EXPECT_EQ(b.train[i].tokens, a.train[i].tokens);
    EXPECT_DOUBLE_EQ(b.train[i].loss, a.train[i].loss);
    EXPECT_DOUBLE_EQ(b.train[i].metric, a.train[i].metric);
    EXPECT_DOUBLE_EQ(b.train[i].lr, a.train[i].lr);
    EXPECT_DOUBLE_EQ(b.train[i].tok_per_s, a.train[i].tok_per_s);
    EXPECT_GT(a.train[i].tok_per_s, 0.0);
  }
  for (size_t i = 0; i < a.valid.size(); ++i) {
    EXPECT_EQ(a.valid[i].step, static_cast<int64_t>(20 * (i + 1)));
    EXPECT_DOUBLE_EQ(b.valid[i].loss, a.valid[i].loss);
    EXPECT_DOUBLE_EQ(b.valid[i].metric, a.valid[i].metric);
  }
  EXPECT_LT(a.valid.back().loss, a.valid.front().loss);  // it learned
}

TEST(TrainingCurves, ADirectoryWithoutLogsIsRefused) {
  const std::string empty = test::fresh_dir("curves_empty");
  fs::create_directories(empty);
  try {
    read_training_curves(empty);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "txl_plot: " + empty + ": no train_log.jsonl or train_log.json");
  }
}

TEST(TrainingCurves, TxlPlotWritesAPng) {
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "skipped: gnuplot is not installed (launch/install_deps.sh --test installs gnuplot-nox)";
  const std::string dir = test::fresh_dir("curves_png");
  fs::create_directories(dir);
  const std::string png = dir + "/curves.png";
  std::string out;
  // Two runs in one picture: the work dir and its DLLogger file.
  ASSERT_EQ(test::run_binary("txl_plot", {kRun, kRun + "/train_log.json", "-o", png}, &out), 0) << out;
  std::ifstream in(png, std::ios::binary);
  std::string head(8, '\0');
  in.read(head.data(), 8);
  EXPECT_EQ(head, "\x89PNG\r\n\x1a\n");
  EXPECT_GT(fs::file_size(png), 20000u);  // four panels of lines, not an empty canvas
  EXPECT_EQ(test::list_dir(dir), std::vector<std::string>{"curves.png"});  // no script left behind

  EXPECT_EQ(test::run_binary("txl_plot", {dir, "-o", png}, &out), 1);
  EXPECT_NE(out.find("error: txl_plot: " + dir + ": no train_log.jsonl or train_log.json"), std::string::npos) << out;
}

}  // namespace
}  // namespace txl
