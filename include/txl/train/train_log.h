// Log lines byte for byte in the recipe's format (docs/training.md §5; the format strings are in
// tests/fixtures/recipe/log_formats.txt), so existing log parsers keep working, and a
// JSON-lines metrics file for plots. txl's extras (MFU, gradient norm) are not in these
// lines: they go to train_log.jsonl (and MFU to a line of its own).
#pragma once
#include <cstdint>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace txl {

struct TrainLogLine {
  int64_t epoch = 0;
  int64_t step = 0;
  int64_t batch = 0;     // batches of this epoch done
  int64_t n_batch = 0;   // batches per epoch
  double lr = 0;
  double ms_per_batch = 0;
  double tok_per_s = 0;  // target tokens of the whole job per second
  double loss = 0;
  bool char_level = false;  // bpc instead of ppl
};

// The recipe's train.py (its format strings: tests/fixtures/recipe/log_formats.txt):
// "| epoch   1 step      500 | batches    500 / 16802 | lr 5.000e-03 | ms/batch 221.4 |
//  tok/s   27747 | loss  6.42 | ppl    611.70"
std::string format_train_line(const TrainLogLine& l);
// "| Eval   1 at step     5000 | time:  1.37s | valid loss  3.14 | valid ppl    23.132"
std::string format_eval_line(int64_t eval_index, int64_t step, double seconds, double loss, bool char_level);
// "| End of training | test time:  2.00s | test loss  3.14 | test ppl    23.132"
std::string format_end_line(double seconds, double loss, bool char_level);
// "Training time: 95.20 minutes"
std::string format_training_time_line(double seconds);

// The recipe's eval.py (tests/fixtures/recipe/log_formats.txt):
// the result, with the recipe's trailing space: "| test loss  3.14 | test ppl    23.132 "
std::string format_split_line(const std::string& split, double loss, bool char_level);
// every log_interval batches (means over the interval; ppl of the mean batch loss):
// "| step       10 | batches     10 / 120 | ms/batch  3.52 | tok/s   36346 | loss  5.10 | ppl 164.02"
std::string format_eval_interval_line(int64_t step, int64_t batch, int64_t n_batch, double ms_per_batch,
                                      double tok_per_s, double loss);
// after each split: "Time : 1.23s, 10.25ms/segment"
std::string format_eval_time_line(double seconds, int64_t segments);

// %(asctime)s of the recipe's log files, local time: "2026-12-02 05:40:12" (its
// logging.basicConfig sets datefmt "%Y-%m-%d %H:%M:%S", which drops Python's ",mmm").
std::string recipe_log_time(std::chrono::system_clock::time_point t);

// ppl = exp(loss); bpc = loss / ln 2.
double perplexity(double loss);
double bits_per_character(double loss);
// What a run reports for a mean token loss: "bpc" (bits per character) for character
// corpora, "ppl" (perplexity) otherwise; the one place that choice is made.
struct LossMetric {
  const char* name;
  double value;
};
LossMetric loss_metric(double loss, bool char_level);

// A line-oriented append-only log. Each line is written with one write(2), so a process
// killed at any point leaves whole lines only (or none).
class AppendFile {
 public:
  AppendFile() = default;
  explicit AppendFile(const std::string& path);
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;
  AppendFile(AppendFile&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  AppendFile& operator=(AppendFile&& o) noexcept;
  ~AppendFile();
  bool is_open() const { return fd_ >= 0; }
  void write_line(const std::string& line);

 private:
  int fd_ = -1;
  std::string path_;
};

// Human log (stdout + a file) and JSON-lines metrics of one process. Empty paths are not
// written; a default-constructed RunLog (ranks other than 0) writes nothing. As the
// recipe's logging: stdout gets the bare lines and the file
// "%(asctime)s - %(levelname)s - %(message)s" ("2026-12-02 05:40:12 - INFO - | epoch ...");
// with a rank (log_all_ranks) stdout gets "<rank>: line" and the file
// "%(asctime)s - %(levelname)s - %(rank)s - %(message)s".
class RunLog {
 public:
  RunLog() = default;
  RunLog(const std::string& text_path, const std::string& jsonl_path, bool echo_stdout, int rank = -1);
  void line(const std::string& text);
  void metrics(const nlohmann::json& record);
  bool active() const { return text_.is_open() || echo_; }

 private:
  AppendFile text_, json_;
  bool echo_ = false;
  std::string rank_;  // "" or the rank's number
};

// Removes the records of a metrics file written after `step` (and any torn last line),
// so a resumed run continues the file without duplicates. Atomic (temporary + rename).
void truncate_metrics_after(const std::string& jsonl_path, int64_t step);

// numpy.percentile's default (linear interpolation) of unsorted values.
double percentile(std::vector<double> values, double p);

}  // namespace txl
