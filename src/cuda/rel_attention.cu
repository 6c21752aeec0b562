// Fused relative attention (Ops::rel_attention_fwd/bwd; CPU twin src/cpu/rel_attention.cpp)
// in float32 on the CUDA cores: no [n, qlen, klen] tensor is written to memory.
//
// Forward: a block takes kQueryRows queries of one score block n and walks the keys
// those queries may see in tiles of 32, with the tile's keys, values and the position
// rows the tile's shifted BD term reads (c = klen-1-mlen-i+j: 32 + kQueryRows - 1 rows) in
// shared memory. A warp owns kRowsPerWarp queries; lane l scores key j0 + l, the
// softmax runs online (running max and sum), and each lane accumulates d_head/32 output
// columns. lse = max + log(sum) is written for the backward.
//
// Backward, by recomputing the probabilities from lse (no stored probabilities):
//  - row terms delta[n,i] = d_out[n,i]·out[n,i] (one warp per row);
//  - d_q: the forward's blocks, accumulating ds·k and ds·r per query (and the blocks'
//    column sums of both for the bias gradients);
//  - d_k, d_v: a block per 32 keys of n, lanes over 32-query tiles;
//  - d_r: a block per 32 position rows of head h, the batch and the queries looped in a
//    fixed order (no atomics: the sum over the batch is reproducible);
//  - d_u, d_w: the d_q blocks' column sums added up in a fixed order.
// Each score is scale*(qu·k + qw·r) as on the CPU; the dropout mask is philox.h's for
// the element (n, i, j) of a [heads, batch, qlen*klen] tensor.
//
// Operands stay in the projections' row layout (RelAttentionLayout, ops.h): head h of
// stream b is the d_head columns at h*d_head of rows t*batch + b, so a tile load reads
// d_head contiguous floats per row with a row stride of batch*ld. The tile loads of q add
// u and w (q + u and q + w are never stored). The d_q kernel writes d qu + d qw and
// per-block column sums of each; a last small kernel adds those, batch and blocks in
// order, to the bias gradients (reproducible: no atomics).
#include "kernel_utils.cuh"
#include "kernels.h"

