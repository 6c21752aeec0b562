#include "txl/data/prep/progress.h"

#include <fmt/format.h>

#include <cstdio>

namespace txl::data::prep {

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000.0 && u < 4) {
    bytes /= 1000.0;
    ++u;
  }
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

Progress::Progress(const ProgressSettings& settings, std::string what, int64_t total_bytes)
    : settings_(settings), what_(std::move(what)), total_(total_bytes), start_(Clock::now()), last_(start_) {}

void Progress::update(int64_t done) {
  if (!settings_.enabled) return;
  const auto now = Clock::now();
  if (std::chrono::duration<double>(now - last_).count() < settings_.interval_s) return;
  last_ = now;
  printed_ = true;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const std::string rate = human_bytes(secs > 0 ? static_cast<double>(done) / secs : 0.0) + "/s";
  if (total_ > 0) {
    fmt::print(stderr, "txl_prep: {}: {} of {} ({:.0f}%), {}\n", what_, human_bytes(static_cast<double>(done)),
               human_bytes(static_cast<double>(total_)),
               100.0 * static_cast<double>(done) / static_cast<double>(total_), rate);
  } else {
    fmt::print(stderr, "txl_prep: {}: {}, {}\n", what_, human_bytes(static_cast<double>(done)), rate);
  }
  std::fflush(stderr);
}

void Progress::finish(int64_t done) {
  if (!settings_.enabled || !printed_) return;
  const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
  fmt::print(stderr, "txl_prep: {}: done, {} in {:.1f} s\n", what_, human_bytes(static_cast<double>(done)), secs);
}

}  // namespace txl::data::prep
