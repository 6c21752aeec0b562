// LayerNorm over the last axis. Row statistics are accumulated in double.
#include <algorithm>
#include <cmath>
#include <vector>

#include "txl/cpu/cpu_kernels.h"
#include "txl/cpu/parallel.h"

namespace txl::cpu {

template <typename T>
void layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* gamma, const T* beta, T eps, T* y, T* mean,
                   T* rstd) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const double mu = block_sum(0, cols, [&](int64_t c) { return static_cast<double>(xr[c]); }) / cols;
    const double var = block_sum(0, cols, [&](int64_t c) {
                         const double d = xr[c] - mu;
                         return d * d;
                       }) / cols;
    const T m = static_cast<T>(mu);
    const T rs = static_cast<T>(1.0 / std::sqrt(var + static_cast<double>(eps)));
    mean[r] = m;
    rstd[r] = rs;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - m) * rs * gamma[c] + beta[c];
  }
}

// With xhat = (x - mean) * rstd and g = dy * gamma:
//   dx = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)),
//   dgamma += sum_r dy * xhat,  dbeta += sum_r dy.
template <typename T>
void layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* x, const T* gamma, const T* mean,
                   const T* rstd, T* dx, T* dgamma, T* dbeta) {
  const bool parallel = rows * cols >= kParallelGrain;
  // Parameter gradients first (so dx may even alias dy): threads own column blocks,
  // rows summed in order (deterministic).
  constexpr int64_t kColBlock = 64;
  const int64_t blocks = (cols + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (parallel && blocks > 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kColBlock, c1 = std::min(cols, c0 + kColBlock);
    double acc_gamma[kColBlock] = {}, acc_beta[kColBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * cols;
      const T* dyr = dy + r * cols;
      const double m = mean[r], rs = rstd[r];
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) {
        acc_gamma[c - c0] += static_cast<double>(dyr[c]) * ((xr[c] - m) * rs);
        acc_beta[c - c0] += static_cast<double>(dyr[c]);
      }
    }
    for (int64_t c = c0; c < c1; ++c) {
      dgamma[c] = static_cast<T>(dgamma[c] + acc_gamma[c - c0]);
      dbeta[c] = static_cast<T>(dbeta[c] + acc_beta[c - c0]);
    }
  }
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    const T* dyr = dy + r * cols;
    T* dxr = dx + r * cols;
    const double m = mean[r], rs = rstd[r];
    const double mean_g = block_sum(0, cols, [&](int64_t c) { return static_cast<double>(dyr[c]) * gamma[c]; }) / cols;
    const double mean_gx = block_sum(0, cols, [&](int64_t c) {
                             return static_cast<double>(dyr[c]) * gamma[c] * ((xr[c] - m) * rs);
                           }) / cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) {
      const double xhat = (xr[c] - m) * rs;
      dxr[c] = static_cast<T>(rs * (static_cast<double>(dyr[c]) * gamma[c] - mean_g - xhat * mean_gx));
    }
  }
}

#define TXL_INSTANTIATE(T)                                                                               \
  template void layernorm_fwd<T>(int64_t, int64_t, const T*, const T*, const T*, T, T*, T*, T*);         \
  template void layernorm_bwd<T>(int64_t, int64_t, const T*, const T*, const T*, const T*, const T*, T*, \
                                 T*, T*);
TXL_INSTANTIATE(float)
TXL_INSTANTIATE(double)
#undef TXL_INSTANTIATE

}  // namespace txl::cpu
