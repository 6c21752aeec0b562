// The CPU kernels behind CpuOps<T> (src/cpu/cpu_ops.cpp), one function per op of
// Ops<T> with the same semantics (see txl/core/ops.h). Instantiated for float and
// double in the source file of each group.
#pragma once
#include <cstdint>
#include <vector>

#include "txl/core/ops.h"

namespace txl::cpu {

// ---- gemm.cpp -------------------------------------------------------------------------
template <typename T>
void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc);
template <typename T>
void gemm_strided_batched(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                          int64_t strideA, const T* B, int64_t ldb, int64_t strideB, T beta, T* C, int64_t ldc,
                          int64_t strideC, int64_t batch);

// ---- elementwise.cpp ------------------------------------------------------------------

// memmove; large copies between disjoint ranges are split over the threads (the
// memory update copies ~90 MB per evaluation step at mem_len 640).
void copy_bytes(void* dst, const void* src, size_t bytes);

template <typename T>
void fill(T* x, int64_t n, T value);
template <typename T>
void add_bias(T* y, const T* bias, int64_t rows, int64_t cols);
template <typename T>
void bias_grad(const T* dy, T* dbias, int64_t rows, int64_t cols);
template <typename T>
void axpy(int64_t n, T alpha, const T* x, T* y);
template <typename T>
void scale(int64_t n, T alpha, T* x);
template <typename T>
void add(int64_t n, const T* a, const T* b, T* out);
template <typename T>
void relu_fwd(int64_t n, const T* x, T* y);
template <typename T>
void bias_relu_dropout(const T* x, const T* bias, float p, const DropoutKey& key, const BatchLayout& layout, T* y);
template <typename T>
void relu_dropout_bwd(int64_t n, const T* y, const T* dy, float p, T* dx);
template <typename T>
void relu_bwd(int64_t n, const T* y, const T* dy, T* dx);
template <typename T>
void dropout(const T* x, T* y, float p, const DropoutKey& key, const BatchLayout& layout);

// ---- layernorm.cpp --------------------------------------------------------------------
template <typename T>
void layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* gamma, const T* beta, T eps, T* y, T* mean,
                   T* rstd);
template <typename T>
void layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* x, const T* gamma, const T* mean,
                   const T* rstd, T* dx, T* dgamma, T* dbeta);
template <typename T>
void dropout_residual_layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* bias, float p,
                                    const DropoutKey& key, const BatchLayout& layout, const T* residual,
                                    const T* gamma, const T* beta, T eps, T* sum, T* y, T* mean, T* rstd);
template <typename T>
void dropout_residual_layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* sum, const T* gamma,
                                    const T* mean, const T* rstd, float p, const DropoutKey& key,
                                    const BatchLayout& layout, T* d_sum, T* d_x, T* dgamma, T* dbeta, T* dbias);

// ---- attention.cpp --------------------------------------------------------------------
template <typename T>
void split_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld, const T* bias,
                 T* dst);
template <typename T>
void merge_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                 bool accumulate, T* dst);
template <typename T>
void head_bias_grad(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, T* bias_grad);
template <typename T>
void rel_shift_add(const T* bd_raw, int64_t n, int64_t qlen, int64_t klen, int64_t mlen, T* scores);
template <typename T>
void rel_shift_bwd(const T* d_scores, int64_t n, int64_t qlen, int64_t klen, int64_t mlen, T* d_bd_raw);
template <typename T>
void attn_softmax_fwd(const T* scores, int64_t n, int64_t qlen, int64_t klen, T scale, const AttnMask& mask,
                      T* probs);
template <typename T>
void attn_softmax_bwd(const T* probs, const T* d_probs, int64_t n, int64_t qlen, int64_t klen, T scale,
                      T* d_scores);

// ---- rel_attention.cpp ----------------------------------------------------------------
template <typename T>
void rel_attention_fwd(const RelAttentionArgs& a, const T* q, const T* u, const T* w, const T* k, const T* v,
                       const T* r, T* out, T* lse);
template <typename T>
void rel_attention_bwd(const RelAttentionArgs& a, const T* q, const T* u, const T* w, const T* k, const T* v,
                       const T* r, const T* out, const T* lse, const T* d_out, T* d_q, T* d_u, T* d_w, T* d_k,
                       T* d_v, T* d_r);

// ---- loss.cpp (gather/scatter and log-softmax) ----------------------------------------
template <typename T>
void gather_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst);
template <typename T>
void scatter_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst);
template <typename T>
void scatter_add_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst);
template <typename T>
void log_softmax(const T* logits, int64_t rows, int64_t cols, T* logp);
template <typename T>
void pick_cols(const T* logp, const int32_t* col, int64_t rows, int64_t cols, bool accumulate, T* out);
template <typename T>
void log_softmax_pick_bwd(const T* logp, const int32_t* col, const T* coef, int64_t rows, int64_t cols,
                          T* dlogits);
template <typename T>
void biased_log_softmax_pick(const T* logits, const T* bias, const int32_t* col, int64_t rows, int64_t cols,
                             bool accumulate, T* out, T* lse);
template <typename T>
void biased_log_softmax_pick_bwd(const T* logits, const T* bias, const T* lse, const int32_t* col, const T* coef,
                                 int64_t rows, int64_t cols, T* dlogits);

// ---- reductions.cpp -------------------------------------------------------------------
template <typename T>
double sum(const T* x, int64_t n);
template <typename T>
double sum_squares(const T* x, int64_t n);
template <typename T>
std::vector<double> sum_squares_slices(const T* x, const std::vector<FlatSlice>& slices);

// ---- step_scalars.cpp -----------------------------------------------------------------
void step_loss_update(const double* chunk_sums, const StepLossArgs& a, double* scalars);
void step_grad_factor(const GradFactorArgs& a, double* scalars);

// ---- optimizers.cpp -------------------------------------------------------------------
template <typename T>
void lamb_step(T* p, T* g, T* m, T* v, const std::vector<FlatSlice>& slices, const OptimStep& s);
template <typename T>
void adam_step(T* p, T* g, T* m, T* v, int64_t n, const OptimStep& s);
template <typename T>
void sgd_step(T* p, T* g, T* buf, int64_t n, const OptimStep& s);
template <typename T>
void adagrad_step(T* p, T* g, T* sum, int64_t n, const OptimStep& s);

}  // namespace txl::cpu
