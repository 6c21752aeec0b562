// Fused relative attention (Ops::rel_attention_fwd/bwd, docs/model.md §4.2) on the CPU:
// the scores of one block of queries against the keys the mask leaves them are formed,
// normalised and used while they are in cache, so no [n, qlen, klen] tensor is written.
//
// One task is one score block n = (h, b) and a block of kQueryBlock queries. For query
// rows [i0, i1) the unmasked keys lie in [kf, kl] (both ends grow with i), and the
// relative term of (i, j) reads position row c = klen-1-mlen-i+j, so the block needs the
// rows [c_lo, c_hi]: AC is one GEMM [rows, kw] and BD one GEMM [rows, cw], and the
// shift is an index into BD. Each task runs its GEMMs single-threaded (Eigen starts no
// threads inside an active OpenMP region), so the result does not depend on the thread
// count.
//
// Operands stay in the projections' row layout (RelAttentionLayout, ops.h): head h of
// stream b of a [len*batch, ld] operand is a [len, d_head] matrix with row stride
// batch*ld starting at column h*d_head of row b, which Eigen maps with an outer stride.
// The block's q + u and q + w are formed in scratch (the biases are added there).
#include <algorithm>
#include <bit>
#include <cmath>
#include <type_traits>
#include <vector>

#include "eigen_core.h"
#include "txl/core/error.h"
#include "cpu_kernels.h"
#include "dropout_mask.h"
#include "parallel.h"

