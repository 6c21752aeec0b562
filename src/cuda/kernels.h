// Host-side launchers of the CUDA backend's kernels (private to src/cuda). Each enqueues
// its kernels on `stream` and checks the launch; semantics are those of the Ops<T> method
// of the same name (include/txl/core/ops.h). Arguments are validated by the caller
// (cuda_ops.cpp), which also turns the interface's structs into the plain values below.
//
// This header and the .cu files stay free of fmt (and so of ops.h / tensor.h): nvcc's
// front end cannot compile fmt's consteval format-string checks.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "txl/core/philox.h"
#include "txl/core/step_scalars.h"

namespace txl::cuda {

// Temporary device memory for one op: valid on the host until the op returns, and in
// stream order for the kernels it enqueued (the arena reuses blocks in stream order).
class Scratch {
 public:
  virtual void* allocate(size_t bytes) = 0;
  template <typename T>
  T* allocate_array(int64_t n) {
    return static_cast<T*>(allocate(static_cast<size_t>(n > 0 ? n : 1) * sizeof(T)));
  }

 protected:
  ~Scratch() = default;
};

// ---- elementwise (elementwise.cu) ----------------------------------------------
void launch_fill(float* x, int64_t n, float value, cudaStream_t stream);
// C_i = beta * C_i for `batch` row-major matrices rows x cols (leading dimension ld,
// matrix i at C + i*stride); beta == 0 writes zeros without reading C (it may hold NaN).
void launch_scale_matrices(float* C, int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t batch,
                           float beta, cudaStream_t stream);
// dst (dense, batch x rows x cols, bfloat16 when `bf16` else float16, round to nearest
// even) = the rows x cols matrices at src + i*stride with leading dimension ld.
void launch_pack_half(const float* src, int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t batch,
                      bool bf16, void* dst, cudaStream_t stream);
void launch_add_bias(float* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream);
void launch_axpy(int64_t n, float alpha, const float* x, float* y, cudaStream_t stream);
void launch_scale(int64_t n, float alpha, float* x, cudaStream_t stream);
void launch_add(int64_t n, const float* a, const float* b, float* out, cudaStream_t stream);
void launch_relu_fwd(int64_t n, const float* x, float* y, cudaStream_t stream);
void launch_relu_bwd(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream);
// p in [0, 1) and a consistent layout (checked by the caller).
void launch_bias_relu_dropout(const float* x, const float* bias, float p, const DropoutKey& key,
                              const BatchLayout& layout, float* y, cudaStream_t stream);
void launch_relu_dropout_bwd(int64_t n, const float* y, const float* dy, float p, float* dx, cudaStream_t stream);
void launch_dropout(const float* x, float* y, float p, const DropoutKey& key, const BatchLayout& layout,
                    cudaStream_t stream);

// ---- column sums and reductions (reductions.cu) ------------------------------------
// dbias[c] += sum_r dy[r, c]  (deterministic two-stage reduction in double)
void launch_bias_grad(const float* dy, float* dbias, int64_t rows, int64_t cols, Scratch& scratch,
                      cudaStream_t stream);
void launch_head_bias_grad(const float* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head,
                           float* bias_grad, Scratch& scratch, cudaStream_t stream);
// *out_device = sum x[i] (or x[i]^2), in float64, deterministic.
void launch_sum(const float* x, int64_t n, bool squares, double* out_device, Scratch& scratch, cudaStream_t stream);

// Work decomposition of a flat buffer's slices for the multi-tensor kernels: items of at
// most kMultiTensorChunk elements, in slice order; slice s owns items
// [slice_item_begin[s], slice_item_begin[s+1]).
inline constexpr int64_t kMultiTensorChunk = int64_t{1} << 16;
struct MultiTensorItem {
  int64_t begin;
  int64_t end;
  int32_t slice;
  int32_t pad;
};
struct MultiTensorPlan {  // device arrays
  const MultiTensorItem* items = nullptr;
  const int32_t* slice_item_begin = nullptr;  // [num_slices + 1]
  int32_t num_items = 0;
  int32_t num_slices = 0;
};
// out_device[s] = sum over slice s of x^2 (float64), one pass over all slices.
void launch_sum_squares_slices(const float* x, const MultiTensorPlan& plan, double* out_device, Scratch& scratch,
                               cudaStream_t stream);

// ---- layer norm (layernorm.cu) --------------------------------------------------
void launch_layernorm_fwd(int64_t rows, int64_t cols, const float* x, const float* gamma, const float* beta,
                          float eps, float* y, float* mean, float* rstd, cudaStream_t stream);
void launch_layernorm_bwd(int64_t rows, int64_t cols, const float* dy, const float* x, const float* gamma,
                          const float* mean, const float* rstd, float* dx, float* dgamma, float* dbeta,
                          Scratch& scratch, cudaStream_t stream);
// Ops::dropout_residual_layernorm_fwd / _bwd; p in [0, 1), layout checked by the caller
// (used only when p > 0).
void launch_dropout_residual_layernorm_fwd(int64_t rows, int64_t cols, const float* x, const float* bias, float p,
                                           const DropoutKey& key, const BatchLayout& layout, const float* residual,
                                           const float* gamma, const float* beta, float eps, float* sum, float* y,
                                           float* mean, float* rstd, cudaStream_t stream);
void launch_dropout_residual_layernorm_bwd(int64_t rows, int64_t cols, const float* dy, const float* sum,
                                           const float* gamma, const float* mean, const float* rstd, float p,
                                           const DropoutKey& key, const BatchLayout& layout, float* d_sum, float* d_x,
                                           float* dgamma, float* dbeta, float* dbias, Scratch& scratch,
                                           cudaStream_t stream);

// ---- fused relative attention (rel_attention.cu) ---------------------------------
// RelAttentionArgs (ops.h) as plain values; shift = same_length's offset (AttnMask);
// ld_* = RelAttentionLayout's row strides (operands in the projections' row layout).
struct RelAttentionShape {
  int64_t heads, batch, qlen, klen, d_head, mlen;  // d_head <= 128
  float scale;
  bool same_length;
  int64_t shift;
  float dropatt;
  DropoutKey key;
  BatchLayout layout;
  int64_t ld_q, ld_k, ld_v, ld_r, ld_out;
};
void launch_rel_attention_fwd(const RelAttentionShape& a, const float* q, const float* u, const float* w,
                              const float* k, const float* v, const float* r, float* out, float* lse,
                              cudaStream_t stream);
void launch_rel_attention_bwd(const RelAttentionShape& a, const float* q, const float* u, const float* w,
                              const float* k, const float* v, const float* r, const float* out, const float* lse,
                              const float* d_out, float* d_q, float* d_u, float* d_w, float* d_k, float* d_v,
                              float* d_r, Scratch& scratch, cudaStream_t stream);

// ---- attention (attention.cu) ---------------------------------------------------
void launch_split_heads(const float* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                        const float* bias, float* dst, cudaStream_t stream);
void launch_merge_heads(const float* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                        bool accumulate, float* dst, cudaStream_t stream);
void launch_rel_shift_add(const float* bd_raw, int64_t n, int64_t qlen, int64_t klen, int64_t mlen, float* scores,
                          cudaStream_t stream);
void launch_rel_shift_bwd(const float* d_scores, int64_t n, int64_t qlen, int64_t klen, int64_t mlen,
                          float* d_bd_raw, cudaStream_t stream);
// Mask of AttnMask (ops.h): mlen, same_length, mem_len.
void launch_attn_softmax_fwd(const float* scores, int64_t n, int64_t qlen, int64_t klen, float scale, int64_t mlen,
                             bool same_length, int64_t mem_len, float* probs, cudaStream_t stream);
void launch_attn_softmax_bwd(const float* probs, const float* d_probs, int64_t n, int64_t qlen, int64_t klen,
                             float scale, float* d_scores, cudaStream_t stream);

// ---- gather / scatter and the loss (loss.cu) ------------------------------------
void launch_gather_rows(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst,
                        cudaStream_t stream);
void launch_scatter_rows(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst,
                         cudaStream_t stream);
// Deterministic (sorted segments, no atomics): the CPU backend's sums, bit for bit.
void launch_scatter_add_rows(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst,
                             Scratch& scratch, cudaStream_t stream);
void launch_log_softmax(const float* logits, int64_t rows, int64_t cols, float* logp, cudaStream_t stream);
void launch_pick_cols(const float* logp, const int32_t* col, int64_t rows, int64_t cols, bool accumulate,
                      float* out, cudaStream_t stream);
void launch_log_softmax_pick_bwd(const float* logp, const int32_t* col, const float* coef, int64_t rows,
                                 int64_t cols, float* dlogits, cudaStream_t stream);
void launch_biased_log_softmax_pick(const float* logits, const float* bias, const int32_t* col, int64_t rows,
                                    int64_t cols, bool accumulate, float* out, float* lse, cudaStream_t stream);
void launch_biased_log_softmax_pick_bwd(const float* logits, const float* bias, const float* lse,
                                        const int32_t* col, const float* coef, int64_t rows, int64_t cols,
                                        float* dlogits, cudaStream_t stream);

// ---- step scalars (step_scalars.cu): one single-thread kernel each ------------------
void launch_step_loss_update(const double* chunk_sums, const StepLossArgs& a, double* scalars, cudaStream_t stream);
void launch_step_grad_factor(const GradFactorArgs& a, double* scalars, cudaStream_t stream);

// ---- optimizers (optimizers.cu) ---------------------------------------------------
struct OptimArgs {  // OptimStep (ops.h), field by field
  double lr, grad_scale, beta1, beta2, eps, weight_decay, momentum;
  int64_t step;
  const double* device_grad_scale;  // null: grad_scale
};
// Each clears g in the pass that reads it (also when the factor is not finite: skipped).
void launch_lamb_step(float* p, float* g, float* m, float* v, const MultiTensorPlan& plan, const OptimArgs& s,
                      Scratch& scratch, cudaStream_t stream);
void launch_adam_step(float* p, float* g, float* m, float* v, int64_t n, const OptimArgs& s, cudaStream_t stream);
void launch_sgd_step(float* p, float* g, float* buf, int64_t n, const OptimArgs& s, cudaStream_t stream);
void launch_adagrad_step(float* p, float* g, float* sum, int64_t n, const OptimArgs& s, cudaStream_t stream);

}  // namespace txl::cuda
