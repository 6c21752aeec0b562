// GEMM on the CPU through Eigen: the row-major operands are mapped in place (outer
// stride = leading dimension), transposes are Eigen expressions, so no copies are made.
#include "eigen_core.h"

#include <algorithm>
#include <vector>

#include "txl/core/error.h"
#include "cpu_kernels.h"
#include "parallel.h"
#include "skinny_gemm.h"

namespace txl::cpu {
namespace {

template <typename T>
using RowMajorMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using MatrixMap = Eigen::Map<RowMajorMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using ConstMatrixMap = Eigen::Map<const RowMajorMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// One product, shapes already checked. beta == 0 never reads C (it may hold NaN).
template <typename T>
void gemm_one(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B,
              int64_t ldb, T beta, T* C, int64_t ldc) {
  if (m == 0 || n == 0) return;
  MatrixMap<T> c(C, m, n, Eigen::OuterStride<>(ldc));
  if (k == 0 || alpha == T(0)) {
    if (beta == T(0)) c.setZero();
    else if (beta != T(1)) c *= beta;
    return;
  }
  const ConstMatrixMap<T> a(A, ta == Trans::kNo ? m : k, ta == Trans::kNo ? k : m, Eigen::OuterStride<>(lda));
  const ConstMatrixMap<T> b(B, tb == Trans::kNo ? k : n, tb == Trans::kNo ? n : k, Eigen::OuterStride<>(ldb));
  auto run = [&](const auto& op_a, const auto& op_b) {
    if (beta == T(0)) {
      c.noalias() = alpha * op_a * op_b;  // Eigen zero-fills the destination, never reads it
    } else {
      if (beta != T(1)) c *= beta;
      c.noalias() += alpha * op_a * op_b;
    }
  };
  if (ta == Trans::kNo && tb == Trans::kNo) run(a, b);
  else if (ta == Trans::kNo) run(a, b.transpose());
  else if (tb == Trans::kNo) run(a.transpose(), b);
  else run(a.transpose(), b.transpose());
}

// Threading. Eigen's own GEMM threading is not used: inside a training step it reached
// only ~80 % of its standalone 2-thread rate, and on the adaptive softmax's tail
// clusters ([tokens in the cluster] × [cluster size], e.g. 30 × 160000) 5–30 %
// (docs/benchmarks.md, CPU per-op profile). Instead a product is cut along the longer
// side of C into an even number of panels of about kPanel columns (or rows), and
// an OpenMP team runs them; inside a team Eigen runs each panel on the calling thread (it
// does not nest). The cut depends only on the shape, so the bits do not depend on the
// thread count; an even number of panels gives 2 threads (and 1) equal shares.
inline constexpr int64_t kPanel = 256;
inline constexpr int64_t kPanelGroup = 2;
inline constexpr int64_t kMinPanel = 32;

template <typename T>
void gemm_panels(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B,
                 int64_t ldb, T beta, T* C, int64_t ldc) {
  const bool by_columns = n >= m;
  const int64_t length = by_columns ? n : m;
  constexpr int64_t group = kPanelGroup * kPanel;
  int64_t panels = kPanelGroup * std::max<int64_t>(1, (length + group / 2) / group);
  while (panels > 1 && length / panels < kMinPanel) --panels;
  const bool threaded = !omp_in_parallel() && omp_get_max_threads() > 1;
#pragma omp parallel for schedule(static) if (threaded)
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t begin = p * length / panels;  // sizes differ by at most one
    const int64_t size = (p + 1) * length / panels - begin;
    if (by_columns) {  // columns [begin, begin + size) of op(B) and of C
      const T* b = tb == Trans::kNo ? B + begin : B + begin * ldb;
      gemm_one(ta, tb, m, size, k, alpha, A, lda, b, ldb, beta, C + begin, ldc);
    } else {  // rows [begin, begin + size) of op(A) and of C
      const T* a = ta == Trans::kNo ? A + begin * lda : A + begin;
      gemm_one(ta, tb, size, n, k, alpha, a, lda, B, ldb, beta, C + begin * ldc, ldc);
    }
  }
}

// Long reductions with a small result (few panels, k very long: the gradient of a tail
// cluster's input, [tokens] × d_proj summed over the cluster's 160000 words), which
// panels alone would leave on one or two threads: the reduction is cut into fixed
// slices of k, each slice's product goes to its own partial result, and the partials
// are added in slice order.
inline constexpr int64_t kDeepSlice = 4096;
inline constexpr int64_t kDeepMinSlices = 8;

bool is_deep(int64_t m, int64_t n, int64_t k) {
  return std::min(m, n) <= 64 && std::max(m, n) <= 4 * kPanel && k >= kDeepMinSlices * kDeepSlice;
}

template <typename T>
void gemm_slices(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B,
                 int64_t ldb, T beta, T* C, int64_t ldc) {
  const int64_t slices = (k + kDeepSlice - 1) / kDeepSlice;
  const int64_t size = m * n;
  thread_local std::vector<T> partial;
  if (partial.size() < static_cast<size_t>(slices * size)) partial.resize(static_cast<size_t>(slices * size));
  T* const part = partial.data();
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
  for (int64_t s = 0; s < slices; ++s) {
    const int64_t begin = s * kDeepSlice;
    const int64_t depth = std::min(kDeepSlice, k - begin);
    const T* a = ta == Trans::kNo ? A + begin : A + begin * lda;
    const T* b = tb == Trans::kNo ? B + begin * ldb : B + begin;
    gemm_one(ta, tb, m, n, depth, T(1), a, lda, b, ldb, T(0), part + s * size, n);
  }
  for (int64_t i = 0; i < m; ++i) {
    T* c = C + i * ldc;
    for (int64_t j = 0; j < n; ++j) {
      T sum = part[i * n + j];
      for (int64_t s = 1; s < slices; ++s) sum += part[s * size + i * n + j];
      c[j] = beta == T(0) ? alpha * sum : beta * c[j] + alpha * sum;
    }
  }
}

}  // namespace

