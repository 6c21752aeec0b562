#include "txl/data/token_vector_iterator.h"

#include <algorithm>

#include "txl/core/error.h"

namespace txl::data {

TokenVectorIterator::TokenVectorIterator(std::vector<int32_t> tokens, int64_t streams, int64_t tgt_len,
                                         int64_t ext_len)
    : tokens_(std::move(tokens)), streams_(streams), tgt_len_(tgt_len), ext_len_(ext_len) {
  TXL_CHECK(streams_ > 0 && tgt_len_ > 0, "text iterator: streams {} and tgt_len {} must be positive", streams_,
            tgt_len_);
  TXL_CHECK(ext_len_ >= 0, "text iterator: ext_len {} must not be negative", ext_len_);
  n_ = static_cast<int64_t>(tokens_.size()) / streams_;
  TXL_CHECK(n_ >= 2, "the text has {} tokens: too few for {} stream(s) (each needs at least 2)", tokens_.size(),
            streams_);
}

void TokenVectorIterator::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  batch_ = 0;
  offset_ = 0;
}

bool TokenVectorIterator::next(Batch& b) {
  if (offset_ >= n_ - 1) return false;
  const int64_t len = std::min(tgt_len_, n_ - 1 - offset_);
  const int64_t ext = std::min(ext_len_, offset_);
  b.len = len;
  b.ext = ext;
  b.n_streams = streams_;
  b.counted = true;
  b.index = batch_;
  b.offset = offset_;
  b.data.resize(static_cast<size_t>((ext + len) * streams_));
  b.target.resize(static_cast<size_t>(len * streams_));
  for (int64_t t = 0; t < ext + len; ++t)
    for (int64_t s = 0; s < streams_; ++s)
      b.data[static_cast<size_t>(t * streams_ + s)] = tokens_[static_cast<size_t>(s * n_ + offset_ - ext + t)];
  for (int64_t t = 0; t < len; ++t)
    for (int64_t s = 0; s < streams_; ++s)
      b.target[static_cast<size_t>(t * streams_ + s)] = tokens_[static_cast<size_t>(s * n_ + offset_ + t + 1)];
  offset_ += len;
  ++batch_;
  return true;
}

void TokenVectorIterator::seek(const StreamPosition& p) {
  start_epoch(p.epoch);
  Batch scratch;
  while (batch_ < p.batch && next(scratch)) {
  }
}

int64_t TokenVectorIterator::n_batch() const { return (n_ - 1 + tgt_len_ - 1) / tgt_len_; }

}  // namespace txl::data
