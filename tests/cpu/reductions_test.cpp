// Host reductions: accumulated in double, independent of the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include "test_util.h"

namespace txl {
namespace {

using test::random_vector;

TEST(Reductions, SumAndSumSquaresMatchDoubleLoops) {
  auto ops = make_cpu_ops<float>();
  for (int64_t n : {0, 1, 7, 33, 100003}) {
    const auto x = random_vector<float>(n, 1, -1.0, 3.0);
    double s = 0.0, ss = 0.0;
    for (float v : x) {
      s += v;
      ss += static_cast<double>(v) * v;
    }
    EXPECT_NEAR(ops->sum(x.data(), n), s, 1e-12 * std::max(1.0, std::abs(s))) << n;
    EXPECT_NEAR(ops->sum_squares(x.data(), n), ss, 1e-12 * std::max(1.0, ss)) << n;
  }
  // A float accumulator would lose these: 2^24 + many ones.
  std::vector<float> big(100001, 1.0f);
  big[0] = 16777216.0f;
  EXPECT_EQ(ops->sum(big.data(), static_cast<int64_t>(big.size())), 16777216.0 + 100000.0);
}

TEST(Reductions, SliceSumSquares) {
  auto ops = make_cpu_ops<double>();
  const auto x = random_vector<double>(60000, 2);
  const std::vector<FlatSlice> slices = {{0, 5}, {5, 0}, {5, 40000}, {40005, 19995}, {100, 3}};
  const auto result = ops->sum_squares_slices(x.data(), slices);
  ASSERT_EQ(result.size(), slices.size());
  for (size_t s = 0; s < slices.size(); ++s) {
    double expected = 0.0;
    for (int64_t i = slices[s].offset; i < slices[s].offset + slices[s].numel; ++i)
      expected += x[static_cast<size_t>(i)] * x[static_cast<size_t>(i)];
    EXPECT_NEAR(result[s], expected, 1e-12 * std::max(1.0, expected)) << "slice " << s;
  }
  EXPECT_EQ(result[1], 0.0);
}

TEST(Reductions, SameBitsForAnyThreadCount) {
  auto ops = make_cpu_ops<float>();
  const auto x = random_vector<float>(300007, 3);
  const std::vector<FlatSlice> slices = {{0, 150000}, {150000, 150007}};
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const double s1 = ops->sum(x.data(), 300007), q1 = ops->sum_squares(x.data(), 300007);
  const auto sl1 = ops->sum_squares_slices(x.data(), slices);
  omp_set_num_threads(std::max(2, saved));
  const double s2 = ops->sum(x.data(), 300007), q2 = ops->sum_squares(x.data(), 300007);
  const auto sl2 = ops->sum_squares_slices(x.data(), slices);
  omp_set_num_threads(saved);
  EXPECT_EQ(s1, s2);
  EXPECT_EQ(q1, q2);
  EXPECT_EQ(sl1, sl2);
}

}  // namespace
}  // namespace txl
