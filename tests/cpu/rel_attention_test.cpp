// Fused relative attention (Ops::rel_attention_fwd/bwd) against the unfused op sequence it
// replaces (split_heads with the biases, score GEMMs, rel_shift_add, attn_softmax_fwd,
// dropout, the value GEMM, merge_heads, and their backwards with head_bias_grad), against
// finite differences in double, and across thread counts. The operands are in the
// projections' row layout (RelAttentionLayout): k and v interleaved in one kv buffer,
// either packed as the model has them or with rows wider than the heads.
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
  int64_t pad = 0;  // extra columns of every operand's rows (0: the model's layout)
};

// Small shapes, one query block and several (kQueryBlock = 64), memory shorter than
// mem_len, same_length, dropout with a batch window of a larger global batch; packed and
// padded rows.
const Case kCases[] = {
    {1, 1, 1, 0, 1, false, 0, 0.0f, 0},  {2, 3, 7, 5, 4, false, 5, 0.0f, 3}, {2, 2, 70, 30, 8, true, 30, 0.3f, 0},
    {1, 2, 130, 0, 5, false, 0, 0.1f, 2}, {3, 1, 65, 40, 6, true, 50, 0.0f, 0}, {2, 2, 9, 17, 3, true, 17, 0.5f, 5},
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
  const int64_t hd = c.heads * c.d_head;
  // q, k | v (v at column hd of the same rows), r, out: out's rows one wider again.
  a.ld = RelAttentionLayout{hd + c.pad, 2 * hd + c.pad, 2 * hd + c.pad, hd + c.pad, hd + c.pad + (c.pad ? 1 : 0)};
  return a;
}

int64_t hd_of(const RelAttentionArgs& a) { return a.heads * a.d_head; }
int64_t q_size(const RelAttentionArgs& a) { return a.qlen * a.batch * a.ld.ld_q; }
int64_t kv_size(const RelAttentionArgs& a) { return a.klen * a.batch * a.ld.ld_k; }
int64_t r_size(const RelAttentionArgs& a) { return a.klen * a.ld.ld_r; }
int64_t out_size(const RelAttentionArgs& a) { return a.qlen * a.batch * a.ld.ld_out; }

template <typename T>
struct Inputs {
  std::vector<T> q, u, w, kv, r, d_out;
  Inputs(const RelAttentionArgs& a, uint64_t seed) {
    q = random_vector<T>(q_size(a), seed);
    u = random_vector<T>(hd_of(a), seed + 1);
    w = random_vector<T>(hd_of(a), seed + 2);
    kv = random_vector<T>(kv_size(a), seed + 3);
    r = random_vector<T>(r_size(a), seed + 4);
    d_out = random_vector<T>(out_size(a), seed + 5);
  }
  const T* k() const { return kv.data(); }
  const T* v(const RelAttentionArgs& a) const { return kv.data() + hd_of(a); }
};

// Outputs start as NaN: an unwritten head column fails, a written padding column fails.
// d_u and d_w start at known values (the op accumulates).
template <typename T>
struct Outputs {
  std::vector<T> out, lse, d_q, d_u, d_w, d_kv, d_r;
  explicit Outputs(const RelAttentionArgs& a) {
    const T nan = std::numeric_limits<T>::quiet_NaN();
    out.assign(at(out_size(a)), nan);
    lse.assign(at(a.n() * a.qlen), nan);
    d_q.assign(at(q_size(a)), nan);
    d_u = random_vector<T>(hd_of(a), 501);
    d_w = random_vector<T>(hd_of(a), 502);
    d_kv.assign(at(kv_size(a)), nan);
    d_r.assign(at(r_size(a)), nan);
  }
};

// Columns [0, width) of each row of a [rows, ld] buffer; `padding` gets the others.
template <typename T>
std::vector<T> columns(const std::vector<T>& x, int64_t ld, int64_t width, std::vector<T>* padding = nullptr) {
  std::vector<T> c;
  for (size_t i = 0; i < x.size(); ++i) {
    if (static_cast<int64_t>(i) % ld < width) c.push_back(x[i]);
    else if (padding) padding->push_back(x[i]);
  }
  return c;
}

