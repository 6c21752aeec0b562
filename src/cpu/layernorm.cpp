// LayerNorm over the last axis, and the fused residual tail (dropout + bias + residual +
// LayerNorm). Row statistics are accumulated in double.
#include <algorithm>
#include <cmath>
#include <vector>

#include "txl/core/error.h"
#include "cpu_kernels.h"
#include "dropout_mask.h"
#include "parallel.h"

namespace txl::cpu {
namespace {

// One row of layernorm_fwd. The fused forward runs the same code on its sum row, so the
// two give the same bits.
template <typename T>
inline void layernorm_fwd_row(int64_t cols, const T* xr, const T* gamma, const T* beta, T eps, T* yr, T* mean,
                              T* rstd) {
  const double mu = block_sum(0, cols, [&](int64_t c) { return static_cast<double>(xr[c]); }) / cols;
  const double var = block_sum(0, cols, [&](int64_t c) {
                       const double d = xr[c] - mu;
                       return d * d;
                     }) / cols;
  const T m = static_cast<T>(mu);
  const T rs = static_cast<T>(1.0 / std::sqrt(var + static_cast<double>(eps)));
  *mean = m;
  *rstd = rs;
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - m) * rs * gamma[c] + beta[c];
}

// One row of layernorm_bwd: dx of the row, its dgamma / dbeta terms added to pg / pb.
// The row is read completely before dxr is written, so dxr may alias dyr.
template <typename T>
inline void layernorm_bwd_row(int64_t cols, const T* dyr, const T* xr, const T* gamma, T mean, T rstd, T* dxr,
                              double* pg, double* pb) {
  const double m = mean, rs = rstd;
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

constexpr int64_t kRowChunk = 32;  // rows per dgamma/dbeta partial

// dgamma[c] += sum of the chunk partials in chunk order (partial: per chunk dgamma | dbeta).
template <typename T>
void add_chunk_partials(const std::vector<double>& partial, int64_t chunks, int64_t cols, T* dgamma, T* dbeta) {
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

}  // namespace

template <typename T>
void layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* gamma, const T* beta, T eps, T* y, T* mean,
                   T* rstd) {
  check_layernorm_shape("layernorm_fwd", rows, cols);
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r)
    layernorm_fwd_row(cols, x + r * cols, gamma, beta, eps, y + r * cols, mean + r, rstd + r);
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
  check_layernorm_shape("layernorm_bwd", rows, cols);
  const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  std::vector<double> partial(static_cast<size_t>(chunks * 2 * cols));  // per chunk: dgamma | dbeta
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain && chunks > 1)
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    double* pg = partial.data() + chunk * 2 * cols;
    double* pb = pg + cols;
    std::fill(pg, pg + 2 * cols, 0.0);
    for (int64_t r = chunk * kRowChunk; r < std::min(rows, (chunk + 1) * kRowChunk); ++r)
      layernorm_bwd_row(cols, dy + r * cols, x + r * cols, gamma, mean[r], rstd[r], dx + r * cols, pg, pb);
  }
  add_chunk_partials(partial, chunks, cols, dgamma, dbeta);
}

// Per row, in runs of kDropoutChunk columns: t = x + bias, dropout(t) (in a stack buffer,
// so sum may alias x or residual), sum = residual + t; then the LayerNorm of the finished
// sum row while it is in cache. Each step is the arithmetic of add_bias, dropout, add and
// layernorm_fwd, so the result has their bits.
template <typename T>
void dropout_residual_layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* bias, float p,
                                    const DropoutKey& key, const BatchLayout& layout, const T* residual,
                                    const T* gamma, const T* beta, T eps, T* sum, T* y, T* mean, T* rstd) {
  check_dropout_residual_layernorm("dropout_residual_layernorm_fwd", rows, cols, p, layout);
  const DropoutMask<T> mask(p, key);  // used only when p > 0
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain / 4)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    const T* hr = residual + r * cols;
    T* sr = sum + r * cols;
    const uint64_t base = p > 0.0f ? dropout_row_base(layout, r) : 0;
    T t[kDropoutChunk];
    for (int64_t c0 = 0; c0 < cols; c0 += kDropoutChunk) {
      const int64_t len = std::min(kDropoutChunk, cols - c0);
      if (bias) {
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) t[i] = xr[c0 + i] + bias[c0 + i];
      } else {
        std::copy(xr + c0, xr + c0 + len, t);
      }
      if (p > 0.0f) mask.apply(base + static_cast<uint64_t>(c0), len, t, t);
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) sr[c0 + i] = hr[c0 + i] + t[i];
    }
    if (gamma) layernorm_fwd_row(cols, sr, gamma, beta, eps, y + r * cols, mean + r, rstd + r);
  }
}

