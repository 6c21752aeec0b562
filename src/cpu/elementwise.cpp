// Elementwise CPU kernels: fill, bias, axpy/scale/add, ReLU, dropout.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "txl/core/error.h"
#include "cpu_kernels.h"
#include "dropout_mask.h"
#include "parallel.h"

namespace txl::cpu {

void copy_bytes(void* dst, const void* src, size_t bytes) {
  if (bytes == 0 || dst == src) return;
  constexpr size_t kChunk = size_t{1} << 20;
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  const bool disjoint = d + bytes <= s || s + bytes <= d;
  if (!disjoint || bytes < 2 * kChunk || omp_in_parallel()) {
    std::memmove(dst, src, bytes);
    return;
  }
  const int64_t chunks = static_cast<int64_t>((bytes + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t begin = static_cast<size_t>(c) * kChunk;
    std::memcpy(d + begin, s + begin, std::min(kChunk, bytes - begin));
  }
}

template <typename T>
void fill(T* x, int64_t n, T value) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) x[i] = value;
}

template <typename T>
void add_bias(T* y, const T* bias, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    T* row = y + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) row[c] += bias[c];
  }
}

// dbias[c] += sum_r dy[r,c]. Threads own column blocks (no races, and the summation
// order per column is fixed: rows in order, in double).
template <typename T>
void bias_grad(const T* dy, T* dbias, int64_t rows, int64_t cols) {
  constexpr int64_t kColBlock = 64;
  const int64_t blocks = (cols + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain && blocks > 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kColBlock, c1 = std::min(cols, c0 + kColBlock);
    double acc[kColBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = dy + r * cols;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] += static_cast<double>(row[c]);
    }
    for (int64_t c = c0; c < c1; ++c) dbias[c] = static_cast<T>(dbias[c] + acc[c - c0]);
  }
}

template <typename T>
void axpy(int64_t n, T alpha, const T* x, T* y) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

template <typename T>
void scale(int64_t n, T alpha, T* x) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) x[i] *= alpha;
}

template <typename T>
void add(int64_t n, const T* a, const T* b, T* out) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <typename T>
void relu_fwd(int64_t n, const T* x, T* y) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

template <typename T>
void relu_bwd(int64_t n, const T* y, const T* dy, T* dx) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > T(0) ? dy[i] : T(0);
}

// y = keep ? x / (1 - p) : 0, with the multiplier computed in T as T(1) / (T(1) - T(p)).
template <typename T>
void dropout(const T* x, T* y, float p, const DropoutKey& key, const BatchLayout& layout) {
  check_dropout_args(p, layout);
  const int64_t rows = layout.outer * layout.batch;
  const int64_t inner = layout.inner;
  if (p == 0.0f) {
    if (x != y) std::copy(x, x + rows * inner, y);
    return;
  }
  const DropoutMask<T> mask(p, key);
#pragma omp parallel for schedule(static) if (rows * inner >= kParallelGrain / 4)
  for (int64_t row = 0; row < rows; ++row) {
    const uint64_t base = dropout_row_base(layout, row);
    const T* xr = x + row * inner;
    T* yr = y + row * inner;
    for (int64_t c0 = 0; c0 < inner; c0 += kDropoutChunk) {
      const int64_t len = std::min(kDropoutChunk, inner - c0);
      mask.apply(base + static_cast<uint64_t>(c0), len, xr + c0, yr + c0);
    }
  }
}

// relu(x + bias) chunk by chunk into a small buffer, then the chunk's dropout mask
// (dropout_mask.h) from there: the arithmetic of add_bias, relu_fwd and dropout.
template <typename T>
void bias_relu_dropout(const T* x, const T* bias, float p, const DropoutKey& key, const BatchLayout& layout, T* y) {
  check_dropout_args(p, layout);
  const int64_t rows = layout.outer * layout.batch;
  const int64_t inner = layout.inner;
  const DropoutMask<T> mask(p, key);
#pragma omp parallel for schedule(static) if (rows * inner >= kParallelGrain / 4)
  for (int64_t row = 0; row < rows; ++row) {
    const uint64_t base = p > 0.0f ? dropout_row_base(layout, row) : 0;
    const T* xr = x + row * inner;
    T* yr = y + row * inner;
    alignas(64) T act[kDropoutChunk];
    for (int64_t c0 = 0; c0 < inner; c0 += kDropoutChunk) {
      const int64_t len = std::min(kDropoutChunk, inner - c0);
#pragma omp simd
      for (int64_t c = 0; c < len; ++c) {
        const T z = xr[c0 + c] + bias[c0 + c];
        act[c] = z > T(0) ? z : T(0);
      }
      if (p > 0.0f) mask.apply(base + static_cast<uint64_t>(c0), len, act, yr + c0);
      else std::copy(act, act + len, yr + c0);
    }
  }
}

template <typename T>
void relu_dropout_bwd(int64_t n, const T* y, const T* dy, float p, T* dx) {
  check_dropout_probability("relu_dropout_bwd", p);
  const T multiplier = T(1) / (T(1) - static_cast<T>(p));  // as DropoutMask
  if (p == 0.0f) {
    relu_bwd(n, y, dy, dx);
    return;
  }
#pragma omp parallel for simd schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > T(0) ? dy[i] * multiplier : T(0);
}

#define TXL_INSTANTIATE(T)                                                              \
  template void fill<T>(T*, int64_t, T);                                                \
  template void add_bias<T>(T*, const T*, int64_t, int64_t);                            \
  template void bias_grad<T>(const T*, T*, int64_t, int64_t);                           \
  template void axpy<T>(int64_t, T, const T*, T*);                                      \
  template void scale<T>(int64_t, T, T*);                                               \
  template void add<T>(int64_t, const T*, const T*, T*);                                \
  template void relu_fwd<T>(int64_t, const T*, T*);                                     \
  template void relu_bwd<T>(int64_t, const T*, const T*, T*);                           \
  template void dropout<T>(const T*, T*, float, const DropoutKey&, const BatchLayout&);                       \
  template void bias_relu_dropout<T>(const T*, const T*, float, const DropoutKey&, const BatchLayout&, T*);  \
  template void relu_dropout_bwd<T>(int64_t, const T*, const T*, float, T*);
TXL_INSTANTIATE(float)
TXL_INSTANTIATE(double)
#undef TXL_INSTANTIATE

}  // namespace txl::cpu
