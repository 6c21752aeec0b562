// The fused residual tail (dropout_residual_layernorm_fwd / _bwd) against the composition
// of the ops it replaces (add_bias, dropout, add, layernorm_fwd; layernorm_bwd, dropout,
// bias_grad), bit for bit, and its backward against finite differences.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "test_util.h"

namespace txl {
namespace {

using test::random_vector;

template <typename T>
class ResidualLayerNormTest : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(ResidualLayerNormTest, Types);

// Same bits (so +0 != -0 and NaN == NaN with the same payload).
template <typename T>
void expect_bits(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int failures = 0;
  for (size_t i = 0; i < got.size() && failures < 5; ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0) {
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", composition gives " << want[i];
      ++failures;
    }
}

// rows = outer * batch, streams [offset, offset + batch) of `global`.
struct Case {
  int64_t outer, batch, cols, offset, global;
};
const Case kCases[] = {{37, 1, 19, 2, 5}, {1, 1, 1, 0, 1},    {9, 4, 19, 3, 11},
                       {3, 2, 517, 1, 4}, {40, 4, 256, 3, 9}, {64, 3, 300, 0, 3}};

template <typename T>
std::vector<T> nan_vector(int64_t n) {
  return std::vector<T>(static_cast<size_t>(n), std::numeric_limits<T>::quiet_NaN());
}

TYPED_TEST(ResidualLayerNormTest, MatchesCompositionBitForBit) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  uint64_t seed = 100;
  for (const Case& k : kCases)
    for (bool with_bias : {false, true})
      for (bool with_ln : {false, true})
        for (float p : {0.0f, 0.3f}) {
          const int64_t rows = k.outer * k.batch, cols = k.cols, n = rows * cols;
          const BatchLayout layout{k.outer, k.batch, cols, k.offset, k.global};
          const DropoutKey key{0x1234567890abcdefull, (uint64_t{1} << 33) + seed, static_cast<uint32_t>(seed % 7)};
          const std::string what = std::to_string(rows) + "x" + std::to_string(cols) + (with_bias ? " bias" : "") +
                                   (with_ln ? " ln" : "") + " p=" + std::to_string(p);
          SCOPED_TRACE(what);
          const auto x = random_vector<T>(n, ++seed, -2.0, 2.0), residual = random_vector<T>(n, ++seed, -1.0, 3.0);
          const auto bias = random_vector<T>(cols, ++seed), gamma = random_vector<T>(cols, ++seed, 0.5, 1.5);
          const auto beta = random_vector<T>(cols, ++seed);
          const T* b = with_bias ? bias.data() : nullptr;
          const T* gm = with_ln ? gamma.data() : nullptr;
          const T eps = T(1e-5);

          // ---- forward: composition
          auto t = x;
          if (with_bias) ops->add_bias(t.data(), bias.data(), rows, cols);
          if (p > 0.0f) ops->dropout(t.data(), t.data(), p, key, layout);
          std::vector<T> sum_ref(t.size());
          ops->add(n, residual.data(), t.data(), sum_ref.data());
          auto y_ref = nan_vector<T>(n), mean_ref = nan_vector<T>(rows), rstd_ref = nan_vector<T>(rows);
          if (with_ln)
            ops->layernorm_fwd(rows, cols, sum_ref.data(), gamma.data(), beta.data(), eps, y_ref.data(),
                               mean_ref.data(), rstd_ref.data());
          // ---- forward: fused, out of place and with sum aliasing x / residual
          auto sum = nan_vector<T>(n), y = nan_vector<T>(n), mean = nan_vector<T>(rows), rstd = nan_vector<T>(rows);
          ops->dropout_residual_layernorm_fwd(rows, cols, x.data(), b, p, key, layout, residual.data(), gm,
                                              with_ln ? beta.data() : nullptr, eps, sum.data(),
                                              with_ln ? y.data() : nullptr, with_ln ? mean.data() : nullptr,
                                              with_ln ? rstd.data() : nullptr);
          expect_bits(sum, sum_ref, "sum");
          expect_bits(y, y_ref, "y");  // both NaN without LayerNorm
          expect_bits(mean, mean_ref, "mean");
          expect_bits(rstd, rstd_ref, "rstd");
          auto in_x = x;
          ops->dropout_residual_layernorm_fwd(rows, cols, in_x.data(), b, p, key, layout, residual.data(), gm,
                                              beta.data(), eps, in_x.data(), y.data(), mean.data(), rstd.data());
          expect_bits(in_x, sum_ref, "sum in place of x");
          auto in_res = residual;
          ops->dropout_residual_layernorm_fwd(rows, cols, x.data(), b, p, key, layout, in_res.data(), gm, beta.data(),
                                              eps, in_res.data(), y.data(), mean.data(), rstd.data());
          expect_bits(in_res, sum_ref, "sum in place of residual");
          expect_bits(y, y_ref, "y (in place)");

          // ---- backward: composition (accumulated outputs start from the same random values)
          const auto dy = random_vector<T>(n, ++seed);
          const auto dgamma0 = random_vector<T>(cols, ++seed), dbeta0 = random_vector<T>(cols, ++seed);
          const auto dbias0 = random_vector<T>(cols, ++seed);
          auto d_sum_ref = dy, dgamma_ref = dgamma0, dbeta_ref = dbeta0, dbias_ref = dbias0;
          if (with_ln)
            ops->layernorm_bwd(rows, cols, dy.data(), sum_ref.data(), gamma.data(), mean_ref.data(), rstd_ref.data(),
                               d_sum_ref.data(), dgamma_ref.data(), dbeta_ref.data());
          std::vector<T> d_x_ref(d_sum_ref.size());
          ops->dropout(d_sum_ref.data(), d_x_ref.data(), p, key, layout);
          if (with_bias) ops->bias_grad(d_x_ref.data(), dbias_ref.data(), rows, cols);
          // ---- backward: fused
          auto d_sum = nan_vector<T>(n), d_x = nan_vector<T>(n);
          auto dgamma = dgamma0, dbeta = dbeta0, dbias = dbias0;
          ops->dropout_residual_layernorm_bwd(rows, cols, dy.data(), sum_ref.data(), gm, mean_ref.data(),
                                              rstd_ref.data(), p, key, layout, d_sum.data(), d_x.data(), dgamma.data(),
                                              dbeta.data(), with_bias ? dbias.data() : nullptr);
          expect_bits(d_sum, d_sum_ref, "d_sum");
          expect_bits(d_x, d_x_ref, "d_x");
          expect_bits(dgamma, dgamma_ref, "dgamma");
          expect_bits(dbeta, dbeta_ref, "dbeta");
          expect_bits(dbias, dbias_ref, "dbias");
          if (!with_ln) {  // d_sum may be left out
            auto d_x2 = nan_vector<T>(n);
            ops->dropout_residual_layernorm_bwd(rows, cols, dy.data(), nullptr, nullptr, nullptr, nullptr, p, key,
                                                layout, nullptr, d_x2.data(), nullptr, nullptr, nullptr);
            expect_bits(d_x2, d_x_ref, "d_x without d_sum");
          }
        }
}

// Same bits on 1 thread and on several (rows cut over threads, chunked column sums).
TEST(ResidualLayerNorm, SameBitsForAnyThreadCount) {
  auto ops = make_cpu_ops<float>();
  const int64_t rows = 192 * 4, cols = 512, n = rows * cols;
  const BatchLayout layout{192, 4, cols, 4, 8};
  const DropoutKey key{3, 4, 5};
  const auto x = random_vector<float>(n, 1), h = random_vector<float>(n, 2), dy = random_vector<float>(n, 3);
  const auto b = random_vector<float>(cols, 4), g = random_vector<float>(cols, 5), bt = random_vector<float>(cols, 6);
  auto run = [&] {
    std::vector<std::vector<float>> out(8);
    out[0].resize(static_cast<size_t>(n));  // sum
    out[1].resize(static_cast<size_t>(n));  // y
    out[2].resize(static_cast<size_t>(rows));
    out[3].resize(static_cast<size_t>(rows));
    out[4].resize(static_cast<size_t>(n));               // d_sum
    out[5].resize(static_cast<size_t>(n));               // d_x
    out[6].assign(static_cast<size_t>(2 * cols), 0.0f);  // dgamma | dbeta
    out[7].assign(static_cast<size_t>(cols), 0.0f);      // dbias
    ops->dropout_residual_layernorm_fwd(rows, cols, x.data(), b.data(), 0.1f, key, layout, h.data(), g.data(),
                                        bt.data(), 1e-5f, out[0].data(), out[1].data(), out[2].data(), out[3].data());
    ops->dropout_residual_layernorm_bwd(rows, cols, dy.data(), out[0].data(), g.data(), out[2].data(), out[3].data(),
                                        0.1f, key, layout, out[4].data(), out[5].data(), out[6].data(),
                                        out[6].data() + cols, out[7].data());
    return out;
  };
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = run();
  omp_set_num_threads(std::max(2, saved));
  const auto many = run();
  omp_set_num_threads(saved);
  for (size_t i = 0; i < one.size(); ++i) expect_bits(many[i], one[i], "output " + std::to_string(i));
}

TEST(ResidualLayerNorm, RejectsBadArguments) {
  auto ops = make_cpu_ops<float>();
  std::vector<float> a(12, 1.0f), b(12), g(4, 1.0f), m(3), r(3);
  const DropoutKey key{1, 2, 3};
  auto fwd = [&](float p, const BatchLayout& layout) {
    ops->dropout_residual_layernorm_fwd(3, 4, a.data(), nullptr, p, key, layout, a.data(), g.data(), g.data(), 1e-5f,
                                        b.data(), b.data(), m.data(), r.data());
  };
  EXPECT_NO_THROW(fwd(0.5f, BatchLayout{3, 1, 4, 0, 1}));
  EXPECT_NO_THROW(fwd(0.0f, BatchLayout{}));  // p == 0: the layout is not used
  EXPECT_THROW(fwd(1.0f, BatchLayout{3, 1, 4, 0, 1}), Error);
  EXPECT_THROW(fwd(-0.1f, BatchLayout{3, 1, 4, 0, 1}), Error);
  EXPECT_THROW(fwd(0.5f, BatchLayout{3, 1, 5, 0, 1}), Error);  // inner != cols
  EXPECT_THROW(fwd(0.5f, BatchLayout{1, 2, 4, 0, 2}), Error);  // outer * batch != rows
  EXPECT_THROW(fwd(0.5f, BatchLayout{3, 1, 4, 1, 1}), Error);  // window past the global batch
  EXPECT_THROW(ops->dropout_residual_layernorm_bwd(3, 4, a.data(), a.data(), g.data(), m.data(), r.data(), 0.0f, key,
                                                   BatchLayout{}, nullptr, b.data(), g.data(), g.data(), nullptr),
               Error);  // d_sum is required with a LayerNorm
}

// Loss = w . y (w . sum without LayerNorm) in double, so dy = w: every gradient of the
// backward against central differences (x through the dropout mask, residual = d_sum).
void check_gradients(const Case& k, bool with_bias, bool with_ln, float p) {
  SCOPED_TRACE(::testing::Message() << k.outer * k.batch << "x" << k.cols << (with_bias ? " bias" : "")
                                    << (with_ln ? " ln" : "") << " p=" << p);
  auto ops = make_cpu_ops<double>();
  const int64_t rows = k.outer * k.batch, cols = k.cols, n = rows * cols;
  const BatchLayout layout{k.outer, k.batch, cols, k.offset, k.global};
  const DropoutKey key{77, 5, 9};
  const auto x = random_vector<double>(n, 1, -2.0, 2.0), residual = random_vector<double>(n, 2);
  const auto bias = random_vector<double>(cols, 3), gamma = random_vector<double>(cols, 4, 0.5, 1.5);
  const auto beta = random_vector<double>(cols, 5), w = random_vector<double>(n, 6);
  const double eps = 1e-5;
  auto run = [&](const std::vector<double>& x_, const std::vector<double>& res_, const std::vector<double>& bias_,
                 const std::vector<double>& gamma_, const std::vector<double>& beta_, std::vector<double>* sum_out,
                 std::vector<double>* mean_out, std::vector<double>* rstd_out) {
    std::vector<double> sum(static_cast<size_t>(n)), y(static_cast<size_t>(n)), mean(static_cast<size_t>(rows)),
        rstd(static_cast<size_t>(rows));
    ops->dropout_residual_layernorm_fwd(rows, cols, x_.data(), with_bias ? bias_.data() : nullptr, p, key, layout,
                                        res_.data(), with_ln ? gamma_.data() : nullptr, beta_.data(), eps, sum.data(),
                                        y.data(), mean.data(), rstd.data());
    const double loss = test::dot(w, with_ln ? y : sum);
    if (sum_out) *sum_out = sum;
    if (mean_out) *mean_out = mean;
    if (rstd_out) *rstd_out = rstd;
    return loss;
  };
  std::vector<double> sum, mean, rstd;
  run(x, residual, bias, gamma, beta, &sum, &mean, &rstd);
  std::vector<double> d_sum(static_cast<size_t>(n), std::numeric_limits<double>::quiet_NaN()), d_x = d_sum;
  std::vector<double> dgamma(static_cast<size_t>(cols), 0.0), dbeta = dgamma, dbias = dgamma;
  ops->dropout_residual_layernorm_bwd(rows, cols, w.data(), sum.data(), with_ln ? gamma.data() : nullptr, mean.data(),
                                      rstd.data(), p, key, layout, d_sum.data(), d_x.data(), dgamma.data(),
                                      dbeta.data(), with_bias ? dbias.data() : nullptr);
  test::expect_gradient(
      [&](const std::vector<double>& v) { return run(v, residual, bias, gamma, beta, nullptr, nullptr, nullptr); }, x,
      d_x, "d_x");
  test::expect_gradient(
      [&](const std::vector<double>& v) { return run(x, v, bias, gamma, beta, nullptr, nullptr, nullptr); }, residual,
      d_sum, "d_sum (residual)");
  if (with_bias)
    test::expect_gradient(
        [&](const std::vector<double>& v) { return run(x, residual, v, gamma, beta, nullptr, nullptr, nullptr); }, bias,
        dbias, "dbias");
  if (with_ln) {
    test::expect_gradient(
        [&](const std::vector<double>& v) { return run(x, residual, bias, v, beta, nullptr, nullptr, nullptr); }, gamma,
        dgamma, "dgamma");
    test::expect_gradient(
        [&](const std::vector<double>& v) { return run(x, residual, bias, gamma, v, nullptr, nullptr, nullptr); }, beta,
        dbeta, "dbeta");
  }
}

TEST(ResidualLayerNormGradient, MatchesFiniteDifferences) {
  for (const Case& k : {Case{37, 1, 19, 2, 5}, Case{3, 4, 7, 1, 6}})
    for (bool with_bias : {false, true})
      for (bool with_ln : {false, true})
        for (float p : {0.0f, 0.3f}) check_gradients(k, with_bias, with_ln, p);
}

}  // namespace
}  // namespace txl
