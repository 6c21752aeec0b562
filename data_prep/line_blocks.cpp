#include "txl/data/prep/line_blocks.h"

#include <cstring>
#include <exception>
#include <thread>

namespace txl::data::prep {

LineBlockReader::LineBlockReader(ByteSource& source, size_t block_bytes)
    : source_(source), buf_(std::max<size_t>(block_bytes, 64)) {}

bool LineBlockReader::next(std::string_view& block, int64_t& offset) {
  if (start_ > 0) {  // move the unfinished last line to the front
    std::memmove(buf_.data(), buf_.data() + start_, fill_ - start_);
    fill_ -= start_;
    start_ = 0;
  }
  size_t searched = 0;  // bytes already known to hold no usable cut
  size_t cut = 0;
  while (true) {
    while (!eof_ && fill_ < buf_.size()) {
      const size_t got = source_.read(buf_.data() + fill_, buf_.size() - fill_);
      if (got == 0) eof_ = true;
      fill_ += got;
    }
    if (fill_ == 0) return false;
    // Cut after the last '\n'.
    for (size_t i = fill_; i > searched; --i) {
      if (buf_[i - 1] == '\n') {
        cut = i;
        break;
      }
    }
    if (cut > 0) break;
    if (eof_) {
      cut = fill_;
      break;
    }
    // Lone '\r' line ends: cut after a '\r' that is not the last byte read (a '\n' could follow it).
    for (size_t i = fill_ - 1; i > searched; --i) {
      if (buf_[i - 1] == '\r') {
        cut = i;
        break;
      }
    }
    if (cut > 0) break;
    searched = fill_ - 1;
    buf_.resize(buf_.size() * 2);  // a line longer than the block: grow
  }
  block = std::string_view(buf_.data(), cut);
  offset = consumed_;
  consumed_ += static_cast<int64_t>(cut);
  start_ = cut;
  return true;
}

std::vector<std::string_view> split_at_lines(std::string_view block, int parts) {
  std::vector<std::string_view> out;
  size_t begin = 0;
  for (int k = 1; k <= parts && begin < block.size(); ++k) {
    size_t end =
        k == parts ? block.size() : std::max(begin, block.size() * static_cast<size_t>(k) / static_cast<size_t>(parts));
    if (end < block.size()) {
      const size_t nl = block.find('\n', end);
      end = nl == std::string_view::npos ? block.size() : nl + 1;
    }
    out.push_back(block.substr(begin, end - begin));
    begin = end;
  }
  return out;
}

void run_parallel(int n, const std::function<void(int)>& fn) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(std::max(n, 0)));
  auto guarded = [&](int i) {
    try {
      fn(i);
    } catch (...) {
      errors[static_cast<size_t>(i)] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < n; ++i) threads.emplace_back(guarded, i);
  if (n > 0) guarded(0);
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace txl::data::prep
