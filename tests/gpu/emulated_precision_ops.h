// A CPU backend whose GEMMs round their operands first, the way the CUDA backend's
// mixed-precision modes feed the tensor cores (float32 accumulation, operands rounded to
// TF32 / bfloat16 / float16 mantissas, round to nearest even). Used by the GPU tests'
// CPU stand-in mode (gpu_test_util.h) so that the tolerances of the precision tests are
// exercised on a machine without a GPU. fp16 is emulated by its 10-bit mantissa only
// (values in these tests stay far inside its exponent range).
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "txl/core/ops.h"
#include "txl/cuda/cuda_ops.h"

namespace txl::gpu_test {

// Rounds to `mantissa_bits` explicit mantissa bits, nearest even.
inline float round_mantissa(float x, int mantissa_bits) {
  const int drop = 23 - mantissa_bits;
  if (drop <= 0) return x;
  uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;  // inf / nan
  const uint32_t half = (uint32_t{1} << (drop - 1)) - 1;
  u += half + ((u >> drop) & 1u);
  u &= ~((uint32_t{1} << drop) - 1u);
  return std::bit_cast<float>(u);
}

inline int mantissa_bits(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::kFp32: return 23;
    case GemmPrecision::kTf32: return 10;
    case GemmPrecision::kBf16: return 7;
    case GemmPrecision::kFp16: return 10;
  }
  return 23;
}

class EmulatedPrecisionOps final : public Ops<float> {
 public:
  explicit EmulatedPrecisionOps(GemmPrecision p) : inner_(make_cpu_ops<float>()), bits_(mantissa_bits(p)) {}