namespace txl::cuda {
namespace {

constexpr int kTile = 32;        // keys per tile (one per lane) / queries per tile in the backward
constexpr int kWarps = 4;        // warps per block
constexpr int kRowsPerWarp = 4;  // forward and d_q: queries per warp
constexpr int kQueryRows = kWarps * kRowsPerWarp;
constexpr int kMaxCols = 4;  // d_head / 32, rounded up (d_head <= 128)

__device__ __forceinline__ int64_t first_key(const RelAttentionShape& a, int64_t i) {
  if (!a.same_length) return 0;
  const int64_t f = i - a.shift + 1;
  return f > 0 ? f : 0;
}
__device__ __forceinline__ int64_t last_key(const RelAttentionShape& a, int64_t i) {
  return i + a.mlen < a.klen - 1 ? i + a.mlen : a.klen - 1;
}
__device__ __forceinline__ bool unmasked(const RelAttentionShape& a, int64_t i, int64_t j) {
  return j >= first_key(a, i) && j <= last_key(a, i) && i < a.qlen;
}
// Position row read by score (i, j).
__device__ __forceinline__ int64_t pos_row(const RelAttentionShape& a, int64_t i, int64_t j) {
  return a.klen - 1 - a.mlen - i + j;
}
__device__ __forceinline__ bool kept(const RelAttentionShape& a, int64_t n, int64_t i, int64_t j) {
  return dropout_keep(a.key, a.layout, (n * a.qlen + i) * a.klen + j, a.dropatt);
}

// One head's [total, d] matrix inside an operand: row t at base + t * stride.
struct HeadRows {
  const float* base;
  int64_t stride;
};
// Head h of stream b of a [len*batch, ld] operand (q, k, v, out, d_out).
__device__ __forceinline__ HeadRows stream_rows(const RelAttentionShape& a, const float* x, int64_t ld, int64_t h,
                                                int64_t b) {
  return HeadRows{x + b * ld + h * a.d_head, a.batch * ld};
}
// Head h of the position rows [klen, ld_r].
__device__ __forceinline__ HeadRows position_rows(const RelAttentionShape& a, const float* r, int64_t h) {
  return HeadRows{r + h * a.d_head, a.ld_r};
}
// Where row t of head h of stream b of an output in the row layout lives.
__device__ __forceinline__ float* stream_row(const RelAttentionShape& a, float* x, int64_t ld, int64_t h, int64_t b,
                                             int64_t t) {
  return x + (t * a.batch + b) * ld + h * a.d_head;
}

// Rows [row0, row0 + rows) of a head's matrix (plus bias[c] when bias is not null) into
// shared memory with row stride d + 1 (conflict-free column reads); rows outside
// [0, total) are zeros.
__device__ void load_rows(float* dst, HeadRows src, int64_t row0, int rows, int64_t total, int d,
                          const float* bias = nullptr) {
  for (int e = threadIdx.x; e < rows * d; e += blockDim.x) {
    const int r = e / d, c = e % d;
    const int64_t row = row0 + r;
    dst[r * (d + 1) + c] =
        row >= 0 && row < total ? src.base[row * src.stride + c] + (bias ? bias[c] : 0.0f) : 0.0f;
  }
}
// Head h's columns of a bias [heads*d_head], or null.
__device__ __forceinline__ const float* head_bias(const RelAttentionShape& a, const float* bias, int64_t h) {
  return bias ? bias + h * a.d_head : nullptr;
}

__device__ __forceinline__ float dot_shared(const float* a, const float* b, int d) {
  float s = 0.0f;
  for (int c = 0; c < d; ++c) s = fmaf(a[c], b[c], s);
  return s;
}

// ---- forward ---------------------------------------------------------------------------

__global__ void rel_attention_fwd_kernel(RelAttentionShape a, const float* q, const float* u, const float* w,
                                         const float* k, const float* v, const float* r, float* out, float* lse) {
  extern __shared__ float smem[];
  const int d = static_cast<int>(a.d_head), ds = d + 1;
  const int64_t n = blockIdx.y, h = n / a.batch, b = n % a.batch;
  const HeadRows q_rows = stream_rows(a, q, a.ld_q, h, b), k_rows = stream_rows(a, k, a.ld_k, h, b);
  const HeadRows v_rows = stream_rows(a, v, a.ld_v, h, b), r_rows = position_rows(a, r, h);
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kQueryRows;
  const int64_t i1 = i0 + kQueryRows < a.qlen ? i0 + kQueryRows : a.qlen;
  float* q_u = smem;                      // [kQueryRows][ds]
  float* q_w = q_u + kQueryRows * ds;     // [kQueryRows][ds]
  float* kt = q_w + kQueryRows * ds;      // [kTile][ds]
  float* vt = kt + kTile * ds;            // [kTile][ds]
  float* rt = vt + kTile * ds;            // [kTile + kQueryRows][ds]
  load_rows(q_u, q_rows, i0, kQueryRows, a.qlen, d, head_bias(a, u, h));
  load_rows(q_w, q_rows, i0, kQueryRows, a.qlen, d, head_bias(a, w, h));
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kMaxCols];
  #pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    m[rr] = -INFINITY;
    l[rr] = 0.0f;
    #pragma unroll
    for (int c = 0; c < kMaxCols; ++c) acc[rr][c] = 0.0f;
  }
  const float multiplier = 1.0f / (1.0f - a.dropatt);
  const int64_t kf = first_key(a, i0), kl = last_key(a, i1 - 1);
  for (int64_t j0 = kf; j0 <= kl; j0 += kTile) {
    const int64_t c_base = pos_row(a, i1 - 1, j0);
    __syncthreads();  // the previous tile is no longer read
    load_rows(kt, k_rows, j0, kTile, a.klen, d);
    load_rows(vt, v_rows, j0, kTile, a.klen, d);
    load_rows(rt, r_rows, c_base, kTile + kQueryRows, a.klen, d);
    __syncthreads();
    const int64_t j = j0 + lane;
    #pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int qi = warp * kRowsPerWarp + rr;
      const int64_t i = i0 + qi;
      const bool live = unmasked(a, i, j);
      float s = -INFINITY;
      if (live) {
        const float ac = dot_shared(q_u + qi * ds, kt + lane * ds, d);
        const float bd = dot_shared(q_w + qi * ds, rt + (pos_row(a, i, j) - c_base) * ds, d);
        s = (ac + bd) * a.scale;
      }
      const float m_new = fmaxf(m[rr], warp_max(s));
      if (m_new == -INFINITY) continue;  // no key of this row in the tile yet
      const float alpha = expf(m[rr] - m_new);
      float p = live ? expf(s - m_new) : 0.0f;
      l[rr] = l[rr] * alpha + warp_sum(p);
      m[rr] = m_new;
      if (a.dropatt > 0.0f && live) p = kept(a, n, i, j) ? p * multiplier : 0.0f;
      #pragma unroll
      for (int c = 0; c < kMaxCols; ++c) acc[rr][c] *= alpha;
      for (int jj = 0; jj < kTile; ++jj) {
        const float pj = __shfl_sync(0xffffffffu, p, jj);
        #pragma unroll
        for (int c = 0; c < kMaxCols; ++c) {
          const int col = lane + c * kWarp;
          if (col < d) acc[rr][c] = fmaf(pj, vt[jj * ds + col], acc[rr][c]);
        }
      }
    }
  }
  #pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int64_t i = i0 + warp * kRowsPerWarp + rr;
    if (i >= a.qlen) continue;
    const float inv = 1.0f / l[rr];
    #pragma unroll
    for (int c = 0; c < kMaxCols; ++c) {
      const int col = lane + c * kWarp;
      if (col < d) stream_row(a, out, a.ld_out, h, b, i)[col] = acc[rr][c] * inv;
    }
    if (lane == 0) lse[n * a.qlen + i] = m[rr] + logf(l[rr]);
  }
}

