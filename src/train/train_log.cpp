#include "txl/train/train_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "txl/core/error.h"
#include "txl/io/h5file.h"

namespace txl {

double perplexity(double loss) { return std::exp(loss); }
double bits_per_character(double loss) { return loss / std::log(2.0); }
LossMetric loss_metric(double loss, bool char_level) {
  return char_level ? LossMetric{"bpc", bits_per_character(loss)} : LossMetric{"ppl", perplexity(loss)};
}

std::string format_train_line(const TrainLogLine& l) {
  std::string s = fmt::format("| epoch {:3d} step {:>8d} | batches {:>6d} / {:d} | lr {:.3e} | ms/batch {:5.1f} | "
                              "tok/s {:7.0f} | loss {:5.2f}",
                              l.epoch, l.step, l.batch, l.n_batch, l.lr, l.ms_per_batch, l.tok_per_s, l.loss);
  if (l.char_level) s += fmt::format(" | bpc {:9.5f}", bits_per_character(l.loss));
  else s += fmt::format(" | ppl {:9.2f}", perplexity(l.loss));
  return s;
}

std::string format_eval_line(int64_t eval_index, int64_t step, double seconds, double loss, bool char_level) {
  std::string s = fmt::format("| Eval {:3d} at step {:>8d} | time: {:5.2f}s | valid loss {:5.2f}", eval_index, step,
                              seconds, loss);
  if (char_level) s += fmt::format(" | bpc {:9.5f}", bits_per_character(loss));
  else s += fmt::format(" | valid ppl {:9.3f}", perplexity(loss));
  return s;
}

std::string format_end_line(double seconds, double loss, bool char_level) {
  if (char_level)
    return fmt::format("| End of training | test time: {:5.2f}s | test loss {:5.2f} | test bpc {:9.5f}", seconds, loss,
                       bits_per_character(loss));
  return fmt::format("| End of training | test time: {:5.2f}s | test loss {:5.2f} | test ppl {:9.3f}", seconds, loss,
                     perplexity(loss));
}

std::string format_training_time_line(double seconds) {
  return fmt::format("Training time: {:.2f} minutes", seconds / 60.0);
}

std::string format_split_line(const std::string& split, double loss, bool char_level) {
  if (char_level)
    return fmt::format("| {0} loss {1:5.2f} | {0} bpc {2:9.5f} ", split, loss, bits_per_character(loss));
  return fmt::format("| {0} loss {1:5.2f} | {0} ppl {2:9.3f} ", split, loss, perplexity(loss));
}

std::string format_eval_interval_line(int64_t step, int64_t batch, int64_t n_batch, double ms_per_batch,
                                      double tok_per_s, double loss) {
  return fmt::format("| step {:>8d} | batches {:>6d} / {:d} | ms/batch {:5.2f} | tok/s {:7.0f} | loss {:5.2f} | ppl {:5.2f}",
                     step, batch, n_batch, ms_per_batch, tok_per_s, loss, perplexity(loss));
}

std::string format_eval_time_line(double seconds, int64_t segments) {
  return fmt::format("Time : {:.2f}s, {:.2f}ms/segment", seconds, 1000.0 * seconds / static_cast<double>(segments));
}

std::string recipe_log_time(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const std::time_t secs = static_cast<std::time_t>(duration_cast<seconds>(t.time_since_epoch()).count());
  std::tm tm{};
  localtime_r(&secs, &tm);
  return fmt::format("{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
}

AppendFile::AppendFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) failf("{}: cannot open for appending: {}", path, std::strerror(errno));
}

AppendFile& AppendFile::operator=(AppendFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

AppendFile::~AppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

void AppendFile::write_line(const std::string& line) {
  if (fd_ < 0) return;
  const std::string buf = line + "\n";
  size_t done = 0;
  while (done < buf.size()) {
    const ssize_t n = ::write(fd_, buf.data() + done, buf.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      failf("{}: write failed: {}", path_, std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
}

RunLog::RunLog(const std::string& text_path, const std::string& jsonl_path, bool echo_stdout, int rank)
    : echo_(echo_stdout), rank_(rank >= 0 ? std::to_string(rank) : "") {
  if (!text_path.empty()) text_ = AppendFile(text_path);
  if (!jsonl_path.empty()) json_ = AppendFile(jsonl_path);
}

void RunLog::line(const std::string& text) {
  if (echo_) std::cout << (rank_.empty() ? "" : rank_ + ": ") << text << std::endl;
  if (text_.is_open())
    text_.write_line(recipe_log_time(std::chrono::system_clock::now()) + " - INFO - " +
                     (rank_.empty() ? "" : rank_ + " - ") + text);
}

void RunLog::metrics(const nlohmann::json& record) { json_.write_line(record.dump()); }

void truncate_metrics_after(const std::string& jsonl_path, int64_t step) {
  if (!std::filesystem::exists(jsonl_path)) return;
  std::ifstream in(jsonl_path);
  std::string kept, line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // a last line without "\n" is torn
    nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded()) continue;
    if (record.contains("step") && record["step"].is_number_integer() && record["step"].get<int64_t>() > step)
      continue;
    kept += line + "\n";
  }
  in.close();
  const std::string tmp = h5::temporary_path_for(jsonl_path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << kept;
    if (!out) {
      h5::remove_quietly(tmp);
      failf("{}: cannot write", tmp);
    }
  }
  h5::commit_temporary(tmp, jsonl_path);
}

double percentile(std::vector<double> values, double p) {
  TXL_CHECK(!values.empty(), "percentile of no values");
  TXL_CHECK(p >= 0 && p <= 100, "percentile {} outside [0, 100]", p);
  std::sort(values.begin(), values.end());
  const double index = p / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(index));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (index - static_cast<double>(lo));
}

}  // namespace txl
