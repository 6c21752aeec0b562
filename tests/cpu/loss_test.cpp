// Row gather/scatter and log-softmax / pick / their backward.
#include <gtest/gtest.h>

#include "test_util.h"

namespace txl {
namespace {

using test::random_vector;

template <typename T>
class LossTest : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(LossTest, Types);

size_t at(int64_t i) { return static_cast<size_t>(i); }

TYPED_TEST(LossTest, GatherScatterMatchLoops) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  for (auto [table_rows, n, cols] :
       {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {10, 7, 33}, {50, 400, 130}}) {
    const auto table = random_vector<T>(table_rows * cols, 1);
    const auto idx = test::random_indices(n, static_cast<int32_t>(table_rows), 2);  // repeats
    std::vector<T> rows(at(n * cols));
    ops->gather_rows(table.data(), idx.data(), n, cols, rows.data());
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(rows[at(r * cols + c)], table[at(idx[at(r)] * cols + c)]);

    auto acc = table;
    ops->scatter_add_rows(rows.data(), idx.data(), n, cols, acc.data());
    std::vector<double> expected(table.begin(), table.end());
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < cols; ++c) expected[at(idx[at(r)] * cols + c)] += rows[at(r * cols + c)];
    test::expect_close(acc, expected, 10 * test::tolerance<T>(), "scatter_add_rows");

    // scatter_rows with unique indices: a permutation of the first rows.
    std::vector<int32_t> perm;
    for (int64_t r = 0; r < table_rows; ++r) perm.push_back(static_cast<int32_t>((r * 7 + 3) % table_rows));
    if (table_rows % 7 == 0) continue;  // (r*7+3) mod rows is a permutation only when gcd(7, rows) == 1
    auto scattered = random_vector<T>(table_rows * cols, 3);
    ops->scatter_rows(table.data(), perm.data(), table_rows, cols, scattered.data());
    for (int64_t r = 0; r < table_rows; ++r)
      for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(scattered[at(perm[at(r)] * cols + c)], table[at(r * cols + c)]);
  }
}

// scatter_add_rows is the adjoint of gather_rows (the embedding backward).
TEST(LossGradient, ScatterAddIsGatherAdjoint) {
  auto ops = make_cpu_ops<double>();
  const int64_t table_rows = 6, n = 11, cols = 5;
  const auto table = random_vector<double>(table_rows * cols, 4);
  const auto idx = test::random_indices(n, static_cast<int32_t>(table_rows), 5);
  const auto w = random_vector<double>(n * cols, 6);
  auto loss = [&](const std::vector<double>& t) {
    std::vector<double> rows(at(n * cols));
    ops->gather_rows(t.data(), idx.data(), n, cols, rows.data());
    return test::dot(w, rows);
  };
  std::vector<double> dtable(table.size(), 0.0);
  ops->scatter_add_rows(w.data(), idx.data(), n, cols, dtable.data());
  test::expect_gradient(loss, table, dtable, "dtable");
}

TYPED_TEST(LossTest, LogSoftmaxAndPick) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {7, 33}, {64, 1000}})
    for (double offset : {0.0, 5000.0}) {  // large logits: the max must be subtracted
      auto logits = random_vector<T>(rows * cols, 7, -4.0, 4.0);
      for (T& l : logits) l += T(offset);
      std::vector<T> logp(logits.size());
      ops->log_softmax(logits.data(), rows, cols, logp.data());
      std::vector<double> expected(logp.size());
      for (int64_t r = 0; r < rows; ++r) {
        double max = -std::numeric_limits<double>::infinity(), total = 0.0;
        for (int64_t c = 0; c < cols; ++c) max = std::max(max, static_cast<double>(logits[at(r * cols + c)]));
        for (int64_t c = 0; c < cols; ++c) total += std::exp(logits[at(r * cols + c)] - max);
        for (int64_t c = 0; c < cols; ++c) expected[at(r * cols + c)] = logits[at(r * cols + c)] - max - std::log(total);
      }
      test::expect_close(logp, expected, 20 * test::tolerance<T>(), "logp");
      auto inplace = logits;
      ops->log_softmax(inplace.data(), rows, cols, inplace.data());
      EXPECT_EQ(inplace, logp);

      std::vector<int32_t> col = test::random_indices(rows, static_cast<int32_t>(cols), 8);
      col[0] = -1;  // absent term
      std::vector<T> out(at(rows), T(123)), acc = random_vector<T>(rows, 9);
      const auto acc0 = acc;
      ops->pick_cols(logp.data(), col.data(), rows, cols, false, out.data());
      ops->pick_cols(logp.data(), col.data(), rows, cols, true, acc.data());
      for (int64_t r = 0; r < rows; ++r) {
        const T picked = col[at(r)] < 0 ? T(0) : logp[at(r * cols + col[at(r)])];
        ASSERT_EQ(out[at(r)], picked);
        ASSERT_EQ(acc[at(r)], acc0[at(r)] + picked);
      }
    }
}

TEST(LossGradient, LogSoftmaxPickBackwardMatchesFiniteDifferences) {
  auto ops = make_cpu_ops<double>();
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 2}, {7, 33}, {4, 1}}) {
    const auto logits = random_vector<double>(rows * cols, 10, -3.0, 3.0);
    auto col = test::random_indices(rows, static_cast<int32_t>(cols), 11);
    if (rows > 2) col[1] = -1;
    const auto coef = random_vector<double>(rows, 12, 0.5, 2.0);
    auto loss = [&](const std::vector<double>& l) {
      std::vector<double> logp(l.size()), picked(at(rows));
      ops->log_softmax(l.data(), rows, cols, logp.data());
      ops->pick_cols(logp.data(), col.data(), rows, cols, false, picked.data());
      return test::dot(coef, picked);
    };
    std::vector<double> logp(logits.size()), dlogits(logits.size(), std::numeric_limits<double>::quiet_NaN());
    ops->log_softmax(logits.data(), rows, cols, logp.data());
    ops->log_softmax_pick_bwd(logp.data(), col.data(), coef.data(), rows, cols, dlogits.data());
    if (cols == 1) {  // log_softmax of one logit is constant 0: zero gradient
      for (double d : dlogits) EXPECT_NEAR(d, 0.0, 1e-15);
      continue;
    }
    test::expect_gradient(loss, logits, dlogits, "dlogits");
    if (rows > 2) {
      for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(dlogits[at(cols + c)], 0.0) << "absent row not zeroed";
    }
  }
}

