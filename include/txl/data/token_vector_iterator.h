// Batches over an in-memory token sequence (txl_eval --manual): the same order as an
// ordered corpus split (docs/data.md, Data order): `streams` streams of n = N // streams tokens, batches at
// offsets 0, tgt_len, ..., len = min(tgt_len, n - 1 - i), data preceded by the
// min(ext_len, i) tokens before i (Batch::ext). One process; no warm-up (the text has no
// preceding stream).
#pragma once
#include <cstdint>
#include <vector>

#include "txl/data/batch_iterator.h"

namespace txl::data {

class TokenVectorIterator final : public BatchIterator {
 public:
  // Throws when the tokens do not give every stream at least two tokens.
  TokenVectorIterator(std::vector<int32_t> tokens, int64_t streams, int64_t tgt_len, int64_t ext_len = 0);

  void start_epoch(int64_t epoch) override;
  bool next(Batch& batch) override;
  StreamPosition position() const override { return {epoch_, batch_, offset_}; }
  void seek(const StreamPosition& position) override;
  int64_t n_batch() const override;
  int64_t local_streams() const override { return streams_; }

 private:
  std::vector<int32_t> tokens_;
  int64_t streams_, tgt_len_, ext_len_, n_;
  int64_t epoch_ = 0, batch_ = 0, offset_ = 0;
};

}  // namespace txl::data
