// Elementwise CPU kernels: fill, bias, axpy/scale/add, ReLU, dropout.
#include <algorithm>
#include <bit>
#include <type_traits>
#include <cmath>
#include <vector>

#include "txl/core/error.h"
#include "cpu_kernels.h"
#include "parallel.h"

namespace txl::cpu {

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

// The 24 random bits behind philox_uniform(key, g) = bits * 2^-24, for g in
// [g0, g0 + n), n <= kDropoutChunk: one Philox call per
// 4-element counter block, computed for all blocks of the run side by side so that the
// rounds vectorise (philox_uniform itself recomputes a block for each of its 4 elements).
// Bit-identical to philox.h; tests/cpu checks it against dropout_keep().
void philox_bits24(const DropoutKey& key, uint64_t g0, int64_t n, uint32_t* bits) {
  constexpr int64_t kMaxBlocks = kDropoutChunk / 4 + 2;
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  const uint64_t first = g0 >> 2;
  const int64_t blocks = static_cast<int64_t>(((g0 + static_cast<uint64_t>(n) - 1) >> 2) - first + 1);
  uint32_t x0[kMaxBlocks], x1[kMaxBlocks], x2[kMaxBlocks], x3[kMaxBlocks];
  const uint32_t c2 = static_cast<uint32_t>(key.step) ^ (key.site * 0x85EBCA6Bu);
  const uint32_t c3 = static_cast<uint32_t>(key.step >> 32) ^ key.site;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint64_t block = first + static_cast<uint64_t>(b);
    x0[b] = static_cast<uint32_t>(block);
    x1[b] = static_cast<uint32_t>(block >> 32);
    x2[b] = c2;
    x3[b] = c3;
  }
  uint32_t k0 = static_cast<uint32_t>(key.seed), k1 = static_cast<uint32_t>(key.seed >> 32);
  for (int round = 0; round < 10; ++round) {
#pragma omp simd
    for (int64_t b = 0; b < blocks; ++b) {
      const uint64_t p0 = static_cast<uint64_t>(kM0) * x0[b];
      const uint64_t p1 = static_cast<uint64_t>(kM1) * x2[b];
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ x1[b] ^ k0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ x3[b] ^ k1;
      x0[b] = n0;
      x1[b] = static_cast<uint32_t>(p1);
      x2[b] = n2;
      x3[b] = static_cast<uint32_t>(p0);
    }
    k0 += kW0;
    k1 += kW1;
  }
  uint32_t words[4 * kMaxBlocks];  // words[4*b + w] = output word w of block b
  for (int64_t b = 0; b < blocks; ++b) {
    words[4 * b] = x0[b];
    words[4 * b + 1] = x1[b];
    words[4 * b + 2] = x2[b];
    words[4 * b + 3] = x3[b];
  }
  const uint32_t* w = words + (g0 & 3);
#pragma omp simd
  for (int64_t e = 0; e < n; ++e) bits[e] = w[e] >> 8;
}

// y = keep ? x / (1 - p) : 0, with the multiplier computed in T as T(1) / (T(1) - T(p)).
template <typename T>
void dropout(const T* x, T* y, float p, const DropoutKey& key, const BatchLayout& layout) {
  TXL_CHECK(p >= 0.0f && p < 1.0f, "dropout: probability {} outside [0, 1)", p);
  TXL_CHECK(layout.outer >= 0 && layout.batch >= 0 && layout.inner >= 0 && layout.batch_offset >= 0 &&
                layout.batch_offset + layout.batch <= layout.batch_global,
            "dropout: bad batch layout (outer {}, batch {}, inner {}, offset {}, global {})", layout.outer,
            layout.batch, layout.inner, layout.batch_offset, layout.batch_global);
  const int64_t rows = layout.outer * layout.batch;
  const int64_t inner = layout.inner;
  if (p == 0.0f) {
    if (x != y) std::copy(x, x + rows * inner, y);
    return;
  }
  const T multiplier = T(1) / (T(1) - static_cast<T>(p));
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  // philox_uniform = bits * 2^-24 exactly, so (uniform >= p) == (bits >= ceil(p * 2^24)):
  // an integer compare, which vectorises.
  const uint32_t threshold = static_cast<uint32_t>(std::ceil(static_cast<double>(p) * 16777216.0));
#pragma omp parallel for schedule(static) if (rows * inner >= kParallelGrain / 4)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t o = row / layout.batch, b = row % layout.batch;
    const uint64_t base = static_cast<uint64_t>((o * layout.batch_global + b + layout.batch_offset) * inner);
    const T* xr = x + row * inner;
    T* yr = y + row * inner;
    uint32_t bits[kDropoutChunk];
    for (int64_t c0 = 0; c0 < inner; c0 += kDropoutChunk) {
      const int64_t len = std::min(kDropoutChunk, inner - c0);
      philox_bits24(key, base + static_cast<uint64_t>(c0), len, bits);
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) {
        // keep ? x * multiplier : +0, as a bit mask (a branch on a float product would
        // not vectorise under -ftrapping-math; a 0 * x mask would turn dropped inf to NaN).
        const Bits keep_mask = Bits{0} - static_cast<Bits>(bits[i] >= threshold);
        yr[c0 + i] = std::bit_cast<T>(std::bit_cast<Bits>(xr[c0 + i] * multiplier) & keep_mask);
      }
    }
  }
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
  template void dropout<T>(const T*, T*, float, const DropoutKey&, const BatchLayout&);
TXL_INSTANTIATE(float)
TXL_INSTANTIATE(double)
#undef TXL_INSTANTIATE

}  // namespace txl::cpu