namespace txl::cpu {
namespace {

constexpr int64_t kQueryBlock = 64;

template <typename T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using Map = Eigen::Map<RowMajor<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using ConstMap = Eigen::Map<const RowMajor<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// Unmasked keys of query i: [first, last] (AttnMask in ops.h).
int64_t first_key(const RelAttentionArgs& a, int64_t i) {
  if (!a.mask.same_length) return 0;
  const int64_t over = a.klen - a.mask.mem_len - 1;
  const int64_t shift = over > 0 ? a.qlen - over : a.qlen;
  return std::max<int64_t>(0, i - shift + 1);
}
int64_t last_key(const RelAttentionArgs& a, int64_t i) { return std::min(a.klen - 1, i + a.mask.mlen); }

// The query block [i0, i1) of score block n and what it reads.
struct QueryBlock {
  int64_t n, h, i0, i1, rows;
  int64_t kf, kl, kw;  // keys [kf, kl]
  int64_t c_lo, cw;    // position rows [c_lo, c_lo + cw)
  QueryBlock(const RelAttentionArgs& a, int64_t n_, int64_t block) : n(n_), h(n_ / a.batch) {
    i0 = block * kQueryBlock;
    i1 = std::min(a.qlen, i0 + kQueryBlock);
    rows = i1 - i0;
    kf = first_key(a, i0);
    kl = last_key(a, i1 - 1);
    kw = kl - kf + 1;
    c_lo = a.klen - 1 - a.mask.mlen - (i1 - 1) + kf;
    const int64_t c_hi = std::min(a.klen - 1, a.klen - 1 - a.mask.mlen - i0 + kl);
    cw = c_hi - c_lo + 1;
  }
  // Column of BD for query row ii (i = i0 + ii) and key j.
  int64_t bd_col(const RelAttentionArgs& a, int64_t ii, int64_t j) const {
    return a.klen - 1 - a.mask.mlen - (i0 + ii) + j - c_lo;
  }
};

// Multiply-adds of the score products: below kParallelGrain one thread is faster.
int64_t work(const RelAttentionArgs& a) { return a.n() * a.qlen * a.klen * a.d_head; }

int64_t query_blocks(const RelAttentionArgs& a) { return (a.qlen + kQueryBlock - 1) / kQueryBlock; }

// Scratch that lives with the calling thread (OpenMP keeps its worker threads), so the
// steady state allocates nothing. Aligned to Eigen's largest packet: where a vectorised
// loop starts scalar and where it switches to packets depends on the address, and the
// scalar and packet exp differ in the last bit, so every thread's buffers must agree in
// alignment for the result not to depend on which thread ran a task.
template <typename T>
using Scratch = std::vector<T, Eigen::aligned_allocator<T>>;

template <typename T>
T* scratch(Scratch<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

// Head h, stream b of an operand in the row layout: a [len, d_head] view.
// kContiguous: a head's rows are batch·ld apart, often a multiple of 4 KiB (ld 1024 floats
// for k and v at d_model 512), so every row of a strided view falls into the same L1
// cache set. Products are therefore accumulated in contiguous scratch and copied into
// the strided rows once; reading strided operands is fine (Eigen packs them).
template <typename T>
ConstMap<T> head_rows(const RelAttentionArgs& a, const T* x, int64_t ld, int64_t h, int64_t b, int64_t row0,
                      int64_t rows) {
  return ConstMap<T>(x + (row0 * a.batch + b) * ld + h * a.d_head, rows, a.d_head, Eigen::OuterStride<>(a.batch * ld));
}
template <typename T>
Map<T> head_rows(const RelAttentionArgs& a, T* x, int64_t ld, int64_t h, int64_t b, int64_t row0, int64_t rows) {
  return Map<T>(x + (row0 * a.batch + b) * ld + h * a.d_head, rows, a.d_head, Eigen::OuterStride<>(a.batch * ld));
}
// Head h of the position rows [c0, c0 + rows).
template <typename T>
ConstMap<T> position_rows(const RelAttentionArgs& a, const T* r, int64_t h, int64_t c0, int64_t rows) {
  return ConstMap<T>(r + c0 * a.ld.ld_r + h * a.d_head, rows, a.d_head, Eigen::OuterStride<>(a.ld.ld_r));
}

// The block's q rows plus head h's columns of a bias (null: none) into dst [rows, d_head].
template <typename T>
void biased_queries(const RelAttentionArgs& a, const QueryBlock& q, const T* x, const T* bias, T* dst) {
  const int64_t D = a.d_head, b = q.n % a.batch;
  const T* bh = bias ? bias + q.h * D : nullptr;
  for (int64_t ii = 0; ii < q.rows; ++ii) {
    const T* src = x + ((q.i0 + ii) * a.batch + b) * a.ld.ld_q + q.h * D;
    T* row = dst + ii * D;
    if (bh) {
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) row[d] = src[d] + bh[d];
    } else {
      std::copy(src, src + D, row);
    }
  }
}

// The block's unscaled scores AC + shifted BD for keys [kf, kl] into s [rows, kw]
// (masked entries are left unspecified); qu, qw [rows, d_head] the block's biased
// queries; bd [rows, cw] is scratch.
template <typename T>
void block_scores(const RelAttentionArgs& a, const QueryBlock& q, const T* qu, const T* qw, const T* k, const T* r,
                  T* s, T* bd) {
  const int64_t D = a.d_head;
  const ConstMap<T> qu_b(qu, q.rows, D, Eigen::OuterStride<>(D));
  const ConstMap<T> qw_b(qw, q.rows, D, Eigen::OuterStride<>(D));
  const ConstMap<T> k_b = head_rows(a, k, a.ld.ld_k, q.h, q.n % a.batch, q.kf, q.kw);
  const ConstMap<T> r_b = position_rows(a, r, q.h, q.c_lo, q.cw);
  Map<T> s_m(s, q.rows, q.kw, Eigen::OuterStride<>(q.kw));
  Map<T> bd_m(bd, q.rows, q.cw, Eigen::OuterStride<>(q.cw));
  s_m.noalias() = qu_b * k_b.transpose();
  bd_m.noalias() = qw_b * r_b.transpose();
  for (int64_t ii = 0; ii < q.rows; ++ii) {
    const int64_t i = q.i0 + ii;
    const int64_t f = first_key(a, i), l = last_key(a, i);
    T* srow = s + ii * q.kw - q.kf;  // srow[j] for key j
    const T* brow = bd + ii * q.cw + q.bd_col(a, ii, 0);
#pragma omp simd
    for (int64_t j = f; j <= l; ++j) srow[j] += brow[j];
  }
}

// The dropout keep mask of row i of block n for keys [f, l], as all-ones / zero words.
template <typename T>
using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;

template <typename T>
void keep_masks(const RelAttentionArgs& a, int64_t n, int64_t i, int64_t f, int64_t l, Bits<T>* keep) {
  const uint32_t threshold = static_cast<uint32_t>(std::ceil(static_cast<double>(a.dropatt) * 16777216.0));
  const int64_t h = n / a.batch, b = n % a.batch;
  const uint64_t base = static_cast<uint64_t>((h * a.layout.batch_global + b + a.layout.batch_offset) *
                                              a.layout.inner + i * a.klen);
  uint32_t bits[kDropoutChunk];
  for (int64_t j0 = f; j0 <= l; j0 += kDropoutChunk) {
    const int64_t len = std::min(kDropoutChunk, l + 1 - j0);
    philox_bits24(a.key, base + static_cast<uint64_t>(j0), len, bits);
    for (int64_t e = 0; e < len; ++e) keep[j0 - f + e] = Bits<T>{0} - static_cast<Bits<T>>(bits[e] >= threshold);
  }
}

template <typename T>
T dropped(T x, T multiplier, Bits<T> keep) {
  return std::bit_cast<T>(std::bit_cast<Bits<T>>(x * multiplier) & keep);
}

}  // namespace

template <typename T>
void rel_attention_fwd(const RelAttentionArgs& a, const T* q_in, const T* u, const T* w, const T* k, const T* v,
                       const T* r, T* out, T* lse) {
  check_rel_attention_args("rel_attention_fwd", a);
  if (a.qlen == 0) return;
  const int64_t D = a.d_head, blocks = query_blocks(a), tasks = a.n() * blocks;
  const T scale = static_cast<T>(a.scale);
  const T multiplier = T(1) / (T(1) - static_cast<T>(a.dropatt));
#pragma omp parallel for schedule(dynamic, 1) if (tasks > 1 && work(a) >= kParallelGrain)
  for (int64_t t = 0; t < tasks; ++t) {
    thread_local Scratch<T> s_buf, bd_buf, qu_buf, qw_buf, o_buf;
    thread_local Scratch<Bits<T>> keep_buf;
    const QueryBlock q(a, t / blocks, t % blocks);
    const int64_t b = q.n % a.batch;
    T* s = scratch(s_buf, q.rows * q.kw);
    T* bd = scratch(bd_buf, q.rows * q.cw);
    T* qu = scratch(qu_buf, q.rows * D);
    T* qw = scratch(qw_buf, q.rows * D);
    Bits<T>* keep = scratch(keep_buf, q.kw);
    biased_queries(a, q, q_in, u, qu);
    biased_queries(a, q, q_in, w, qw);
    block_scores(a, q, qu, qw, k, r, s, bd);
    // Softmax per row as attn_softmax_fwd computes it (scale after the sum AC + BD, the
    // normaliser in double); masked keys get exactly 0.
    for (int64_t ii = 0; ii < q.rows; ++ii) {
      const int64_t i = q.i0 + ii;
      const int64_t f = first_key(a, i), l = last_key(a, i);
      T* row = s + ii * q.kw;
      T* p = row + (f - q.kf);
      const int64_t count = l - f + 1;
      TXL_CHECK(count > 0, "rel_attention_fwd: query {} has no unmasked key", i);
      Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> pm(p, count);
      const T max = (pm * scale).maxCoeff();
      pm = (pm * scale - max).exp();
      const double sum = block_sum(0, count, [&](int64_t j) { return static_cast<double>(p[j]); });
      pm *= static_cast<T>(1.0 / sum);
      lse[q.n * a.qlen + i] = static_cast<T>(static_cast<double>(max) + std::log(sum));
      if (a.dropatt > 0.0f) {
        keep_masks<T>(a, q.n, i, f, l, keep);
#pragma omp simd
        for (int64_t j = 0; j < count; ++j) p[j] = dropped(p[j], multiplier, keep[j]);
      }
      std::fill(row, p, T(0));
      std::fill(p + count, row + q.kw, T(0));
    }
    // P·V into contiguous scratch, then into the strided rows of out (see kContiguous at head_rows).
    const ConstMap<T> v_b = head_rows(a, v, a.ld.ld_v, q.h, b, q.kf, q.kw);
    Map<T> o_m(scratch(o_buf, q.rows * D), q.rows, D, Eigen::OuterStride<>(D));
    o_m.noalias() = ConstMap<T>(s, q.rows, q.kw, Eigen::OuterStride<>(q.kw)) * v_b;
    head_rows(a, out, a.ld.ld_out, q.h, b, q.i0, q.rows) = o_m;
  }
}

// Per score block n, query blocks in order (d_k, d_v and the position gradient of n are
// sums over them): p from lse; d p~ = d_out · vᵀ; dp = dropatt(d p~);
// ds = scale * p * (dp - d_out·out); then the GEMMs of the two score terms. The position
// gradient and the bias-gradient column sums of each n go to their own slices of scratch
// and are summed over the batch in order afterwards.
template <typename T>
void rel_attention_bwd(const RelAttentionArgs& a, const T* q_in, const T* u, const T* w, const T* k, const T* v,
                       const T* r, const T* out, const T* lse, const T* d_out, T* d_q, T* d_u, T* d_w, T* d_k,
                       T* d_v, T* d_r) {
  check_rel_attention_args("rel_attention_bwd", a);
  const int64_t D = a.d_head, K = a.klen, N = a.n(), blocks = query_blocks(a);
  const RelAttentionLayout& ld = a.ld;
  thread_local Scratch<T> dr_parts_buf;
  thread_local Scratch<double> bias_parts_buf;
  T* dr_parts = scratch(dr_parts_buf, N * K * D);
  double* bias_parts = scratch(bias_parts_buf, N * 2 * D);  // per n: sum d qu [D], sum d qw [D]
  const T scale = static_cast<T>(a.scale);
  const T multiplier = T(1) / (T(1) - static_cast<T>(a.dropatt));
#pragma omp parallel for schedule(dynamic, 1) if (N > 1 && work(a) >= kParallelGrain)
  for (int64_t n = 0; n < N; ++n) {
    thread_local Scratch<T> s_buf, bd_buf, pd_buf, dp_buf, qu_buf, qw_buf, dqu_buf, dqw_buf, dk_buf, dv_buf;
    thread_local Scratch<Bits<T>> keep_buf;
    const int64_t h = n / a.batch, b = n % a.batch;
    // d k and d v of this score block accumulate over its query blocks in contiguous
    // scratch and go to their strided rows once at the end (see kContiguous at head_rows).
    Map<T> dk_n(scratch(dk_buf, K * D), K, D, Eigen::OuterStride<>(D));
    Map<T> dv_n(scratch(dv_buf, K * D), K, D, Eigen::OuterStride<>(D));
    Map<T> dr_n(dr_parts + n * K * D, K, D, Eigen::OuterStride<>(D));
    double* du_n = bias_parts + n * 2 * D;
    double* dw_n = du_n + D;
    dk_n.setZero();
    dv_n.setZero();
    dr_n.setZero();
    std::fill(du_n, du_n + 2 * D, 0.0);
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const QueryBlock q(a, n, blk);
      T* s = scratch(s_buf, q.rows * q.kw);
      T* bd = scratch(bd_buf, q.rows * q.cw);
      T* pd = scratch(pd_buf, q.rows * q.kw);  // p~, then the relative term's d scores
      T* dp = scratch(dp_buf, q.rows * q.kw);
      T* qu = scratch(qu_buf, q.rows * D);
      T* qw = scratch(qw_buf, q.rows * D);
      T* dqu = scratch(dqu_buf, q.rows * D);
      T* dqw = scratch(dqw_buf, q.rows * D);
      Bits<T>* keep = scratch(keep_buf, q.kw);
      biased_queries(a, q, q_in, u, qu);
      biased_queries(a, q, q_in, w, qw);
      block_scores(a, q, qu, qw, k, r, s, bd);
      const int64_t row0 = n * a.qlen + q.i0;  // lse row of the block's first query
      const ConstMap<T> do_b = head_rows(a, d_out, ld.ld_out, h, b, q.i0, q.rows);
      const ConstMap<T> o_b = head_rows(a, out, ld.ld_out, h, b, q.i0, q.rows);
      const ConstMap<T> v_b = head_rows(a, v, ld.ld_v, h, b, q.kf, q.kw);
      Map<T> dp_m(dp, q.rows, q.kw, Eigen::OuterStride<>(q.kw));
      dp_m.noalias() = do_b * v_b.transpose();
      for (int64_t ii = 0; ii < q.rows; ++ii) {
        const int64_t i = q.i0 + ii;
        const int64_t f = first_key(a, i), l = last_key(a, i), count = l - f + 1;
        const T* orow = o_b.row(ii).data();
        const T* drow = do_b.row(ii).data();
        const T dot = static_cast<T>(
            block_sum(0, D, [&](int64_t d) { return static_cast<double>(orow[d]) * static_cast<double>(drow[d]); }));
        const T row_lse = lse[row0 + ii];
        T* srow = s + ii * q.kw + (f - q.kf);  // scores, then p, then ds
        T* prow = pd + ii * q.kw;
        T* dprow = dp + ii * q.kw + (f - q.kf);
        Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> pm(srow, count);
        pm = (pm * scale - row_lse).exp();
        std::fill(prow, prow + q.kw, T(0));
        if (a.dropatt > 0.0f) {
          keep_masks<T>(a, n, i, f, l, keep);
#pragma omp simd
          for (int64_t j = 0; j < count; ++j) {
            prow[f - q.kf + j] = dropped(srow[j], multiplier, keep[j]);
            dprow[j] = dropped(dprow[j], multiplier, keep[j]);
          }
        } else {
          std::copy(srow, srow + count, prow + (f - q.kf));
        }
#pragma omp simd
        for (int64_t j = 0; j < count; ++j) srow[j] = scale * srow[j] * (dprow[j] - dot);
        T* row = s + ii * q.kw;
        std::fill(row, srow, T(0));
        std::fill(srow + count, row + q.kw, T(0));
      }
      const ConstMap<T> ds(s, q.rows, q.kw, Eigen::OuterStride<>(q.kw));
      const ConstMap<T> p_m(pd, q.rows, q.kw, Eigen::OuterStride<>(q.kw));
      dv_n.middleRows(q.kf, q.kw).noalias() += p_m.transpose() * do_b;
      // AC = qu · kᵀ
      const ConstMap<T> qu_b(qu, q.rows, D, Eigen::OuterStride<>(D));
      const ConstMap<T> k_b = head_rows(a, k, ld.ld_k, h, b, q.kf, q.kw);
      Map<T> dqu_m(dqu, q.rows, D, Eigen::OuterStride<>(D));
      dqu_m.noalias() = ds * k_b;
      dk_n.middleRows(q.kf, q.kw).noalias() += ds.transpose() * qu_b;
      // BD = qw · rᵀ, read through the shift: d BD[ii, bd_col(ii, j)] = ds[ii, j].
      Map<T> dbd(bd, q.rows, q.cw, Eigen::OuterStride<>(q.cw));
      dbd.setZero();
      for (int64_t ii = 0; ii < q.rows; ++ii) {
        const int64_t i = q.i0 + ii;
        const int64_t f = first_key(a, i), l = last_key(a, i);
        const T* dsrow = s + ii * q.kw - q.kf;
        T* brow = bd + ii * q.cw + q.bd_col(a, ii, 0);
        for (int64_t j = f; j <= l; ++j) brow[j] = dsrow[j];
      }
      const ConstMap<T> qw_b(qw, q.rows, D, Eigen::OuterStride<>(D));
      const ConstMap<T> r_b = position_rows(a, r, h, q.c_lo, q.cw);
      Map<T> dqw_m(dqw, q.rows, D, Eigen::OuterStride<>(D));
      dqw_m.noalias() = dbd * r_b;
      dr_n.middleRows(q.c_lo, q.cw).noalias() += dbd.transpose() * qw_b;
      // d q = d qu + d qw into q's layout; the bias gradients' column sums, rows in order.
      Map<T> dq_b = head_rows(a, d_q, ld.ld_q, h, b, q.i0, q.rows);
      for (int64_t ii = 0; ii < q.rows; ++ii) {
        const T* gu = dqu + ii * D;
        const T* gw = dqw + ii * D;
        T* dst = dq_b.row(ii).data();
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) {
          dst[d] = gu[d] + gw[d];
          du_n[d] += static_cast<double>(gu[d]);
          dw_n[d] += static_cast<double>(gw[d]);
        }
      }
    }
    head_rows(a, d_k, ld.ld_k, h, b, 0, K) = dk_n;
    head_rows(a, d_v, ld.ld_v, h, b, 0, K) = dv_n;
  }
  // d_r[c, h] = sum over b of the parts, b in order.
  const int64_t per_head = K * D;
