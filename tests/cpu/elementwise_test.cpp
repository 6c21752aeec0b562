// Elementwise ops (bias, axpy/scale/add, ReLU, fill) and dropout.
#include <gtest/gtest.h>

#include "test_util.h"

namespace txl {
namespace {

using test::random_vector;

template <typename T>
class ElementwiseTest : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(ElementwiseTest, Types);

TYPED_TEST(ElementwiseTest, BiasAxpyScaleAddFillMatchLoops) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  EXPECT_STREQ(ops->name(), (std::is_same_v<T, float> ? "cpu-float" : "cpu-double"));
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {7, 33}, {300, 129}}) {
    const int64_t n = rows * cols;
    const auto x = random_vector<T>(n, 1), bias = random_vector<T>(cols, 2), y0 = random_vector<T>(n, 3);

    auto y = y0;
    ops->add_bias(y.data(), bias.data(), rows, cols);
    std::vector<double> expected(y0.begin(), y0.end());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) expected[static_cast<size_t>(r * cols + c)] += bias[static_cast<size_t>(c)];
    test::expect_close(y, expected, test::tolerance<T>(), "add_bias");

    auto dbias = bias;  // accumulates
    ops->bias_grad(x.data(), dbias.data(), rows, cols);
    std::vector<double> expected_db(bias.begin(), bias.end());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) expected_db[static_cast<size_t>(c)] += x[static_cast<size_t>(r * cols + c)];
    test::expect_close(dbias, expected_db, 10 * test::tolerance<T>(), "bias_grad");

    y = y0;
    ops->axpy(n, T(-0.5), x.data(), y.data());
    for (size_t i = 0; i < y.size(); ++i) expected[i] = static_cast<double>(y0[i]) - 0.5 * x[i];
    test::expect_close(y, expected, test::tolerance<T>(), "axpy");

    y = y0;
    ops->scale(n, T(3), y.data());
    for (size_t i = 0; i < y.size(); ++i) expected[i] = 3.0 * y0[i];
    test::expect_close(y, expected, test::tolerance<T>(), "scale");

    y = y0;
    ops->add(n, x.data(), y.data(), y.data());  // aliased output
    for (size_t i = 0; i < y.size(); ++i) expected[i] = static_cast<double>(x[i]) + y0[i];
    test::expect_close(y, expected, test::tolerance<T>(), "add");

    ops->fill(y.data(), n, T(2.5));
    for (T v : y) ASSERT_EQ(v, T(2.5));
  }
}

TYPED_TEST(ElementwiseTest, Relu) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  for (int64_t n : {1, 7, 33, 100000}) {
    const auto x = random_vector<T>(n, 5), dy = random_vector<T>(n, 6);
    std::vector<T> y(x.size()), dx(x.size());
    ops->relu_fwd(n, x.data(), y.data());
    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], x[i] > 0 ? x[i] : T(0));
    ops->relu_bwd(n, y.data(), dy.data(), dx.data());
    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(dx[i], x[i] > 0 ? dy[i] : T(0));
    auto inplace = x;
    ops->relu_fwd(n, inplace.data(), inplace.data());
    EXPECT_EQ(inplace, y);
  }
}

TEST(ElementwiseGradient, ReluBackwardMatchesFiniteDifferences) {
  auto ops = make_cpu_ops<double>();
  const int64_t n = 41;
  auto x = random_vector<double>(n, 9, 0.1, 1.0);  // keep |x| >= 0.1: no kink within h
  for (size_t i = 0; i < x.size(); i += 2) x[i] = -x[i];
  const auto w = random_vector<double>(n, 10);
  auto loss = [&](const std::vector<double>& in) {
    std::vector<double> y(in.size());
    ops->relu_fwd(n, in.data(), y.data());
    return test::dot(w, y);
  };
  std::vector<double> y(x.size()), dx(x.size());
  ops->relu_fwd(n, x.data(), y.data());
  ops->relu_bwd(n, y.data(), w.data(), dx.data());
  test::expect_gradient(loss, x, dx, "relu dx");
}

TEST(ElementwiseGradient, BiasGradMatchesFiniteDifferences) {
  auto ops = make_cpu_ops<double>();
  const int64_t rows = 9, cols = 7;
  const auto bias = random_vector<double>(cols, 11), w = random_vector<double>(rows * cols, 12);
  const auto y0 = random_vector<double>(rows * cols, 13);
  auto loss = [&](const std::vector<double>& b) {
    auto y = y0;
    ops->add_bias(y.data(), b.data(), rows, cols);
    return test::dot(w, y);
  };
  std::vector<double> dbias(cols, 0.0);
  ops->bias_grad(w.data(), dbias.data(), rows, cols);
  test::expect_gradient(loss, bias, dbias, "dbias");
}

