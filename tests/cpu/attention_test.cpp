// Attention ops: head split/merge (and their adjoints), relative shift, masked softmax.
#include <gtest/gtest.h>

#include "test_util.h"

namespace txl {
namespace {

using test::random_vector;

template <typename T>
class AttentionTest : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(AttentionTest, Types);

size_t at(int64_t i) { return static_cast<size_t>(i); }

// ---- split / merge -------------------------------------------------------------------

TYPED_TEST(AttentionTest, SplitAndMergeHeadsMatchLoops) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  for (auto [len, batch, heads, d_head] :
       {std::tuple<int64_t, int64_t, int64_t, int64_t>{1, 1, 1, 1}, {7, 3, 2, 5}, {33, 4, 8, 16}}) {
    const int64_t ld = 3 * heads * d_head + 1;  // like the fused qkv rows, plus padding
    const auto src = random_vector<T>(len * batch * ld, 1), bias = random_vector<T>(heads * d_head, 2);
    std::vector<T> dst(at(heads * batch * len * d_head)), dst_nobias(dst.size());
    ops->split_heads(src.data(), len, batch, heads, d_head, ld, bias.data(), dst.data());
    ops->split_heads(src.data(), len, batch, heads, d_head, ld, nullptr, dst_nobias.data());
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t t = 0; t < len; ++t)
          for (int64_t d = 0; d < d_head; ++d) {
            const size_t o = at(((h * batch + b) * len + t) * d_head + d);
            const T s = src[at((t * batch + b) * ld + h * d_head + d)];
            ASSERT_EQ(dst_nobias[o], s);
            ASSERT_EQ(dst[o], s + bias[at(h * d_head + d)]);
          }
    // merge: overwrite and accumulate; columns beyond heads*d_head untouched.
    const auto base = random_vector<T>(len * batch * ld, 3);
    auto over = base, acc = base;
    ops->merge_heads(dst.data(), len, batch, heads, d_head, ld, false, over.data());
    ops->merge_heads(dst.data(), len, batch, heads, d_head, ld, true, acc.data());
    for (int64_t t = 0; t < len; ++t)
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t c = 0; c < ld; ++c) {
          const size_t o = at((t * batch + b) * ld + c);
          if (c < heads * d_head) {
            const T s = dst[at((((c / d_head) * batch + b) * len + t) * d_head + c % d_head)];
            ASSERT_EQ(over[o], s);
            ASSERT_EQ(acc[o], base[o] + s);
          } else {
            ASSERT_EQ(over[o], base[o]);
            ASSERT_EQ(acc[o], base[o]);
          }
        }
  }
}

// merge_heads and head_bias_grad are the adjoints of split_heads w.r.t. src and bias.
TEST(AttentionGradient, MergeAndHeadBiasGradAreSplitAdjoints) {
  auto ops = make_cpu_ops<double>();
  const int64_t len = 5, batch = 3, heads = 2, d_head = 4, ld = 2 * heads * d_head + 3;
  const auto src = random_vector<double>(len * batch * ld, 1), bias = random_vector<double>(heads * d_head, 2);
  const auto w = random_vector<double>(heads * batch * len * d_head, 3);
  auto loss = [&](const std::vector<double>& s, const std::vector<double>& b) {
    std::vector<double> dst(w.size());
    ops->split_heads(s.data(), len, batch, heads, d_head, ld, b.data(), dst.data());
    return test::dot(w, dst);
  };
  std::vector<double> dsrc(src.size(), 0.0);
  ops->merge_heads(w.data(), len, batch, heads, d_head, ld, false, dsrc.data());
  const auto dbias0 = random_vector<double>(heads * d_head, 4);
  auto dbias = dbias0;
  ops->head_bias_grad(w.data(), len, batch, heads, d_head, dbias.data());
  for (size_t i = 0; i < dbias.size(); ++i) dbias[i] -= dbias0[i];  // accumulated
  test::expect_gradient([&](const std::vector<double>& s) { return loss(s, bias); }, src, dsrc, "dsrc");
  test::expect_gradient([&](const std::vector<double>& b) { return loss(src, b); }, bias, dbias, "dbias");
}

// ---- relative shift ------------------------------------------------------------------

struct AttnCase {
  int64_t qlen, mlen, mem_len;
  bool same_length;
};
const AttnCase kCases[] = {{1, 0, 0, false}, {7, 0, 0, false}, {7, 5, 5, false}, {7, 5, 5, true},
                           {6, 3, 4, true},  {3, 2, 5, true},  {8, 8, 8, true},  {33, 12, 12, false},
                           {5, 0, 3, true}};

// docs/model.md §4: every unmasked score gains (q_i + w)·R_dist with dist = mlen + i - j, where
// R row r holds position value klen-1-r, so r = klen-1-dist.
TYPED_TEST(AttentionTest, RelShiftAddMatchesSpecDistance) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  const int64_t n = 3;
  for (const AttnCase& c : kCases) {
    const int64_t klen = c.qlen + c.mlen;
    const auto bd = random_vector<T>(n * c.qlen * klen, 5), scores0 = random_vector<T>(n * c.qlen * klen, 6);
    auto scores = scores0;
    ops->rel_shift_add(bd.data(), n, c.qlen, klen, c.mlen, scores.data());
    for (int64_t h = 0; h < n; ++h)
      for (int64_t i = 0; i < c.qlen; ++i)
        for (int64_t j = 0; j < klen; ++j) {
          const size_t o = at((h * c.qlen + i) * klen + j);
          if (j > i + c.mlen) {
            ASSERT_EQ(scores[o], scores0[o]) << "masked entry changed";
          } else {
            const int64_t dist = c.mlen + i - j;
            const int64_t r = klen - 1 - dist;
            ASSERT_EQ(scores[o], scores0[o] + bd[at((h * c.qlen + i) * klen + r)]);
          }
        }
  }
}

