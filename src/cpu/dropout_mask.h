// The dropout mask of philox.h on runs of consecutive elements, vectorised (private to
// src/cpu): Ops::dropout (elementwise.cpp) and the fused residual tail (layernorm.cpp)
// share it, so both give the same bits.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "txl/core/philox.h"

namespace txl::cpu {

inline constexpr int64_t kDropoutChunk = 256;  // elements per philox batch

// The 24 random bits behind philox_uniform(key, g) = bits * 2^-24, for g in
// [g0, g0 + n), n <= kDropoutChunk: one Philox call per
// 4-element counter block, computed for all blocks of the run side by side so that the
// rounds vectorise (philox_uniform itself recomputes a block for each of its 4 elements).
// Bit-identical to philox.h; tests/cpu checks it against dropout_keep().
inline void philox_bits24(const DropoutKey& key, uint64_t g0, int64_t n, uint32_t* bits) {
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

// Global index of element 0 of row `row` (= o * batch + b) of a tensor [outer*batch, inner].
inline uint64_t dropout_row_base(const BatchLayout& layout, int64_t row) {
  const int64_t o = row / layout.batch, b = row % layout.batch;
  return static_cast<uint64_t>((o * layout.batch_global + b + layout.batch_offset) * layout.inner);
}

// y = keep ? x * multiplier : +0 at drop probability p (0 < p < 1), the multiplier
// computed in T as T(1) / (T(1) - T(p)).
template <typename T>
class DropoutMask {
 public:
  DropoutMask(float p, const DropoutKey& key)
      : key_(key),
        multiplier_(T(1) / (T(1) - static_cast<T>(p))),
        // philox_uniform = bits * 2^-24 exactly, so (uniform >= p) == (bits >= ceil(p * 2^24)):
        // an integer compare, which vectorises.
        threshold_(static_cast<uint32_t>(std::ceil(static_cast<double>(p) * 16777216.0))) {}

  // Elements with global indices [g0, g0 + n), n <= kDropoutChunk; y may alias x.
  void apply(uint64_t g0, int64_t n, const T* x, T* y) const {
    using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
    uint32_t bits[kDropoutChunk];
    philox_bits24(key_, g0, n, bits);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      // keep ? x * multiplier : +0, as a bit mask (a branch on a float product would
      // not vectorise under -ftrapping-math; a 0 * x mask would turn dropped inf to NaN).
      const Bits keep_mask = Bits{0} - static_cast<Bits>(bits[i] >= threshold_);
      y[i] = std::bit_cast<T>(std::bit_cast<Bits>(x[i] * multiplier_) & keep_mask);
    }
  }

 private:
  DropoutKey key_;
  T multiplier_;
  uint32_t threshold_;
};

}  // namespace txl::cpu