template <typename T>
void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  check_gemm_args(ta, tb, m, n, k, lda, ldb, ldc);
  if (alpha != T(0) && is_skinny(ta, tb, m, n, k)) skinny_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (is_deep(m, n, k)) gemm_slices(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  else gemm_panels(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <typename T>
void gemm_strided_batched(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                          int64_t strideA, const T* B, int64_t ldb, int64_t strideB, T beta, T* C, int64_t ldc,
                          int64_t strideC, int64_t batch) {
  check_gemm_args(ta, tb, m, n, k, lda, ldb, ldc);
  check_gemm_batch(batch);
  // With at least as many products as threads, one thread per product; with fewer, they
  // run in turn, each cut into panels. Either way every product is single-threaded
  // Eigen, so the bits do not depend on the thread count.
  const int threads = omp_get_max_threads();
  if (batch > 1 && batch >= threads && threads > 1) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < batch; ++i)
      gemm_one(ta, tb, m, n, k, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta, C + i * strideC, ldc);
  } else {
    for (int64_t i = 0; i < batch; ++i)
      gemm_panels(ta, tb, m, n, k, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta, C + i * strideC, ldc);
  }
}

#define TXL_INSTANTIATE(T)                                                                                     \
  template void gemm<T>(Trans, Trans, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*, \
                        int64_t);                                                                              \
  template void gemm_strided_batched<T>(Trans, Trans, int64_t, int64_t, int64_t, T, const T*, int64_t, int64_t,  \
                                        const T*, int64_t, int64_t, T, T*, int64_t, int64_t, int64_t);
TXL_INSTANTIATE(float)
TXL_INSTANTIATE(double)
#undef TXL_INSTANTIATE

}  // namespace txl::cpu
