// Fuzz target: txl_prep's line readers (data_prep/line_blocks.cpp): the input read in
// blocks of complete lines and cut for parallel workers; the pieces must cover the input
// exactly, in order, never splitting a line.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "txl/data/prep/line_blocks.h"

namespace {

class MemorySource : public txl::data::prep::ByteSource {
 public:
  MemorySource(const char* data, size_t size) : data_(data), size_(size) {}
  size_t read(char* buffer, size_t n) override {
    const size_t take = std::min(n, size_ - at_);
    std::memcpy(buffer, data_ + at_, take);
    at_ += take;
    return take;
  }
  const std::string& name() const override { return name_; }
  int64_t size() const override { return static_cast<int64_t>(size_); }

 private:
  const char* data_;
  size_t size_, at_ = 0;
  std::string name_ = "fuzz input";
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t block_bytes = 1 + data[0] % 64;
  const int parts = 1 + data[1] % 8;
  const char* text = reinterpret_cast<const char*>(data + 2);
  MemorySource source(text, size - 2);
  txl::data::prep::LineBlockReader reader(source, block_bytes);
  std::string joined;
  std::string_view block;
  int64_t offset = 0;
  while (reader.next(block, offset)) {
    if (offset != static_cast<int64_t>(joined.size())) __builtin_trap();
    std::string pieces;
    for (std::string_view piece : txl::data::prep::split_at_lines(block, parts)) {
      if (!piece.empty() && piece.data() + piece.size() != block.data() + block.size() && piece.back() != '\n')
        __builtin_trap();  // a piece ends after a line terminator (or at the block end)
      pieces.append(piece);
    }
    if (pieces != block) __builtin_trap();
    joined.append(block);
  }
  if (joined != std::string(text, size - 2)) __builtin_trap();
  return 0;
}