// ---- backward --------------------------------------------------------------------------

// delta[n, i] = x_i · y_i over head h's columns of row (i, b) of two [qlen*batch, ld]
// operands; one warp per (n, i).
__global__ void row_dot_kernel(RelAttentionShape a, const float* x, const float* y, int64_t ld, float* out) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (kThreads / kWarp) + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= a.heads * a.batch * a.qlen) return;
  const int64_t n = row / a.qlen, i = row % a.qlen, h = n / a.batch, b = n % a.batch;
  const int64_t at = (i * a.batch + b) * ld + h * a.d_head;
  double s = 0.0;
  for (int c = lane; c < a.d_head; c += kWarp) s += static_cast<double>(x[at + c]) * y[at + c];
  s = warp_sum(s);
  if (lane == 0) out[row] = static_cast<float>(s);
}

// Recomputed probability p and score gradient ds of (i, j), and p~ (after dropatt), from
// the two score dot products, dp~ = d_out_i·v_j, lse_i and delta_i.
struct ScoreGrad {
  float p_dropped, ds;
};
__device__ __forceinline__ ScoreGrad score_grad(const RelAttentionShape& a, int64_t n, int64_t i, int64_t j, float ac,
                                                float bd, float dp_dropped, float row_lse, float row_delta) {
  const float p = expf((ac + bd) * a.scale - row_lse);
  float dp = dp_dropped, pd = p;
  if (a.dropatt > 0.0f) {
    const float multiplier = 1.0f / (1.0f - a.dropatt);
    const bool keep = kept(a, n, i, j);
    dp = keep ? dp_dropped * multiplier : 0.0f;
    pd = keep ? p * multiplier : 0.0f;
  }
  return ScoreGrad{pd, a.scale * p * (dp - row_delta)};
}