  Device device() const override { return inner_->device(); }
  Allocator& allocator() override { return inner_->allocator(); }
  const char* name() const override { return "cpu-float(emulated reduced-precision gemm)"; }
  void upload(void* dst, const void* src, size_t bytes) override { inner_->upload(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) override { inner_->download(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override { inner_->copy(dst, src, bytes); }
  void synchronize() override { inner_->synchronize(); }
  std::shared_ptr<void> staging_buffer(size_t bytes) override { return inner_->staging_buffer(bytes); }
  void stage_to_device(void* dst, const void* src, size_t bytes) override { inner_->stage_to_device(dst, src, bytes); }
  void stage_to_host(void* dst, const void* src, size_t bytes) override { inner_->stage_to_host(dst, src, bytes); }
  void fill(float* x, int64_t n, float value) override { inner_->fill(x, n, value); }

  void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* A, int64_t lda,
            const float* B, int64_t ldb, float beta, float* C, int64_t ldc) override {
    if (m == 0 || n == 0 || k == 0) return inner_->gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    const auto a = rounded(A, extent(ta == Trans::kNo ? m : k, ta == Trans::kNo ? k : m, lda));
    const auto b = rounded(B, extent(tb == Trans::kNo ? k : n, tb == Trans::kNo ? n : k, ldb));
    inner_->gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, C, ldc);
  }
  void gemm_strided_batched(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* A,
                            int64_t lda, int64_t strideA, const float* B, int64_t ldb, int64_t strideB, float beta,
                            float* C, int64_t ldc, int64_t strideC, int64_t batch) override {
    if (batch <= 0 || m == 0 || n == 0 || k == 0)
      return inner_->gemm_strided_batched(ta, tb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc,
                                          strideC, batch);
    const auto a = rounded(A, (batch - 1) * strideA + extent(ta == Trans::kNo ? m : k, ta == Trans::kNo ? k : m, lda));
    const auto b = rounded(B, (batch - 1) * strideB + extent(tb == Trans::kNo ? k : n, tb == Trans::kNo ? n : k, ldb));
    inner_->gemm_strided_batched(ta, tb, m, n, k, alpha, a.data(), lda, strideA, b.data(), ldb, strideB, beta, C, ldc,
                                 strideC, batch);
  }

  void add_bias(float* y, const float* bias, int64_t rows, int64_t cols) override {
    inner_->add_bias(y, bias, rows, cols);
  }
  void bias_grad(const float* dy, float* dbias, int64_t rows, int64_t cols) override {
    inner_->bias_grad(dy, dbias, rows, cols);
  }
  void axpy(int64_t n, float alpha, const float* x, float* y) override { inner_->axpy(n, alpha, x, y); }
  void scale(int64_t n, float alpha, float* x) override { inner_->scale(n, alpha, x); }
  void add(int64_t n, const float* a, const float* b, float* out) override { inner_->add(n, a, b, out); }
  void relu_fwd(int64_t n, const float* x, float* y) override { inner_->relu_fwd(n, x, y); }
  void relu_bwd(int64_t n, const float* y, const float* dy, float* dx) override { inner_->relu_bwd(n, y, dy, dx); }
  void dropout(const float* x, float* y, float p, const DropoutKey& key, const BatchLayout& layout) override {
    inner_->dropout(x, y, p, key, layout);
  }
  void bias_relu_dropout(const float* x, const float* bias, float p, const DropoutKey& key, const BatchLayout& layout,
                         float* y) override {
    inner_->bias_relu_dropout(x, bias, p, key, layout, y);
  }
  void relu_dropout_bwd(int64_t n, const float* y, const float* dy, float p, float* dx) override {
    inner_->relu_dropout_bwd(n, y, dy, p, dx);
  }
  void layernorm_fwd(int64_t rows, int64_t cols, const float* x, const float* gamma, const float* beta, float eps,
                     float* y, float* mean, float* rstd) override {
    inner_->layernorm_fwd(rows, cols, x, gamma, beta, eps, y, mean, rstd);
  }
  void layernorm_bwd(int64_t rows, int64_t cols, const float* dy, const float* x, const float* gamma,
                     const float* mean, const float* rstd, float* dx, float* dgamma, float* dbeta) override {
    inner_->layernorm_bwd(rows, cols, dy, x, gamma, mean, rstd, dx, dgamma, dbeta);
  }
  void dropout_residual_layernorm_fwd(int64_t rows, int64_t cols, const float* x, const float* bias, float p,
                                      const DropoutKey& key, const BatchLayout& layout, const float* residual,
                                      const float* gamma, const float* beta, float eps, float* sum, float* y,
                                      float* mean, float* rstd) override {
    inner_->dropout_residual_layernorm_fwd(rows, cols, x, bias, p, key, layout, residual, gamma, beta, eps, sum, y,
                                           mean, rstd);
  }
  void dropout_residual_layernorm_bwd(int64_t rows, int64_t cols, const float* dy, const float* sum,
                                      const float* gamma, const float* mean, const float* rstd, float p,
                                      const DropoutKey& key, const BatchLayout& layout, float* d_sum, float* d_x,
                                      float* dgamma, float* dbeta, float* dbias) override {
    inner_->dropout_residual_layernorm_bwd(rows, cols, dy, sum, gamma, mean, rstd, p, key, layout, d_sum, d_x,
                                           dgamma, dbeta, dbias);
  }
  void split_heads(const float* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                   const float* bias, float* dst) override {
    inner_->split_heads(src, len, batch, heads, d_head, ld, bias, dst);
  }
  void merge_heads(const float* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                   bool accumulate, float* dst) override {
    inner_->merge_heads(src, len, batch, heads, d_head, ld, accumulate, dst);
  }
  void head_bias_grad(const float* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head,
                      float* bias_grad) override {
    inner_->head_bias_grad(src, len, batch, heads, d_head, bias_grad);
  }
  void rel_shift_add(const float* bd_raw, int64_t n, int64_t qlen, int64_t klen, int64_t mlen,
                     float* scores) override {
    inner_->rel_shift_add(bd_raw, n, qlen, klen, mlen, scores);
  }
  void rel_shift_bwd(const float* d_scores, int64_t n, int64_t qlen, int64_t klen, int64_t mlen,
                     float* d_bd_raw) override {
    inner_->rel_shift_bwd(d_scores, n, qlen, klen, mlen, d_bd_raw);
  }
  void attn_softmax_fwd(const float* scores, int64_t n, int64_t qlen, int64_t klen, float scale,
                        const AttnMask& mask, float* probs) override {
    inner_->attn_softmax_fwd(scores, n, qlen, klen, scale, mask, probs);
  }
  void attn_softmax_bwd(const float* probs, const float* d_probs, int64_t n, int64_t qlen, int64_t klen,
                        float scale, float* d_scores) override {
    inner_->attn_softmax_bwd(probs, d_probs, n, qlen, klen, scale, d_scores);
  }
  // The fused attention's products run in float32 on the GPU in every precision mode.
  void rel_attention_fwd(const RelAttentionArgs& a, const float* q, const float* u, const float* w, const float* k,
                         const float* v, const float* r, float* out, float* lse) override {
    inner_->rel_attention_fwd(a, q, u, w, k, v, r, out, lse);
  }
  void rel_attention_bwd(const RelAttentionArgs& a, const float* q, const float* u, const float* w, const float* k,
                         const float* v, const float* r, const float* out, const float* lse, const float* d_out,
                         float* d_q, float* d_u, float* d_w, float* d_k, float* d_v, float* d_r) override {
    inner_->rel_attention_bwd(a, q, u, w, k, v, r, out, lse, d_out, d_q, d_u, d_w, d_k, d_v, d_r);
  }
  void gather_rows(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst) override {
    inner_->gather_rows(src, idx, n, cols, dst);
  }
  void scatter_rows(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst) override {
    inner_->scatter_rows(src, idx, n, cols, dst);
  }
  void scatter_add_rows(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst) override {
    inner_->scatter_add_rows(src, idx, n, cols, dst);
  }
  void log_softmax(const float* logits, int64_t rows, int64_t cols, float* logp) override {
    inner_->log_softmax(logits, rows, cols, logp);
  }
  void pick_cols(const float* logp, const int32_t* col, int64_t rows, int64_t cols, bool accumulate,
                 float* out) override {
    inner_->pick_cols(logp, col, rows, cols, accumulate, out);
  }
  void log_softmax_pick_bwd(const float* logp, const int32_t* col, const float* coef, int64_t rows, int64_t cols,
                            float* dlogits) override {
    inner_->log_softmax_pick_bwd(logp, col, coef, rows, cols, dlogits);
  }
  void biased_log_softmax_pick(const float* logits, const float* bias, const int32_t* col, int64_t rows,
                               int64_t cols, bool accumulate, float* out, float* lse) override {
    inner_->biased_log_softmax_pick(logits, bias, col, rows, cols, accumulate, out, lse);
  }
  void biased_log_softmax_pick_bwd(const float* logits, const float* bias, const float* lse, const int32_t* col,
                                   const float* coef, int64_t rows, int64_t cols, float* dlogits) override {
    inner_->biased_log_softmax_pick_bwd(logits, bias, lse, col, coef, rows, cols, dlogits);
  }
  double sum(const float* x, int64_t n) override { return inner_->sum(x, n); }
  double sum_squares(const float* x, int64_t n) override { return inner_->sum_squares(x, n); }
  std::vector<double> sum_squares_slices(const float* x, const std::vector<FlatSlice>& slices) override {
    return inner_->sum_squares_slices(x, slices);
  }
  void sum_to_device(const float* x, int64_t n, double* out) override { inner_->sum_to_device(x, n, out); }
  void sum_squares_to_device(const float* x, int64_t n, double* out) override {
    inner_->sum_squares_to_device(x, n, out);
  }
  void step_loss_update(const double* chunk_sums, const StepLossArgs& a, double* scalars) override {
    inner_->step_loss_update(chunk_sums, a, scalars);
  }
  void step_grad_factor(const GradFactorArgs& a, double* scalars) override { inner_->step_grad_factor(a, scalars); }
  void lamb_step(float* p, float* g, float* m, float* v, const std::vector<FlatSlice>& slices,
                 const OptimStep& s) override {
    inner_->lamb_step(p, g, m, v, slices, s);
  }
  void adam_step(float* p, float* g, float* m, float* v, int64_t n, const OptimStep& s) override {
    inner_->adam_step(p, g, m, v, n, s);
  }
  void sgd_step(float* p, float* g, float* buf, int64_t n, const OptimStep& s) override {
    inner_->sgd_step(p, g, buf, n, s);
  }
  void adagrad_step(float* p, float* g, float* sum, int64_t n, const OptimStep& s) override {
    inner_->adagrad_step(p, g, sum, n, s);
  }

 private:
  // Elements a rows x cols matrix with leading dimension ld spans (the last row is short).
  static int64_t extent(int64_t rows, int64_t cols, int64_t ld) { return rows > 0 && cols > 0 ? (rows - 1) * ld + cols : 0; }
  std::vector<float> rounded(const float* x, int64_t n) const {
    std::vector<float> out(static_cast<size_t>(n > 0 ? n : 0));
    for (size_t i = 0; i < out.size(); ++i) out[i] = round_mantissa(x[i], bits_);
    return out;
  }
  std::unique_ptr<Ops<float>> inner_;
  int bits_;
};

}  // namespace txl::gpu_test
