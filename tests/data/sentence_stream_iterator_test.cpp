// lm1b's shuffled sentence streams against the recipe's packing algorithm, written here
// directly on token lists.
#include "txl/data/sentence_stream_iterator.h"

#include <gtest/gtest.h>

#include <deque>
#include <numeric>
#include <random>

#include "data_test_util.h"
#include "txl/core/error.h"
#include "txl/data/corpus.h"
#include "txl/data/data_rng.h"
#include "txl/data/prep/corpus_writer.h"

namespace txl::data {
namespace {
using namespace txl::data::testing;

constexpr int32_t kBegin = 0, kEnd = 1;

struct SentenceCorpus {
  std::vector<std::vector<int32_t>> sentences;  // without markers
  std::vector<int64_t> shard_sizes;
};

SentenceCorpus write_sentence_corpus(const std::string& path) {
  std::mt19937 gen(99);
  SentenceCorpus sc;
  sc.shard_sizes = {40, 7, 25, 1};
  prep::SplitContent train{"train", {}, {}, sc.shard_sizes};
  const int64_t n = std::accumulate(sc.shard_sizes.begin(), sc.shard_sizes.end(), int64_t{0});
  for (int64_t s = 0; s < n; ++s) {
    std::vector<int32_t> sent(gen() % 13);  // 0..12 words; empty sentences included
    for (auto& w : sent) w = 3 + static_cast<int32_t>(gen() % 20);
    train.tokens.insert(train.tokens.end(), sent.begin(), sent.end());
    train.sentence_lengths.push_back(static_cast<int64_t>(sent.size()));
    sc.sentences.push_back(sent);
  }
  prep::SplitContent valid{"valid", {3, 4, 5}, {2, 1}, {2}};
  std::vector<std::string> symbols = {"<S>", "</S>", "<UNK>"};
  for (int i = 0; i < 20; ++i) symbols.push_back(fmt::format("w{}", i));
  prep::CorpusDescription d;
  d.dataset = "lm1b";
  d.sentences = true;
  d.rules.sentence_begin = "<S>";
  d.rules.sentence_end = "</S>";
  d.rules.unk = "<UNK>";
  prep::write_corpus_file(path, d, symbols, std::vector<int64_t>(symbols.size(), 1), {train, valid});
  return sc;
}

// The epoch's sentence order as documented in sentence_stream_iterator.h.
std::vector<int64_t> epoch_order(const SentenceCorpus& sc, bool shuffle, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> starts = {0};
  for (int64_t n : sc.shard_sizes) starts.push_back(starts.back() + n);
  std::vector<int64_t> shards(sc.shard_sizes.size());
  std::iota(shards.begin(), shards.end(), 0);
  auto fisher_yates = [](std::vector<int64_t>& v, DataRng& rng) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.uniform_below(i)]);
  };
  DataRng shard_rng(seed + static_cast<uint64_t>(epoch));
  if (shuffle) fisher_yates(shards, shard_rng);
  std::vector<int64_t> order;
  for (int64_t k : shards) {
    std::vector<int64_t> local(static_cast<size_t>(sc.shard_sizes[k]));
    std::iota(local.begin(), local.end(), 0);
    DataRng rng(mix_seed(seed + static_cast<uint64_t>(epoch), static_cast<uint64_t>(k) + 2));
    if (shuffle) fisher_yates(local, rng);
    for (int64_t s : local) order.push_back(starts[k] + s);
  }
  return order;
}

// The recipe's packing: for each batch, streams 0..B-1 take tokens from their current
// framed sentence; one with <= 1 token left takes the next sentence.
std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>> reference_batches(const SentenceCorpus& sc,
                                                                                     const std::vector<int64_t>& order,
                                                                                     int64_t B, int64_t tgt) {
  std::vector<std::deque<int32_t>> streams(static_cast<size_t>(B));
  size_t next = 0;
  std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>> out;
  while (true) {
    std::vector<int32_t> data(static_cast<size_t>(tgt * B)), target(data.size());
    for (int64_t b = 0; b < B; ++b) {
      auto& st = streams[b];
      int64_t filled = 0;
      while (filled < tgt) {
        while (st.size() <= 1) {
          if (next == order.size()) return out;
          const auto& s = sc.sentences[order[next++]];
          st.assign({kBegin});
          st.insert(st.end(), s.begin(), s.end());
          st.push_back(kEnd);
        }
        const int64_t n_new = std::min<int64_t>(static_cast<int64_t>(st.size()) - 1, tgt - filled);
        for (int64_t t = 0; t < n_new; ++t) {
          data[(filled + t) * B + b] = st[t];
          target[(filled + t) * B + b] = st[t + 1];
        }
        st.erase(st.begin(), st.begin() + n_new);
        filled += n_new;
      }
    }
    out.emplace_back(data, target);
  }
}

