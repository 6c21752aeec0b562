// The HDF5-backed ordered iterator against a direct in-memory computation of docs/data.md, Data order.
#include "txl/data/ordered_iterator.h"

#include <gtest/gtest.h>

#include <random>

#include "data_test_util.h"
#include "txl/core/error.h"
#include "txl/data/corpus.h"
#include "txl/data/data_rng.h"
#include "txl/data/prep/corpus_writer.h"

namespace txl::data {
namespace {
using namespace txl::data::testing;

constexpr int kVocab = 97;

// A corpus file with random token streams; returns the streams.
std::map<std::string, std::vector<int32_t>> write_random_corpus(const std::string& path, int64_t n_train,
                                                                int64_t n_valid) {
  std::mt19937 gen(1234);
  std::uniform_int_distribution<int32_t> id(0, kVocab - 1);
  std::map<std::string, std::vector<int32_t>> streams;
  std::vector<prep::SplitContent> splits;
  for (auto [name, n] : {std::pair<std::string, int64_t>{"train", n_train}, {"valid", n_valid}, {"test", n_valid}}) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = id(gen);
    streams[name] = t;
    splits.push_back({name, t, {}, {}});
  }
  std::vector<std::string> symbols;
  for (int i = 0; i < kVocab; ++i) symbols.push_back(fmt::format("w{}", i));
  prep::CorpusDescription d;
  d.dataset = "generic";
  prep::write_corpus_file(path, d, symbols, std::vector<int64_t>(kVocab, 1), splits);
  return streams;
}

// docs/data.md, Data order computed directly: the global batches (all B streams) of one epoch.
struct RefBatch {
  int64_t len;
  bool counted;
  std::vector<std::vector<int32_t>> data, target;  // [stream][t]
};
std::vector<RefBatch> reference_epoch(const std::vector<int32_t>& tokens, int64_t B, int64_t tgt_len, bool roll,
                                      uint64_t seed, int64_t epoch, int64_t mem_len) {
  const int64_t n = static_cast<int64_t>(tokens.size()) / B;
  std::vector<std::vector<int32_t>> streams(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) streams[b].assign(tokens.begin() + b * n, tokens.begin() + (b + 1) * n);
  if (roll) {
    const std::vector<int64_t> off = stream_roll_offsets(seed, epoch, B, n);
    for (int64_t b = 0; b < B; ++b) std::rotate(streams[b].begin(), streams[b].begin() + off[b], streams[b].end());
  }
  int64_t prefix = 0;
  if (mem_len > 0) {
    prefix = (mem_len + tgt_len - 1) / tgt_len * tgt_len;
    std::vector<std::vector<int32_t>> with(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) {
      const std::vector<int32_t>& prev = streams[(b + B - 1) % B];
      for (int64_t t = 0; t < prefix; ++t) with[b].push_back(prev[((t - prefix) % n + n) % n]);  // last P tokens
      with[b].insert(with[b].end(), streams[b].begin(), streams[b].end());
    }
    streams = with;
  }
  const int64_t L = static_cast<int64_t>(streams[0].size());
  std::vector<RefBatch> out;
  for (int64_t i = 0; i < L - 1; i += tgt_len) {
    RefBatch rb;
    rb.len = std::min(tgt_len, L - 1 - i);
    rb.counted = i >= prefix;
    for (int64_t b = 0; b < B; ++b) {
      rb.data.emplace_back(streams[b].begin() + i, streams[b].begin() + i + rb.len);
      rb.target.emplace_back(streams[b].begin() + i + 1, streams[b].begin() + i + 1 + rb.len);
    }
    out.push_back(rb);
  }
  return out;
}

struct Combo {
  int64_t B;
  int world;
  int64_t tgt_len;
  bool roll;
  uint64_t seed;
  int64_t epoch;
};

TEST(OrderedIterator, EqualsDirectComputationForEveryRank) {
  ScratchDir dir;
  const auto streams = write_random_corpus(dir / "c.h5", 1003, 211);
  const CorpusFile corpus = CorpusFile::open(dir / "c.h5");
  const Combo combos[] = {{4, 1, 5, false, 0, 0},  {6, 3, 7, true, 11, 1},  {8, 4, 3, true, 5, 2},
                          {5, 5, 10, true, 42, 3}, {12, 2, 1, false, 0, 0}, {2, 2, 64, true, 7, 0}};
  for (const Combo& c : combos) {
    SCOPED_TRACE(::testing::Message() << "B=" << c.B << " W=" << c.world << " tgt=" << c.tgt_len << " roll=" << c.roll
                                      << " seed=" << c.seed << " epoch=" << c.epoch);
    const std::vector<RefBatch> ref = reference_epoch(streams.at("train"), c.B, c.tgt_len, c.roll, c.seed, c.epoch, 0);
    const int64_t per = c.B / c.world;
    // Union over ranks: every rank's columns are the matching columns of the global batch.
    for (int r = 0; r < c.world; ++r) {
      IteratorOptions o;
      o.roll = c.roll;
      o.seed = c.seed;
      OrderedIterator it(corpus, "train", c.B, c.world, r, c.tgt_len, o);
      it.start_epoch(c.epoch);
      EXPECT_EQ(it.n_batch(), static_cast<int64_t>(ref.size()));
      EXPECT_EQ(it.tokens_read(), per * (1003 / c.B));  // only its own range
      Batch b;
      size_t k = 0;
      while (it.next(b)) {
        ASSERT_LT(k, ref.size());
        ASSERT_EQ(b.len, ref[k].len);
        ASSERT_EQ(b.n_streams, per);
        EXPECT_TRUE(b.counted);
        for (int64_t t = 0; t < b.len; ++t)
          for (int64_t s = 0; s < per; ++s) {
            ASSERT_EQ(b.data[t * per + s], ref[k].data[r * per + s][t]) << "batch " << k;
            ASSERT_EQ(b.target[t * per + s], ref[k].target[r * per + s][t]) << "batch " << k;
          }
        ++k;
      }
      EXPECT_EQ(k, ref.size());
    }
  }
}

TEST(OrderedIterator, RollChangesEveryEpochAndDependsOnlyOnSeedAndEpoch) {
  const auto a = stream_roll_offsets(3, 1, 8, 100), b = stream_roll_offsets(3, 2, 8, 100);
  EXPECT_NE(a, b);
  EXPECT_EQ(a, stream_roll_offsets(3, 1, 8, 100));
  EXPECT_EQ(stream_roll_offsets(2, 2, 8, 100), a);  // seed + epoch
  for (int64_t x : a) EXPECT_TRUE(x >= 0 && x < 100);
}

TEST(OrderedIterator, EvaluationWarmUpPrefixesAndFlags) {
  ScratchDir dir;
  const auto streams = write_random_corpus(dir / "c.h5", 400, 203);
  const CorpusFile corpus = CorpusFile::open(dir / "c.h5");
  // (B, W, tgt_len, mem_len): P = 8 with n = 50; P = 80 > n = 25 (prefix wraps the previous stream).
  const std::tuple<int64_t, int, int64_t, int64_t> cases[] = {{4, 2, 4, 6}, {8, 4, 16, 70}, {3, 1, 5, 5}};
  for (const auto& [B, W, tgt, mem] : cases) {
    SCOPED_TRACE(::testing::Message() << "B=" << B << " W=" << W << " tgt=" << tgt << " mem=" << mem);
    const std::vector<RefBatch> ref = reference_epoch(streams.at("valid"), B, tgt, false, 0, 0, mem);
    const int64_t P = (mem + tgt - 1) / tgt * tgt;
    const int64_t per = B / W;
    for (int r = 0; r < W; ++r) {
      IteratorOptions o;
      o.warmup_mem_len = mem;
      OrderedIterator it(corpus, "valid", B, W, r, tgt, o);
      EXPECT_EQ(it.prefix_len(), P);
      Batch b;
      size_t k = 0, uncounted = 0;
      while (it.next(b)) {
        ASSERT_LT(k, ref.size());
        EXPECT_EQ(b.counted, ref[k].counted);
        EXPECT_EQ(b.counted, b.offset >= P);
        uncounted += b.counted ? 0 : 1;
        for (int64_t t = 0; t < b.len; ++t)
          for (int64_t s = 0; s < per; ++s) {
            ASSERT_EQ(b.data[t * per + s], ref[k].data[r * per + s][t]);
            ASSERT_EQ(b.target[t * per + s], ref[k].target[r * per + s][t]);
          }
        ++k;
      }
      EXPECT_EQ(k, ref.size());
      EXPECT_EQ(uncounted, static_cast<size_t>(P / tgt));
    }
  }
}

TEST(OrderedIterator, ExtendedContextRows) {
  ScratchDir dir;
  const auto streams = write_random_corpus(dir / "c.h5", 300, 100);
  const CorpusFile corpus = CorpusFile::open(dir / "c.h5");
  IteratorOptions o;
  o.ext_len = 3;
  OrderedIterator it(corpus, "train", 2, 1, 0, 10, o);
  Batch b;
  ASSERT_TRUE(it.next(b));
  EXPECT_EQ(b.ext, 0);
  ASSERT_TRUE(it.next(b));
  EXPECT_EQ(b.ext, 3);
  EXPECT_EQ(b.len, 10);
  // Data row 0 is stream position 10 - 3 = 7; stream 1 starts at token 150.
  EXPECT_EQ(b.data[0], streams.at("train")[7]);
  EXPECT_EQ(b.data[1], streams.at("train")[157]);
  EXPECT_EQ(b.target[0], streams.at("train")[11]);
}

void expect_same_batch(const Batch& a, const Batch& b) {
  EXPECT_EQ(a.len, b.len);
  EXPECT_EQ(a.offset, b.offset);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.counted, b.counted);
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.target, b.target);
}