// The unfused sequence of ops, through per-head copies as the model had it.
template <typename T>
Outputs<T> reference(Ops<T>& ops, const RelAttentionArgs& a, const Inputs<T>& in) {
  const int64_t n = a.n(), Q = a.qlen, K = a.klen, D = a.d_head, H = a.heads, B = a.batch;
  const T scale = static_cast<T>(a.scale);
  std::vector<T> qu(at(n * Q * D)), qw(qu.size()), k(at(n * K * D)), v(k.size()), r(at(H * K * D));
  ops.split_heads(in.q.data(), Q, B, H, D, a.ld.ld_q, in.u.data(), qu.data());
  ops.split_heads(in.q.data(), Q, B, H, D, a.ld.ld_q, in.w.data(), qw.data());
  ops.split_heads(in.k(), K, B, H, D, a.ld.ld_k, nullptr, k.data());
  ops.split_heads(in.v(a), K, B, H, D, a.ld.ld_v, nullptr, v.data());
  ops.split_heads(in.r.data(), K, 1, H, D, a.ld.ld_r, nullptr, r.data());
  std::vector<T> d_out(qu.size());
  ops.split_heads(in.d_out.data(), Q, B, H, D, a.ld.ld_out, nullptr, d_out.data());

  std::vector<T> scores(at(n * Q * K)), bd(scores.size()), probs(scores.size()), probs_d(scores.size());
  ops.gemm_strided_batched(Trans::kNo, Trans::kYes, Q, K, D, T(1), qu.data(), D, Q * D, k.data(), D, K * D, T(0),
                           scores.data(), K, Q * K, n);
  ops.gemm_strided_batched(Trans::kNo, Trans::kYes, B * Q, K, D, T(1), qw.data(), D, B * Q * D, r.data(), D, K * D,
                           T(0), bd.data(), K, B * Q * K, H);
  ops.rel_shift_add(bd.data(), n, Q, K, a.mask.mlen, scores.data());
  ops.attn_softmax_fwd(scores.data(), n, Q, K, scale, a.mask, probs.data());
  ops.dropout(probs.data(), probs_d.data(), a.dropatt, a.key, a.layout);
  Outputs<T> o(a);
  std::vector<T> out(qu.size());
  ops.gemm_strided_batched(Trans::kNo, Trans::kNo, Q, D, K, T(1), probs_d.data(), K, Q * K, v.data(), D, K * D, T(0),
                           out.data(), D, Q * D, n);
  ops.merge_heads(out.data(), Q, B, H, D, a.ld.ld_out, false, o.out.data());
  // lse from the scores directly, in double.
  for (int64_t row = 0; row < n * Q; ++row) {
    double mx = -std::numeric_limits<double>::infinity(), sum = 0.0;
    for (int64_t j = 0; j < K; ++j)
      if (probs[at(row * K + j)] != T(0)) mx = std::max(mx, static_cast<double>(scale * scores[at(row * K + j)]));
    for (int64_t j = 0; j < K; ++j)
      if (probs[at(row * K + j)] != T(0)) sum += std::exp(static_cast<double>(scale * scores[at(row * K + j)]) - mx);
    o.lse[at(row)] = static_cast<T>(mx + std::log(sum));
  }
  // Backward.
  std::vector<T> d_probs(scores.size()), d_bd(scores.size());
  std::vector<T> d_qu(qu.size()), d_qw(qu.size()), d_k(k.size()), d_v(k.size()), d_r(r.size());
  ops.gemm_strided_batched(Trans::kNo, Trans::kYes, Q, K, D, T(1), d_out.data(), D, Q * D, v.data(), D, K * D, T(0),
                           d_probs.data(), K, Q * K, n);
  ops.gemm_strided_batched(Trans::kYes, Trans::kNo, K, D, Q, T(1), probs_d.data(), K, Q * K, d_out.data(), D, Q * D,
                           T(0), d_v.data(), D, K * D, n);
  ops.dropout(d_probs.data(), d_probs.data(), a.dropatt, a.key, a.layout);
  ops.attn_softmax_bwd(probs.data(), d_probs.data(), n, Q, K, scale, d_probs.data());
  ops.gemm_strided_batched(Trans::kNo, Trans::kNo, Q, D, K, T(1), d_probs.data(), K, Q * K, k.data(), D, K * D, T(0),
                           d_qu.data(), D, Q * D, n);
  ops.gemm_strided_batched(Trans::kYes, Trans::kNo, K, D, Q, T(1), d_probs.data(), K, Q * K, qu.data(), D, Q * D,
                           T(0), d_k.data(), D, K * D, n);
  ops.rel_shift_bwd(d_probs.data(), n, Q, K, a.mask.mlen, d_bd.data());
  ops.gemm_strided_batched(Trans::kNo, Trans::kNo, B * Q, D, K, T(1), d_bd.data(), K, B * Q * K, r.data(), D, K * D,
                           T(0), d_qw.data(), D, B * Q * D, H);
  ops.gemm_strided_batched(Trans::kYes, Trans::kNo, K, D, B * Q, T(1), d_bd.data(), K, B * Q * K, qw.data(), D,
                           B * Q * D, T(0), d_r.data(), D, K * D, H);
  ops.merge_heads(d_qu.data(), Q, B, H, D, a.ld.ld_q, false, o.d_q.data());
  ops.merge_heads(d_qw.data(), Q, B, H, D, a.ld.ld_q, true, o.d_q.data());
  ops.merge_heads(d_k.data(), K, B, H, D, a.ld.ld_k, false, o.d_kv.data());
  ops.merge_heads(d_v.data(), K, B, H, D, a.ld.ld_v, false, o.d_kv.data() + hd_of(a));
  ops.merge_heads(d_r.data(), K, 1, H, D, a.ld.ld_r, false, o.d_r.data());
  ops.head_bias_grad(d_qu.data(), Q, B, H, D, o.d_u.data());
  ops.head_bias_grad(d_qw.data(), Q, B, H, D, o.d_w.data());
  return o;
}