// d_q = d qu + d qw: the forward's blocks; lane = key of the tile. With `partials`, each
// block also leaves the column sums of its d qu and d qw rows there ([n][block][2][d]).
__global__ void rel_attention_bwd_q_kernel(RelAttentionShape a, const float* q, const float* u, const float* w,
                                           const float* k, const float* v, const float* r, const float* lse,
                                           const float* delta, const float* d_out, float* d_q, float* partials) {
  extern __shared__ float smem[];
  const int d = static_cast<int>(a.d_head), ds = d + 1;
  const int64_t n = blockIdx.y, h = n / a.batch, b = n % a.batch;
  const HeadRows q_rows = stream_rows(a, q, a.ld_q, h, b), k_rows = stream_rows(a, k, a.ld_k, h, b);
  const HeadRows v_rows = stream_rows(a, v, a.ld_v, h, b), r_rows = position_rows(a, r, h);
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kQueryRows;
  const int64_t i1 = i0 + kQueryRows < a.qlen ? i0 + kQueryRows : a.qlen;
  float* q_u = smem;
  float* q_w = q_u + kQueryRows * ds;
  float* dot = q_w + kQueryRows * ds;  // [kQueryRows][ds] d_out rows
  float* kt = dot + kQueryRows * ds;
  float* vt = kt + kTile * ds;
  float* rt = vt + kTile * ds;  // [kTile + kQueryRows][ds]
  load_rows(q_u, q_rows, i0, kQueryRows, a.qlen, d, head_bias(a, u, h));
  load_rows(q_w, q_rows, i0, kQueryRows, a.qlen, d, head_bias(a, w, h));
  load_rows(dot, stream_rows(a, d_out, a.ld_out, h, b), i0, kQueryRows, a.qlen, d);
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  float gu[kRowsPerWarp][kMaxCols], gw[kRowsPerWarp][kMaxCols];
  #pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr)
    #pragma unroll
    for (int c = 0; c < kMaxCols; ++c) gu[rr][c] = gw[rr][c] = 0.0f;
  const int64_t kf = first_key(a, i0), kl = last_key(a, i1 - 1);
  for (int64_t j0 = kf; j0 <= kl; j0 += kTile) {
    const int64_t c_base = pos_row(a, i1 - 1, j0);
    __syncthreads();
    load_rows(kt, k_rows, j0, kTile, a.klen, d);
    load_rows(vt, v_rows, j0, kTile, a.klen, d);
    load_rows(rt, r_rows, c_base, kTile + kQueryRows, a.klen, d);
    __syncthreads();
    const int64_t j = j0 + lane;
    #pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int qi = warp * kRowsPerWarp + rr;
      const int64_t i = i0 + qi;
      float g = 0.0f;
      const int c_off = unmasked(a, i, j) ? static_cast<int>(pos_row(a, i, j) - c_base) : 0;
      if (unmasked(a, i, j)) {
        const float ac = dot_shared(q_u + qi * ds, kt + lane * ds, d);
        const float bd = dot_shared(q_w + qi * ds, rt + c_off * ds, d);
        const float dpd = dot_shared(dot + qi * ds, vt + lane * ds, d);
        g = score_grad(a, n, i, j, ac, bd, dpd, lse[n * a.qlen + i], delta[n * a.qlen + i]).ds;
      }
      // The relative term of key jj reads position row pos_row(i, j0 + jj) - c_base,
      // which is c_off of lane jj.
      for (int jj = 0; jj < kTile; ++jj) {
        const float gj = __shfl_sync(0xffffffffu, g, jj);
        const int cj = __shfl_sync(0xffffffffu, c_off, jj);
        if (gj == 0.0f) continue;
        #pragma unroll
        for (int c = 0; c < kMaxCols; ++c) {
          const int col = lane + c * kWarp;
          if (col < d) {
            gu[rr][c] = fmaf(gj, kt[jj * ds + col], gu[rr][c]);
            gw[rr][c] = fmaf(gj, rt[cj * ds + col], gw[rr][c]);
          }
        }
      }
    }
  }
  #pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int64_t i = i0 + warp * kRowsPerWarp + rr;
    if (i >= a.qlen) continue;
    #pragma unroll
    for (int c = 0; c < kMaxCols; ++c) {
      const int col = lane + c * kWarp;
      if (col < d) stream_row(a, d_q, a.ld_q, h, b, i)[col] = gu[rr][c] + gw[rr][c];
    }
  }
  if (partials == nullptr) return;
  // Column sums of the block's d qu and d qw: a warp's rows in order, then the warps in
  // order (rows past qlen hold zeros).
  __syncthreads();  // the tiles are no longer read
  float* sums = smem;  // [kWarps][2][d]
  #pragma unroll
  for (int c = 0; c < kMaxCols; ++c) {
    const int col = lane + c * kWarp;
    if (col >= d) continue;
    float su = 0.0f, sw = 0.0f;
    #pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      su += gu[rr][c];
      sw += gw[rr][c];
    }
    sums[(warp * 2) * d + col] = su;
    sums[(warp * 2 + 1) * d + col] = sw;
  }
  __syncthreads();
  float* block_sums = partials + (n * gridDim.x + blockIdx.x) * 2 * d;
  for (int e = threadIdx.x; e < 2 * d; e += blockDim.x) {
    float s = 0.0f;
    for (int wp = 0; wp < kWarps; ++wp) s += sums[wp * 2 * d + e];
    block_sums[e] = s;
  }
}

