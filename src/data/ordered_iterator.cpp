#include "txl/data/ordered_iterator.h"

#include <algorithm>
#include <cmath>

#include "txl/core/error.h"
#include "txl/data/corpus.h"

namespace txl::data {

namespace {
int64_t positive_mod(int64_t a, int64_t n) { return ((a % n) + n) % n; }
}  // namespace

OrderedIterator::OrderedIterator(const CorpusFile& corpus, const std::string& split, int64_t global_batch, int world,
                                 int rank, int64_t tgt_len, const IteratorOptions& options)
    : split_(split), global_batch_(global_batch), tgt_len_(tgt_len), options_(options) {
  const std::string& path = corpus.path();
  if (corpus.layout() != CorpusLayout::kStream)
    failf("{}: corpus '{}' stores sentences; use the sentence stream iterator", path, corpus.dataset());
  TXL_CHECK(global_batch > 0 && world > 0 && rank >= 0 && rank < world,
            "data iterator: batch_size {} with rank {} of {}", global_batch, rank, world);
  TXL_CHECK(global_batch % world == 0, "batch_size {} is not divisible by the number of ranks {}", global_batch, world);
  TXL_CHECK(tgt_len > 0, "tgt_len must be positive (got {})", tgt_len);
  TXL_CHECK(options.ext_len >= 0 && options.warmup_mem_len >= 0, "ext_len and mem_len must not be negative");
  TXL_CHECK(!(options.roll && options.warmup_mem_len > 0),
            "roll (training) and the evaluation warm-up cannot be used together");
  TXL_CHECK(!(options.varlen && options.warmup_mem_len > 0),
            "varlen (training) and the evaluation warm-up cannot be used together");
  if (options.varlen)
    TXL_CHECK(options.varlen_min_len >= 1 && options.varlen_std >= 0,
              "varlen needs min_len >= 1 and std >= 0 (got {}, {})", options.varlen_min_len, options.varlen_std);

  const int64_t n_tokens = corpus.split(split).n_tokens;
  n_ = n_tokens / global_batch;
  if (n_ < 2)
    failf("{}: split '{}' has {} tokens, too few for batch_size {} (each stream needs at least 2)", path, split,
          n_tokens, global_batch);
  const int64_t per_rank = global_batch / world;
  first_stream_ = rank * per_rank;
  last_stream_ = first_stream_ + per_rank;
  range_.resize(static_cast<size_t>(per_rank * n_));
  corpus.read_tokens(split, first_stream_ * n_, per_rank * n_, range_.data());

  if (options.warmup_mem_len > 0) {
    prefix_ = (options.warmup_mem_len + tgt_len - 1) / tgt_len * tgt_len;
    const int64_t prev = positive_mod(first_stream_ - 1, global_batch);
    const int64_t tail = std::min(prefix_, n_);
    prev_tail_.resize(static_cast<size_t>(tail));
    corpus.read_tokens(split, (prev + 1) * n_ - tail, tail, prev_tail_.data());
  }
  start_epoch(0);
}

int32_t OrderedIterator::token(int64_t stream, int64_t pos) const {
  if (pos < prefix_) {
    // Warm-up prefix: position pos - P (mod n) of the previous stream.
    const int64_t q = positive_mod(pos - prefix_, n_);
    if (stream > 0) return range_[static_cast<size_t>((stream - 1) * n_ + q)];
    return prev_tail_[static_cast<size_t>(q - (n_ - static_cast<int64_t>(prev_tail_.size())))];
  }
  int64_t q = pos - prefix_;
  if (!shift_.empty()) {
    q += shift_[static_cast<size_t>(stream)];
    if (q >= n_) q -= n_;
  }
  return range_[static_cast<size_t>(stream * n_ + q)];
}

int64_t OrderedIterator::draw_len(DataRng& rng) const {
  const double mean = rng.uniform01() < 0.95 ? static_cast<double>(tgt_len_) : tgt_len_ / 2.0;
  const auto max_len = static_cast<int64_t>(std::floor(tgt_len_ + options_.varlen_max_deviation * options_.varlen_std));
  const double drawn = std::trunc(rng.normal(mean, options_.varlen_std));
  const auto len = static_cast<int64_t>(std::clamp(drawn, -1e18, 1e18));
  return std::min(max_len, std::max(options_.varlen_min_len, len));
}

int64_t OrderedIterator::count_batches() const {
  const int64_t total = prefix_ + n_;
  if (!options_.varlen) return (total - 1 + tgt_len_ - 1) / tgt_len_;
  DataRng rng = varlen_rng_;
  int64_t i = 0, count = 0;
  do {
    i += std::min(draw_len(rng), total - 1 - i);
    ++count;
  } while (i < total - 2);
  return count;
}

void OrderedIterator::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  batch_ = 0;
  offset_ = 0;
  done_ = false;
  shift_.clear();
  if (options_.roll) {
    const std::vector<int64_t> all = stream_roll_offsets(options_.seed, epoch, global_batch_, n_);
    shift_.assign(all.begin() + first_stream_, all.begin() + last_stream_);
  }
  varlen_rng_ = DataRng(mix_seed(options_.seed + static_cast<uint64_t>(epoch), 1));
  n_batch_ = count_batches();
}

bool OrderedIterator::next(Batch& batch) {
  if (done_) return false;
  const int64_t total = prefix_ + n_;
  const int64_t i = offset_;
  const int64_t bptt = options_.varlen ? draw_len(varlen_rng_) : tgt_len_;
  const int64_t len = std::min(bptt, total - 1 - i);
  const int64_t ext = std::min(options_.ext_len, i);
  const int64_t streams = local_streams();

  batch.len = len;
  batch.ext = ext;
  batch.n_streams = streams;
  batch.index = batch_;
  batch.offset = i;
  batch.counted = i >= prefix_;
  batch.data.resize(static_cast<size_t>((ext + len) * streams));
  batch.target.resize(static_cast<size_t>(len * streams));
  for (int64_t t = 0; t < ext + len; ++t)
    for (int64_t s = 0; s < streams; ++s) batch.data[static_cast<size_t>(t * streams + s)] = token(s, i - ext + t);
  for (int64_t t = 0; t < len; ++t)
    for (int64_t s = 0; s < streams; ++s) batch.target[static_cast<size_t>(t * streams + s)] = token(s, i + 1 + t);

  offset_ += len;
  ++batch_;
  done_ = options_.varlen ? offset_ >= total - 2 : offset_ >= total - 1;
  return true;
}

void OrderedIterator::seek(const StreamPosition& position) {
  start_epoch(position.epoch);
  TXL_CHECK(position.batch >= 0 && position.batch <= n_batch_,
            "saved data position: batch {} of epoch {} is beyond the {} batches of split '{}'", position.batch,
            position.epoch, n_batch_, split_);
  const int64_t total = prefix_ + n_;
  if (options_.varlen) {
    for (int64_t b = 0; b < position.batch; ++b) offset_ += std::min(draw_len(varlen_rng_), total - 1 - offset_);
  } else {
    offset_ = std::min(position.batch * tgt_len_, total - 1);
  }
  batch_ = position.batch;
  done_ = position.batch == n_batch_;
  TXL_CHECK(offset_ == position.offset,
            "saved data position (epoch {}, batch {}, offset {}) does not match this data order (offset {}): "
            "batch_size, tgt_len, varlen or the corpus changed",
            position.epoch, position.batch, position.offset, offset_);
}

}  // namespace txl::data
