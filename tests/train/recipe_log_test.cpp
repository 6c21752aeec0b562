// A short training run writes the logs a recipe user's tools read: train_log.log with
// Python logging's prefix and the recipe's lines (regular expressions derived from the
// format strings in tests/fixtures/recipe/log_formats.txt), and train_log.json in
// DLLogger's JSON stream format (records shaped as in tests/fixtures/recipe/dllogger_sample.json).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "train_test_util.h"
#include "txl/train/trainer.h"

namespace txl {
namespace {

using json = nlohmann::json;

// What a DLLogger reader does: drop "DLLL ", parse the rest of each line as JSON.
std::vector<json> read_dllogger(const std::string& path) {
  std::vector<json> out;
  for (const std::string& line : test::read_lines(path)) {
    EXPECT_EQ(line.rfind("DLLL ", 0), 0u) << line;
    out.push_back(json::parse(line.substr(5)));
  }
  return out;
}

std::vector<std::string> keys_of(const json& object) {
  std::vector<std::string> keys;
  for (auto it = object.begin(); it != object.end(); ++it) keys.push_back(it.key());
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

class RecipeLogs : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = test::fresh_dir("recipe_logs");
    TrainConfig c = test::tiny_train_config(work_);
    c.max_step = 8;
    c.log_interval = 2;
    c.eval_interval = 4;
    c.peak_tflops = 0.001;  // MFU goes to a line of its own
    c.finalize(1);
    auto comm = make_single_process_communicator();
    Trainer t(c, "", "", *comm);
    outcome_ = t.run();
  }
  static std::string work_;
  static TrainOutcome outcome_;
};
std::string RecipeLogs::work_;
TrainOutcome RecipeLogs::outcome_;

TEST_F(RecipeLogs, TextLogHasPythonLoggingPrefixAndTheRecipesLines) {
  // %(asctime)s with the recipe's datefmt "%Y-%m-%d %H:%M:%S".
  const std::regex prefix(R"((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) - INFO - (.*))");
  // train.py's format strings, widths as minimums: {:3d} -> [ \d]{3,}, {:5.2f} -> [ \d]{2,}\.\d{2}, ...
  const std::regex train(
      R"(\| epoch [ \d]{3,} step [ \d]{8,} \| batches [ \d]{6,} / \d+ \| lr \d\.\d{3}e[-+]\d{2} \| ms/batch [ \d]{3,}\.\d )"
      R"(\| tok/s [ \d]{7,} \| loss [ \d]{2,}\.\d{2} \| ppl [ \d]{5,}\.\d{2})");
  const std::regex eval(
      R"(\| Eval [ \d]{3,} at step [ \d]{8,} \| time: [ \d]{2,}\.\d{2}s \| valid loss [ \d]{2,}\.\d{2} \| valid ppl [ \d]{5,}\.\d{3})");
  const std::regex end(
      R"(\| End of training \| test time: [ \d]{2,}\.\d{2}s \| test loss [ \d]{2,}\.\d{2} \| test ppl [ \d]{5,}\.\d{3})");
  const std::regex time(R"(Training time: \d+\.\d{2} minutes)");
  const std::regex throughput(R"(Training throughput: \d+\.\d{2} tok/s)");
  int n_train = 0, n_eval = 0, n_end = 0, n_time = 0, n_throughput = 0, n_mfu = 0, n_end_of_training = 0;
  std::vector<int64_t> steps;
  for (const std::string& line : test::read_lines(work_ + "/train_log.log")) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, prefix)) << line;
    const std::string message = m[2];
    if (message.rfind("| epoch", 0) == 0) {
      EXPECT_TRUE(std::regex_match(message, train)) << message;
      steps.push_back(std::stoll(message.substr(message.find("step") + 4)));
      ++n_train;
    }
    // A line that starts like one of the recipe's must match its format whole.
    auto check = [&](const char* start, const std::regex& format, int& count) {
      if (message.rfind(start, 0) != 0) return;
      EXPECT_TRUE(std::regex_match(message, format)) << message;
      ++count;
    };
    check("| Eval", eval, n_eval);
    check("| End of training", end, n_end);
    check("Training time", time, n_time);
    check("Training throughput", throughput, n_throughput);
    if (message.rfind("| MFU ", 0) == 0) ++n_mfu;
    if (message == "End of training") ++n_end_of_training;
  }
  EXPECT_EQ(n_train, 4);
  EXPECT_EQ(steps, (std::vector<int64_t>{2, 4, 6, 8}));
  EXPECT_EQ(n_eval, 2);
  EXPECT_EQ(n_end, 1);
  EXPECT_EQ(n_time, 1);
  EXPECT_EQ(n_throughput, 1);
  EXPECT_EQ(n_mfu, 4);
  EXPECT_EQ(n_end_of_training, 1);
}