// d_u, d_w [heads*d] += the d_q kernel's partials summed over the batch and the query
// blocks in order (one thread per output).
__global__ void rel_attention_bias_grad_kernel(RelAttentionShape a, const float* partials, int64_t q_blocks,
                                               float* d_u, float* d_w) {
  const int64_t hd = a.heads * a.d_head;
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= 2 * hd) return;
  const int64_t which = e / hd, hc = e % hd, h = hc / a.d_head, col = hc % a.d_head;
  float* dst = which == 0 ? d_u : d_w;
  if (dst == nullptr) return;
  double s = 0.0;
  for (int64_t b = 0; b < a.batch; ++b)
    for (int64_t x = 0; x < q_blocks; ++x)
      s += partials[(((h * a.batch + b) * q_blocks + x) * 2 + which) * a.d_head + col];
  dst[hc] = static_cast<float>(dst[hc] + s);
}

// d_k, d_v: a block per kTile keys of score block n (kTile / kWarps keys per warp); lane =
// query of a 32-query tile.
constexpr int kKeysPerWarp = kTile / kWarps;

__global__ void rel_attention_bwd_kv_kernel(RelAttentionShape a, const float* q, const float* u, const float* w,
                                            const float* k, const float* v, const float* r, const float* lse,
                                            const float* delta, const float* d_out, float* d_k, float* d_v) {
  extern __shared__ float smem[];
  const int d = static_cast<int>(a.d_head), ds = d + 1;
  const int64_t n = blockIdx.y, h = n / a.batch, b = n % a.batch;
  const HeadRows q_rows = stream_rows(a, q, a.ld_q, h, b), do_rows = stream_rows(a, d_out, a.ld_out, h, b);
  const HeadRows r_rows = position_rows(a, r, h);
  const int64_t j0 = static_cast<int64_t>(blockIdx.x) * kTile;
  float* kt = smem;             // [kTile][ds] this block's keys
  float* vt = kt + kTile * ds;  // [kTile][ds]
  float* q_u = vt + kTile * ds; // [kTile][ds] query tile
  float* q_w = q_u + kTile * ds;
  float* dot = q_w + kTile * ds;
  float* rt = dot + kTile * ds;  // [2 * kTile][ds]
  load_rows(kt, stream_rows(a, k, a.ld_k, h, b), j0, kTile, a.klen, d);
  load_rows(vt, stream_rows(a, v, a.ld_v, h, b), j0, kTile, a.klen, d);
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  float gk[kKeysPerWarp][kMaxCols], gv[kKeysPerWarp][kMaxCols];
  #pragma unroll
  for (int kk = 0; kk < kKeysPerWarp; ++kk)
    #pragma unroll
    for (int c = 0; c < kMaxCols; ++c) gk[kk][c] = gv[kk][c] = 0.0f;
  // Queries that may see a key of [j0, j0 + kTile): i >= j - mlen.
  const int64_t q_first = j0 - a.mlen > 0 ? j0 - a.mlen : 0;
  for (int64_t t0 = q_first - q_first % kTile; t0 < a.qlen; t0 += kTile) {
    // Position rows of queries [t0, t0+32) and these keys: [pos_row(t0+31, j0), pos_row(t0, j0+31)].
    const int64_t c_base = pos_row(a, t0 + kTile - 1, j0);
    __syncthreads();
    load_rows(q_u, q_rows, t0, kTile, a.qlen, d, head_bias(a, u, h));
    load_rows(q_w, q_rows, t0, kTile, a.qlen, d, head_bias(a, w, h));
    load_rows(dot, do_rows, t0, kTile, a.qlen, d);
    load_rows(rt, r_rows, c_base, 2 * kTile, a.klen, d);
    __syncthreads();
    const int64_t i = t0 + lane;
    const float row_lse = i < a.qlen ? lse[n * a.qlen + i] : 0.0f;
    const float row_delta = i < a.qlen ? delta[n * a.qlen + i] : 0.0f;
    #pragma unroll
    for (int kk = 0; kk < kKeysPerWarp; ++kk) {
      const int kj = warp * kKeysPerWarp + kk;
      const int64_t j = j0 + kj;
      ScoreGrad sg{0.0f, 0.0f};
      if (unmasked(a, i, j)) {
        const float ac = dot_shared(q_u + lane * ds, kt + kj * ds, d);
        const float bd = dot_shared(q_w + lane * ds, rt + (pos_row(a, i, j) - c_base) * ds, d);
        const float dpd = dot_shared(dot + lane * ds, vt + kj * ds, d);
        sg = score_grad(a, n, i, j, ac, bd, dpd, row_lse, row_delta);
      }
      for (int ii = 0; ii < kTile; ++ii) {
        const float pi = __shfl_sync(0xffffffffu, sg.p_dropped, ii);
        const float gi = __shfl_sync(0xffffffffu, sg.ds, ii);
        if (pi == 0.0f && gi == 0.0f) continue;
        #pragma unroll
        for (int c = 0; c < kMaxCols; ++c) {
          const int col = lane + c * kWarp;
          if (col < d) {
            gv[kk][c] = fmaf(pi, dot[ii * ds + col], gv[kk][c]);
            gk[kk][c] = fmaf(gi, q_u[ii * ds + col], gk[kk][c]);
          }
        }
      }
    }
  }
  #pragma unroll
  for (int kk = 0; kk < kKeysPerWarp; ++kk) {
    const int64_t j = j0 + warp * kKeysPerWarp + kk;
    if (j >= a.klen) continue;
    #pragma unroll
    for (int c = 0; c < kMaxCols; ++c) {
      const int col = lane + c * kWarp;
      if (col < d) {
        stream_row(a, d_k, a.ld_k, h, b, j)[col] = gk[kk][c];
        stream_row(a, d_v, a.ld_v, h, b, j)[col] = gv[kk][c];
      }
    }
  }
}

