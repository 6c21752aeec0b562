// ForwardingOps<T>: the base of Ops<T> decorators. Every op of ops.h forwards to an inner
// backend through one of two hooks, so a decorator overrides the hooks (and the few ops
// it treats specially) instead of every op, and a new op in ops.h needs one line here:
//  - host_op(name, call): ops that move data between host and device or return a value
//    to the host (upload, download, stage_to_device, stage_to_host, synchronize, sum,
//    sum_squares, sum_squares_slices);
//    `call` runs the inner op now (it captures by reference).
//  - device_op(name, call): every other op (the *_to_device reductions and step-scalar
//    ops too: their results stay in device memory), with its arguments bound by value
//    (vectors copied), so `call` may also run later (recording_ops.h replays it).
// The defaults run the call at once.
#pragma once
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "txl/core/ops.h"

namespace txl {

template <typename T>
class ForwardingOps : public Ops<T> {
 public:
  explicit ForwardingOps(std::unique_ptr<Ops<T>> inner) : inner_(std::move(inner)) {}
  Ops<T>& inner() const { return *inner_; }

  Device device() const override { return inner_->device(); }
  Allocator& allocator() override { return inner_->allocator(); }
  const char* name() const override { return inner_->name(); }

  void upload(void* dst, const void* host_src, size_t bytes) override {
    host_op("upload", [&] { inner_->upload(dst, host_src, bytes); });
  }
  void download(void* host_dst, const void* src, size_t bytes) override {
    host_op("download", [&] { inner_->download(host_dst, src, bytes); });
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    device_op("copy", [=, o = inner_.get()] { o->copy(dst, src, bytes); });
  }
  void synchronize() override {
    host_op("synchronize", [&] { inner_->synchronize(); });
  }
  std::shared_ptr<void> staging_buffer(size_t bytes) override { return inner_->staging_buffer(bytes); }
  void stage_to_device(void* dst, const void* staging_src, size_t bytes) override {
    host_op("stage_to_device", [&] { inner_->stage_to_device(dst, staging_src, bytes); });
  }
  void stage_to_host(void* staging_dst, const void* src, size_t bytes) override {
    host_op("stage_to_host", [&] { inner_->stage_to_host(staging_dst, src, bytes); });
  }
  void fill(T* x, int64_t n, T value) override {
    device_op("fill", [=, o = inner_.get()] { o->fill(x, n, value); });
  }
  void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B,
            int64_t ldb, T beta, T* C, int64_t ldc) override {
    device_op("gemm", [=, o = inner_.get()] { o->gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc); });
  }
  void gemm_strided_batched(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                            int64_t strideA, const T* B, int64_t ldb, int64_t strideB, T beta, T* C, int64_t ldc,
                            int64_t strideC, int64_t batch) override {
    device_op("gemm_strided_batched", [=, o = inner_.get()] {
      o->gemm_strided_batched(ta, tb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, batch);
    });
  }
  void add_bias(T* y, const T* bias, int64_t rows, int64_t cols) override {
    device_op("add_bias", [=, o = inner_.get()] { o->add_bias(y, bias, rows, cols); });
  }
  void bias_grad(const T* dy, T* dbias, int64_t rows, int64_t cols) override {
    device_op("bias_grad", [=, o = inner_.get()] { o->bias_grad(dy, dbias, rows, cols); });
  }
  void axpy(int64_t n, T alpha, const T* x, T* y) override {
    device_op("axpy", [=, o = inner_.get()] { o->axpy(n, alpha, x, y); });
  }
  void scale(int64_t n, T alpha, T* x) override {
    device_op("scale", [=, o = inner_.get()] { o->scale(n, alpha, x); });
  }
  void add(int64_t n, const T* a, const T* b, T* out) override {
    device_op("add", [=, o = inner_.get()] { o->add(n, a, b, out); });
  }
  void relu_fwd(int64_t n, const T* x, T* y) override {
    device_op("relu_fwd", [=, o = inner_.get()] { o->relu_fwd(n, x, y); });
  }
  void relu_bwd(int64_t n, const T* y, const T* dy, T* dx) override {
    device_op("relu_bwd", [=, o = inner_.get()] { o->relu_bwd(n, y, dy, dx); });
  }
  void dropout(const T* x, T* y, float p, const DropoutKey& key, const BatchLayout& layout) override {
    device_op("dropout", [=, o = inner_.get()] { o->dropout(x, y, p, key, layout); });
  }
  void bias_relu_dropout(const T* x, const T* bias, float p, const DropoutKey& key, const BatchLayout& layout,
                         T* y) override {
    device_op("bias_relu_dropout", [=, o = inner_.get()] { o->bias_relu_dropout(x, bias, p, key, layout, y); });
  }
  void relu_dropout_bwd(int64_t n, const T* y, const T* dy, float p, T* dx) override {
    device_op("relu_dropout_bwd", [=, o = inner_.get()] { o->relu_dropout_bwd(n, y, dy, p, dx); });
  }
  void layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* gamma, const T* beta, T eps, T* y, T* mean,
                     T* rstd) override {
    device_op("layernorm_fwd",
              [=, o = inner_.get()] { o->layernorm_fwd(rows, cols, x, gamma, beta, eps, y, mean, rstd); });
  }
  void layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* x, const T* gamma, const T* mean, const T* rstd,
                     T* dx, T* dgamma, T* dbeta) override {
    device_op("layernorm_bwd",
              [=, o = inner_.get()] { o->layernorm_bwd(rows, cols, dy, x, gamma, mean, rstd, dx, dgamma, dbeta); });
  }
  void dropout_residual_layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* bias, float p,
                                      const DropoutKey& key, const BatchLayout& layout, const T* residual,
                                      const T* gamma, const T* beta, T eps, T* sum, T* y, T* mean, T* rstd) override {
    device_op("dropout_residual_layernorm_fwd", [=, o = inner_.get()] {
      o->dropout_residual_layernorm_fwd(rows, cols, x, bias, p, key, layout, residual, gamma, beta, eps, sum, y, mean,
                                        rstd);
    });
  }
  void dropout_residual_layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* sum, const T* gamma,
                                      const T* mean, const T* rstd, float p, const DropoutKey& key,
                                      const BatchLayout& layout, T* d_sum, T* d_x, T* dgamma, T* dbeta,
                                      T* dbias) override {
    device_op("dropout_residual_layernorm_bwd", [=, o = inner_.get()] {
      o->dropout_residual_layernorm_bwd(rows, cols, dy, sum, gamma, mean, rstd, p, key, layout, d_sum, d_x, dgamma,
                                        dbeta, dbias);
    });
  }
  void split_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld, const T* bias,
                   T* dst) override {
    device_op("split_heads", [=, o = inner_.get()] { o->split_heads(src, len, batch, heads, d_head, ld, bias, dst); });
  }
  void merge_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld, bool accumulate,
                   T* dst) override {
    device_op("merge_heads",
              [=, o = inner_.get()] { o->merge_heads(src, len, batch, heads, d_head, ld, accumulate, dst); });
  }
  void head_bias_grad(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, T* bias_grad) override {
    device_op("head_bias_grad",
              [=, o = inner_.get()] { o->head_bias_grad(src, len, batch, heads, d_head, bias_grad); });
  }
  void rel_shift_add(const T* bd_raw, int64_t n, int64_t qlen, int64_t klen, int64_t mlen, T* scores) override {
    device_op("rel_shift_add", [=, o = inner_.get()] { o->rel_shift_add(bd_raw, n, qlen, klen, mlen, scores); });
  }
  void rel_shift_bwd(const T* d_scores, int64_t n, int64_t qlen, int64_t klen, int64_t mlen, T* d_bd_raw) override {
    device_op("rel_shift_bwd", [=, o = inner_.get()] { o->rel_shift_bwd(d_scores, n, qlen, klen, mlen, d_bd_raw); });
  }
  void attn_softmax_fwd(const T* scores, int64_t n, int64_t qlen, int64_t klen, T scale, const AttnMask& mask,
                        T* probs) override {
    device_op("attn_softmax_fwd",
              [=, o = inner_.get()] { o->attn_softmax_fwd(scores, n, qlen, klen, scale, mask, probs); });
  }
  void attn_softmax_bwd(const T* probs, const T* d_probs, int64_t n, int64_t qlen, int64_t klen, T scale,
                        T* d_scores) override {
    device_op("attn_softmax_bwd",
              [=, o = inner_.get()] { o->attn_softmax_bwd(probs, d_probs, n, qlen, klen, scale, d_scores); });
  }
  void rel_attention_fwd(const RelAttentionArgs& a, const T* q, const T* u, const T* w, const T* k, const T* v,
                         const T* r, T* out, T* lse) override {
    device_op("rel_attention_fwd", [=, o = inner_.get()] { o->rel_attention_fwd(a, q, u, w, k, v, r, out, lse); });
  }
  void rel_attention_bwd(const RelAttentionArgs& a, const T* q, const T* u, const T* w, const T* k, const T* v,
                         const T* r, const T* out, const T* lse, const T* d_out, T* d_q, T* d_u, T* d_w,
                         T* d_k, T* d_v, T* d_r) override {
    device_op("rel_attention_bwd", [=, o = inner_.get()] {
      o->rel_attention_bwd(a, q, u, w, k, v, r, out, lse, d_out, d_q, d_u, d_w, d_k, d_v, d_r);
    });
  }
  void gather_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) override {
    device_op("gather_rows", [=, o = inner_.get()] { o->gather_rows(src, idx, n, cols, dst); });
  }
  void scatter_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) override {
    device_op("scatter_rows", [=, o = inner_.get()] { o->scatter_rows(src, idx, n, cols, dst); });
  }
  void scatter_add_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) override {
    device_op("scatter_add_rows", [=, o = inner_.get()] { o->scatter_add_rows(src, idx, n, cols, dst); });
  }
  void log_softmax(const T* logits, int64_t rows, int64_t cols, T* logp) override {
    device_op("log_softmax", [=, o = inner_.get()] { o->log_softmax(logits, rows, cols, logp); });
  }
  void pick_cols(const T* logp, const int32_t* col, int64_t rows, int64_t cols, bool accumulate, T* out) override {
    device_op("pick_cols", [=, o = inner_.get()] { o->pick_cols(logp, col, rows, cols, accumulate, out); });
  }
  void log_softmax_pick_bwd(const T* logp, const int32_t* col, const T* coef, int64_t rows, int64_t cols,
                            T* dlogits) override {
    device_op("log_softmax_pick_bwd",
              [=, o = inner_.get()] { o->log_softmax_pick_bwd(logp, col, coef, rows, cols, dlogits); });
  }
  void biased_log_softmax_pick(const T* logits, const T* bias, const int32_t* col, int64_t rows, int64_t cols,
                               bool accumulate, T* out, T* lse) override {
    device_op("biased_log_softmax_pick", [=, o = inner_.get()] {
      o->biased_log_softmax_pick(logits, bias, col, rows, cols, accumulate, out, lse);
    });
  }
  void biased_log_softmax_pick_bwd(const T* logits, const T* bias, const T* lse, const int32_t* col, const T* coef,
                                   int64_t rows, int64_t cols, T* dlogits) override {
    device_op("biased_log_softmax_pick_bwd", [=, o = inner_.get()] {
      o->biased_log_softmax_pick_bwd(logits, bias, lse, col, coef, rows, cols, dlogits);
    });
  }
  double sum(const T* x, int64_t n) override {
    double result{};
    host_op("sum", [&] { result = inner_->sum(x, n); });
    return result;
  }
  double sum_squares(const T* x, int64_t n) override {
    double result{};
    host_op("sum_squares", [&] { result = inner_->sum_squares(x, n); });
    return result;
  }
  std::vector<double> sum_squares_slices(const T* x, const std::vector<FlatSlice>& slices) override {
    std::vector<double> result{};
    host_op("sum_squares_slices", [&] { result = inner_->sum_squares_slices(x, slices); });
    return result;
  }
  void sum_to_device(const T* x, int64_t n, double* out) override {
    device_op("sum_to_device", [=, o = inner_.get()] { o->sum_to_device(x, n, out); });
  }
  void sum_squares_to_device(const T* x, int64_t n, double* out) override {
    device_op("sum_squares_to_device", [=, o = inner_.get()] { o->sum_squares_to_device(x, n, out); });
  }
  void step_loss_update(const double* chunk_sums, const StepLossArgs& a, double* scalars) override {
    device_op("step_loss_update", [=, o = inner_.get()] { o->step_loss_update(chunk_sums, a, scalars); });
  }
  void step_grad_factor(const GradFactorArgs& a, double* scalars) override {
    device_op("step_grad_factor", [=, o = inner_.get()] { o->step_grad_factor(a, scalars); });
  }
  void lamb_step(T* p, T* g, T* m, T* v, const std::vector<FlatSlice>& slices, const OptimStep& s) override {
    device_op("lamb_step", [=, o = inner_.get()] { o->lamb_step(p, g, m, v, slices, s); });
  }
  void adam_step(T* p, T* g, T* m, T* v, int64_t n, const OptimStep& s) override {
    device_op("adam_step", [=, o = inner_.get()] { o->adam_step(p, g, m, v, n, s); });
  }
  void sgd_step(T* p, T* g, T* buf, int64_t n, const OptimStep& s) override {
    device_op("sgd_step", [=, o = inner_.get()] { o->sgd_step(p, g, buf, n, s); });
  }
  void adagrad_step(T* p, T* g, T* sum, int64_t n, const OptimStep& s) override {
    device_op("adagrad_step", [=, o = inner_.get()] { o->adagrad_step(p, g, sum, n, s); });
  }

 protected:
  virtual void host_op(const char* op, const std::function<void()>& call) {
    (void)op;
    call();
  }
  virtual void device_op(const char* op, std::function<void()> call) {
    (void)op;
    call();
  }

 private:
  std::unique_ptr<Ops<T>> inner_;
};

}  // namespace txl
