#include "txl/data/sentence_stream_iterator.h"

#include <numeric>

#include "txl/core/error.h"
#include "txl/data/corpus.h"
#include "txl/data/data_rng.h"

namespace txl::data {

namespace {
void shuffle_in_place(std::vector<int64_t>& v, DataRng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.uniform_below(i)]);
}
}  // namespace

SentenceStreamIterator::SentenceStreamIterator(const CorpusFile& corpus, const std::string& split, int64_t global_batch,
                                               int world, int rank, int64_t tgt_len, const IteratorOptions& options)
    : corpus_(corpus), split_(split), global_batch_(global_batch), tgt_len_(tgt_len), options_(options) {
  if (corpus.layout() != CorpusLayout::kSentences)
    failf("{}: corpus '{}' is an ordered token stream; use the ordered iterator", corpus.path(), corpus.dataset());
  TXL_CHECK(global_batch > 0 && world > 0 && rank >= 0 && rank < world,
            "data iterator: batch_size {} with rank {} of {}", global_batch, rank, world);
  TXL_CHECK(global_batch % world == 0, "batch_size {} is not divisible by the number of ranks {}", global_batch, world);
  TXL_CHECK(tgt_len > 0, "tgt_len must be positive (got {})", tgt_len);
  TXL_CHECK(!options.roll && !options.varlen && options.warmup_mem_len == 0 && options.ext_len == 0,
            "{}: roll, varlen, ext_len and the evaluation warm-up apply to ordered corpora, not to sentence "
            "corpora like '{}'",
            corpus.path(), corpus.dataset());
  const int64_t per_rank = global_batch / world;
  first_stream_ = rank * per_rank;
  last_stream_ = first_stream_ + per_rank;
  const TokenizationRules& rules = corpus.vocabulary().rules();
  begin_id_ = rules.sentence_begin.empty() ? -1 : corpus.vocabulary().id(rules.sentence_begin);
  end_id_ = rules.sentence_end.empty() ? -1 : corpus.vocabulary().id(rules.sentence_end);
  n_markers_ = (begin_id_ >= 0 ? 1 : 0) + (end_id_ >= 0 ? 1 : 0);
  shard_offsets_ = corpus.read_shard_offsets(split);
  start_epoch(0);
}

void SentenceStreamIterator::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  batch_ = 0;
  exhausted_ = false;
  const auto n_shards = static_cast<int64_t>(shard_offsets_.size()) - 1;
  shard_order_.resize(static_cast<size_t>(n_shards));
  std::iota(shard_order_.begin(), shard_order_.end(), 0);
  if (options_.shuffle) {
    DataRng rng(options_.seed + static_cast<uint64_t>(epoch));
    shuffle_in_place(shard_order_, rng);
  }
  order_pos_ = -1;
  shard_perm_.clear();
  perm_pos_ = 0;
  shard_sent_off_.clear();
  shard_tokens_.clear();
  shard_has_tokens_ = false;
  const auto local = static_cast<size_t>(local_streams());
  remaining_.assign(static_cast<size_t>(global_batch_), 0);
  sentence_.assign(local, -1);
  consumed_.assign(local, 0);
  buffer_.assign(local, {});
  buffer_valid_.assign(local, 0);
}

void SentenceStreamIterator::load_shard(int64_t order_index, bool with_tokens) {
  order_pos_ = order_index;
  const int64_t k = shard_order_[static_cast<size_t>(order_index)];
  const int64_t first = shard_offsets_[static_cast<size_t>(k)];
  const int64_t count = shard_offsets_[static_cast<size_t>(k) + 1] - first;
  shard_sent_off_ = corpus_.read_sentence_offsets(split_, first, count);
  shard_perm_.resize(static_cast<size_t>(count));
  std::iota(shard_perm_.begin(), shard_perm_.end(), 0);
  if (options_.shuffle) {
    DataRng rng(mix_seed(options_.seed + static_cast<uint64_t>(epoch_), static_cast<uint64_t>(k) + 2));
    shuffle_in_place(shard_perm_, rng);
  }
  perm_pos_ = 0;
  shard_tokens_.clear();
  shard_has_tokens_ = with_tokens;
  if (with_tokens)
    shard_tokens_ =
        corpus_.read_tokens(split_, shard_sent_off_.front(), shard_sent_off_.back() - shard_sent_off_.front());
}

bool SentenceStreamIterator::next_sentence(int64_t& sentence) {
  while (perm_pos_ >= static_cast<int64_t>(shard_perm_.size())) {
    if (order_pos_ + 1 >= static_cast<int64_t>(shard_order_.size())) {
      exhausted_ = true;
      return false;
    }
    load_shard(order_pos_ + 1, /*with_tokens=*/false);  // tokens are read when a local stream needs them
  }
  const int64_t k = shard_order_[static_cast<size_t>(order_pos_)];
  sentence = shard_offsets_[static_cast<size_t>(k)] + shard_perm_[static_cast<size_t>(perm_pos_++)];
  return true;
}

