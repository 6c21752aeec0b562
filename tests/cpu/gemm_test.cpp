// GEMM and strided batched GEMM against a naive triple loop: all transpose
// combinations, leading dimensions larger than the row width, beta 0 (C poisoned with
// NaN, which must not be read) and beta != 0; the shapes gemm.cpp cuts into panels
// (with a remainder panel, by columns and by rows) and into k-slices, and the skinny
// shapes src/cpu/skinny_gemm.cpp takes; the same bits for one and two threads.
#include <gtest/gtest.h>
#include <omp.h>

#include "test_util.h"

namespace txl {
namespace {

using test::random_vector;

struct GemmShape {
  int64_t m, n, k;
};
const GemmShape kShapes[] = {{1, 1, 1}, {7, 5, 3}, {1, 33, 7}, {33, 17, 9}, {64, 48, 40}, {130, 70, 90}};

// Stored matrix of op(X) [rows x cols]: kNo stores rows x cols, kYes stores cols x rows.
struct Stored {
  int64_t rows, cols, ld;
};
Stored stored(Trans t, int64_t rows, int64_t cols) {
  const int64_t r = t == Trans::kNo ? rows : cols, c = t == Trans::kNo ? cols : rows;
  return {r, c, c + 3};
}

template <typename T>
T element(const std::vector<T>& x, const Stored& s, Trans t, int64_t i, int64_t j, int64_t offset = 0) {
  return t == Trans::kNo ? x[static_cast<size_t>(offset + i * s.ld + j)] : x[static_cast<size_t>(offset + j * s.ld + i)];
}

// C_ref = alpha op(A) op(B) + beta C (beta == 0: C ignored), in double.
template <typename T>
std::vector<double> reference(Trans ta, Trans tb, const GemmShape& g, double alpha, const std::vector<T>& A,
                              const Stored& sa, int64_t offset_a, const std::vector<T>& B, const Stored& sb,
                              int64_t offset_b, double beta, const std::vector<T>& C, int64_t ldc, int64_t offset_c) {
  std::vector<double> out(C.begin(), C.end());
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; p < g.k; ++p)
        acc += static_cast<double>(element(A, sa, ta, i, p, offset_a)) * element(B, sb, tb, p, j, offset_b);
      const size_t c = static_cast<size_t>(offset_c + i * ldc + j);
      out[c] = alpha * acc + (beta == 0.0 ? 0.0 : beta * static_cast<double>(C[c]));
    }
  return out;
}

template <typename T>
class GemmTest : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(GemmTest, Types);

// Every transpose combination and beta of one shape against the reference; C has padding
// (ldc > n) and, for beta 0, a product area poisoned with NaN.
template <typename T>
void expect_all_transposes_match(Ops<T>& ops, const GemmShape& g, uint64_t& seed, double tol) {
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (Trans ta : {Trans::kNo, Trans::kYes})
    for (Trans tb : {Trans::kNo, Trans::kYes})
      for (double beta : {0.0, 1.0, -0.5}) {
        const Stored sa = stored(ta, g.m, g.k), sb = stored(tb, g.k, g.n);
        const int64_t ldc = g.n + 5;
        const auto A = random_vector<T>(sa.rows * sa.ld, ++seed);
        const auto B = random_vector<T>(sb.rows * sb.ld, ++seed);
        auto C = random_vector<T>(g.m * ldc, ++seed);
        if (beta == 0.0)  // poison the product area; the padding keeps its random values
          for (int64_t i = 0; i < g.m; ++i)
            for (int64_t j = 0; j < g.n; ++j) C[static_cast<size_t>(i * ldc + j)] = nan;
        const double alpha = 0.75;
        const auto expected = reference(ta, tb, g, alpha, A, sa, 0, B, sb, 0, beta, C, ldc, 0);
        ops.gemm(ta, tb, g.m, g.n, g.k, T(alpha), A.data(), sa.ld, B.data(), sb.ld, T(beta), C.data(), ldc);
        SCOPED_TRACE(::testing::Message() << "m=" << g.m << " n=" << g.n << " k=" << g.k << " ta="
                                          << (ta == Trans::kYes) << " tb=" << (tb == Trans::kYes)
                                          << " beta=" << beta);
        test::expect_close(C, expected, tol, "C");
      }
}

TYPED_TEST(GemmTest, AllTransposesAndBetas) {
  auto ops = make_cpu_ops<TypeParam>();
  uint64_t seed = 1;
  for (const GemmShape& g : kShapes) expect_all_transposes_match(*ops, g, seed, 10 * test::tolerance<TypeParam>());
}