// The loss head's fused op against the op sequence it replaces (add_bias, log_softmax,
// pick_cols; log_softmax_pick_bwd): rows wider than its 1024-element chunks, with and
// without a bias, an absent term, accumulation; the logits stay untouched.
TYPED_TEST(LossTest, BiasedLogSoftmaxPickMatchesTheUnfusedOps) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-14;
  uint64_t seed = 40;
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {7, 33}, {5, 3000}, {3, 1024}})
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(::testing::Message() << rows << "x" << cols << " bias " << with_bias);
      const auto logits = random_vector<T>(rows * cols, ++seed, -4.0, 4.0);
      const auto bias = random_vector<T>(cols, ++seed, -2.0, 2.0);
      auto col = test::random_indices(rows, static_cast<int32_t>(cols), ++seed);
      if (rows > 2) col[1] = -1;
      const auto coef = random_vector<T>(rows, ++seed, 0.5, 2.0);
      // unfused
      std::vector<T> logp = logits;
      if (with_bias) ops->add_bias(logp.data(), bias.data(), rows, cols);
      ops->log_softmax(logp.data(), rows, cols, logp.data());
      std::vector<T> expected(at(rows)), expected_acc = random_vector<T>(rows, ++seed);
      const auto acc0 = expected_acc;
      ops->pick_cols(logp.data(), col.data(), rows, cols, false, expected.data());
      ops->pick_cols(logp.data(), col.data(), rows, cols, true, expected_acc.data());
      std::vector<T> expected_d(logits.size());
      ops->log_softmax_pick_bwd(logp.data(), col.data(), coef.data(), rows, cols, expected_d.data());
      // fused
      const T* b = with_bias ? bias.data() : nullptr;
      const auto untouched = logits;
      std::vector<T> out(at(rows), std::numeric_limits<T>::quiet_NaN()), lse(at(rows)), acc = acc0;
      ops->biased_log_softmax_pick(logits.data(), b, col.data(), rows, cols, false, out.data(), lse.data());
      ops->biased_log_softmax_pick(logits.data(), b, col.data(), rows, cols, true, acc.data(), lse.data());
      EXPECT_EQ(logits, untouched);
      test::expect_close(out, std::vector<double>(expected.begin(), expected.end()), tol, "picked");
      test::expect_close(acc, std::vector<double>(expected_acc.begin(), expected_acc.end()), tol, "accumulated");
      for (int64_t r = 0; r < rows; ++r)  // lse is what log_softmax subtracted
        EXPECT_NEAR(static_cast<double>(lse[at(r)]),
                    static_cast<double>((with_bias ? logits[at(r * cols)] + bias[0] : logits[at(r * cols)]) -
                                        logp[at(r * cols)]),
                    1e3 * tol);
      std::vector<T> d(logits.size(), std::numeric_limits<T>::quiet_NaN());
      ops->biased_log_softmax_pick_bwd(logits.data(), b, lse.data(), col.data(), coef.data(), rows, cols, d.data());
      test::expect_close(d, std::vector<double>(expected_d.begin(), expected_d.end()), 10 * tol, "dlogits");
      if (rows > 2) {
        for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(d[at(cols + c)], T(0)) << "absent row not zeroed";
      }
    }
}

TEST(LossGradient, BiasedLogSoftmaxPickBackwardMatchesFiniteDifferences) {
  auto ops = make_cpu_ops<double>();
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 2}, {6, 1500}}) {
    const auto logits = random_vector<double>(rows * cols, 50, -3.0, 3.0);
    const auto bias = random_vector<double>(cols, 51, -1.0, 1.0);
    auto col = test::random_indices(rows, static_cast<int32_t>(cols), 52);
    if (rows > 2) col[1] = -1;
    const auto coef = random_vector<double>(rows, 53, 0.5, 2.0);
    std::vector<double> lse(at(rows));
    auto loss = [&](const std::vector<double>& l) {
      std::vector<double> picked(at(rows)), scratch_lse(at(rows));
      ops->biased_log_softmax_pick(l.data(), bias.data(), col.data(), rows, cols, false, picked.data(),
                                   scratch_lse.data());
      return test::dot(coef, picked);
    };
    std::vector<double> picked(at(rows)), dlogits(logits.size());
    ops->biased_log_softmax_pick(logits.data(), bias.data(), col.data(), rows, cols, false, picked.data(), lse.data());
    ops->biased_log_softmax_pick_bwd(logits.data(), bias.data(), lse.data(), col.data(), coef.data(), rows, cols,
                                     dlogits.data());
    test::expect_gradient(loss, logits, dlogits, "dlogits");
  }
}

TEST(LossErrors, BiasedLogSoftmaxPickRejectsRowsWithoutColumns) {
  auto ops = make_cpu_ops<float>();
  std::vector<float> x(4), out(2), lse(2);
  std::vector<int32_t> col(2, 0);
  EXPECT_THROW(ops->biased_log_softmax_pick(x.data(), nullptr, col.data(), 2, 0, false, out.data(), lse.data()),
               Error);
}

}  // namespace
}  // namespace txl
