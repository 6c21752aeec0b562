// Argument checks of ops.h that both backends share (one message per problem).
#include "txl/core/ops.h"

#include "txl/core/error.h"

namespace txl {

void check_gemm_args(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
  TXL_CHECK(m >= 0 && n >= 0 && k >= 0, "gemm: negative size m={} n={} k={}", m, n, k);
  const int64_t a_cols = ta == Trans::kNo ? k : m;
  const int64_t b_cols = tb == Trans::kNo ? n : k;
  TXL_CHECK(lda >= a_cols && ldb >= b_cols && ldc >= n,
            "gemm: leading dimension too small (lda={} for {} columns, ldb={} for {}, ldc={} for {})", lda, a_cols,
            ldb, b_cols, ldc, n);
}

void check_gemm_batch(int64_t batch) {
  TXL_CHECK(batch >= 0, "gemm_strided_batched: negative batch {}", batch);
}

void check_dropout_probability(const char* op, float p) {
  TXL_CHECK(p >= 0.0f && p < 1.0f, "{}: probability {} outside [0, 1)", op, p);
}

void check_dropout_args(float p, const BatchLayout& layout) {
  check_dropout_probability("dropout", p);
  TXL_CHECK(layout.outer >= 0 && layout.batch >= 0 && layout.inner >= 0 && layout.batch_offset >= 0 &&
                layout.batch_offset + layout.batch <= layout.batch_global,
            "dropout: bad batch layout (outer {}, batch {}, inner {}, offset {}, global {})", layout.outer,
            layout.batch, layout.inner, layout.batch_offset, layout.batch_global);
}

void check_layernorm_shape(const char* op, int64_t rows, int64_t cols) {
  TXL_CHECK(rows >= 0 && (cols > 0 || rows == 0), "{}: bad shape {} x {}", op, rows, cols);
}

void check_dropout_residual_layernorm(const char* op, int64_t rows, int64_t cols, float p, const BatchLayout& layout) {
  check_layernorm_shape(op, rows, cols);
  TXL_CHECK(p >= 0.0f && p < 1.0f, "{}: dropout probability {} outside [0, 1)", op, p);
  if (p == 0.0f) return;
  TXL_CHECK(layout.outer >= 0 && layout.batch > 0 && layout.batch_offset >= 0 &&
                layout.batch_offset + layout.batch <= layout.batch_global && layout.inner == cols &&
                layout.outer * layout.batch == rows,
            "{}: batch layout (outer {}, batch {}, inner {}, offset {}, global {}) does not describe {} x {}", op,
            layout.outer, layout.batch, layout.inner, layout.batch_offset, layout.batch_global, rows, cols);
}

void check_dropout_residual_layernorm_grads(const void* d_x, const void* gamma, const void* d_sum) {
  TXL_CHECK(d_x != nullptr && (gamma == nullptr || d_sum != nullptr),
            "dropout_residual_layernorm_bwd: d_x, and d_sum with a LayerNorm, are required");
}

void check_head_stride(const char* op, int64_t ld, int64_t heads, int64_t d_head) {
  TXL_CHECK(ld >= heads * d_head, "{}: row stride {} < heads*d_head = {}", op, ld, heads * d_head);
}

void check_rel_shift(const char* op, int64_t qlen, int64_t klen, int64_t mlen) {
  TXL_CHECK(klen == qlen + mlen, "{}: klen {} != qlen {} + mlen {}", op, klen, qlen, mlen);
}

void check_softmax_block(const char* op, int64_t rows, int64_t cols) {
  TXL_CHECK(rows >= 0 && (rows == 0 || cols > 0), "{}: {} rows of {} columns (a row needs at least one column)", op,
            rows, cols);
}

void check_flat_slice(const char* op, size_t index, const FlatSlice& slice) {
  TXL_CHECK(slice.offset >= 0 && slice.numel >= 0, "{}: bad slice {} (offset {}, numel {})", op, index, slice.offset,
            slice.numel);
}

void check_adam_step(const OptimStep& s) {
  TXL_CHECK(s.step >= 1, "adam_step: step {} must be >= 1 (bias correction)", s.step);
}

void check_sgd_buffer(const OptimStep& s, const void* buf) {
  TXL_CHECK(s.momentum == 0.0 || buf != nullptr, "sgd_step: momentum {} needs a momentum buffer", s.momentum);
}

void check_step_loss_args(const StepLossArgs& a, const double* chunk_sums, const double* scalars) {
  TXL_CHECK(a.chunks >= 1 && a.tokens_per_chunk >= 1, "step_loss_update: {} chunks of {} tokens (both must be >= 1)",
            a.chunks, a.tokens_per_chunk);
  TXL_CHECK(a.step >= 1, "step_loss_update: step {} must be >= 1", a.step);
  TXL_CHECK(chunk_sums != nullptr && scalars != nullptr, "step_loss_update: chunk sums and step scalars are required");
}

void check_grad_factor_args(const GradFactorArgs& a, const double* scalars) {
  TXL_CHECK(a.unscale > 0 && a.clip >= 0, "step_grad_factor: unscale {} must be > 0 and clip {} >= 0", a.unscale,
            a.clip);
  TXL_CHECK(a.step >= 1, "step_grad_factor: step {} must be >= 1", a.step);
  TXL_CHECK(scalars != nullptr, "step_grad_factor: step scalars are required");
}

void check_rel_attention_args(const char* op, const RelAttentionArgs& a) {
  TXL_CHECK(a.heads > 0 && a.batch > 0 && a.qlen >= 0 && a.d_head > 0,
            "{}: bad shape (heads {}, batch {}, qlen {}, d_head {})", op, a.heads, a.batch, a.qlen, a.d_head);
  TXL_CHECK(a.mask.mlen >= 0 && a.klen == a.qlen + a.mask.mlen, "{}: klen {} != qlen {} + mlen {}", op, a.klen,
            a.qlen, a.mask.mlen);
  TXL_CHECK(a.dropatt >= 0.0f && a.dropatt < 1.0f, "{}: dropatt {} outside [0, 1)", op, a.dropatt);
  if (a.dropatt > 0.0f)
    TXL_CHECK(a.layout.outer == a.heads && a.layout.batch == a.batch && a.layout.inner == a.qlen * a.klen &&
                  a.layout.batch_offset >= 0 && a.layout.batch_offset + a.batch <= a.layout.batch_global,
              "{}: dropout layout [{}, {}, {}] (offset {}, global {}) does not match [heads {}, batch {}, "
              "qlen*klen {}]",
              op, a.layout.outer, a.layout.batch, a.layout.inner, a.layout.batch_offset, a.layout.batch_global,
              a.heads, a.batch, a.qlen * a.klen);
  const int64_t hd = a.heads * a.d_head;
  const RelAttentionLayout& ld = a.ld;
  TXL_CHECK(ld.ld_q >= hd && ld.ld_k >= hd && ld.ld_v >= hd && ld.ld_r >= hd && ld.ld_out >= hd,
            "{}: leading dimensions (q {}, k {}, v {}, r {}, out {}) below heads*d_head {}", op, ld.ld_q, ld.ld_k,
            ld.ld_v, ld.ld_r, ld.ld_out, hd);
}

}  // namespace txl
