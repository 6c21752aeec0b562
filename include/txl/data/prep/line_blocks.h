// Streaming a text source in large blocks of whole lines, and splitting a block into
// per-thread parts at line boundaries: the basis of txl_prep's bounded memory (one block,
// not the corpus) and its parallel counting and encoding.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "txl/data/prep/byte_source.h"

namespace txl::data::prep {

class LineBlockReader {
 public:
  // Blocks hold about `block_bytes` (more only when a single line is longer).
  LineBlockReader(ByteSource& source, size_t block_bytes);
  // Next block of complete lines (the last block may end without a terminator). The view
  // stays valid until the next call. `offset` is the block's byte offset in the source.
  bool next(std::string_view& block, int64_t& offset);
  int64_t bytes_read() const { return consumed_; }

 private:
  ByteSource& source_;
  std::vector<char> buf_;
  size_t fill_ = 0, start_ = 0;
  bool eof_ = false;
  int64_t consumed_ = 0;
};

// Cuts `block` into at most `parts` pieces, each ending just after a '\n' (or at the
// block end), so no line and no "\r\n" pair is split.
std::vector<std::string_view> split_at_lines(std::string_view block, int parts);

// Runs fn(0..n-1) on n threads (fn(0) on the calling one) and rethrows the exception of
// the lowest-numbered failing call, after all have finished.
void run_parallel(int n, const std::function<void(int)>& fn);

}  // namespace txl::data::prep