void SentenceStreamIterator::fill_buffer(int64_t local, int64_t sentence) {
  std::vector<int32_t>& buf = buffer_[static_cast<size_t>(local)];
  buf.clear();
  if (begin_id_ >= 0) buf.push_back(begin_id_);
  const int64_t k = order_pos_ >= 0 ? shard_order_[static_cast<size_t>(order_pos_)] : -1;
  const int64_t shard_first = k >= 0 ? shard_offsets_[static_cast<size_t>(k)] : 0;
  const int64_t shard_end = k >= 0 ? shard_offsets_[static_cast<size_t>(k) + 1] : 0;
  if (sentence >= shard_first && sentence < shard_end) {
    // In the loaded shard: read the whole shard's tokens once (one hyperslab).
    if (!shard_has_tokens_) {
      shard_tokens_ =
          corpus_.read_tokens(split_, shard_sent_off_.front(), shard_sent_off_.back() - shard_sent_off_.front());
      shard_has_tokens_ = true;
    }
    const auto s = static_cast<size_t>(sentence - shard_first);
    const auto* base = shard_tokens_.data() - shard_sent_off_.front();
    buf.insert(buf.end(), base + shard_sent_off_[s], base + shard_sent_off_[s + 1]);
  } else {
    // A sentence of an earlier shard, still being consumed after a seek: read it alone.
    const std::vector<int64_t> off = corpus_.read_sentence_offsets(split_, sentence, 1);
    const std::vector<int32_t> tokens = corpus_.read_tokens(split_, off[0], off[1] - off[0]);
    buf.insert(buf.end(), tokens.begin(), tokens.end());
  }
  if (end_id_ >= 0) buf.push_back(end_id_);
  buffer_valid_[static_cast<size_t>(local)] = 1;
}

bool SentenceStreamIterator::advance(Batch* batch) {
  const int64_t n_local = local_streams();
  for (int64_t b = 0; b < global_batch_; ++b) {
    const int64_t local = b >= first_stream_ && b < last_stream_ ? b - first_stream_ : -1;
    const auto lu = static_cast<size_t>(local);
    int64_t& remaining = remaining_[static_cast<size_t>(b)];
    int64_t filled = 0;
    while (filled < tgt_len_) {
      while (remaining <= 1) {
        // The last token of a sentence is only a target: move on to the next sentence.
        int64_t s;
        if (!next_sentence(s)) return false;
        const size_t ls =
            static_cast<size_t>(s - shard_offsets_[static_cast<size_t>(shard_order_[static_cast<size_t>(order_pos_)])]);
        remaining = shard_sent_off_[ls + 1] - shard_sent_off_[ls] + n_markers_;
        if (local >= 0) {
          sentence_[lu] = s;
          consumed_[lu] = 0;
          buffer_valid_[lu] = 0;
        }
      }
      const int64_t n_new = std::min(remaining - 1, tgt_len_ - filled);
      if (local >= 0) {
        if (batch) {
          if (!buffer_valid_[lu]) fill_buffer(local, sentence_[lu]);
          const int32_t* src = buffer_[lu].data() + consumed_[lu];
          for (int64_t t = 0; t < n_new; ++t) {
            batch->data[static_cast<size_t>((filled + t) * n_local + local)] = src[t];
            batch->target[static_cast<size_t>((filled + t) * n_local + local)] = src[t + 1];
          }
        }
        consumed_[lu] += n_new;
      }
      remaining -= n_new;
      filled += n_new;
    }
  }
  return true;
}

bool SentenceStreamIterator::next(Batch& batch) {
  if (exhausted_) return false;
  const int64_t n_local = local_streams();
  batch.len = tgt_len_;
  batch.ext = 0;
  batch.n_streams = n_local;
  batch.counted = true;
  batch.index = batch_;
  batch.offset = batch_ * tgt_len_;
  batch.data.assign(static_cast<size_t>(tgt_len_ * n_local), 0);
  batch.target.assign(static_cast<size_t>(tgt_len_ * n_local), 0);
  if (!advance(&batch)) return false;
  ++batch_;
  return true;
}

void SentenceStreamIterator::seek(const StreamPosition& position) {
  start_epoch(position.epoch);
  TXL_CHECK(position.batch >= 0, "saved data position: negative batch {}", position.batch);
  for (int64_t b = 0; b < position.batch; ++b) {
    if (!advance(nullptr))
      failf("saved data position: epoch {} of split '{}' has only {} batches, not {}", position.epoch, split_, b,
            position.batch);
  }
  batch_ = position.batch;
}

}  // namespace txl::data