// Per row: d_sum as layernorm_bwd (or dy), then d_x = dropout(d_sum) while the row is in
// cache; dgamma/dbeta from the same chunk partials as layernorm_bwd. dbias is bias_grad of
// d_x, a second (column-blocked) pass: bias_grad sums each column over all rows in order,
// an order the row chunks cannot reproduce.
template <typename T>
void dropout_residual_layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* sum, const T* gamma,
                                    const T* mean, const T* rstd, float p, const DropoutKey& key,
                                    const BatchLayout& layout, T* d_sum, T* d_x, T* dgamma, T* dbeta, T* dbias) {
  check_dropout_residual_layernorm("dropout_residual_layernorm_bwd", rows, cols, p, layout);
  check_dropout_residual_layernorm_grads(d_x, gamma, d_sum);
  const DropoutMask<T> mask(p, key);  // used only when p > 0
  // d_x of row r from its finished d_sum row (or dy without LayerNorm).
  auto drop_row = [&](int64_t r, const T* src) {
    T* dxr = d_x + r * cols;
    if (p == 0.0f) {
      std::copy(src, src + cols, dxr);
      return;
    }
    const uint64_t base = dropout_row_base(layout, r);
    for (int64_t c0 = 0; c0 < cols; c0 += kDropoutChunk)
      mask.apply(base + static_cast<uint64_t>(c0), std::min(kDropoutChunk, cols - c0), src + c0, dxr + c0);
  };
  if (gamma) {
    const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
    std::vector<double> partial(static_cast<size_t>(chunks * 2 * cols));  // per chunk: dgamma | dbeta
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain && chunks > 1)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      double* pg = partial.data() + chunk * 2 * cols;
      double* pb = pg + cols;
      std::fill(pg, pg + 2 * cols, 0.0);
      for (int64_t r = chunk * kRowChunk; r < std::min(rows, (chunk + 1) * kRowChunk); ++r) {
        layernorm_bwd_row(cols, dy + r * cols, sum + r * cols, gamma, mean[r], rstd[r], d_sum + r * cols, pg, pb);
        drop_row(r, d_sum + r * cols);
      }
    }
    add_chunk_partials(partial, chunks, cols, dgamma, dbeta);
  } else {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain / 4)
    for (int64_t r = 0; r < rows; ++r) {
      if (d_sum) std::copy(dy + r * cols, dy + (r + 1) * cols, d_sum + r * cols);
      drop_row(r, dy + r * cols);
    }
  }
  if (dbias) bias_grad(d_x, dbias, rows, cols);
}

#define TXL_INSTANTIATE(T)                                                                                  \
  template void layernorm_fwd<T>(int64_t, int64_t, const T*, const T*, const T*, T, T*, T*, T*);            \
  template void layernorm_bwd<T>(int64_t, int64_t, const T*, const T*, const T*, const T*, const T*, T*,    \
                                 T*, T*);                                                                   \
  template void dropout_residual_layernorm_fwd<T>(int64_t, int64_t, const T*, const T*, float,              \
                                                  const DropoutKey&, const BatchLayout&, const T*, const T*, \
                                                  const T*, T, T*, T*, T*, T*);                             \
  template void dropout_residual_layernorm_bwd<T>(int64_t, int64_t, const T*, const T*, const T*, const T*, \
                                                  const T*, float, const DropoutKey&, const BatchLayout&,   \
                                                  T*, T*, T*, T*, T*);
TXL_INSTANTIATE(float)
TXL_INSTANTIATE(double)
#undef TXL_INSTANTIATE

}  // namespace txl::cpu
