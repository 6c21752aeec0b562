// Progress lines on stderr for long txl_prep runs: at most one every `interval` seconds,
// "txl_prep: counting train.txt: 1.2 GB of 4.0 GB (30%), 85 MB/s".
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace txl::data::prep {

struct ProgressSettings {
  bool enabled = true;
  double interval_s = 5.0;
};

class Progress {
 public:
  Progress(const ProgressSettings& settings, std::string what, int64_t total_bytes);
  void update(int64_t done_bytes);
  // One closing line with the time taken, when any progress line was printed.
  void finish(int64_t done_bytes);

 private:
  using Clock = std::chrono::steady_clock;
  ProgressSettings settings_;
  std::string what_;
  int64_t total_;
  Clock::time_point start_, last_;
  bool printed_ = false;
};

std::string human_bytes(double bytes);

}  // namespace txl::data::prep
