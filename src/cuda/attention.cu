// Attention kernels: head split/merge, the relative shift computed by index (no padded
// copy of the score matrix), and the masked softmax (one warp per score row).
#include "kernel_utils.cuh"
#include "kernels.h"

namespace txl::cuda {
namespace {

constexpr int kRowsPerBlock = kThreads / kWarp;

__global__ void split_heads_kernel(const float* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head,
                                   int64_t ld, const float* bias, float* dst) {
  const int64_t n = heads * batch * len * d_head;
  for (int64_t e = global_thread(); e < n; e += grid_stride()) {
    const int64_t d = e % d_head;
    const int64_t t = (e / d_head) % len;
    const int64_t b = (e / (d_head * len)) % batch;
    const int64_t h = e / (d_head * len * batch);
    const int64_t col = h * d_head + d;
    const float v = src[(t * batch + b) * ld + col];
    dst[e] = bias ? v + bias[col] : v;
  }
}

__global__ void merge_heads_kernel(const float* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head,
                                   int64_t ld, bool accumulate, float* dst) {
  const int64_t n = heads * batch * len * d_head;
  for (int64_t e = global_thread(); e < n; e += grid_stride()) {
    const int64_t d = e % d_head;
    const int64_t t = (e / d_head) % len;
    const int64_t b = (e / (d_head * len)) % batch;
    const int64_t h = e / (d_head * len * batch);
    float* out = dst + (t * batch + b) * ld + h * d_head + d;
    *out = accumulate ? *out + src[e] : src[e];
  }
}

// Score (row, j) of query i = row % qlen reads bd_raw column klen-1-mlen-i+j.
__global__ void rel_shift_add_kernel(const float* bd_raw, int64_t n, int64_t qlen, int64_t klen, int64_t mlen,
                                     float* scores) {
  const int64_t total = n * qlen * klen;
  for (int64_t e = global_thread(); e < total; e += grid_stride()) {
    const int64_t j = e % klen;
    const int64_t row = e / klen;
    const int64_t i = row % qlen;
    if (j <= i + mlen) scores[e] += bd_raw[row * klen + (klen - 1 - mlen - i) + j];
  }
}

// Every element of d_bd_raw is written: the score gradient it came from, or 0.
__global__ void rel_shift_bwd_kernel(const float* d_scores, int64_t n, int64_t qlen, int64_t klen, int64_t mlen,
                                     float* d_bd_raw) {
  const int64_t total = n * qlen * klen;
  for (int64_t e = global_thread(); e < total; e += grid_stride()) {
    const int64_t r = e % klen;
    const int64_t row = e / klen;
    const int64_t i = row % qlen;
    const int64_t j = r - (klen - 1 - mlen - i);  // <= i + mlen because r <= klen - 1
    d_bd_raw[e] = j >= 0 ? d_scores[row * klen + j] : 0.0f;
  }
}

// Unmasked keys of every query form one interval [first, last] (AttnMask in ops.h).
__global__ void attn_softmax_fwd_kernel(const float* scores, int64_t rows, int64_t qlen, int64_t klen, float scale,
                                        int64_t mlen, bool same_length, int64_t shift, float* probs) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= rows) return;
  const int64_t i = row % qlen;
  const int64_t last = i + mlen < klen - 1 ? i + mlen : klen - 1;
  int64_t first = 0;
  if (same_length && i - shift + 1 > 0) first = i - shift + 1;
  const float* s = scores + row * klen;
  float* p = probs + row * klen;
  if (last < first) {
    for (int64_t j = lane; j < klen; j += kWarp) p[j] = 0.0f;
    return;
  }
  float max = -INFINITY;
  for (int64_t j = first + lane; j <= last; j += kWarp) max = fmaxf(max, __fmul_rn(s[j], scale));
  max = warp_max(max);
  double sum = 0.0;
  for (int64_t j = first + lane; j <= last; j += kWarp) sum += expf(__fmul_rn(s[j], scale) - max);
  sum = warp_sum(sum);
  const float inv_sum = static_cast<float>(1.0 / sum);
  for (int64_t j = lane; j < klen; j += kWarp)
    p[j] = (j >= first && j <= last) ? expf(__fmul_rn(s[j], scale) - max) * inv_sum : 0.0f;
}