TEST(OrderedIterator, ResumeFromSavedPosition) {
  ScratchDir dir;
  write_random_corpus(dir / "c.h5", 2000, 100);
  const CorpusFile corpus = CorpusFile::open(dir / "c.h5");
  for (const bool varlen : {false, true}) {
    SCOPED_TRACE(varlen ? "varlen" : "fixed length");
    IteratorOptions o;
    o.roll = true;
    o.seed = 99;
    o.varlen = varlen;
    o.varlen_std = 3;
    OrderedIterator first(corpus, "train", 4, 2, 1, 12, o);
    first.start_epoch(3);
    Batch b, expected;
    for (int i = 0; i < 7; ++i) ASSERT_TRUE(first.next(b));
    const StreamPosition saved = first.position();
    EXPECT_EQ(saved.epoch, 3);
    EXPECT_EQ(saved.batch, 7);
    ASSERT_TRUE(first.next(expected));
    if (varlen) {
      // Lengths vary around tgt_len within [min_len, tgt_len + 3 std].
      EXPECT_GE(expected.len, 5);
      EXPECT_LE(expected.len, 12 + 9);
    }
    OrderedIterator resumed(corpus, "train", 4, 2, 1, 12, o);
    resumed.seek(saved);
    EXPECT_EQ(resumed.position(), saved);
    ASSERT_TRUE(resumed.next(b));
    expect_same_batch(b, expected);
    // ... and the rest of the epoch too.
    int64_t rest_a = 0, rest_b = 0;
    while (first.next(expected)) {
      ASSERT_TRUE(resumed.next(b));
      expect_same_batch(b, expected);
      ++rest_a;
    }
    while (resumed.next(b)) ++rest_b;
    EXPECT_EQ(rest_b, 0);
    EXPECT_GT(rest_a, 0);
    EXPECT_EQ(first.position().batch, first.n_batch());
    // A position from another data order is refused.
    OrderedIterator other(corpus, "train", 4, 2, 1, 13, o);
    EXPECT_THROW(other.seek(saved), Error);
  }
}