// ---- dropout -------------------------------------------------------------------------

TYPED_TEST(ElementwiseTest, DropoutMatchesPhiloxKeepExactly) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  const DropoutKey key{0x1234567890abcdefull, 77, 5};
  const BatchLayout layout{7, 3, 33, 2, 9};  // streams 2..4 of 9
  const int64_t n = layout.outer * layout.batch * layout.inner;
  auto x = random_vector<T>(n, 21);
  for (int64_t i = 0; i < n; i += 17) x[static_cast<size_t>(i)] = std::numeric_limits<T>::infinity();
  for (int64_t i = 5; i < n; i += 23) x[static_cast<size_t>(i)] = -std::numeric_limits<T>::infinity();
  std::vector<T> y(x.size());
  const float p = 0.25f;
  ops->dropout(x.data(), y.data(), p, key, layout);
  const T multiplier = T(1) / (T(1) - T(p));
  for (int64_t i = 0; i < n; ++i) {
    const T expected = dropout_keep(key, layout, i, p) ? x[static_cast<size_t>(i)] * multiplier : T(0);
    ASSERT_EQ(y[static_cast<size_t>(i)], expected) << "element " << i;  // dropped infinities give 0
  }
  std::vector<T> again(x.size());
  ops->dropout(x.data(), again.data(), p, key, layout);
  EXPECT_EQ(again, y) << "dropout is not deterministic";
  auto inplace = x;
  ops->dropout(inplace.data(), inplace.data(), p, key, layout);
  EXPECT_EQ(inplace, y) << "in-place dropout differs";
  DropoutKey other = key;
  other.step += 1;
  ops->dropout(x.data(), again.data(), p, other, layout);
  EXPECT_NE(again, y) << "another step gave the same mask";
}

// The feed-forward activation ops give exactly the bits of the op sequences they replace
// (add_bias, relu_fwd, dropout; dropout, relu_bwd), in place too, with a batch window
// and rows longer than one philox chunk.
TYPED_TEST(ElementwiseTest, BiasReluDropoutEqualsTheOpSequence) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  const DropoutKey key{0x0123456789abcdefull, 91, 7};
  for (const BatchLayout& layout : {BatchLayout{7, 3, 33, 2, 9}, BatchLayout{3, 2, 600, 0, 2}, BatchLayout{1, 1, 1, 0, 1}})
    for (float p : {0.0f, 0.3f}) {
      SCOPED_TRACE(::testing::Message() << "inner " << layout.inner << " p " << p);
      const int64_t rows = layout.outer * layout.batch, n = rows * layout.inner;
      const auto x = random_vector<T>(n, 31), bias = random_vector<T>(layout.inner, 32);
      auto expected = x;
      ops->add_bias(expected.data(), bias.data(), rows, layout.inner);
      ops->relu_fwd(n, expected.data(), expected.data());
      ops->dropout(expected.data(), expected.data(), p, key, layout);
      std::vector<T> y(x.size(), std::numeric_limits<T>::quiet_NaN());
      ops->bias_relu_dropout(x.data(), bias.data(), p, key, layout, y.data());
      EXPECT_EQ(y, expected);
      auto inplace = x;
      ops->bias_relu_dropout(inplace.data(), bias.data(), p, key, layout, inplace.data());
      EXPECT_EQ(inplace, expected);
      // backward: dropout(dy) then relu_bwd against the output
      const auto dy = random_vector<T>(n, 33);
      auto expected_dx = dy;
      ops->dropout(expected_dx.data(), expected_dx.data(), p, key, layout);
      ops->relu_bwd(n, y.data(), expected_dx.data(), expected_dx.data());
      std::vector<T> dx(x.size(), std::numeric_limits<T>::quiet_NaN());
      ops->relu_dropout_bwd(n, y.data(), dy.data(), p, dx.data());
      EXPECT_EQ(dx, expected_dx);
      auto dx_inplace = dy;
      ops->relu_dropout_bwd(n, y.data(), dx_inplace.data(), p, dx_inplace.data());
      EXPECT_EQ(dx_inplace, expected_dx);
    }
  std::vector<T> v(4);
  EXPECT_THROW(ops->relu_dropout_bwd(4, v.data(), v.data(), 1.0f, v.data()), Error);
  EXPECT_THROW(ops->bias_relu_dropout(v.data(), v.data(), 0.5f, key, BatchLayout{1, 2, 2, 1, 2}, v.data()), Error);
}

