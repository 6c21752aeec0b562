// OrderedIterator: the ordered token stream of docs/data.md, Data order for one rank.
//
// The split's N tokens are cut into B streams of n = N // B tokens (stream b is tokens
// [b·n, (b+1)·n)); rank r of W owns streams [r·B/W, (r+1)·B/W), one contiguous range of
// the file, read with one hyperslab at construction (plus, for the evaluation warm-up, the
// tail of the stream before it: a second small hyperslab). Batch at offset i of a stream
// of length L: data = s[i : i+len], target = s[i+1 : i+1+len], len = min(tgt_len, L-1-i),
// offsets 0, tgt_len, 2·tgt_len, ...
//
// Options:
//  - roll (training): at start_epoch(e) stream b is rotated left by offset[b] from
//    stream_roll_offsets(seed, e, B, n). The rotation is applied to the stored stream, not
//    on top of the previous epoch's, so an epoch's order depends on (seed, e) only and a
//    resumed job sees exactly the order it would have seen.
//  - warmup_mem_len = mem_len > 0 (evaluation): every stream is prefixed with the last
//    P = ceil(mem_len/tgt_len)·tgt_len tokens of the previous stream (stream 0 takes them
//    from stream B-1); batches starting inside the prefix have counted = false.
//  - varlen (training): the recipe's variable-length mode. Before each batch, with a
//    DataRng seeded mix_seed(seed + e, 1): u = uniform01(); mean = tgt_len if u < 0.95
//    else tgt_len/2; bptt = clamp(trunc(normal(mean, varlen_std)), varlen_min_len,
//    floor(tgt_len + varlen_max_deviation·varlen_std)); len = min(bptt, L-1-i); the epoch
//    ends once i >= L-2.
//  - ext_len: data additionally holds the min(ext_len, i) tokens before i (Batch::ext).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "txl/data/batch_iterator.h"
#include "txl/data/data_rng.h"

namespace txl::data {

class OrderedIterator : public BatchIterator {
 public:
  // Reads this rank's streams of `split`; the iterator is at the start of epoch 0.
  OrderedIterator(const CorpusFile& corpus, const std::string& split, int64_t global_batch, int world, int rank,
                  int64_t tgt_len, const IteratorOptions& options = {});

  void start_epoch(int64_t epoch) override;
  bool next(Batch& batch) override;
  StreamPosition position() const override { return {epoch_, batch_, offset_}; }
  void seek(const StreamPosition& position) override;
  int64_t n_batch() const override { return n_batch_; }
  int64_t local_streams() const override { return last_stream_ - first_stream_; }

  int64_t first_stream() const { return first_stream_; }  // global index of local stream 0
  int64_t stream_len() const { return n_; }               // n = N // B
  int64_t prefix_len() const { return prefix_; }          // evaluation warm-up tokens P
  // Tokens this rank read from the file (its range plus the warm-up tail).
  int64_t tokens_read() const { return static_cast<int64_t>(range_.size() + prev_tail_.size()); }

 private:
  int32_t token(int64_t stream, int64_t pos) const;  // local stream, position in prefixed stream
  int64_t draw_len(DataRng& rng) const;              // varlen: the next bptt
  int64_t count_batches() const;

  std::string split_;
  int64_t global_batch_, tgt_len_;
  IteratorOptions options_;
  int64_t n_ = 0, prefix_ = 0;
  int64_t first_stream_ = 0, last_stream_ = 0;
  std::vector<int32_t> range_;      // [local streams][n]
  std::vector<int32_t> prev_tail_;  // last min(P, n) tokens of the stream before first_stream_
  std::vector<int64_t> shift_;      // roll offset of each local stream this epoch
  int64_t epoch_ = 0, batch_ = 0, offset_ = 0, n_batch_ = 0;
  bool done_ = false;
  DataRng varlen_rng_{0};
};

}  // namespace txl::data