// Shapes that src/cpu/gemm.cpp cuts: into column panels (n = 549), row panels (m = 600),
// and k-slices (min(m, n) <= 64, max(m, n) <= 1024, k >= 8·4096).
TYPED_TEST(GemmTest, PanelsAndSlicesAllTransposesAndBetas) {
  auto ops = make_cpu_ops<TypeParam>();
  uint64_t seed = 50;
  for (const GemmShape& g : {GemmShape{3, 549, 20}, GemmShape{600, 5, 9}, GemmShape{300, 270, 6}})
    expect_all_transposes_match(*ops, g, seed, 10 * test::tolerance<TypeParam>());
  // 32868-long sums: the float rounding grows with k
  expect_all_transposes_match(*ops, GemmShape{5, 70, 8 * 4096 + 100}, seed, 200 * test::tolerance<TypeParam>());
}

// Shapes that src/cpu/skinny_gemm.cpp takes (the adaptive softmax's tail clusters): NT
// with few rows and many columns, NN with few rows and a long k, TN with a short k and many
// rows. The sizes leave remainders everywhere: rows past the register tiles, columns past
// the packet tiles, k past the last full packet, rows past the last row block.
TYPED_TEST(GemmTest, SkinnyShapesAllTransposesAndBetas) {
  auto ops = make_cpu_ops<TypeParam>();
  uint64_t seed = 60;
  for (const GemmShape& g : {GemmShape{7, 1030, 37}, GemmShape{30, 1029, 64}, GemmShape{1, 1024, 5},
                             GemmShape{1031, 70, 30}, GemmShape{1100, 40, 3}})
    expect_all_transposes_match(*ops, g, seed, 10 * test::tolerance<TypeParam>());
  expect_all_transposes_match(*ops, GemmShape{13, 70, 4096 + 77}, seed, 100 * test::tolerance<TypeParam>());
}

// The skinny kernels give the same bits on one thread and on two, each transpose they take.
TEST(Gemm, SkinnySameBitsForOneAndTwoThreads) {
  auto ops = make_cpu_ops<float>();
  const int saved = omp_get_max_threads();
  uint64_t seed = 80;
  struct Case {
    Trans ta, tb;
    GemmShape g;
  };
  for (const Case& c : {Case{Trans::kNo, Trans::kYes, {30, 5000, 512}}, Case{Trans::kNo, Trans::kNo, {30, 520, 40000}},
                        Case{Trans::kYes, Trans::kNo, {5000, 520, 30}}}) {
    const GemmShape& g = c.g;
    const Stored sa = stored(c.ta, g.m, g.k), sb = stored(c.tb, g.k, g.n);
    const auto A = random_vector<float>(sa.rows * sa.ld, ++seed), B = random_vector<float>(sb.rows * sb.ld, ++seed);
    const auto C0 = random_vector<float>(g.m * g.n, ++seed);
    std::vector<float> one = C0, two = C0;
    omp_set_num_threads(1);
    ops->gemm(c.ta, c.tb, g.m, g.n, g.k, 0.5f, A.data(), sa.ld, B.data(), sb.ld, 1.0f, one.data(), g.n);
    omp_set_num_threads(2);
    ops->gemm(c.ta, c.tb, g.m, g.n, g.k, 0.5f, A.data(), sa.ld, B.data(), sb.ld, 1.0f, two.data(), g.n);
    EXPECT_EQ(one, two) << "m=" << g.m << " n=" << g.n << " k=" << g.k;
  }
  omp_set_num_threads(saved);
}

// Panels, slices and single products give the same bits on one thread and on two.
TEST(Gemm, SameBitsForOneAndTwoThreads) {
  auto ops = make_cpu_ops<float>();
  const int saved = omp_get_max_threads();
  uint64_t seed = 70;
  for (const GemmShape& g : {GemmShape{192, 2048, 512}, GemmShape{30, 4000, 512}, GemmShape{2048, 512, 30},
                             GemmShape{20, 512, 40000}, GemmShape{100, 100, 100}}) {
    const auto A = random_vector<float>(g.m * g.k, ++seed), B = random_vector<float>(g.n * g.k, ++seed);
    std::vector<float> one(static_cast<size_t>(g.m * g.n)), two(one.size());
    omp_set_num_threads(1);
    ops->gemm(Trans::kNo, Trans::kYes, g.m, g.n, g.k, 1.0f, A.data(), g.k, B.data(), g.k, 0.0f, one.data(), g.n);
    omp_set_num_threads(2);
    ops->gemm(Trans::kNo, Trans::kYes, g.m, g.n, g.k, 1.0f, A.data(), g.k, B.data(), g.k, 0.0f, two.data(), g.n);
    EXPECT_EQ(one, two) << "m=" << g.m << " n=" << g.n << " k=" << g.k;
  }
  omp_set_num_threads(saved);
}