TEST(Dropout, DropFractionAndScaling) {
  auto ops = make_cpu_ops<float>();
  const BatchLayout layout{64, 16, 1024, 0, 16};  // 2^20 elements
  const int64_t n = layout.outer * layout.batch * layout.inner;
  const std::vector<float> ones(static_cast<size_t>(n), 1.0f);
  std::vector<float> y(ones.size());
  for (float p : {0.1f, 0.3f, 0.6f}) {
    ops->dropout(ones.data(), y.data(), p, DropoutKey{42, 3, 1}, layout);
    int64_t dropped = 0;
    double total = 0.0;
    for (float v : y) {
      if (v == 0.0f) {
        ++dropped;
      } else {
        ASSERT_EQ(v, 1.0f / (1.0f - p));
      }
      total += v;
    }
    // Binomial standard deviation is below 5e-4 here; allow about 6 of them.
    EXPECT_NEAR(static_cast<double>(dropped) / n, p, 3e-3) << "p=" << p;
    EXPECT_NEAR(total / n, 1.0, 5e-3) << "expectation not preserved, p=" << p;
  }
}

TEST(Dropout, ZeroProbabilityCopies) {
  auto ops = make_cpu_ops<double>();
  const BatchLayout layout{3, 2, 5, 0, 2};
  const auto x = random_vector<double>(30, 3);
  std::vector<double> y(30, -7.0);
  ops->dropout(x.data(), y.data(), 0.0f, DropoutKey{1, 1, 1}, layout);
  EXPECT_EQ(y, x);
  auto inplace = x;
  ops->dropout(inplace.data(), inplace.data(), 0.0f, DropoutKey{1, 1, 1}, layout);
  EXPECT_EQ(inplace, x);
  EXPECT_THROW(ops->dropout(x.data(), y.data(), 1.0f, DropoutKey{}, layout), Error);
  EXPECT_THROW(ops->dropout(x.data(), y.data(), -0.1f, DropoutKey{}, layout), Error);
}

// Splitting the batch axis (two ranks or two chunks, BatchLayout offsets) gives the same
// mask as one whole batch.
TEST(Dropout, SameMaskWhenBatchIsSplit) {
  auto ops = make_cpu_ops<float>();
  const int64_t outer = 6, batch = 8, inner = 13, half = 3;  // uneven split 3 + 5
  const auto x = random_vector<float>(outer * batch * inner, 4);
  const DropoutKey key{99, 12, 7};
  std::vector<float> whole(x.size());
  ops->dropout(x.data(), whole.data(), 0.4f, key, BatchLayout{outer, batch, inner, 0, batch});
  for (auto [offset, count] : {std::pair<int64_t, int64_t>{0, half}, {half, batch - half}}) {
    std::vector<float> part_x, part_y(static_cast<size_t>(outer * count * inner));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t b = offset; b < offset + count; ++b)
        for (int64_t i = 0; i < inner; ++i) part_x.push_back(x[static_cast<size_t>((o * batch + b) * inner + i)]);
    ops->dropout(part_x.data(), part_y.data(), 0.4f, key, BatchLayout{outer, count, inner, offset, batch});
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t b = 0; b < count; ++b)
        for (int64_t i = 0; i < inner; ++i)
          ASSERT_EQ(part_y[static_cast<size_t>((o * count + b) * inner + i)],
                    whole[static_cast<size_t>((o * batch + b + offset) * inner + i)]);
  }
}

// Dropout is linear in x with a fixed mask, so with the same key it is its own backward.
TEST(Dropout, IsItsOwnBackward) {
  auto ops = make_cpu_ops<double>();
  const BatchLayout layout{4, 3, 7, 1, 5};
  const int64_t n = 84;
  const DropoutKey key{5, 6, 7};
  const auto x = random_vector<double>(n, 1), w = random_vector<double>(n, 2);
  auto loss = [&](const std::vector<double>& in) {
    std::vector<double> y(in.size());
    ops->dropout(in.data(), y.data(), 0.3f, key, layout);
    return test::dot(w, y);
  };
  std::vector<double> dx(x.size());
  ops->dropout(w.data(), dx.data(), 0.3f, key, layout);
  test::expect_gradient(loss, x, dx, "dropout dx");
}

}  // namespace
}  // namespace txl
