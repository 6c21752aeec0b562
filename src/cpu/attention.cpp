// Attention helpers: head split/merge, relative shift, masked softmax.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "txl/core/error.h"
#include "cpu_kernels.h"
#include "parallel.h"
#include "vector_math.h"

namespace txl::cpu {
namespace {

// Unmasked keys of query i form one interval [first, last] (AttnMask in ops.h).
struct KeyRange {
  int64_t first, last;
};
KeyRange unmasked_keys(const AttnMask& mask, int64_t qlen, int64_t klen, int64_t i) {
  KeyRange r{0, std::min(klen - 1, i + mask.mlen)};
  if (mask.same_length) {
    const int64_t over = klen - mask.mem_len - 1;
    const int64_t shift = over > 0 ? qlen - over : qlen;
    r.first = std::max<int64_t>(0, i - shift + 1);
  }
  return r;
}

}  // namespace

template <typename T>
void split_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld, const T* bias,
                 T* dst) {
  check_head_stride("split_heads", ld, heads, d_head);
#pragma omp parallel for collapse(2) schedule(static) if (len * batch * heads * d_head >= kParallelGrain)
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t t = 0; t < len; ++t) {
        const T* s = src + (t * batch + b) * ld + h * d_head;
        T* d = dst + ((h * batch + b) * len + t) * d_head;
        if (bias) {
          const T* bh = bias + h * d_head;
#pragma omp simd
          for (int64_t k = 0; k < d_head; ++k) d[k] = s[k] + bh[k];
        } else {
          std::copy(s, s + d_head, d);
        }
      }
}

template <typename T>
void merge_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                 bool accumulate, T* dst) {
  check_head_stride("merge_heads", ld, heads, d_head);
#pragma omp parallel for collapse(2) schedule(static) if (len * batch * heads * d_head >= kParallelGrain)
  for (int64_t t = 0; t < len; ++t)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h) {
        const T* s = src + ((h * batch + b) * len + t) * d_head;
        T* d = dst + (t * batch + b) * ld + h * d_head;
        if (accumulate) {
#pragma omp simd
          for (int64_t k = 0; k < d_head; ++k) d[k] += s[k];
        } else {
          std::copy(s, s + d_head, d);
        }
      }
}

template <typename T>
void head_bias_grad(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, T* bias_grad) {
  const int64_t rows = batch * len;  // rows of one head's [batch*len, d_head] block
#pragma omp parallel for schedule(static) if (rows * heads * d_head >= kParallelGrain && heads > 1)
  for (int64_t h = 0; h < heads; ++h) {
    std::vector<double> acc(static_cast<size_t>(d_head), 0.0);
    const T* block = src + h * rows * d_head;
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = block + r * d_head;
#pragma omp simd
      for (int64_t k = 0; k < d_head; ++k) acc[static_cast<size_t>(k)] += static_cast<double>(row[k]);
    }
    for (int64_t k = 0; k < d_head; ++k)
      bias_grad[h * d_head + k] = static_cast<T>(bias_grad[h * d_head + k] + acc[static_cast<size_t>(k)]);
  }
}

template <typename T>
void rel_shift_add(const T* bd_raw, int64_t n, int64_t qlen, int64_t klen, int64_t mlen, T* scores) {
  check_rel_shift("rel_shift_add", qlen, klen, mlen);
#pragma omp parallel for collapse(2) schedule(static) if (n * qlen * klen >= kParallelGrain)
  for (int64_t h = 0; h < n; ++h)
    for (int64_t i = 0; i < qlen; ++i) {
      const int64_t row = (h * qlen + i) * klen;
      const int64_t offset = klen - 1 - mlen - i;  // bd column of key j is offset + j
      const int64_t last = std::min(klen - 1, i + mlen);
      const T* src = bd_raw + row + offset;
      T* dst = scores + row;
#pragma omp simd
      for (int64_t j = 0; j <= last; ++j) dst[j] += src[j];
    }
}

template <typename T>
void rel_shift_bwd(const T* d_scores, int64_t n, int64_t qlen, int64_t klen, int64_t mlen, T* d_bd_raw) {
  check_rel_shift("rel_shift_bwd", qlen, klen, mlen);
#pragma omp parallel for collapse(2) schedule(static) if (n * qlen * klen >= kParallelGrain)
  for (int64_t h = 0; h < n; ++h)
    for (int64_t i = 0; i < qlen; ++i) {
      const int64_t row = (h * qlen + i) * klen;
      const int64_t offset = klen - 1 - mlen - i;
      const int64_t last = std::min(klen - 1, i + mlen);
      T* dst = d_bd_raw + row;
      std::fill(dst, dst + offset, T(0));
      std::copy(d_scores + row, d_scores + row + last + 1, dst + offset);
      std::fill(dst + offset + last + 1, dst + klen, T(0));
    }
}

// Masked entries get probability exactly 0; a row with no unmasked key (impossible for
// a valid mask) would be all zeros rather than NaN.
template <typename T>
void attn_softmax_fwd(const T* scores, int64_t n, int64_t qlen, int64_t klen, T scale, const AttnMask& mask,
                      T* probs) {
  const int64_t rows = n * qlen;
#pragma omp parallel for schedule(static) if (rows * klen >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r % qlen;
    const KeyRange keys = unmasked_keys(mask, qlen, klen, i);
    const T* s = scores + r * klen;
    T* p = probs + r * klen;
    const int64_t count = keys.last - keys.first + 1;
    if (count <= 0) {
      std::fill(p, p + klen, T(0));
      continue;
    }
    const ConstArrayMap<T> in(s + keys.first, count);
    ArrayMap<T> out(p + keys.first, count);
    const T max = (in * scale).maxCoeff();
    out = (in * scale - max).exp();
    const double sum = block_sum(0, count, [&](int64_t j) { return static_cast<double>(out[j]); });
    out *= static_cast<T>(1.0 / sum);
    std::fill(p, p + keys.first, T(0));
    std::fill(p + keys.last + 1, p + klen, T(0));
  }
}

template <typename T>
void attn_softmax_bwd(const T* probs, const T* d_probs, int64_t n, int64_t qlen, int64_t klen, T scale,
                      T* d_scores) {
  const int64_t rows = n * qlen;
#pragma omp parallel for schedule(static) if (rows * klen >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T* p = probs + r * klen;
    const T* dp = d_probs + r * klen;
    T* ds = d_scores + r * klen;
    const T dot = static_cast<T>(block_sum(0, klen, [&](int64_t j) { return static_cast<double>(p[j]) * dp[j]; }));
#pragma omp simd
    for (int64_t j = 0; j < klen; ++j) ds[j] = scale * p[j] * (dp[j] - dot);
  }
}

#define TXL_INSTANTIATE(T)                                                                                    \
  template void split_heads<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, const T*, T*);          \
  template void merge_heads<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, bool, T*);              \
  template void head_bias_grad<T>(const T*, int64_t, int64_t, int64_t, int64_t, T*);                          \
  template void rel_shift_add<T>(const T*, int64_t, int64_t, int64_t, int64_t, T*);                           \
  template void rel_shift_bwd<T>(const T*, int64_t, int64_t, int64_t, int64_t, T*);                           \
  template void attn_softmax_fwd<T>(const T*, int64_t, int64_t, int64_t, T, const AttnMask&, T*);            \
  template void attn_softmax_bwd<T>(const T*, const T*, int64_t, int64_t, int64_t, T, T*);
TXL_INSTANTIATE(float)
TXL_INSTANTIATE(double)
#undef TXL_INSTANTIATE

}  // namespace txl::cpu