// d_r: a block per kTile position rows c of head h; every (b, query) in a fixed order.
// Score (i, j) reads row c when j = c - (klen-1-mlen) + i.
__global__ void rel_attention_bwd_r_kernel(RelAttentionShape a, const float* q, const float* u, const float* w,
                                           const float* k, const float* v, const float* r, const float* lse,
                                           const float* delta, const float* d_out, float* d_r) {
  extern __shared__ float smem[];
  const int d = static_cast<int>(a.d_head), ds = d + 1;
  const int64_t h = blockIdx.y;
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * kTile;
  float* rt = smem;              // [kTile][ds] this block's position rows
  float* q_u = rt + kTile * ds;  // [kTile][ds] query tile
  float* q_w = q_u + kTile * ds;
  float* dot = q_w + kTile * ds;
  float* kt = dot + kTile * ds;    // [2 * kTile][ds] keys the tile's scores read
  float* vt = kt + 2 * kTile * ds; // [2 * kTile][ds]
  load_rows(rt, position_rows(a, r, h), c0, kTile, a.klen, d);
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  float gr[kKeysPerWarp][kMaxCols];
  #pragma unroll
  for (int kk = 0; kk < kKeysPerWarp; ++kk)
    #pragma unroll
    for (int c = 0; c < kMaxCols; ++c) gr[kk][c] = 0.0f;
  const int64_t base = a.klen - 1 - a.mlen;  // j = c - base + i
  for (int64_t b = 0; b < a.batch; ++b) {
    const int64_t n = h * a.batch + b;
    for (int64_t t0 = 0; t0 < a.qlen; t0 += kTile) {
      const int64_t j_base = c0 - base + t0;  // keys [j_base, j_base + 2*kTile - 1)
      __syncthreads();
      const HeadRows q_rows = stream_rows(a, q, a.ld_q, h, b);
      load_rows(q_u, q_rows, t0, kTile, a.qlen, d, head_bias(a, u, h));
      load_rows(q_w, q_rows, t0, kTile, a.qlen, d, head_bias(a, w, h));
      load_rows(dot, stream_rows(a, d_out, a.ld_out, h, b), t0, kTile, a.qlen, d);
      load_rows(kt, stream_rows(a, k, a.ld_k, h, b), j_base, 2 * kTile, a.klen, d);
      load_rows(vt, stream_rows(a, v, a.ld_v, h, b), j_base, 2 * kTile, a.klen, d);
      __syncthreads();
      const int64_t i = t0 + lane;
      const float row_lse = i < a.qlen ? lse[n * a.qlen + i] : 0.0f;
      const float row_delta = i < a.qlen ? delta[n * a.qlen + i] : 0.0f;
      #pragma unroll
      for (int kk = 0; kk < kKeysPerWarp; ++kk) {
        const int rc = warp * kKeysPerWarp + kk;
        const int64_t c = c0 + rc;
        const int64_t j = c - base + i;
        float g = 0.0f;
        if (c < a.klen && j >= 0 && unmasked(a, i, j)) {
          const int jt = static_cast<int>(j - j_base);
          const float ac = dot_shared(q_u + lane * ds, kt + jt * ds, d);
          const float bd = dot_shared(q_w + lane * ds, rt + rc * ds, d);
          const float dpd = dot_shared(dot + lane * ds, vt + jt * ds, d);
          g = score_grad(a, n, i, j, ac, bd, dpd, row_lse, row_delta).ds;
        }
        for (int ii = 0; ii < kTile; ++ii) {
          const float gi = __shfl_sync(0xffffffffu, g, ii);
          if (gi == 0.0f) continue;
          #pragma unroll
          for (int cc = 0; cc < kMaxCols; ++cc) {
            const int col = lane + cc * kWarp;
            if (col < d) gr[kk][cc] = fmaf(gi, q_w[ii * ds + col], gr[kk][cc]);
          }
        }
      }
    }
  }
  #pragma unroll
  for (int kk = 0; kk < kKeysPerWarp; ++kk) {
    const int64_t c = c0 + warp * kKeysPerWarp + kk;
    if (c >= a.klen) continue;
    #pragma unroll
    for (int cc = 0; cc < kMaxCols; ++cc) {
      const int col = lane + cc * kWarp;
      if (col < d) d_r[c * a.ld_r + h * d + col] = gr[kk][cc];
    }
  }
}

