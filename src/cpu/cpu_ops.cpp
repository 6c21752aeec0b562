// CpuOps<T>: the CPU backend of Ops<T> (host memory, Eigen GEMMs, OpenMP loops).
// Every op forwards to a kernel in txl/cpu/cpu_kernels.h.
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

#include "txl/core/ops.h"
#include "cpu_kernels.h"

namespace txl {
namespace {

template <typename T>
class CpuOps final : public Ops<T> {
 public:
  Device device() const override { return Device::kCPU; }
  Allocator& allocator() override { return cpu_allocator(); }
  const char* name() const override {
    if constexpr (std::is_same_v<T, float>) return "cpu-float";
    else return "cpu-double";
  }

  void upload(void* dst, const void* host_src, size_t bytes) override { copy(dst, host_src, bytes); }
  void download(void* host_dst, const void* src, size_t bytes) override { copy(host_dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override { cpu::copy_bytes(dst, src, bytes); }
  void synchronize() override {}
  // Host memory is the CPU backend's device memory: staging is an ordinary buffer and a copy.
  std::shared_ptr<void> staging_buffer(size_t bytes) override {
    return std::shared_ptr<void>(::operator new(bytes > 0 ? bytes : 1), [](void* p) { ::operator delete(p); });
  }
  void stage_to_device(void* dst, const void* staging_src, size_t bytes) override { copy(dst, staging_src, bytes); }
  void stage_to_host(void* staging_dst, const void* src, size_t bytes) override { copy(staging_dst, src, bytes); }
  void fill(T* x, int64_t n, T value) override { cpu::fill(x, n, value); }

  void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B,
            int64_t ldb, T beta, T* C, int64_t ldc) override {
    cpu::gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void gemm_strided_batched(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                            int64_t strideA, const T* B, int64_t ldb, int64_t strideB, T beta, T* C, int64_t ldc,
                            int64_t strideC, int64_t batch) override {
    cpu::gemm_strided_batched(ta, tb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC,
                              batch);
  }

  void add_bias(T* y, const T* bias, int64_t rows, int64_t cols) override { cpu::add_bias(y, bias, rows, cols); }
  void bias_grad(const T* dy, T* dbias, int64_t rows, int64_t cols) override {
    cpu::bias_grad(dy, dbias, rows, cols);
  }
  void axpy(int64_t n, T alpha, const T* x, T* y) override { cpu::axpy(n, alpha, x, y); }
  void scale(int64_t n, T alpha, T* x) override { cpu::scale(n, alpha, x); }
  void add(int64_t n, const T* a, const T* b, T* out) override { cpu::add(n, a, b, out); }
  void relu_fwd(int64_t n, const T* x, T* y) override { cpu::relu_fwd(n, x, y); }
  void relu_bwd(int64_t n, const T* y, const T* dy, T* dx) override { cpu::relu_bwd(n, y, dy, dx); }
  void dropout(const T* x, T* y, float p, const DropoutKey& key, const BatchLayout& layout) override {
    cpu::dropout(x, y, p, key, layout);
  }
  void bias_relu_dropout(const T* x, const T* bias, float p, const DropoutKey& key, const BatchLayout& layout,
                         T* y) override {
    cpu::bias_relu_dropout(x, bias, p, key, layout, y);
  }
  void relu_dropout_bwd(int64_t n, const T* y, const T* dy, float p, T* dx) override {
    cpu::relu_dropout_bwd(n, y, dy, p, dx);
  }

  void layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* gamma, const T* beta, T eps, T* y, T* mean,
                     T* rstd) override {
    cpu::layernorm_fwd(rows, cols, x, gamma, beta, eps, y, mean, rstd);
  }
  void layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* x, const T* gamma, const T* mean,
                     const T* rstd, T* dx, T* dgamma, T* dbeta) override {
    cpu::layernorm_bwd(rows, cols, dy, x, gamma, mean, rstd, dx, dgamma, dbeta);
  }
  void dropout_residual_layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* bias, float p,
                                      const DropoutKey& key, const BatchLayout& layout, const T* residual,
                                      const T* gamma, const T* beta, T eps, T* sum, T* y, T* mean, T* rstd) override {
    cpu::dropout_residual_layernorm_fwd(rows, cols, x, bias, p, key, layout, residual, gamma, beta, eps, sum, y, mean,
                                        rstd);
  }
  void dropout_residual_layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* sum, const T* gamma,
                                      const T* mean, const T* rstd, float p, const DropoutKey& key,
                                      const BatchLayout& layout, T* d_sum, T* d_x, T* dgamma, T* dbeta,
                                      T* dbias) override {
    cpu::dropout_residual_layernorm_bwd(rows, cols, dy, sum, gamma, mean, rstd, p, key, layout, d_sum, d_x, dgamma,
                                        dbeta, dbias);
  }

