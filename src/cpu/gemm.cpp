// GEMM on the CPU through Eigen: the row-major operands are mapped in place (outer
// stride = leading dimension), transposes are Eigen expressions, so no copies are made.
#include "eigen_core.h"

#include "txl/core/error.h"
#include "cpu_kernels.h"
#include "parallel.h"

namespace txl::cpu {
namespace {

template <typename T>
using RowMajorMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using MatrixMap = Eigen::Map<RowMajorMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using ConstMatrixMap = Eigen::Map<const RowMajorMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

void check_shapes(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
  TXL_CHECK(m >= 0 && n >= 0 && k >= 0, "gemm: negative size m={} n={} k={}", m, n, k);
  const int64_t a_cols = ta == Trans::kNo ? k : m;
  const int64_t b_cols = tb == Trans::kNo ? n : k;
  TXL_CHECK(lda >= a_cols && ldb >= b_cols && ldc >= n,
            "gemm: leading dimension too small (lda={} for {} columns, ldb={} for {}, ldc={} for {})", lda, a_cols,
            ldb, b_cols, ldc, n);
}

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

}  // namespace

template <typename T>
void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  check_shapes(ta, tb, m, n, k, lda, ldb, ldc);
  gemm_one(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <typename T>
void gemm_strided_batched(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                          int64_t strideA, const T* B, int64_t ldb, int64_t strideB, T beta, T* C, int64_t ldc,
                          int64_t strideC, int64_t batch) {
  check_shapes(ta, tb, m, n, k, lda, ldb, ldc);
  TXL_CHECK(batch >= 0, "gemm_strided_batched: negative batch {}", batch);
  // With at least as many products as threads, one thread per product: each product
  // then runs single-threaded, because Eigen's GEMM does not start its own threads
  // inside an active OpenMP parallel region (omp_get_num_threads() > 1), so there is no
  // oversubscription. With fewer products, they run in turn, each using all threads.
  const int threads = omp_get_max_threads();
  if (batch > 1 && batch >= threads && threads > 1) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < batch; ++i)
      gemm_one(ta, tb, m, n, k, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta, C + i * strideC, ldc);
  } else {
    for (int64_t i = 0; i < batch; ++i)
      gemm_one(ta, tb, m, n, k, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta, C + i * strideC, ldc);
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
