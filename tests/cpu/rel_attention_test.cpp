// Fused relative attention (Ops::rel_attention_fwd/bwd) against the unfused op sequence it
// replaces (score GEMMs, rel_shift_add, attn_softmax_fwd, dropout, the value GEMM, and
// their backwards), against finite differences in double, and across thread counts.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>

#include "test_util.h"

namespace txl {
namespace {

using test::expect_close;
using test::random_vector;

template <typename T>
class RelAttentionTest : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(RelAttentionTest, Types);

size_t at(int64_t i) { return static_cast<size_t>(i); }

struct Case {
  int64_t heads, batch, qlen, mlen, d_head;
  bool same_length;
  int64_t mem_len;
  float dropatt;
};

// Small shapes, one query block and several (kQueryBlock = 64), memory shorter than
// mem_len, same_length, dropout with a batch window of a larger global batch.
const Case kCases[] = {
    {1, 1, 1, 0, 1, false, 0, 0.0f},      {2, 3, 7, 5, 4, false, 5, 0.0f},   {2, 2, 70, 30, 8, true, 30, 0.3f},
    {1, 2, 130, 0, 5, false, 0, 0.1f},    {3, 1, 65, 40, 6, true, 50, 0.0f}, {2, 2, 9, 17, 3, true, 17, 0.5f},
};

RelAttentionArgs args_of(const Case& c) {
  RelAttentionArgs a;
  a.heads = c.heads;
  a.batch = c.batch;
  a.qlen = c.qlen;
  a.klen = c.qlen + c.mlen;
  a.d_head = c.d_head;
  a.scale = 1.0 / std::sqrt(static_cast<double>(c.d_head));
  a.mask = AttnMask{c.mlen, c.same_length, c.mem_len};
  a.dropatt = c.dropatt;
  a.key = DropoutKey{1234, 7, 16};
  a.layout = BatchLayout{c.heads, c.batch, a.qlen * a.klen, 1, c.batch + 2};
  return a;
}

template <typename T>
struct Inputs {
  std::vector<T> qu, qw, k, v, r, d_out;
  explicit Inputs(const RelAttentionArgs& a, uint64_t seed) {
    const int64_t n = a.n(), D = a.d_head;
    qu = random_vector<T>(n * a.qlen * D, seed);
    qw = random_vector<T>(n * a.qlen * D, seed + 1);
    k = random_vector<T>(n * a.klen * D, seed + 2);
    v = random_vector<T>(n * a.klen * D, seed + 3);
    r = random_vector<T>(a.heads * a.klen * D, seed + 4);
    d_out = random_vector<T>(n * a.qlen * D, seed + 5);
  }
};

template <typename T>
struct Outputs {
  std::vector<T> out, lse, d_qu, d_qw, d_k, d_v, d_r;
};

// The unfused sequence of ops.
template <typename T>
Outputs<T> reference(Ops<T>& ops, const RelAttentionArgs& a, const Inputs<T>& in) {
  const int64_t n = a.n(), Q = a.qlen, K = a.klen, D = a.d_head, H = a.heads, B = a.batch;
  const T scale = static_cast<T>(a.scale);
  std::vector<T> scores(at(n * Q * K)), bd(scores.size()), probs(scores.size()), probs_d(scores.size());
  ops.gemm_strided_batched(Trans::kNo, Trans::kYes, Q, K, D, T(1), in.qu.data(), D, Q * D, in.k.data(), D, K * D,
                           T(0), scores.data(), K, Q * K, n);
  ops.gemm_strided_batched(Trans::kNo, Trans::kYes, B * Q, K, D, T(1), in.qw.data(), D, B * Q * D, in.r.data(), D,
                           K * D, T(0), bd.data(), K, B * Q * K, H);
  ops.rel_shift_add(bd.data(), n, Q, K, a.mask.mlen, scores.data());
  ops.attn_softmax_fwd(scores.data(), n, Q, K, scale, a.mask, probs.data());
  ops.dropout(probs.data(), probs_d.data(), a.dropatt, a.key, a.layout);
  Outputs<T> o;
  o.out.resize(at(n * Q * D));
  ops.gemm_strided_batched(Trans::kNo, Trans::kNo, Q, D, K, T(1), probs_d.data(), K, Q * K, in.v.data(), D, K * D,
                           T(0), o.out.data(), D, Q * D, n);
  // lse from the scores directly, in double.
  o.lse.resize(at(n * Q));
  for (int64_t r = 0; r < n * Q; ++r) {
    double mx = -std::numeric_limits<double>::infinity(), sum = 0.0;
    for (int64_t j = 0; j < K; ++j)
      if (probs[at(r * K + j)] != T(0)) mx = std::max(mx, static_cast<double>(scale * scores[at(r * K + j)]));
    for (int64_t j = 0; j < K; ++j)
      if (probs[at(r * K + j)] != T(0)) sum += std::exp(static_cast<double>(scale * scores[at(r * K + j)]) - mx);
    o.lse[at(r)] = static_cast<T>(mx + std::log(sum));
  }
  // Backward.
  std::vector<T> d_probs(scores.size()), d_bd(scores.size());
  o.d_v.resize(in.v.size());
  o.d_k.resize(in.k.size());
  o.d_qu.resize(in.qu.size());
  o.d_qw.resize(in.qw.size());
  o.d_r.resize(in.r.size());
  ops.gemm_strided_batched(Trans::kNo, Trans::kYes, Q, K, D, T(1), in.d_out.data(), D, Q * D, in.v.data(), D, K * D,
                           T(0), d_probs.data(), K, Q * K, n);
  ops.gemm_strided_batched(Trans::kYes, Trans::kNo, K, D, Q, T(1), probs_d.data(), K, Q * K, in.d_out.data(), D,
                           Q * D, T(0), o.d_v.data(), D, K * D, n);
  ops.dropout(d_probs.data(), d_probs.data(), a.dropatt, a.key, a.layout);
  ops.attn_softmax_bwd(probs.data(), d_probs.data(), n, Q, K, scale, d_probs.data());
  ops.gemm_strided_batched(Trans::kNo, Trans::kNo, Q, D, K, T(1), d_probs.data(), K, Q * K, in.k.data(), D, K * D,
                           T(0), o.d_qu.data(), D, Q * D, n);
  ops.gemm_strided_batched(Trans::kYes, Trans::kNo, K, D, Q, T(1), d_probs.data(), K, Q * K, in.qu.data(), D, Q * D,
                           T(0), o.d_k.data(), D, K * D, n);
  ops.rel_shift_bwd(d_probs.data(), n, Q, K, a.mask.mlen, d_bd.data());
  ops.gemm_strided_batched(Trans::kNo, Trans::kNo, B * Q, D, K, T(1), d_bd.data(), K, B * Q * K, in.r.data(), D,
                           K * D, T(0), o.d_qw.data(), D, B * Q * D, H);
  ops.gemm_strided_batched(Trans::kYes, Trans::kNo, K, D, B * Q, T(1), d_bd.data(), K, B * Q * K, in.qw.data(), D,
                           B * Q * D, T(0), o.d_r.data(), D, K * D, H);
  return o;
}

template <typename T>
Outputs<T> fused(Ops<T>& ops, const RelAttentionArgs& a, const Inputs<T>& in) {
  Outputs<T> o;
  const T nan = std::numeric_limits<T>::quiet_NaN();  // unwritten outputs fail
  o.out.assign(at(a.n() * a.qlen * a.d_head), nan);
  o.lse.assign(at(a.n() * a.qlen), nan);
  o.d_qu.assign(in.qu.size(), nan);
  o.d_qw.assign(in.qw.size(), nan);
  o.d_k.assign(in.k.size(), nan);
  o.d_v.assign(in.v.size(), nan);
  o.d_r.assign(in.r.size(), nan);
  ops.rel_attention_fwd(a, in.qu.data(), in.qw.data(), in.k.data(), in.v.data(), in.r.data(), o.out.data(),
                        o.lse.data());
  ops.rel_attention_bwd(a, in.qu.data(), in.qw.data(), in.k.data(), in.v.data(), in.r.data(), o.out.data(),
                        o.lse.data(), in.d_out.data(), o.d_qu.data(), o.d_qw.data(), o.d_k.data(), o.d_v.data(),
                        o.d_r.data());
  return o;
}

TYPED_TEST(RelAttentionTest, MatchesTheUnfusedOps) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  const double tol = std::is_same_v<T, float> ? 5e-5 : 1e-12;
  uint64_t seed = 10;
  for (const Case& c : kCases) {
    SCOPED_TRACE(::testing::Message() << "heads " << c.heads << " batch " << c.batch << " qlen " << c.qlen
                                      << " mlen " << c.mlen << " d " << c.d_head << " same_length "
                                      << c.same_length << " dropatt " << c.dropatt);
    const RelAttentionArgs a = args_of(c);
    const Inputs<T> in(a, seed += 10);
    const Outputs<T> want = reference(*ops, a, in), got = fused(*ops, a, in);
    expect_close(got.out, want.out, tol, "out");
    expect_close(got.lse, want.lse, tol, "lse");
    expect_close(got.d_qu, want.d_qu, tol, "d_qu");
    expect_close(got.d_qw, want.d_qw, tol, "d_qw");
    expect_close(got.d_k, want.d_k, tol, "d_k");
    expect_close(got.d_v, want.d_v, tol, "d_v");
    expect_close(got.d_r, want.d_r, tol, "d_r");
  }
}

// d/dx of sum(out * w) for every input, with dropatt and same_length on.
TEST(RelAttentionGradient, MatchesFiniteDifferences) {
  auto ops = make_cpu_ops<double>();
  for (const Case& c : {Case{2, 2, 5, 3, 3, true, 3, 0.25f}, Case{1, 1, 70, 2, 2, false, 2, 0.0f}}) {
    const RelAttentionArgs a = args_of(c);
    Inputs<double> in(a, 99);
    const std::vector<double> w = random_vector<double>(a.n() * a.qlen * a.d_head, 7);
    in.d_out = w;
    const Outputs<double> g = fused(*ops, a, in);
    auto loss_with = [&](std::vector<double> Inputs<double>::*field) {
      return [&, field](const std::vector<double>& x) {
        Inputs<double> moved = in;
        moved.*field = x;
        std::vector<double> out(w.size()), lse(at(a.n() * a.qlen));
        ops->rel_attention_fwd(a, moved.qu.data(), moved.qw.data(), moved.k.data(), moved.v.data(), moved.r.data(),
                               out.data(), lse.data());
        return test::dot(out, w);
      };
    };
    // A subset of coordinates for the long case keeps the test short.
    auto coords = [&](size_t size) {
      std::vector<int64_t> c2;
      const size_t stride = size > 200 ? size / 40 : 1;
      for (size_t i = 0; i < size; i += stride) c2.push_back(static_cast<int64_t>(i));
      return c2;
    };
    test::expect_gradient(loss_with(&Inputs<double>::qu), in.qu, g.d_qu, "d_qu", 1e-6, coords(in.qu.size()));
    test::expect_gradient(loss_with(&Inputs<double>::qw), in.qw, g.d_qw, "d_qw", 1e-6, coords(in.qw.size()));
    test::expect_gradient(loss_with(&Inputs<double>::k), in.k, g.d_k, "d_k", 1e-6, coords(in.k.size()));
    test::expect_gradient(loss_with(&Inputs<double>::v), in.v, g.d_v, "d_v", 1e-6, coords(in.v.size()));
    test::expect_gradient(loss_with(&Inputs<double>::r), in.r, g.d_r, "d_r", 1e-6, coords(in.r.size()));
  }
}

TEST(RelAttentionThreads, SameBitsForOneAndTwoThreads) {
  auto ops = make_cpu_ops<float>();
  const RelAttentionArgs a = args_of(Case{2, 3, 130, 60, 16, true, 60, 0.2f});
  const Inputs<float> in(a, 5);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const Outputs<float> one = fused(*ops, a, in);
  omp_set_num_threads(2);
  const Outputs<float> two = fused(*ops, a, in);
  omp_set_num_threads(saved);
  EXPECT_EQ(one.out, two.out);
  EXPECT_EQ(one.lse, two.lse);
  EXPECT_EQ(one.d_qu, two.d_qu);
  EXPECT_EQ(one.d_qw, two.d_qw);
  EXPECT_EQ(one.d_k, two.d_k);
  EXPECT_EQ(one.d_v, two.d_v);
  EXPECT_EQ(one.d_r, two.d_r);
}

TEST(RelAttentionArgs, BadShapesAreOneClearError) {
  auto ops = make_cpu_ops<float>();
  RelAttentionArgs a = args_of(Case{1, 1, 4, 2, 2, false, 2, 0.0f});
  std::vector<float> buf(64);
  a.klen = 5;
  try {
    ops->rel_attention_fwd(a, buf.data(), buf.data(), buf.data(), buf.data(), buf.data(), buf.data(), buf.data());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("klen 5 != qlen 4 + mlen 2"), std::string::npos) << e.what();
  }
  a = args_of(Case{1, 1, 4, 2, 2, false, 2, 0.5f});
  a.layout.inner = 3;
  EXPECT_THROW(ops->rel_attention_fwd(a, buf.data(), buf.data(), buf.data(), buf.data(), buf.data(), buf.data(),
                                      buf.data()),
               Error);
}

}  // namespace
}  // namespace txl