  void split_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                   const T* bias, T* dst) override {
    cpu::split_heads(src, len, batch, heads, d_head, ld, bias, dst);
  }
  void merge_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                   bool accumulate, T* dst) override {
    cpu::merge_heads(src, len, batch, heads, d_head, ld, accumulate, dst);
  }
  void head_bias_grad(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head,
                      T* bias_grad) override {
    cpu::head_bias_grad(src, len, batch, heads, d_head, bias_grad);
  }
  void rel_shift_add(const T* bd_raw, int64_t n, int64_t qlen, int64_t klen, int64_t mlen, T* scores) override {
    cpu::rel_shift_add(bd_raw, n, qlen, klen, mlen, scores);
  }
  void rel_shift_bwd(const T* d_scores, int64_t n, int64_t qlen, int64_t klen, int64_t mlen,
                     T* d_bd_raw) override {
    cpu::rel_shift_bwd(d_scores, n, qlen, klen, mlen, d_bd_raw);
  }
  void attn_softmax_fwd(const T* scores, int64_t n, int64_t qlen, int64_t klen, T scale, const AttnMask& mask,
                        T* probs) override {
    cpu::attn_softmax_fwd(scores, n, qlen, klen, scale, mask, probs);
  }
  void attn_softmax_bwd(const T* probs, const T* d_probs, int64_t n, int64_t qlen, int64_t klen, T scale,
                        T* d_scores) override {
    cpu::attn_softmax_bwd(probs, d_probs, n, qlen, klen, scale, d_scores);
  }
  void rel_attention_fwd(const RelAttentionArgs& a, const T* q, const T* u, const T* w, const T* k, const T* v,
                         const T* r, T* out, T* lse) override {
    cpu::rel_attention_fwd(a, q, u, w, k, v, r, out, lse);
  }
  void rel_attention_bwd(const RelAttentionArgs& a, const T* q, const T* u, const T* w, const T* k, const T* v,
                         const T* r, const T* out, const T* lse, const T* d_out, T* d_q, T* d_u, T* d_w,
                         T* d_k, T* d_v, T* d_r) override {
    cpu::rel_attention_bwd(a, q, u, w, k, v, r, out, lse, d_out, d_q, d_u, d_w, d_k, d_v, d_r);
  }

  void gather_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) override {
    cpu::gather_rows(src, idx, n, cols, dst);
  }
  void scatter_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) override {
    cpu::scatter_rows(src, idx, n, cols, dst);
  }
  void scatter_add_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) override {
    cpu::scatter_add_rows(src, idx, n, cols, dst);
  }

  void log_softmax(const T* logits, int64_t rows, int64_t cols, T* logp) override {
    cpu::log_softmax(logits, rows, cols, logp);
  }
  void pick_cols(const T* logp, const int32_t* col, int64_t rows, int64_t cols, bool accumulate,
                 T* out) override {
    cpu::pick_cols(logp, col, rows, cols, accumulate, out);
  }
  void log_softmax_pick_bwd(const T* logp, const int32_t* col, const T* coef, int64_t rows, int64_t cols,
                            T* dlogits) override {
    cpu::log_softmax_pick_bwd(logp, col, coef, rows, cols, dlogits);
  }

  void biased_log_softmax_pick(const T* logits, const T* bias, const int32_t* col, int64_t rows, int64_t cols,
                               bool accumulate, T* out, T* lse) override {
    cpu::biased_log_softmax_pick(logits, bias, col, rows, cols, accumulate, out, lse);
  }
  void biased_log_softmax_pick_bwd(const T* logits, const T* bias, const T* lse, const int32_t* col, const T* coef,
                                   int64_t rows, int64_t cols, T* dlogits) override {
    cpu::biased_log_softmax_pick_bwd(logits, bias, lse, col, coef, rows, cols, dlogits);
  }

  double sum(const T* x, int64_t n) override { return cpu::sum(x, n); }
  double sum_squares(const T* x, int64_t n) override { return cpu::sum_squares(x, n); }
  std::vector<double> sum_squares_slices(const T* x, const std::vector<FlatSlice>& slices) override {
    return cpu::sum_squares_slices(x, slices);
  }

  void sum_to_device(const T* x, int64_t n, double* out) override { *out = cpu::sum(x, n); }
  void sum_squares_to_device(const T* x, int64_t n, double* out) override { *out = cpu::sum_squares(x, n); }
  void step_loss_update(const double* chunk_sums, const StepLossArgs& a, double* scalars) override {
    check_step_loss_args(a, chunk_sums, scalars);
    cpu::step_loss_update(chunk_sums, a, scalars);
  }
  void step_grad_factor(const GradFactorArgs& a, double* scalars) override {
    check_grad_factor_args(a, scalars);
    cpu::step_grad_factor(a, scalars);
  }

  void lamb_step(T* p, T* g, T* m, T* v, const std::vector<FlatSlice>& slices, const OptimStep& s) override {
    cpu::lamb_step(p, g, m, v, slices, s);
  }
  void adam_step(T* p, T* g, T* m, T* v, int64_t n, const OptimStep& s) override { cpu::adam_step(p, g, m, v, n, s); }
  void sgd_step(T* p, T* g, T* buf, int64_t n, const OptimStep& s) override { cpu::sgd_step(p, g, buf, n, s); }
  void adagrad_step(T* p, T* g, T* sum, int64_t n, const OptimStep& s) override {
    cpu::adagrad_step(p, g, sum, n, s);
  }
};

}  // namespace

template <typename T>
std::unique_ptr<Ops<T>> make_cpu_ops() {
  return std::make_unique<CpuOps<T>>();
}

template std::unique_ptr<Ops<float>> make_cpu_ops<float>();
template std::unique_ptr<Ops<double>> make_cpu_ops<double>();

}  // namespace txl
