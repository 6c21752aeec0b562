// What the trainer and evaluator consume: batches of token ids for this rank's streams,
// from either kind of corpus (ordered streams, or lm1b's shuffled sentences), with a
// position that a checkpoint saves and a resumed job seeks to.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace txl::data {

class CorpusFile;

// One batch for this rank, time-major: row t holds token t of every local stream.
struct Batch {
  int64_t len = 0;              // target rows; tokens predicted per stream
  int64_t ext = 0;              // extra context rows at the top of `data` (ext_len > 0 only)
  int64_t n_streams = 0;        // local streams (columns)
  std::vector<int32_t> data;    // [ext + len, n_streams]
  std::vector<int32_t> target;  // [len, n_streams]; target row t is data row ext + t, shifted by one token
  bool counted = true;          // false for evaluation warm-up batches (run, but not in the loss)
  int64_t index = 0;            // batch number within the epoch (0-based)
  int64_t offset = 0;           // position of data row `ext` in the (prefixed) stream
};

// Where an iterator stands: the next batch to be produced. Saved in checkpoints.
struct StreamPosition {
  int64_t epoch = 0;
  int64_t batch = 0;   // batches already produced in this epoch
  int64_t offset = 0;  // ordered corpora: stream position of the next batch (a consistency check)
  bool operator==(const StreamPosition&) const = default;
};

struct IteratorOptions {
  uint64_t seed = 0;  // roll offsets, varlen lengths and lm1b shuffling use seed + epoch
  // Ordered corpora (docs/data.md, Data order):
  bool roll = false;    // training: rotate each stream by its own random offset every epoch
  bool varlen = false;  // training: variable batch lengths (see OrderedIterator)
  double varlen_std = 5.0;
  int64_t varlen_min_len = 5;
  double varlen_max_deviation = 3.0;
  int64_t warmup_mem_len = 0;  // evaluation: warm-up prefix for a model with this mem_len (ordered corpora;
                               // make_batch_iterator drops it for sentence corpora)
  int64_t ext_len = 0;         // extra context rows before each batch
  // Sentence corpora (lm1b):
  bool shuffle = false;  // training: shuffle shards and sentences every epoch
};

class BatchIterator {
 public:
  virtual ~BatchIterator() = default;
  // Rewinds to the first batch of `epoch` (and draws that epoch's roll or shuffle).
  virtual void start_epoch(int64_t epoch) = 0;
  // Fills the next batch; false at the end of the epoch.
  virtual bool next(Batch& batch) = 0;
  virtual StreamPosition position() const = 0;
  // Restores a saved position: the next batch equals the one that followed it.
  virtual void seek(const StreamPosition& position) = 0;
  // Batches per epoch, or -1 when not known in advance (shuffled sentences).
  virtual int64_t n_batch() const = 0;
  virtual int64_t local_streams() const = 0;
};

// The iterator that fits the corpus layout: OrderedIterator for token streams,
// SentenceStreamIterator for sentence corpora. `corpus` must outlive it. global_batch
// streams are split evenly over `world` ranks; this iterator serves rank `rank`.
std::unique_ptr<BatchIterator> make_batch_iterator(const CorpusFile& corpus, const std::string& split,
                                                   int64_t global_batch, int world, int rank, int64_t tgt_len,
                                                   const IteratorOptions& options = {});

}  // namespace txl::data