template <typename Kernel>
void launch_with_shared(Kernel kernel, dim3 grid, size_t shared, cudaStream_t stream, const char* what,
                        const auto&... args) {
  if (shared > 48 * 1024)
    TXL_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(shared)));
  (void)what;
  kernel<<<grid, kWarps * kWarp, shared, stream>>>(args...);
  TXL_CUDA_LAUNCH_CHECK();
}

unsigned blocks_of(int64_t count, int64_t per_block, const char* what) {
  const int64_t blocks = (count + per_block - 1) / per_block;
  if (blocks > 0x7fffffff) throw_error(what);
  return static_cast<unsigned>(blocks);
}

unsigned grid_y(int64_t count) {
  if (count > 65535) throw_error("rel_attention: more than 65535 score blocks (heads * batch) in one launch");
  return static_cast<unsigned>(count);
}

size_t shared_bytes(int64_t d_head, int rows) { return static_cast<size_t>(rows) * (d_head + 1) * sizeof(float); }

}  // namespace

void launch_rel_attention_fwd(const RelAttentionShape& a, const float* q, const float* u, const float* w,
                              const float* k, const float* v, const float* r, float* out, float* lse,
                              cudaStream_t stream) {
  if (a.qlen <= 0) return;
  const dim3 grid(blocks_of(a.qlen, kQueryRows, "rel_attention: qlen too long"), grid_y(a.heads * a.batch));
  launch_with_shared(rel_attention_fwd_kernel, grid, shared_bytes(a.d_head, 3 * kQueryRows + 3 * kTile), stream,
                     "rel_attention_fwd", a, q, u, w, k, v, r, out, lse);
}