template <typename T>
Outputs<T> fused(Ops<T>& ops, const RelAttentionArgs& a, const Inputs<T>& in) {
  Outputs<T> o(a);
  ops.rel_attention_fwd(a, in.q.data(), in.u.data(), in.w.data(), in.k(), in.v(a), in.r.data(), o.out.data(),
                        o.lse.data());
  ops.rel_attention_bwd(a, in.q.data(), in.u.data(), in.w.data(), in.k(), in.v(a), in.r.data(), o.out.data(),
                        o.lse.data(), in.d_out.data(), o.d_q.data(), o.d_u.data(), o.d_w.data(), o.d_kv.data(),
                        o.d_kv.data() + hd_of(a), o.d_r.data());
  return o;
}

template <typename T>
void expect_untouched(const std::vector<T>& padding, const char* what) {
  for (const T& x : padding)
    if (!std::isnan(x)) {
      ADD_FAILURE() << what << ": a padding column was written";
      return;
    }
}

TYPED_TEST(RelAttentionTest, MatchesTheUnfusedOps) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  const double tol = std::is_same_v<T, float> ? 5e-5 : 1e-12;
  uint64_t seed = 10;
  for (const Case& c : kCases) {
    SCOPED_TRACE(::testing::Message() << "heads " << c.heads << " batch " << c.batch << " qlen " << c.qlen
                                      << " mlen " << c.mlen << " d " << c.d_head << " same_length "
                                      << c.same_length << " dropatt " << c.dropatt << " pad " << c.pad);
    const RelAttentionArgs a = args_of(c);
    const int64_t hd = hd_of(a);
    const Inputs<T> in(a, seed += 10);
    const Outputs<T> want = reference(*ops, a, in), got = fused(*ops, a, in);
    std::vector<T> pad_out, pad_q, pad_kv, pad_r;
    expect_close(columns(got.out, a.ld.ld_out, hd, &pad_out), columns(want.out, a.ld.ld_out, hd), tol, "out");
    expect_close(got.lse, want.lse, tol, "lse");
    expect_close(columns(got.d_q, a.ld.ld_q, hd, &pad_q), columns(want.d_q, a.ld.ld_q, hd), tol, "d_q");
    expect_close(got.d_u, want.d_u, tol, "d_u");
    expect_close(got.d_w, want.d_w, tol, "d_w");
    expect_close(columns(got.d_kv, a.ld.ld_k, 2 * hd, &pad_kv), columns(want.d_kv, a.ld.ld_k, 2 * hd), tol, "d_kv");
    expect_close(columns(got.d_r, a.ld.ld_r, hd, &pad_r), columns(want.d_r, a.ld.ld_r, hd), tol, "d_r");
    expect_untouched(pad_out, "out");
    expect_untouched(pad_q, "d_q");
    expect_untouched(pad_kv, "d_kv");
    expect_untouched(pad_r, "d_r");
  }
}