TEST(AttentionGradient, RelShiftBackwardMatchesFiniteDifferences) {
  auto ops = make_cpu_ops<double>();
  const int64_t n = 2;
  for (const AttnCase& c : kCases) {
    const int64_t klen = c.qlen + c.mlen;
    const auto bd = random_vector<double>(n * c.qlen * klen, 7), scores0 = random_vector<double>(n * c.qlen * klen, 8);
    const auto w = random_vector<double>(n * c.qlen * klen, 9);
    auto loss = [&](const std::vector<double>& in) {
      auto s = scores0;
      ops->rel_shift_add(in.data(), n, c.qlen, klen, c.mlen, s.data());
      return test::dot(w, s);
    };
    std::vector<double> dbd(bd.size(), std::numeric_limits<double>::quiet_NaN());
    ops->rel_shift_bwd(w.data(), n, c.qlen, klen, c.mlen, dbd.data());
    for (double v : dbd) ASSERT_FALSE(std::isnan(v)) << "d_bd_raw not fully overwritten";
    test::expect_gradient(loss, bd, dbd, "d_bd_raw");
  }
}

// ---- masked softmax ------------------------------------------------------------------

bool masked(const AttnCase& c, int64_t i, int64_t j) {
  const int64_t klen = c.qlen + c.mlen;
  if (j > i + c.mlen) return true;
  if (c.same_length) {
    const int64_t mask_len = klen - c.mem_len - 1;
    const int64_t shift = mask_len > 0 ? c.qlen - mask_len : c.qlen;
    if (j <= i - shift) return true;
  }
  return false;
}

TYPED_TEST(AttentionTest, SoftmaxForwardMatchesMaskedReference) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  const int64_t n = 3;
  const double scale = 0.125;
  for (const AttnCase& c : kCases)
    for (double magnitude : {3.0, 2000.0}) {  // large scores: the row max must be subtracted
      const int64_t klen = c.qlen + c.mlen;
      const auto scores = random_vector<T>(n * c.qlen * klen, 10, -magnitude, magnitude);
      std::vector<T> probs(scores.size(), std::numeric_limits<T>::quiet_NaN());
      ops->attn_softmax_fwd(scores.data(), n, c.qlen, klen, T(scale), AttnMask{c.mlen, c.same_length, c.mem_len},
                            probs.data());
      std::vector<double> expected(probs.size());
      for (int64_t h = 0; h < n; ++h)
        for (int64_t i = 0; i < c.qlen; ++i) {
          const size_t row = at((h * c.qlen + i) * klen);
          double max = -std::numeric_limits<double>::infinity(), total = 0.0;
          for (int64_t j = 0; j < klen; ++j)
            if (!masked(c, i, j)) max = std::max(max, scale * scores[row + at(j)]);
          for (int64_t j = 0; j < klen; ++j)
            if (!masked(c, i, j)) total += std::exp(scale * scores[row + at(j)] - max);
          for (int64_t j = 0; j < klen; ++j)
            expected[row + at(j)] = masked(c, i, j) ? 0.0 : std::exp(scale * scores[row + at(j)] - max) / total;
        }
      SCOPED_TRACE(::testing::Message() << "qlen=" << c.qlen << " mlen=" << c.mlen << " mem_len=" << c.mem_len
                                        << " same_length=" << c.same_length << " magnitude=" << magnitude);
      test::expect_close(probs, expected, 10 * test::tolerance<T>(), "probs");
      for (int64_t i = 0; i < c.qlen; ++i)
        for (int64_t j = 0; j < klen; ++j)
          if (masked(c, i, j)) {
            ASSERT_EQ(probs[at(i * klen + j)], T(0)) << "masked prob not exactly 0";
          }
    }
}

TEST(AttentionGradient, SoftmaxBackwardMatchesFiniteDifferences) {
  auto ops = make_cpu_ops<double>();
  const int64_t n = 2;
  const double scale = 0.3;
  for (const AttnCase& c : kCases) {
    const int64_t klen = c.qlen + c.mlen;
    const AttnMask mask{c.mlen, c.same_length, c.mem_len};
    const auto scores = random_vector<double>(n * c.qlen * klen, 11, -2.0, 2.0);
    const auto w = random_vector<double>(n * c.qlen * klen, 12);
    auto loss = [&](const std::vector<double>& s) {
      std::vector<double> p(s.size());
      ops->attn_softmax_fwd(s.data(), n, c.qlen, klen, scale, mask, p.data());
      return test::dot(w, p);
    };
    std::vector<double> probs(scores.size()), dscores(scores.size());
    ops->attn_softmax_fwd(scores.data(), n, c.qlen, klen, scale, mask, probs.data());
    ops->attn_softmax_bwd(probs.data(), w.data(), n, c.qlen, klen, scale, dscores.data());
    if (c.qlen == 1 && c.mlen == 0) {  // one key: softmax is constant, gradient exactly 0
      for (double d : dscores) EXPECT_EQ(d, 0.0);
      continue;
    }
    SCOPED_TRACE(::testing::Message() << "qlen=" << c.qlen << " mlen=" << c.mlen << " same_length=" << c.same_length);
    test::expect_gradient(loss, scores, dscores, "d_scores");
    auto aliased = w;  // d_scores may alias d_probs
    ops->attn_softmax_bwd(probs.data(), aliased.data(), n, c.qlen, klen, scale, aliased.data());
    EXPECT_EQ(aliased, dscores);
  }
}

}  // namespace
}  // namespace txl
