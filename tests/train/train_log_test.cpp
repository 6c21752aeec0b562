// Log lines in the recipe's shape, metrics truncation on resume, percentiles.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

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
            "loss  6.42 | ppl    611.55 | MFU n/a");
  l.char_level = true;
  l.mfu = 0.4125;
  l.loss = 0.75;
  EXPECT_EQ(format_train_line(l),
            "| epoch   1 step      500 | batches    500 / 16802 | lr 5.000e-03 | ms/batch 221.4 | tok/s   27747 | "
            "loss  0.75 | bpc   1.08202 | MFU 41.2%");
  EXPECT_EQ(format_eval_line(1, 5000, 1.37, std::log(23.132), false),
            "| Eval   1 at step     5000 | time:  1.37s | valid loss  3.14 | valid ppl    23.132");
  EXPECT_EQ(format_end_line(std::log(23.132), false), "| End of training | test loss  3.14 | test ppl    23.132");
  EXPECT_EQ(format_split_line("valid", 0.75, true), "| valid loss  0.75 | valid bpc   1.08202");
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