TYPED_TEST(GemmTest, ZeroInnerDimensionScalesC) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  std::vector<T> C(6, std::numeric_limits<T>::quiet_NaN());
  ops->gemm(Trans::kNo, Trans::kNo, 2, 3, 0, T(1), nullptr, 1, nullptr, 3, T(0), C.data(), 3);
  for (T c : C) EXPECT_EQ(c, T(0));
  std::vector<T> D = {1, 2, 3, 4, 5, 6};
  ops->gemm(Trans::kNo, Trans::kNo, 2, 3, 0, T(1), nullptr, 1, nullptr, 3, T(2), D.data(), 3);
  EXPECT_EQ(D, (std::vector<T>{2, 4, 6, 8, 10, 12}));
}

TYPED_TEST(GemmTest, RejectsTooSmallLeadingDimension) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  std::vector<T> A(12), B(12), C(12);
  EXPECT_THROW(ops->gemm(Trans::kNo, Trans::kNo, 3, 4, 3, T(1), A.data(), 2, B.data(), 4, T(0), C.data(), 4),
               Error);
}

// Batches of 1 (the product cut into panels) and 9 (one product per thread), with
// strides that leave gaps between the matrices; gaps and padding must stay untouched.
TYPED_TEST(GemmTest, StridedBatchedAllTransposes) {
  using T = TypeParam;
  auto ops = make_cpu_ops<T>();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  uint64_t seed = 100;
  for (int64_t batch : {1, 9})
    for (const GemmShape& g : {GemmShape{7, 5, 3}, GemmShape{33, 20, 17}})
      for (Trans ta : {Trans::kNo, Trans::kYes})
        for (Trans tb : {Trans::kNo, Trans::kYes})
          for (double beta : {0.0, 1.0}) {
            const Stored sa = stored(ta, g.m, g.k), sb = stored(tb, g.k, g.n);
            const int64_t ldc = g.n + 2;
            const int64_t stride_a = sa.rows * sa.ld + 4, stride_b = sb.rows * sb.ld + 1, stride_c = g.m * ldc + 3;
            const auto A = random_vector<T>(stride_a * batch, ++seed);
            const auto B = random_vector<T>(stride_b * batch, ++seed);
            auto C = random_vector<T>(stride_c * batch, ++seed);
            if (beta == 0.0)
              for (int64_t b = 0; b < batch; ++b)
                for (int64_t i = 0; i < g.m; ++i)
                  for (int64_t j = 0; j < g.n; ++j) C[static_cast<size_t>(b * stride_c + i * ldc + j)] = nan;
            std::vector<double> expected(C.begin(), C.end());
            for (int64_t b = 0; b < batch; ++b) {
              const auto one = reference(ta, tb, g, -1.25, A, sa, b * stride_a, B, sb, b * stride_b, beta, C, ldc,
                                         b * stride_c);
              for (int64_t i = 0; i < g.m; ++i)
                for (int64_t j = 0; j < g.n; ++j) {
                  const size_t c = static_cast<size_t>(b * stride_c + i * ldc + j);
                  expected[c] = one[c];
                }
            }
            ops->gemm_strided_batched(ta, tb, g.m, g.n, g.k, T(-1.25), A.data(), sa.ld, stride_a, B.data(), sb.ld,
                                      stride_b, T(beta), C.data(), ldc, stride_c, batch);
            SCOPED_TRACE(::testing::Message() << "batch=" << batch << " m=" << g.m << " ta=" << (ta == Trans::kYes)
                                              << " tb=" << (tb == Trans::kYes) << " beta=" << beta);
            test::expect_close(C, expected, 10 * test::tolerance<T>(), "C");
          }
}

// The batch-parallel path gives the same bits as one product at a time.
TEST(Gemm, BatchedMatchesSequentialProducts) {
  auto ops = make_cpu_ops<float>();
  const int64_t m = 40, n = 30, k = 50, batch = 16;
  const auto A = random_vector<float>(m * k * batch, 7), B = random_vector<float>(k * n * batch, 8);
  std::vector<float> batched(static_cast<size_t>(m * n * batch)), single(batched.size());
  ops->gemm_strided_batched(Trans::kNo, Trans::kYes, m, n, k, 1.0f, A.data(), k, m * k, B.data(), k, n * k, 0.0f,
                            batched.data(), n, m * n, batch);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  for (int64_t b = 0; b < batch; ++b)
    ops->gemm(Trans::kNo, Trans::kYes, m, n, k, 1.0f, A.data() + b * m * k, k, B.data() + b * n * k, k, 0.0f,
              single.data() + b * m * n, n);
  omp_set_num_threads(saved);
  EXPECT_EQ(batched, single);
}

}  // namespace
}  // namespace txl
