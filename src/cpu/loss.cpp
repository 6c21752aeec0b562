// Row gather/scatter (embeddings, adaptive-softmax clusters) and log-softmax + pick.
#include <algorithm>
#include <cmath>
#include <limits>

#include "txl/core/ops.h"

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

// The fused loss head (ops.h): z = x + bias is formed chunk by chunk in a small aligned
// buffer and used from there, with the arithmetic of log_softmax / pick_cols /
// log_softmax_pick_bwd above (the same max, the same chunked double sum, z - lse rounded
// to T before the exp).
namespace {
constexpr int64_t kLossChunk = 1024;

template <typename T>
void biased_chunk(const T* x, const T* bias, int64_t c0, int64_t len, T* z) {
  if (bias) {
#pragma omp simd
    for (int64_t c = 0; c < len; ++c) z[c] = x[c0 + c] + bias[c0 + c];
  } else {
    std::copy(x + c0, x + c0 + len, z);
  }
}
}  // namespace

template <typename T>
void biased_log_softmax_pick(const T* logits, const T* bias, const int32_t* col, int64_t rows, int64_t cols,
                             bool accumulate, T* out, T* lse) {
  check_softmax_block("biased_log_softmax_pick", rows, cols);
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = logits + r * cols;
    alignas(64) T z[kLossChunk];
    alignas(64) T e[kLossChunk];
    T max = -std::numeric_limits<T>::infinity();
    for (int64_t c0 = 0; c0 < cols; c0 += kLossChunk) {
      const int64_t len = std::min(kLossChunk, cols - c0);
      biased_chunk(x, bias, c0, len, z);
      max = std::max(max, ConstArrayMap<T>(z, len).maxCoeff());
    }
    double sum_exp = 0.0;
    for (int64_t c0 = 0; c0 < cols; c0 += kLossChunk) {
      const int64_t len = std::min(kLossChunk, cols - c0);
      biased_chunk(x, bias, c0, len, z);
      vector_exp_shifted(z, len, max, e);
      sum_exp += block_sum(0, len, [&](int64_t c) { return static_cast<double>(e[c]); });
    }
    const T log_norm = static_cast<T>(static_cast<double>(max) + std::log(sum_exp));
    lse[r] = log_norm;
    T picked = T(0);
    if (col[r] >= 0) picked = (bias ? x[col[r]] + bias[col[r]] : x[col[r]]) - log_norm;
    out[r] = accumulate ? out[r] + picked : picked;
  }
}

template <typename T>
void biased_log_softmax_pick_bwd(const T* logits, const T* bias, const T* lse, const int32_t* col, const T* coef,
                                 int64_t rows, int64_t cols, T* dlogits) {
  check_softmax_block("biased_log_softmax_pick_bwd", rows, cols);
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    T* d = dlogits + r * cols;
    if (col[r] < 0) {
      std::fill(d, d + cols, T(0));
      continue;
    }
    const T* x = logits + r * cols;
    alignas(64) T z[kLossChunk];
    for (int64_t c0 = 0; c0 < cols; c0 += kLossChunk) {
      const int64_t len = std::min(kLossChunk, cols - c0);
      biased_chunk(x, bias, c0, len, z);
      ArrayMap<T> zm(z, len);
      zm -= lse[r];  // the log-probabilities, rounded to T as log_softmax stores them
      ArrayMap<T>(d + c0, len) = -coef[r] * zm.exp();
    }
    const int64_t c = col[r];
    const T logp = (bias ? x[c] + bias[c] : x[c]) - lse[r];
    d[c] = coef[r] * (T(1) - std::exp(logp));  // the formula's own rounding
  }
}

#define TXL_INSTANTIATE(T)                                                                            \
  template void gather_rows<T>(const T*, const int32_t*, int64_t, int64_t, T*);                       \
  template void scatter_rows<T>(const T*, const int32_t*, int64_t, int64_t, T*);                      \
  template void scatter_add_rows<T>(const T*, const int32_t*, int64_t, int64_t, T*);                  \
  template void log_softmax<T>(const T*, int64_t, int64_t, T*);                                       \
  template void pick_cols<T>(const T*, const int32_t*, int64_t, int64_t, bool, T*);                  \
  template void log_softmax_pick_bwd<T>(const T*, const int32_t*, const T*, int64_t, int64_t, T*);        \
  template void biased_log_softmax_pick<T>(const T*, const T*, const int32_t*, int64_t, int64_t, bool, T*, T*); \
  template void biased_log_softmax_pick_bwd<T>(const T*, const T*, const T*, const int32_t*, const T*, int64_t,  \
                                               int64_t, T*);
TXL_INSTANTIATE(float)
TXL_INSTANTIATE(double)
#undef TXL_INSTANTIATE

}  // namespace txl::cpu
