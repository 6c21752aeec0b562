// LayerNorm forward against the formula, backward against finite differences.
#include <gtest/gtest.h>

#include "test_util.h"

namespace txl {
namespace {

using test::random_vector;

template <typename T>
class LayerNormTest : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(LayerNormTest, Types);

TYPED_TEST(LayerNormTest, ForwardMatchesFormula) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 7}, {7, 1}, {7, 33}, {160, 256}}) {
    auto x = random_vector<T>(rows * cols, 1, -2.0, 3.0);
    const auto gamma = random_vector<T>(cols, 2), beta = random_vector<T>(cols, 3);
    std::vector<T> y(x.size()), mean(static_cast<size_t>(rows)), rstd(static_cast<size_t>(rows));
    const double eps = 1e-5;
    ops->layernorm_fwd(rows, cols, x.data(), gamma.data(), beta.data(), T(eps), y.data(), mean.data(), rstd.data());
    std::vector<double> ey(y.size()), emean(mean.size()), erstd(rstd.size());
    for (int64_t r = 0; r < rows; ++r) {
      double mu = 0.0, var = 0.0;
      for (int64_t c = 0; c < cols; ++c) mu += x[static_cast<size_t>(r * cols + c)];
      mu /= cols;
      for (int64_t c = 0; c < cols; ++c) {
        const double d = x[static_cast<size_t>(r * cols + c)] - mu;
        var += d * d;
      }
      var /= cols;
      emean[static_cast<size_t>(r)] = mu;
      erstd[static_cast<size_t>(r)] = 1.0 / std::sqrt(var + eps);
      for (int64_t c = 0; c < cols; ++c) {
        const size_t i = static_cast<size_t>(r * cols + c);
        ey[i] = (x[i] - mu) / std::sqrt(var + eps) * gamma[static_cast<size_t>(c)] + beta[static_cast<size_t>(c)];
      }
    }
    SCOPED_TRACE(::testing::Message() << rows << "x" << cols);
    test::expect_close(y, ey, 10 * test::tolerance<T>(), "y");
    test::expect_close(mean, emean, 10 * test::tolerance<T>(), "mean");
    test::expect_close(rstd, erstd, 10 * test::tolerance<T>(), "rstd");
  }
}

// Loss = sum(w * layernorm(x; gamma, beta)); dgamma and dbeta accumulate onto random
// starting values, dx is overwritten (poisoned with NaN first).
// `max_coords` > 0 checks an evenly spaced sample of at most that many coordinates per
// input (large shapes).
void check_layernorm_backward(int64_t rows, int64_t cols, int64_t max_coords = 0) {
  SCOPED_TRACE(::testing::Message() << rows << "x" << cols);
  auto ops = make_cpu_ops<double>();
  const auto x = random_vector<double>(rows * cols, 4, -2.0, 2.0);
  const auto gamma = random_vector<double>(cols, 5), beta = random_vector<double>(cols, 6);
  const auto w = random_vector<double>(rows * cols, 7);
  const double eps = 1e-5;
  auto forward = [&](const std::vector<double>& in, const std::vector<double>& g, const std::vector<double>& b) {
    std::vector<double> y(in.size()), mean(static_cast<size_t>(rows)), rstd(static_cast<size_t>(rows));
    ops->layernorm_fwd(rows, cols, in.data(), g.data(), b.data(), eps, y.data(), mean.data(), rstd.data());
    return test::dot(w, y);
  };
  std::vector<double> y(x.size()), mean(static_cast<size_t>(rows)), rstd(static_cast<size_t>(rows));
  ops->layernorm_fwd(rows, cols, x.data(), gamma.data(), beta.data(), eps, y.data(), mean.data(), rstd.data());
  std::vector<double> dx(x.size(), std::numeric_limits<double>::quiet_NaN());
  const auto dgamma0 = random_vector<double>(cols, 8), dbeta0 = random_vector<double>(cols, 9);
  auto dgamma = dgamma0, dbeta = dbeta0;
  ops->layernorm_bwd(rows, cols, w.data(), x.data(), gamma.data(), mean.data(), rstd.data(), dx.data(),
                     dgamma.data(), dbeta.data());
  for (size_t c = 0; c < dgamma.size(); ++c) {
    dgamma[c] -= dgamma0[c];
    dbeta[c] -= dbeta0[c];
  }
  auto sample = [&](int64_t n) {
    std::vector<int64_t> coords;
    const int64_t step = max_coords > 0 ? std::max<int64_t>(1, n / max_coords) : 1;
    for (int64_t i = 0; i < n; i += step) coords.push_back(i);
    return coords;
  };
  test::expect_gradient([&](const std::vector<double>& in) { return forward(in, gamma, beta); }, x, dx, "dx", 1e-6,
                        sample(rows * cols));
  test::expect_gradient([&](const std::vector<double>& g) { return forward(x, g, beta); }, gamma, dgamma, "dgamma",
                        1e-6, sample(cols));
  test::expect_gradient([&](const std::vector<double>& b) { return forward(x, gamma, b); }, beta, dbeta, "dbeta",
                        1e-6, sample(cols));
}

TEST(LayerNormGradient, SmallShapes) {
  check_layernorm_backward(1, 7);
  check_layernorm_backward(7, 33);
  check_layernorm_backward(3, 3);  // (2 columns: y = ±gamma + beta, gradient ~0)
}

// Large enough for the multi-threaded paths; checked on a sample of coordinates (each
// finite difference is a threaded forward pass, slow when the cores are shared).
TEST(LayerNormGradient, ThreadedShape) { check_layernorm_backward(160, 256, 40); }

}  // namespace
}  // namespace txl