TEST(OrderedIterator, VarlenLengthsAreTheSameOnEveryRank) {
  ScratchDir dir;
  write_random_corpus(dir / "c.h5", 3000, 100);
  const CorpusFile corpus = CorpusFile::open(dir / "c.h5");
  IteratorOptions o;
  o.varlen = true;
  o.seed = 5;
  OrderedIterator r0(corpus, "train", 4, 2, 0, 20, o), r1(corpus, "train", 4, 2, 1, 20, o);
  Batch a, b;
  int64_t total = 0, n = 0;
  bool varied = false;
  while (r0.next(a)) {
    ASSERT_TRUE(r1.next(b));
    EXPECT_EQ(a.len, b.len);
    varied |= a.len != 20;
    total += a.len;
    ++n;
  }
  EXPECT_FALSE(r1.next(b));
  EXPECT_TRUE(varied);
  EXPECT_EQ(n, r0.n_batch());
  EXPECT_GE(total, 3000 / 4 - 2 - 1);  // the stream is covered up to its last two tokens
}

TEST(OrderedIterator, RejectsBadGeometry) {
  ScratchDir dir;
  write_random_corpus(dir / "c.h5", 100, 10);
  const CorpusFile corpus = CorpusFile::open(dir / "c.h5");
  EXPECT_THROW(OrderedIterator(corpus, "train", 6, 4, 0, 5), Error);  // 6 streams over 4 ranks
  EXPECT_THROW(OrderedIterator(corpus, "valid", 8, 1, 0, 5), Error);  // 10 tokens, 8 streams
  EXPECT_THROW(OrderedIterator(corpus, "dev", 2, 1, 0, 5), Error);    // no such split
  IteratorOptions o;
  o.roll = true;
  o.warmup_mem_len = 4;
  EXPECT_THROW(OrderedIterator(corpus, "train", 2, 1, 0, 5, o), Error);
  try {
    OrderedIterator(corpus, "valid", 8, 1, 0, 5);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too few"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace txl::data