// d/dx of sum(out * w) for every input (the biases included), with dropatt and
// same_length on, in a padded layout.
TEST(RelAttentionGradient, MatchesFiniteDifferences) {
  auto ops = make_cpu_ops<double>();
  for (const Case& c : {Case{2, 2, 5, 3, 3, true, 3, 0.25f, 2}, Case{1, 1, 70, 2, 2, false, 2, 0.0f, 0}}) {
    const RelAttentionArgs a = args_of(c);
    const int64_t hd = hd_of(a);
    Inputs<double> in(a, 99);
    std::vector<double> wgt = random_vector<double>(out_size(a), 7);
    for (size_t i = 0; i < wgt.size(); ++i)
      if (static_cast<int64_t>(i) % a.ld.ld_out >= hd) wgt[i] = 0.0;  // padding is no output
    in.d_out = wgt;
    Outputs<double> g = fused(*ops, a, in);
    // The bias gradients were accumulated onto Outputs' start values.
    const Outputs<double> start(a);
    for (size_t i = 0; i < g.d_u.size(); ++i) {
      g.d_u[i] -= start.d_u[i];
      g.d_w[i] -= start.d_w[i];
    }
    auto loss_with = [&](std::vector<double> Inputs<double>::*field) {
      return [&, field](const std::vector<double>& x) {
        Inputs<double> moved = in;
        moved.*field = x;
        std::vector<double> out(wgt.size(), 0.0), lse(at(a.n() * a.qlen));
        ops->rel_attention_fwd(a, moved.q.data(), moved.u.data(), moved.w.data(), moved.k(), moved.v(a),
                               moved.r.data(), out.data(), lse.data());
        return test::dot(out, wgt);
      };
    };
    // Head columns only (the padding has no gradient and is not written); a subset of
    // them for the long case keeps the test short.
    auto coords = [&](size_t size, int64_t ld, int64_t width) {
      std::vector<int64_t> c2;
      for (size_t i = 0; i < size; ++i)
        if (static_cast<int64_t>(i) % ld < width) c2.push_back(static_cast<int64_t>(i));
      if (c2.size() <= 200) return c2;
      std::vector<int64_t> some;
      for (size_t i = 0; i < c2.size(); i += c2.size() / 40) some.push_back(c2[i]);
      return some;
    };
    test::expect_gradient(loss_with(&Inputs<double>::q), in.q, g.d_q, "d_q", 1e-6, coords(in.q.size(), a.ld.ld_q, hd));
    test::expect_gradient(loss_with(&Inputs<double>::u), in.u, g.d_u, "d_u", 1e-6);
    test::expect_gradient(loss_with(&Inputs<double>::w), in.w, g.d_w, "d_w", 1e-6);
    test::expect_gradient(loss_with(&Inputs<double>::kv), in.kv, g.d_kv, "d_kv", 1e-6,
                          coords(in.kv.size(), a.ld.ld_k, 2 * hd));
    test::expect_gradient(loss_with(&Inputs<double>::r), in.r, g.d_r, "d_r", 1e-6, coords(in.r.size(), a.ld.ld_r, hd));
  }
}

