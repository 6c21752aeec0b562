// SentenceStreamIterator: lm1b's shuffled sentence streams (docs/data.md, Data order), for one rank.
//
// An epoch's sentence order: the shards (one per source file) in an order drawn from
// DataRng(seed + e), and within shard k its sentences in an order drawn from
// DataRng(mix_seed(seed + e, k + 2)); without `shuffle` (evaluation) the file order.
// Every sentence is framed as <S> w1 ... wn </S> (the corpus' sentence markers).
// The sentences are packed into B streams that continue across batches, as the recipe's
// shuffled iterator does: for each batch, streams 0..B-1 in turn take tokens from their
// current sentence, and a stream whose sentence has at most one token left (its last token
// is only ever a target) takes the next sentence of the epoch. Each batch has tgt_len rows;
// the epoch ends when the sentences run out (the unfinished batch is dropped). Unlike the
// recipe, streams also continue across shard boundaries.
//
// Every rank runs this packing for all B streams using sentence lengths only, and copies
// tokens only for its own streams [r·B/W, (r+1)·B/W), so the union over ranks equals the
// single-rank batch. Memory: the current shard's offsets and tokens (one hyperslab each).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "txl/data/batch_iterator.h"

namespace txl::data {

class SentenceStreamIterator : public BatchIterator {
 public:
  SentenceStreamIterator(const CorpusFile& corpus, const std::string& split, int64_t global_batch, int world, int rank,
                         int64_t tgt_len, const IteratorOptions& options = {});

  void start_epoch(int64_t epoch) override;
  bool next(Batch& batch) override;
  StreamPosition position() const override { return {epoch_, batch_, 0}; }
  // Replays the epoch up to the saved batch with sentence lengths only.
  void seek(const StreamPosition& position) override;
  int64_t n_batch() const override { return -1; }
  int64_t local_streams() const override { return last_stream_ - first_stream_; }

 private:
  bool advance(Batch* batch);             // one batch; batch == nullptr: lengths only
  bool next_sentence(int64_t& sentence);  // global sentence index, or false at epoch end
  void load_shard(int64_t order_index, bool with_tokens);
  void fill_buffer(int64_t local, int64_t sentence);

  const CorpusFile& corpus_;
  std::string split_;
  int64_t global_batch_, tgt_len_;
  IteratorOptions options_;
  int64_t first_stream_ = 0, last_stream_ = 0;
  int32_t begin_id_ = -1, end_id_ = -1;  // sentence markers (-1: none)
  int64_t n_markers_ = 0;
  std::vector<int64_t> shard_offsets_;  // sentence index where each shard starts (+ end)

  int64_t epoch_ = 0, batch_ = 0;
  std::vector<int64_t> shard_order_;  // this epoch's shard order
  int64_t order_pos_ = -1;            // index into shard_order_ of the loaded shard
  std::vector<int64_t> shard_perm_;   // sentence order within the loaded shard (local indices)
  int64_t perm_pos_ = 0;
  std::vector<int64_t> shard_sent_off_;  // token offsets of the loaded shard's sentences (+ end)
  std::vector<int32_t> shard_tokens_;    // tokens of the loaded shard (when loaded with tokens)
  bool shard_has_tokens_ = false;
  bool exhausted_ = false;

  std::vector<int64_t> remaining_;            // per global stream: tokens left in its current sentence
  std::vector<int64_t> sentence_;             // per local stream: global index of its current sentence
  std::vector<int64_t> consumed_;             // per local stream: tokens of it already used as data
  std::vector<std::vector<int32_t>> buffer_;  // per local stream: framed sentence (when valid)
  std::vector<char> buffer_valid_;
};

}  // namespace txl::data
