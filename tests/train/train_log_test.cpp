// Log lines in the recipe's format (tests/fixtures/recipe/log_formats.txt), Python's time
// and number texts, metrics and DLLogger truncation on resume, percentiles.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <regex>

#include "txl/train/dllogger.h"
#include "txl/train/train_log.h"

namespace txl {
namespace {

TEST(TrainLog, LinesHaveTheRecipeShape) {
  TrainLogLine l;
  l.epoch = 1;
  l.step = 500;
  l.batch = 500;
  l.n_batch = 16802;
  l.lr = 5e-3;
  l.ms_per_batch = 221.4;
  l.tok_per_s = 27747;
  l.loss = 6.416;
  EXPECT_EQ(format_train_line(l),
            "| epoch   1 step      500 | batches    500 / 16802 | lr 5.000e-03 | ms/batch 221.4 | tok/s   27747 | "
            "loss  6.42 | ppl    611.55");
  l.char_level = true;
  l.loss = 0.75;
  EXPECT_EQ(format_train_line(l),
            "| epoch   1 step      500 | batches    500 / 16802 | lr 5.000e-03 | ms/batch 221.4 | tok/s   27747 | "
            "loss  0.75 | bpc   1.08202");
  EXPECT_EQ(format_eval_line(1, 5000, 1.37, std::log(23.132), false),
            "| Eval   1 at step     5000 | time:  1.37s | valid loss  3.14 | valid ppl    23.132");
  EXPECT_EQ(format_end_line(2.0, std::log(23.132), false),
            "| End of training | test time:  2.00s | test loss  3.14 | test ppl    23.132");
  EXPECT_EQ(format_end_line(12.345, 0.75, true),
            "| End of training | test time: 12.35s | test loss  0.75 | test bpc   1.08202");
  EXPECT_EQ(format_training_time_line(5712.0), "Training time: 95.20 minutes");
  // eval.py's lines (its result line ends with a space).
  EXPECT_EQ(format_split_line("valid", 0.75, true), "| valid loss  0.75 | valid bpc   1.08202 ");
  EXPECT_EQ(format_split_line("test", std::log(23.132), false), "| test loss  3.14 | test ppl    23.132 ");
  EXPECT_EQ(format_eval_interval_line(10, 10, 120, 3.5214, 36346.4, 5.1),
            "| step       10 | batches     10 / 120 | ms/batch  3.52 | tok/s   36346 | loss  5.10 | ppl 164.02");
  EXPECT_EQ(format_eval_time_line(1.234, 120), "Time : 1.23s, 10.28ms/segment");
}

TEST(TrainLog, TimesArePrintedAsPythonPrintsThem) {
  EXPECT_EQ(python_float_text(27747.0), "27747.0");
  EXPECT_EQ(python_float_text(6e-06), "6e-06");
  EXPECT_EQ(python_float_text(1796186055.36778), "1796186055.36778");
  EXPECT_EQ(python_float_text(0.000102), "0.000102");
  EXPECT_EQ(python_float_text(1e16), "1e+16");
  using std::chrono::microseconds;
  const std::chrono::system_clock::time_point t{microseconds(1796186055367780)};
  EXPECT_EQ(python_utc_datetime(t), "2026-12-02 04:34:15.367780+00:00");
  EXPECT_EQ(python_utc_datetime(std::chrono::system_clock::time_point{microseconds(1796186055000000)}),
            "2026-12-02 04:34:15+00:00");
  // The recipe's datefmt: no milliseconds.
  const std::regex asctime(R"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})");
  EXPECT_TRUE(std::regex_match(recipe_log_time(t), asctime)) << recipe_log_time(t);
  EXPECT_EQ(recipe_log_time(t).substr(17), "15");
}

TEST(TrainLog, TruncateMetricsDropsLaterStepsAndTornLine) {
  const std::string path = (std::filesystem::temp_directory_path() / "txl_metrics_test.jsonl").string();
  {
    std::ofstream out(path);
    out << R"({"type":"train","step":10,"loss":5.0})" << "\n"
        << R"({"type":"config"})" << "\n"
        << R"({"type":"eval","step":20,"loss":4.0})" << "\n"
        << R"({"type":"train","step":30,"loss":3.0})" << "\n"
        << R"({"type":"train","st)";  // torn by a kill
  }
  truncate_metrics_after(path, 20);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "{\"type\":\"train\",\"step\":10,\"loss\":5.0}\n{\"type\":\"config\"}\n"
                  "{\"type\":\"eval\",\"step\":20,\"loss\":4.0}\n");
  std::filesystem::remove(path);
}

TEST(TrainLog, TruncateDlloggerDropsLaterStepsAndTornLine) {
  const std::string path = (std::filesystem::temp_directory_path() / "txl_dllogger_test.json").string();
  {
    std::ofstream out(path);
    out << R"(DLLL {"type": "LOG", "step": "PARAMETER", "data": {}})" << "\n"
        << R"(DLLL {"type": "METADATA", "metric": "train_loss", "metadata": {"unit": null}})" << "\n"
        << R"(DLLL {"type": "LOG", "step": [10], "data": {"train_loss": 5.0}})" << "\n"
        << R"(DLLL {"type": "LOG", "step": [30], "data": {"train_loss": 3.0}})" << "\n"
        << R"(DLLL {"type": "LOG", "step": [], "data": {"train_loss": 3.0}})" << "\n"
        << R"(DLLL {"type": "LOG", "st)";
  }
  truncate_dllogger_after(path, 20);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "DLLL {\"type\": \"LOG\", \"step\": \"PARAMETER\", \"data\": {}}\n"
                  "DLLL {\"type\": \"METADATA\", \"metric\": \"train_loss\", \"metadata\": {\"unit\": null}}\n"
                  "DLLL {\"type\": \"LOG\", \"step\": [10], \"data\": {\"train_loss\": 5.0}}\n"
                  "DLLL {\"type\": \"LOG\", \"step\": [], \"data\": {\"train_loss\": 3.0}}\n");
  std::filesystem::remove(path);
}

TEST(TrainLog, PercentileInterpolatesLikeNumpy) {
  const std::vector<double> v{4, 1, 3, 2, 10};
  EXPECT_DOUBLE_EQ(percentile(v, 50), 3.0);
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 10.0);
  EXPECT_DOUBLE_EQ(percentile(v, 90), 4 + 0.6 * 6);  // index 3.6
  EXPECT_DOUBLE_EQ(percentile({7.0}, 99), 7.0);
}

}  // namespace
}  // namespace txl
