// LayerNorm over the last axis. Row statistics are accumulated in double.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_kernels.h"
#include "parallel.h"

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
// Rows are processed in fixed chunks; each chunk sums its dgamma/dbeta contributions in
// double, and the chunks are then added in order (same bits for any thread count).
// Each row is read completely before its dx is written, so dx may alias dy.
template <typename T>
void layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* x, const T* gamma, const T* mean,
                   const T* rstd, T* dx, T* dgamma, T* dbeta) {
  constexpr int64_t kRowChunk = 32;
  const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  std::vector<double> partial(static_cast<size_t>(chunks * 2 * cols));  // per chunk: dgamma | dbeta
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain && chunks > 1)
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    double* pg = partial.data() + chunk * 2 * cols;
    double* pb = pg + cols;
    std::fill(pg, pg + 2 * cols, 0.0);
    for (int64_t r = chunk * kRowChunk; r < std::min(rows, (chunk + 1) * kRowChunk); ++r) {
      const T* xr = x + r * cols;
      const T* dyr = dy + r * cols;
      T* dxr = dx + r * cols;
      const double m = mean[r], rs = rstd[r];
      double sum_g = 0.0, sum_gx = 0.0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
      for (int64_t c = 0; c < cols; ++c) {
        const double d = dyr[c], xhat = (xr[c] - m) * rs, g = d * gamma[c];
        pg[c] += d * xhat;
        pb[c] += d;
        sum_g += g;
        sum_gx += g * xhat;
      }
      const double mean_g = sum_g / cols, mean_gx = sum_gx / cols;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) {
        const double xhat = (xr[c] - m) * rs;
        dxr[c] = static_cast<T>(rs * (static_cast<double>(dyr[c]) * gamma[c] - mean_g - xhat * mean_gx));
      }
    }
  }
#pragma omp parallel for schedule(static) if (chunks * cols >= kParallelGrain)
  for (int64_t c = 0; c < cols; ++c) {
    double sg = 0.0, sb = 0.0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      sg += partial[static_cast<size_t>(chunk * 2 * cols + c)];
      sb += partial[static_cast<size_t>(chunk * 2 * cols + cols + c)];
    }
    dgamma[c] = static_cast<T>(dgamma[c] + sg);
    dbeta[c] = static_cast<T>(dbeta[c] + sb);
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