TEST(RelAttentionThreads, SameBitsForOneAndTwoThreads) {
  auto ops = make_cpu_ops<float>();
  for (const int64_t pad : {0, 3}) {
    const RelAttentionArgs a = args_of(Case{2, 3, 130, 60, 16, true, 60, 0.2f, pad});
    const Inputs<float> in(a, 5);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const Outputs<float> one = fused(*ops, a, in);
    omp_set_num_threads(2);
    const Outputs<float> two = fused(*ops, a, in);
    omp_set_num_threads(saved);
    const int64_t hd = hd_of(a);
    EXPECT_EQ(columns(one.out, a.ld.ld_out, hd), columns(two.out, a.ld.ld_out, hd));
    EXPECT_EQ(one.lse, two.lse);
    EXPECT_EQ(columns(one.d_q, a.ld.ld_q, hd), columns(two.d_q, a.ld.ld_q, hd));
    EXPECT_EQ(one.d_u, two.d_u);
    EXPECT_EQ(one.d_w, two.d_w);
    EXPECT_EQ(columns(one.d_kv, a.ld.ld_k, 2 * hd), columns(two.d_kv, a.ld.ld_k, 2 * hd));
    EXPECT_EQ(columns(one.d_r, a.ld.ld_r, hd), columns(two.d_r, a.ld.ld_r, hd));
  }
}

// Null biases are no biases, and null bias gradients are not computed.
TEST(RelAttentionBiases, NullMeansNone) {
  auto ops = make_cpu_ops<double>();
  const RelAttentionArgs a = args_of(Case{2, 2, 9, 4, 3, false, 4, 0.0f, 1});
  Inputs<double> in(a, 31);
  in.u.assign(in.u.size(), 0.0);
  in.w.assign(in.w.size(), 0.0);
  const Outputs<double> zero_bias = fused(*ops, a, in);
  Outputs<double> none(a);
  ops->rel_attention_fwd(a, in.q.data(), nullptr, nullptr, in.k(), in.v(a), in.r.data(), none.out.data(),
                         none.lse.data());
  ops->rel_attention_bwd(a, in.q.data(), nullptr, nullptr, in.k(), in.v(a), in.r.data(), none.out.data(),
                         none.lse.data(), in.d_out.data(), none.d_q.data(), nullptr, nullptr, none.d_kv.data(),
                         none.d_kv.data() + hd_of(a), none.d_r.data());
  const int64_t hd = hd_of(a);
  EXPECT_EQ(columns(none.out, a.ld.ld_out, hd), columns(zero_bias.out, a.ld.ld_out, hd));
  EXPECT_EQ(columns(none.d_q, a.ld.ld_q, hd), columns(zero_bias.d_q, a.ld.ld_q, hd));
  EXPECT_EQ(columns(none.d_kv, a.ld.ld_k, 2 * hd), columns(zero_bias.d_kv, a.ld.ld_k, 2 * hd));
  EXPECT_EQ(none.d_u, Outputs<double>(a).d_u);  // untouched
}

TEST(RelAttentionArgs, BadArgumentsAreOneClearError) {
  auto ops = make_cpu_ops<float>();
  RelAttentionArgs a = args_of(Case{1, 1, 4, 2, 2, false, 2, 0.0f});
  std::vector<float> buf(256);
  float* p = buf.data();
  auto expect_error = [&](const RelAttentionArgs& bad, const char* message) {
    try {
      ops->rel_attention_fwd(bad, p, p, p, p, p, p, p, p);
      ADD_FAILURE() << "no error for " << message;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
    EXPECT_THROW(ops->rel_attention_bwd(bad, p, p, p, p, p, p, p, p, p, p, p, p, p, p, p), Error) << message;
  };
  RelAttentionArgs bad = a;
  bad.klen = 5;
  expect_error(bad, "klen 5 != qlen 4 + mlen 2");
  bad = args_of(Case{1, 1, 4, 2, 2, false, 2, 0.5f});
  bad.layout.inner = 3;
  expect_error(bad, "dropout layout");
  bad = a;
  bad.ld.ld_k = 1;  // below heads*d_head = 2
  expect_error(bad, "leading dimensions (q 2, k 1, v 4, r 2, out 2) below heads*d_head 2");
  bad = a;
  bad.ld = RelAttentionLayout{};  // never set
  expect_error(bad, "below heads*d_head");
}

}  // namespace
}  // namespace txl