void launch_rel_attention_bwd(const RelAttentionShape& a, const float* q, const float* u, const float* w,
                              const float* k, const float* v, const float* r, const float* out, const float* lse,
                              const float* d_out, float* d_q, float* d_u, float* d_w, float* d_k, float* d_v,
                              float* d_r, Scratch& scratch, cudaStream_t stream) {
  if (a.qlen <= 0) return;
  const int64_t n = a.heads * a.batch, rows = n * a.qlen;
  float* delta = scratch.allocate_array<float>(rows);
  row_dot_kernel<<<blocks_of(rows, kThreads / kWarp, "rel_attention: too many rows"), kThreads, 0, stream>>>(
      a, d_out, out, a.ld_out, delta);
  TXL_CUDA_LAUNCH_CHECK();
  const unsigned q_blocks = blocks_of(a.qlen, kQueryRows, "rel_attention: qlen too long");
  const bool bias_grads = d_u != nullptr || d_w != nullptr;
  float* partials = bias_grads ? scratch.allocate_array<float>(n * q_blocks * 2 * a.d_head) : nullptr;
  const dim3 q_grid(q_blocks, grid_y(n));
  launch_with_shared(rel_attention_bwd_q_kernel, q_grid, shared_bytes(a.d_head, 4 * kQueryRows + 3 * kTile), stream,
                     "rel_attention_bwd (q)", a, q, u, w, k, v, r, lse, delta, d_out, d_q, partials);
  const dim3 kv_grid(blocks_of(a.klen, kTile, "rel_attention: klen too long"), grid_y(n));
  launch_with_shared(rel_attention_bwd_kv_kernel, kv_grid, shared_bytes(a.d_head, 7 * kTile), stream,
                     "rel_attention_bwd (k, v)", a, q, u, w, k, v, r, lse, delta, d_out, d_k, d_v);
  const dim3 r_grid(blocks_of(a.klen, kTile, "rel_attention: klen too long"), grid_y(a.heads));
  launch_with_shared(rel_attention_bwd_r_kernel, r_grid, shared_bytes(a.d_head, 8 * kTile), stream,
                     "rel_attention_bwd (r)", a, q, u, w, k, v, r, lse, delta, d_out, d_r);
  if (bias_grads) {
    const int64_t outputs = 2 * a.heads * a.d_head;
    rel_attention_bias_grad_kernel<<<blocks_of(outputs, kThreads, "rel_attention: too many bias columns"), kThreads,
                                     0, stream>>>(a, partials, static_cast<int64_t>(q_blocks), d_u, d_w);
    TXL_CUDA_LAUNCH_CHECK();
  }
}

}  // namespace txl::cuda