TEST_F(RecipeLogs, DlloggerFileHasTheRecipesRecords) {
  const std::vector<json> records = read_dllogger(work_ + "/train_log.json");
  ASSERT_FALSE(records.empty());
  const std::regex number(R"(\d+(\.\d+)?(e[-+]\d+)?)");
  const std::regex datetime(R"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00)");
  for (const json& r : records) {
    EXPECT_TRUE(r["timestamp"].is_string() && std::regex_match(r["timestamp"].get<std::string>(), number)) << r;
    EXPECT_TRUE(r["elapsedtime"].is_string() && std::regex_match(r["elapsedtime"].get<std::string>(), number)) << r;
    EXPECT_TRUE(std::regex_match(r["datetime"].get<std::string>(), datetime)) << r;
  }
  // The argument dump first, then the units of the recipe's metrics.
  EXPECT_EQ(records[0]["type"], "LOG");
  EXPECT_EQ(records[0]["step"], "PARAMETER");
  EXPECT_EQ(records[0]["data"]["n_layer"], 2);
  EXPECT_EQ(records[0]["data"]["lr"], 0.01);
  EXPECT_EQ(records[0]["data"]["optim"], "lamb");
  std::vector<std::string> metadata;
  for (const json& r : records)
    if (r["type"] == "METADATA") metadata.push_back(r["metric"]);
  EXPECT_EQ(metadata, (std::vector<std::string>{"train_throughput", "train_elapsed", "valid_elapsed", "train_perplexity",
                                                "valid_perplexity", "train_loss", "valid_loss"}));

  // Training intervals and evaluations: step [train_step]; the summary: step [].
  std::vector<json> train, valid, summary;
  for (const json& r : records) {
    if (r["type"] != "LOG" || !r["step"].is_array()) continue;
    if (r["step"].empty()) summary.push_back(r);
    else if (r["data"].contains("train_loss")) train.push_back(r);
    else valid.push_back(r);
  }
  ASSERT_EQ(train.size(), 4u);
  ASSERT_EQ(valid.size(), 2u);
  ASSERT_EQ(summary.size(), 1u);
  for (size_t i = 0; i < train.size(); ++i) {
    EXPECT_EQ(train[i]["step"], json::array({2 * (i + 1)}));
    EXPECT_EQ(keys_of(train[i]["data"]), sorted({"epoch", "train_batch", "lr", "train_time/batch", "train_throughput",
                                                 "train_loss", "train_perplexity"}));
    const json& d = train[i]["data"];
    EXPECT_DOUBLE_EQ(d["train_perplexity"].get<double>(), std::exp(d["train_loss"].get<double>()));
    EXPECT_EQ(d["epoch"], 1);
  }
  EXPECT_EQ(valid[0]["step"], json::array({4}));
  EXPECT_EQ(valid[1]["step"], json::array({8}));
  for (const json& v : valid)
    EXPECT_EQ(keys_of(v["data"]), sorted({"valid_elapsed", "valid_loss", "valid_perplexity"}));
  const json& s = summary[0]["data"];
  EXPECT_EQ(keys_of(s), sorted({"test_elapsed", "test_loss", "test_perplexity", "train_throughput", "train_elapsed",
                                "train_loss", "valid_loss", "valid_perplexity"}));
  ASSERT_TRUE(outcome_.test_loss.has_value());
  EXPECT_DOUBLE_EQ(s["test_loss"].get<double>(), *outcome_.test_loss);
  EXPECT_DOUBLE_EQ(s["valid_loss"].get<double>(), outcome_.best_val_loss);
  EXPECT_DOUBLE_EQ(s["valid_perplexity"].get<double>(), std::exp(outcome_.best_val_loss));
  EXPECT_DOUBLE_EQ(s["train_loss"].get<double>(), train.back()["data"]["train_loss"].get<double>());
  EXPECT_DOUBLE_EQ(s["train_throughput"].get<double>(), outcome_.throughput);
  EXPECT_EQ(records.back(), summary[0]);
}

// txl's own metrics file keeps what the recipe's lines no longer carry.
TEST_F(RecipeLogs, MetricsFileKeepsMfuAndGradientNorm) {
  int n = 0;
  for (const std::string& line : test::read_lines(work_ + "/train_log.jsonl")) {
    const json r = json::parse(line);
    if (r["type"] != "train") continue;
    EXPECT_GT(r["mfu"].get<double>(), 0.0);
    EXPECT_GT(r["grad_norm"].get<double>(), 0.0);
    ++n;
  }
  EXPECT_EQ(n, 4);
}

}  // namespace
}  // namespace txl

namespace txl {
namespace {

// log_all_ranks: as the recipe, every rank (rank 0 too) writes train_log_rank_<r>.log, with
// the rank in the prefix, and no train_log.log.
TEST(RecipeLogsAllRanks, EveryRankWritesItsOwnFileWithTheRank) {
  const std::string work = test::fresh_dir("recipe_logs_all_ranks");
  TrainConfig c = test::tiny_train_config(work);
  c.max_step = 2;
  c.eval_interval = 0;
  c.log_all_ranks = true;
  c.finalize(1);
  auto comm = make_single_process_communicator();
  Trainer(c, "", "", *comm).run();
  EXPECT_FALSE(std::filesystem::exists(work + "/train_log.log"));
  const std::vector<std::string> lines = test::read_lines(work + "/train_log_rank_0.log");
  ASSERT_FALSE(lines.empty());
  const std::regex prefix(R"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} - INFO - 0 - .*)");
  for (const std::string& line : lines) EXPECT_TRUE(std::regex_match(line, prefix)) << line;
  EXPECT_TRUE(std::filesystem::exists(work + "/train_log.json"));  // rank 0's DLLogger file stays
}

}  // namespace
}  // namespace txl
