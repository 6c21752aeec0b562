// Row gather/scatter (embeddings, adaptive-softmax clusters) and log-softmax + pick.
#include <algorithm>
#include <cmath>

#include "cpu_kernels.h"
#include "parallel.h"
#include "vector_math.h"

namespace txl::cpu {

template <typename T>
void gather_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) {
#pragma omp parallel for schedule(static) if (n * cols >= kParallelGrain)
  for (int64_t r = 0; r < n; ++r) {
    const T* s = src + static_cast<int64_t>(idx[r]) * cols;
    std::copy(s, s + cols, dst + r * cols);
  }
}

template <typename T>
void scatter_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) {
#pragma omp parallel for schedule(static) if (n * cols >= kParallelGrain)
  for (int64_t r = 0; r < n; ++r) std::copy(src + r * cols, src + (r + 1) * cols, dst + static_cast<int64_t>(idx[r]) * cols);
}

// Indices may repeat, so threads own column blocks instead of rows; each destination
// element receives its source rows in order (deterministic).
template <typename T>
void scatter_add_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) {
  constexpr int64_t kColBlock = 64;
  const int64_t blocks = (cols + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (n * cols >= kParallelGrain && blocks > 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kColBlock, c1 = std::min(cols, c0 + kColBlock);
    for (int64_t r = 0; r < n; ++r) {
      const T* s = src + r * cols;
      T* d = dst + static_cast<int64_t>(idx[r]) * cols;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) d[c] += s[c];
    }
  }
}

// Stable: logp = x - max - log(sum_c exp(x_c - max)), the sum in double. The exps are
// formed chunk by chunk in a small buffer (Eigen's vectorised exp) and summed from there.
template <typename T>
void log_softmax(const T* logits, int64_t rows, int64_t cols, T* logp) {
  constexpr int64_t kChunk = 1024;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = logits + r * cols;
    const T max = ConstArrayMap<T>(x, cols).maxCoeff();
    T e[kChunk];
    double sum_exp = 0.0;
    for (int64_t c0 = 0; c0 < cols; c0 += kChunk) {
      const int64_t len = std::min(kChunk, cols - c0);
      vector_exp_shifted(x + c0, len, max, e);
      sum_exp += block_sum(0, len, [&](int64_t c) { return static_cast<double>(e[c]); });
    }
    const T log_norm = static_cast<T>(static_cast<double>(max) + std::log(sum_exp));
    T* out = logp + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) out[c] = x[c] - log_norm;
  }
}

template <typename T>
void pick_cols(const T* logp, const int32_t* col, int64_t rows, int64_t cols, bool accumulate, T* out) {
#pragma omp parallel for schedule(static) if (rows >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T picked = col[r] >= 0 ? logp[r * cols + col[r]] : T(0);
    out[r] = accumulate ? out[r] + picked : picked;
  }
}

template <typename T>
void log_softmax_pick_bwd(const T* logp, const int32_t* col, const T* coef, int64_t rows, int64_t cols,
                          T* dlogits) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    T* d = dlogits + r * cols;
    if (col[r] < 0) {
      std::fill(d, d + cols, T(0));
      continue;
    }
    ArrayMap<T>(d, cols) = -coef[r] * ConstArrayMap<T>(logp + r * cols, cols).exp();
    const int64_t c = col[r];
    d[c] = coef[r] * (T(1) - std::exp(logp[r * cols + c]));  // the formula's own rounding
  }
}

#define TXL_INSTANTIATE(T)                                                                            \
  template void gather_rows<T>(const T*, const int32_t*, int64_t, int64_t, T*);                       \
  template void scatter_rows<T>(const T*, const int32_t*, int64_t, int64_t, T*);                      \
  template void scatter_add_rows<T>(const T*, const int32_t*, int64_t, int64_t, T*);                  \
  template void log_softmax<T>(const T*, int64_t, int64_t, T*);                                       \
  template void pick_cols<T>(const T*, const int32_t*, int64_t, int64_t, bool, T*);                  \
  template void log_softmax_pick_bwd<T>(const T*, const int32_t*, const T*, int64_t, int64_t, T*);
TXL_INSTANTIATE(float)
TXL_INSTANTIATE(double)
#undef TXL_INSTANTIATE

}  // namespace txl::cpu