// d_scores = scale * p * (dp - sum_j p dp); the row is read fully before any write of
// the same element, so d_scores may alias d_probs.
__global__ void attn_softmax_bwd_kernel(const float* probs, const float* d_probs, int64_t rows, int64_t klen,
                                        float scale, float* d_scores) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= rows) return;
  const float* p = probs + row * klen;
  const float* dp = d_probs + row * klen;
  float* ds = d_scores + row * klen;
  double dot = 0.0;
  for (int64_t j = lane; j < klen; j += kWarp) dot += static_cast<double>(p[j]) * dp[j];
  const float dotf = static_cast<float>(warp_sum(dot));
  for (int64_t j = lane; j < klen; j += kWarp) ds[j] = scale * p[j] * (dp[j] - dotf);
}

unsigned row_blocks(int64_t rows) {
  const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  if (blocks > 0x7fffffff) throw_error("attention softmax: too many rows for one launch");
  return static_cast<unsigned>(blocks);
}

}  // namespace

void launch_split_heads(const float* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                        const float* bias, float* dst, cudaStream_t stream) {
  const int64_t n = heads * batch * len * d_head;
  if (n <= 0) return;
  split_heads_kernel<<<grid_for(n), kThreads, 0, stream>>>(src, len, batch, heads, d_head, ld, bias, dst);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_merge_heads(const float* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                        bool accumulate, float* dst, cudaStream_t stream) {
  const int64_t n = heads * batch * len * d_head;
  if (n <= 0) return;
  merge_heads_kernel<<<grid_for(n), kThreads, 0, stream>>>(src, len, batch, heads, d_head, ld, accumulate, dst);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_rel_shift_add(const float* bd_raw, int64_t n, int64_t qlen, int64_t klen, int64_t mlen, float* scores,
                          cudaStream_t stream) {
  const int64_t total = n * qlen * klen;
  if (total <= 0) return;
  rel_shift_add_kernel<<<grid_for(total), kThreads, 0, stream>>>(bd_raw, n, qlen, klen, mlen, scores);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_rel_shift_bwd(const float* d_scores, int64_t n, int64_t qlen, int64_t klen, int64_t mlen,
                          float* d_bd_raw, cudaStream_t stream) {
  const int64_t total = n * qlen * klen;
  if (total <= 0) return;
  rel_shift_bwd_kernel<<<grid_for(total), kThreads, 0, stream>>>(d_scores, n, qlen, klen, mlen, d_bd_raw);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_attn_softmax_fwd(const float* scores, int64_t n, int64_t qlen, int64_t klen, float scale, int64_t mlen,
                             bool same_length, int64_t mem_len, float* probs, cudaStream_t stream) {
  const int64_t rows = n * qlen;
  if (rows <= 0 || klen <= 0) return;
  const int64_t over = klen - mem_len - 1;
  const int64_t shift = over > 0 ? qlen - over : qlen;
  attn_softmax_fwd_kernel<<<row_blocks(rows), kThreads, 0, stream>>>(scores, rows, qlen, klen, scale, mlen,
                                                                     same_length, shift, probs);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_attn_softmax_bwd(const float* probs, const float* d_probs, int64_t n, int64_t qlen, int64_t klen,
                             float scale, float* d_scores, cudaStream_t stream) {
  const int64_t rows = n * qlen;
  if (rows <= 0 || klen <= 0) return;
  attn_softmax_bwd_kernel<<<row_blocks(rows), kThreads, 0, stream>>>(probs, d_probs, rows, klen, scale,
                                                                     d_scores);
  TXL_CUDA_LAUNCH_CHECK();
}

}  // namespace txl::cuda