TEST(SentenceStreamIterator, EqualsRecipePackingOnEveryRank) {
  ScratchDir dir;
  const SentenceCorpus sc = write_sentence_corpus(dir / "s.h5");
  const CorpusFile corpus = CorpusFile::open(dir / "s.h5");
  for (const bool shuffle : {false, true}) {
    for (const auto& [B, W, tgt] : {std::tuple<int64_t, int, int64_t>{4, 2, 5}, {3, 1, 8}, {6, 3, 2}}) {
      SCOPED_TRACE(::testing::Message() << "shuffle=" << shuffle << " B=" << B << " W=" << W << " tgt=" << tgt);
      const auto ref = reference_batches(sc, epoch_order(sc, shuffle, 17, 2), B, tgt);
      ASSERT_GT(ref.size(), 3u);
      const int64_t per = B / W;
      for (int r = 0; r < W; ++r) {
        IteratorOptions o;
        o.shuffle = shuffle;
        o.seed = 17;
        SentenceStreamIterator it(corpus, "train", B, W, r, tgt, o);
        it.start_epoch(2);
        Batch b;
        size_t k = 0;
        while (it.next(b)) {
          ASSERT_LT(k, ref.size());
          ASSERT_EQ(b.len, tgt);
          for (int64_t t = 0; t < tgt; ++t)
            for (int64_t s = 0; s < per; ++s) {
              ASSERT_EQ(b.data[t * per + s], ref[k].first[t * B + r * per + s]) << "batch " << k;
              ASSERT_EQ(b.target[t * per + s], ref[k].second[t * B + r * per + s]) << "batch " << k;
            }
          ++k;
        }
        EXPECT_EQ(k, ref.size());
      }
    }
  }
}

TEST(SentenceStreamIterator, ShuffleDiffersByEpochAndResumes) {
  ScratchDir dir;
  write_sentence_corpus(dir / "s.h5");
  const CorpusFile corpus = CorpusFile::open(dir / "s.h5");
  IteratorOptions o;
  o.shuffle = true;
  o.seed = 3;
  SentenceStreamIterator it(corpus, "train", 4, 2, 1, 6, o);
  Batch e1, e2;
  it.start_epoch(1);
  ASSERT_TRUE(it.next(e1));
  it.start_epoch(2);
  ASSERT_TRUE(it.next(e2));
  EXPECT_NE(e1.data, e2.data);
  // Resume at every position of epoch 2 (so across every shard boundary too).
  std::vector<Batch> epoch;
  it.start_epoch(2);
  for (Batch b; it.next(b);) epoch.push_back(b);
  ASSERT_GT(epoch.size(), 10u);
  SentenceStreamIterator resumed(corpus, "train", 4, 2, 1, 6, o);
  for (size_t k = 0; k <= epoch.size(); ++k) {
    resumed.seek({2, static_cast<int64_t>(k), 0});
    EXPECT_EQ(resumed.position().batch, static_cast<int64_t>(k));
    Batch got;
    if (k == epoch.size()) {
      EXPECT_FALSE(resumed.next(got));
      continue;
    }
    ASSERT_TRUE(resumed.next(got));
    EXPECT_EQ(got.data, epoch[k].data) << "resumed at batch " << k;
    EXPECT_EQ(got.target, epoch[k].target) << "resumed at batch " << k;
    if (k + 1 < epoch.size()) {
      ASSERT_TRUE(resumed.next(got));
      EXPECT_EQ(got.data, epoch[k + 1].data) << "second batch after resuming at " << k;
    }
  }
  EXPECT_THROW(resumed.seek({2, 100000, 0}), Error);
}

TEST(SentenceStreamIterator, FactoryPicksTheIteratorOfTheLayout) {
  ScratchDir dir;
  write_sentence_corpus(dir / "s.h5");
  const CorpusFile corpus = CorpusFile::open(dir / "s.h5");
  const auto it = make_batch_iterator(corpus, "valid", 1, 1, 0, 2);
  EXPECT_NE(dynamic_cast<SentenceStreamIterator*>(it.get()), nullptr);
  EXPECT_EQ(it->n_batch(), -1);
  Batch b;
  // valid: <S> 3 4 </S> <S> 5 </S> -> pairs (<S>,3)(3,4) | (4,</S>)(<S>,5) | (5,</S>) then the end.
  ASSERT_TRUE(it->next(b));
  EXPECT_EQ(b.data, (std::vector<int32_t>{0, 3}));
  EXPECT_EQ(b.target, (std::vector<int32_t>{3, 4}));
  ASSERT_TRUE(it->next(b));
  EXPECT_EQ(b.data, (std::vector<int32_t>{4, 0}));
  EXPECT_EQ(b.target, (std::vector<int32_t>{1, 5}));
  EXPECT_FALSE(it->next(b));
  IteratorOptions roll;
  roll.roll = true;
  EXPECT_THROW(make_batch_iterator(corpus, "valid", 1, 1, 0, 2, roll), Error);
}

}  // namespace
}  // namespace txl::data