#pragma omp parallel for schedule(static) if (a.heads * per_head >= kParallelGrain)
  for (int64_t e = 0; e < a.heads * per_head; ++e) {
    const int64_t h = e / per_head, x = e % per_head;
    T acc = dr_parts[(h * a.batch) * per_head + x];
    for (int64_t b = 1; b < a.batch; ++b) acc += dr_parts[(h * a.batch + b) * per_head + x];
    d_r[(x / D) * ld.ld_r + h * D + x % D] = acc;
  }
  // d_u, d_w += the column sums over b in order.
  for (int64_t h = 0; h < a.heads; ++h)
    for (int64_t d = 0; d < D; ++d) {
      double su = 0.0, sw = 0.0;
      for (int64_t b = 0; b < a.batch; ++b) {
        su += bias_parts[(h * a.batch + b) * 2 * D + d];
        sw += bias_parts[(h * a.batch + b) * 2 * D + D + d];
      }
      if (d_u) d_u[h * D + d] = static_cast<T>(d_u[h * D + d] + su);
      if (d_w) d_w[h * D + d] = static_cast<T>(d_w[h * D + d] + sw);
    }
}

#define TXL_INSTANTIATE(T)                                                                                  \
  template void rel_attention_fwd<T>(const RelAttentionArgs&, const T*, const T*, const T*, const T*,      \
                                     const T*, const T*, T*, T*);                                          \
  template void rel_attention_bwd<T>(const RelAttentionArgs&, const T*, const T*, const T*, const T*,      \
                                     const T*, const T*, const T*, const T*, const T*, T*, T*, T*, T*, T*, \
                                     T*);
TXL_INSTANTIATE(float)
TXL_INSTANTIATE(double)
#undef TXL_INSTANTIATE

}  // namespace txl::cpu
