// Ops<T>: the one op interface. The model, optimizers and trainer are written once
// against it; the CPU backend (Eigen + OpenMP, float and double) and the CUDA backend
// (cuBLAS + kernels, float with optional TF32/bf16/fp16 GEMM math) implement it.
//
// Conventions (every op):
//  - All pointers are device pointers of the backend (host pointers for the CPU one),
//    except where a parameter says "host".
//  - Matrices are row-major. "rows x cols" with leading dimension = cols unless an ld is
//    given. Sizes are int64_t.
//  - "accumulate" outputs are added to (+=); all other outputs are overwritten.
//  - Ops are asynchronous on the CUDA backend (one stream); results that return to the
//    host (sum, sum_squares, download) synchronise. A training step needs none of those:
//    its scalars (loss, gradient norm, the optimizer's factor) stay in device memory
//    (StepScalars, sum_to_device, step_loss_update, step_grad_factor).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "txl/core/philox.h"
#include "txl/core/step_scalars.h"
#include "txl/core/tensor.h"

namespace txl {

enum class Trans { kNo, kYes };

// Attention mask of docs/model.md §4 for a [qlen, klen] score matrix, klen = mlen + qlen:
// j is masked for query i when j > i + mlen, or with same_length when j <= i - shift,
// shift = qlen - (klen - mem_len - 1) if klen - mem_len - 1 > 0 else qlen.
struct AttnMask {
  int64_t mlen = 0;
  bool same_length = false;
  int64_t mem_len = 0;  // the configured mem_len (not the current mlen)
};

// A parameter tensor inside a flat buffer: elements [offset, offset + numel).
struct FlatSlice {
  int64_t offset = 0;
  int64_t numel = 0;
};

// Hyper-parameters of one optimizer step. `grad_scale` multiplies every gradient before
// use (it folds gradient averaging, clipping and loss-scale removal into one factor).
// `device_grad_scale`, when set, is a device double read in place of grad_scale when the
// step runs (Ops::step_grad_factor writes it), so the host never needs its value. A
// factor that is not finite skips the update: parameters and state are left unchanged
// (the gradient is still cleared).
struct OptimStep {
  double lr = 0.0;
  double grad_scale = 1.0;
  const double* device_grad_scale = nullptr;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-6;
  double weight_decay = 0.0;
  double momentum = 0.0;     // sgd
  int64_t step = 1;          // 1-based, for Adam bias correction
  double initial_accumulator = 0.0;  // adagrad
};

// Where the fused relative attention (Ops::rel_attention_fwd/bwd) finds its operands:
// the row layout the projections write, read and written in place (no per-head copies).
// Each operand pointer is the operand's column 0; head h's d_head columns start at
// column h*d_head of a row, and a row is `ld` elements from the next:
//   q, d_q      [qlen*batch, >= heads*d_head]  row (i, b) = i*batch + b   (q_lin)
//   k, v, d_k, d_v  [klen*batch, ...]          row (j, b) = j*batch + b   (kv_lin: k at column 0,
//                                               v at column heads*d_head, ld 2*heads*d_head)
//   r, d_r      [klen, ...]                    row c                       (r_lin)
//   out, d_out  [qlen*batch, ...]              row (i, b) = i*batch + b   (the o_net input)
// A gradient shares its operand's leading dimension. Every ld must be >= heads*d_head.
struct RelAttentionLayout {
  int64_t ld_q = 0, ld_k = 0, ld_v = 0, ld_r = 0, ld_out = 0;
  // Every operand packed: ld = heads*d_head.
  static RelAttentionLayout packed(int64_t hd) { return {hd, hd, hd, hd, hd}; }
};

// Shapes and options of the fused relative attention (Ops::rel_attention_fwd/bwd): n =
// heads * batch score blocks, n = h * batch + b; klen = qlen + mask.mlen.
struct RelAttentionArgs {
  int64_t heads = 1, batch = 1, qlen = 0, klen = 0, d_head = 0;
  double scale = 1.0;  // multiplies AC + BD before the softmax (1/sqrt(d_head))
  AttnMask mask;
  // dropatt on the probabilities: the mask Ops::dropout draws for a [heads, batch,
  // qlen*klen] tensor with this key and layout (outer = heads, inner = qlen*klen).
  float dropatt = 0.0f;
  DropoutKey key;
  BatchLayout layout;
  RelAttentionLayout ld;  // row strides of the operands (all must be set)
  int64_t n() const { return heads * batch; }
};
// Argument checks of the ops below, written once (src/core/ops.cpp) and called by every
// backend before any work: each throws one txl::Error naming the op and the problem.
void check_gemm_args(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc);
void check_gemm_batch(int64_t batch);
void check_dropout_args(float p, const BatchLayout& layout);
void check_dropout_probability(const char* op, float p);
void check_layernorm_shape(const char* op, int64_t rows, int64_t cols);
void check_dropout_residual_layernorm(const char* op, int64_t rows, int64_t cols, float p, const BatchLayout& layout);
void check_dropout_residual_layernorm_grads(const void* d_x, const void* gamma, const void* d_sum);
void check_head_stride(const char* op, int64_t ld, int64_t heads, int64_t d_head);
void check_rel_shift(const char* op, int64_t qlen, int64_t klen, int64_t mlen);
void check_rel_attention_args(const char* op, const RelAttentionArgs& a);
void check_softmax_block(const char* op, int64_t rows, int64_t cols);
void check_flat_slice(const char* op, size_t index, const FlatSlice& slice);
void check_adam_step(const OptimStep& s);
void check_sgd_buffer(const OptimStep& s, const void* buf);
void check_step_loss_args(const StepLossArgs& a, const double* chunk_sums, const double* scalars);
void check_grad_factor_args(const GradFactorArgs& a, const double* scalars);

template <typename T>
class Ops {
 public:
  virtual ~Ops() = default;
  virtual Device device() const = 0;
  virtual Allocator& allocator() = 0;
  virtual const char* name() const = 0;  // "cpu-float", "cuda-float(bf16 gemm)", ...

  Tensor<T> empty(Shape shape) { return Tensor<T>(std::move(shape), allocator()); }
  Tensor<int32_t> empty_index(Shape shape) { return Tensor<int32_t>(std::move(shape), allocator()); }

  // ---- memory ---------------------------------------------------------------------
  virtual void upload(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void download(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // device to device
  virtual void synchronize() = 0;
  virtual void fill(T* x, int64_t n, T value) = 0;

  // ---- host staging (swap_mem: data kept in host memory between uses) --------------
  // A host buffer of `bytes` that the copies below move to and from without stopping the
  // host: page-locked memory (cudaHostAlloc) on the CUDA backend, ordinary memory on the
  // CPU one. Freed when the last owner lets go.
  virtual std::shared_ptr<void> staging_buffer(size_t bytes) = 0;
  // Copies between device memory and a staging buffer, in order with the other ops
  // (asynchronous on the CUDA backend's stream). The host may read or rewrite the staging
  // buffer only after synchronize().
  virtual void stage_to_device(void* dst, const void* staging_src, size_t bytes) = 0;
  virtual void stage_to_host(void* staging_dst, const void* src, size_t bytes) = 0;

  // ---- dense linear algebra --------------------------------------------------------
  // C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C. op(A) = A or A^T.
  // A is stored m x k (kNo) or k x m (kYes) with leading dimension lda; same for B.
  virtual void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                    const T* B, int64_t ldb, T beta, T* C, int64_t ldc) = 0;
  // `batch` independent gemms; matrix i starts at A + i*strideA (likewise B, C).
  virtual void gemm_strided_batched(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A,
                                    int64_t lda, int64_t strideA, const T* B, int64_t ldb, int64_t strideB,
                                    T beta, T* C, int64_t ldc, int64_t strideC, int64_t batch) = 0;

  // ---- elementwise -----------------------------------------------------------------
  virtual void add_bias(T* y, const T* bias, int64_t rows, int64_t cols) = 0;         // y[r,c] += bias[c]
  virtual void bias_grad(const T* dy, T* dbias, int64_t rows, int64_t cols) = 0;      // dbias[c] += sum_r dy[r,c]
  virtual void axpy(int64_t n, T alpha, const T* x, T* y) = 0;                        // y += alpha x
  virtual void scale(int64_t n, T alpha, T* x) = 0;                                   // x *= alpha
  virtual void add(int64_t n, const T* a, const T* b, T* out) = 0;                    // out = a + b (may alias)
  virtual void relu_fwd(int64_t n, const T* x, T* y) = 0;                             // may alias
  virtual void relu_bwd(int64_t n, const T* y, const T* dy, T* dx) = 0;               // dx = dy * (y > 0)
  // y = x * keep / (1 - p), keep from philox (philox.h); p == 0 copies. Used for the
  // forward and, with the same key/layout, for the backward (dy -> dx). May alias.
  virtual void dropout(const T* x, T* y, float p, const DropoutKey& key, const BatchLayout& layout) = 0;
  // The feed-forward's inner activation in one pass: y = dropout(relu(x + bias)) for x, y
  // [rows = outer * batch, inner] of `layout` and bias [inner], with exactly the bits of
  // add_bias, relu_fwd and dropout in turn (p == 0: no dropout). May alias.
  virtual void bias_relu_dropout(const T* x, const T* bias, float p, const DropoutKey& key,
                                 const BatchLayout& layout, T* y) = 0;
  // Its backward from the output y: dx = dy / (1 - p) where y > 0, else 0 (y > 0 exactly
  // where relu was active and dropout kept the element): the bits of dropout and relu_bwd
  // in turn. May alias.
  virtual void relu_dropout_bwd(int64_t n, const T* y, const T* dy, float p, T* dx) = 0;

  // ---- normalisation ---------------------------------------------------------------
  // y = (x - mean) * rstd * gamma + beta per row; mean/rstd [rows] saved for backward.
  virtual void layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* gamma, const T* beta, T eps, T* y,
                             T* mean, T* rstd) = 0;
  // dx overwritten; dgamma, dbeta accumulated.
  virtual void layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* x, const T* gamma, const T* mean,
                             const T* rstd, T* dx, T* dgamma, T* dbeta) = 0;
  // The residual tail of a block in one op (x, residual, sum, y [rows, cols]):
  //   sum = residual + dropout(x + bias)       (bias [cols] or null: none)
  //   y   = LayerNorm(sum; gamma, beta, eps)   mean/rstd [rows] as layernorm_fwd
  // with the bits of add_bias, dropout (p, key, layout as Ops::dropout), add and
  // layernorm_fwd in that order. p == 0: no dropout (layout unused); p > 0: layout must
  // describe [rows, cols] (outer * batch == rows, inner == cols). gamma null: no LayerNorm
  // (pre-LN), sum is the output and beta, y, mean, rstd are unused (may be null).
  // sum may alias x or residual (elementwise); y must not overlap x, residual or sum.
  virtual void dropout_residual_layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* bias, float p,
                                              const DropoutKey& key, const BatchLayout& layout, const T* residual,
                                              const T* gamma, const T* beta, T eps, T* sum, T* y, T* mean,
                                              T* rstd) = 0;
  // Its backward from dy (the gradient of y; of sum without LayerNorm):
  //   d_sum = layernorm_bwd's dx of (dy, sum, gamma, mean, rstd), or dy when gamma is null
  //           (then d_sum may be null: not written); the residual's gradient
  //   d_x   = dropout(d_sum) with the forward's p, key, layout (the gradient of x)
  //   dgamma += sum_r dy * xhat, dbeta += sum_r dy (with LayerNorm; else unused, may be null)
  //   dbias += sum_r d_x (when dbias is not null)
  // with the bits of layernorm_bwd, dropout and bias_grad. d_sum, d_x overwritten; they
  // must not overlap each other or the inputs.
  virtual void dropout_residual_layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* sum, const T* gamma,
                                              const T* mean, const T* rstd, float p, const DropoutKey& key,
                                              const BatchLayout& layout, T* d_sum, T* d_x, T* dgamma, T* dbeta,
                                              T* dbias) = 0;

  // ---- attention -------------------------------------------------------------------
  // src viewed as [len, batch, ld] (time-major; ld = row stride, the head block starts at
  // column 0 of src) -> dst [heads, batch, len, d_head]:
  //   dst[h,b,t,d] = src[t,b,h*d_head+d] + (bias ? bias[h*d_head+d] : 0).
  virtual void split_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                           const T* bias, T* dst) = 0;
  // Inverse layout: src [heads, batch, len, d_head] -> dst [len, batch, ld] columns
  // [0, heads*d_head). accumulate: dst += ..., else dst = ... (other columns untouched).
  virtual void merge_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                           bool accumulate, T* dst) = 0;
  // Sums src [heads, batch, len, d_head] over batch and len: bias_grad[h*d_head+d] += ...
  virtual void head_bias_grad(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head,
                              T* bias_grad) = 0;
  // Relative shift (docs/model.md §4). bd_raw [n, qlen, klen] holds (q_i + w)·R_r for R rows r
  // ordered like pos (position value klen-1-r). For every unmasked (i, j) (j <= i+mlen):
  //   scores[n,i,j] += bd_raw[n, i, klen-1-mlen-i+j];   masked entries are left as they are.
  virtual void rel_shift_add(const T* bd_raw, int64_t n, int64_t qlen, int64_t klen, int64_t mlen, T* scores) = 0;
  // Backward: d_bd_raw[n,i,klen-1-mlen-i+j] = d_scores[n,i,j] for j <= i+mlen; every other
  // element of d_bd_raw is set to 0 (overwrite).
  virtual void rel_shift_bwd(const T* d_scores, int64_t n, int64_t qlen, int64_t klen, int64_t mlen,
                             T* d_bd_raw) = 0;
  // probs[n,i,:] = softmax_j(scale * scores[n,i,j]) with masked entries excluded (prob 0).
  virtual void attn_softmax_fwd(const T* scores, int64_t n, int64_t qlen, int64_t klen, T scale,
                                const AttnMask& mask, T* probs) = 0;
  // d_scores = scale * probs * (d_probs - sum_j probs*d_probs). May alias d_probs.
  virtual void attn_softmax_bwd(const T* probs, const T* d_probs, int64_t n, int64_t qlen, int64_t klen, T scale,
                                T* d_scores) = 0;

  // Fused relative attention (docs/model.md §4.2, attn_type 0), without any
  // [n, qlen, klen] tensor in memory and without per-head copies: operands are addressed
  // in the projections' row layout (RelAttentionLayout above). For every block n = (h, b)
  // and query i, over the keys j the mask leaves (j <= i + mlen, and same_length's lower
  // bound), with q_i, k_j, v_j, r_c head h's columns of those rows:
  //   qu_i = q_i + u_h,  qw_i = q_i + w_h   (u, w [heads*d_head]: r_w_bias, r_r_bias;
  //                                          null: no bias)
  //   s[i,j] = scale * (qu_i·k_j + qw_i·r_{klen-1-mlen-i+j})
  //   p = softmax_j(s),  p~ = dropatt(p),  out_i = sum_j p~[i,j] v_j
  //   lse[n,i] = log sum_j exp(s[i,j])   (lse [n, qlen], kept for the backward)
  // Equals split_heads (+ biases), split score GEMMs + rel_shift_add + attn_softmax_fwd +
  // dropout + a batched GEMM, merge_heads up to rounding. out must not overlap the inputs.
  virtual void rel_attention_fwd(const RelAttentionArgs& a, const T* q, const T* u, const T* w, const T* k,
                                 const T* v, const T* r, T* out, T* lse) = 0;
  // Backward by recomputing p from lse: d_out -> d_q (= d qu + d qw), d_k, d_v, d_r (the
  // layouts of the inputs; overwritten; d_r sums over the batch; only each operand's head
  // columns are written, so d_k and d_v may interleave in one kv-shaped buffer) and
  // d_u += sum over (i, b) of d qu, d_w += sum of d qw ([heads*d_head]; null: not
  // computed; the same bits for any thread count). `out` is the forward's output (its row
  // dot with d_out is the softmax backward's row term). Outputs must not overlap inputs.
  virtual void rel_attention_bwd(const RelAttentionArgs& a, const T* q, const T* u, const T* w, const T* k,
                                 const T* v, const T* r, const T* out, const T* lse, const T* d_out, T* d_q, T* d_u,
                                 T* d_w, T* d_k, T* d_v, T* d_r) = 0;

  // ---- gather / scatter (embeddings, adaptive clusters) ---------------------------
  // dst[r,:] = src[idx[r],:]  (idx device int32, n rows, `cols` wide, contiguous rows)
  virtual void gather_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) = 0;
  // dst[idx[r],:] = src[r,:]  (indices unique)
  virtual void scatter_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) = 0;
  // dst[idx[r],:] += src[r,:]  (indices may repeat)
  virtual void scatter_add_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) = 0;

  // ---- log-softmax / loss ----------------------------------------------------------
  // logp[r,:] = log_softmax(logits[r,:]). May alias.
  virtual void log_softmax(const T* logits, int64_t rows, int64_t cols, T* logp) = 0;
  // out[r] = logp[r, col[r]]  (col[r] < 0 -> out[r] = 0). accumulate: out[r] += ...
  virtual void pick_cols(const T* logp, const int32_t* col, int64_t rows, int64_t cols, bool accumulate,
                         T* out) = 0;
  // Gradient of  sum_r coef[r] * logp[r, col[r]]  w.r.t. the logits (col[r] < 0: term
  // absent): dlogits[r,c] = coef[r] * ([c == col[r]] - exp(logp[r,c])) if col[r] >= 0 else 0.
  virtual void log_softmax_pick_bwd(const T* logp, const int32_t* col, const T* coef, int64_t rows, int64_t cols,
                                    T* dlogits) = 0;

  // The loss head's fused pass over one block of logits (the adaptive softmax's head or
  // one tail cluster): with z = logits[r,:] + bias (bias [cols]; null: none),
  // lse[r] = log sum_c exp(z_c) and out[r] (+)= z[col[r]] - lse[r] (col[r] < 0: + 0),
  // i.e. log_softmax(z) picked at col, computed as log_softmax and pick_cols compute it.
  // Neither z nor the log-probabilities are written: logits stay as they are.
  virtual void biased_log_softmax_pick(const T* logits, const T* bias, const int32_t* col, int64_t rows,
                                       int64_t cols, bool accumulate, T* out, T* lse) = 0;
  // Its gradient from the saved lse, as log_softmax_pick_bwd gives it from the
  // log-probabilities: dlogits[r,c] = coef[r] * ([c == col[r]] - exp(z_c - lse[r])), 0
  // where col[r] < 0. The bias gradient is bias_grad of dlogits.
  virtual void biased_log_softmax_pick_bwd(const T* logits, const T* bias, const T* lse, const int32_t* col,
                                           const T* coef, int64_t rows, int64_t cols, T* dlogits) = 0;

  // ---- reductions (return to host; synchronise) -----------------------------------
  virtual double sum(const T* x, int64_t n) = 0;
  virtual double sum_squares(const T* x, int64_t n) = 0;
  // Per-slice sums of squares of one flat buffer (for LAMB trust ratios / norms).
  virtual std::vector<double> sum_squares_slices(const T* x, const std::vector<FlatSlice>& slices) = 0;

  // ---- reductions into device memory (no synchronisation) -------------------------
  // *out (one device double) = the bits sum / sum_squares would return.
  virtual void sum_to_device(const T* x, int64_t n, double* out) = 0;
  virtual void sum_squares_to_device(const T* x, int64_t n, double* out) = 0;

  // ---- step scalars (device doubles, StepScalars layout; one tiny kernel each) ------
  // scalars[kLoss] = sum_c chunk_sums[c] / tokens_per_chunk / chunks, added in chunk
  // order; scalars[kIntervalLoss] += it (= it with new_interval); with check_finite a
  // non-finite loss sets kBadLossStep = step and kBadLoss unless an earlier step did.
  virtual void step_loss_update(const double* chunk_sums, const StepLossArgs& a, double* scalars) = 0;
  // From scalars[kSumSquares], with the host arithmetic of clipping:
  //   norm = sqrt(sum_squares) * unscale
  //   coef = clip / (norm + 1e-6) if clip > 0 and norm > clip, else 1
  //   kGradNorm = norm, kGradFactor = unscale * coef
  // kGradFactor is NaN (the optimizer skips the update) when the sum of squares is not
  // finite, and with check_finite also once any step recorded a non-finite loss or
  // gradient; with check_finite a non-finite sum sets kBadGradStep = step (first only).
  virtual void step_grad_factor(const GradFactorArgs& a, double* scalars) = 0;

  // ---- optimizers (flat parameter / gradient / state buffers, see param_store.h) ----
  // Each consumes its gradient: g is read once, multiplied by the step's factor, and set
  // to 0 in the same pass (LAMB: its first pass, over the elements its slices cover),
  // also when the step is skipped (factor not finite), so the next backward accumulates
  // into zeros without a zero_grad pass.
  // docs/training.md §4 LAMB, per slice: m,v updated; trust ratio per slice; p -= lr*trust*a.
  virtual void lamb_step(T* p, T* g, T* m, T* v, const std::vector<FlatSlice>& slices, const OptimStep& s) = 0;
  // PyTorch Adam (bias-corrected, L2 weight decay added to the gradient).
  virtual void adam_step(T* p, T* g, T* m, T* v, int64_t n, const OptimStep& s) = 0;
  // PyTorch SGD with momentum (buf = momentum*buf + g; p -= lr*buf); momentum 0: plain.
  virtual void sgd_step(T* p, T* g, T* buf, int64_t n, const OptimStep& s) = 0;
  // PyTorch Adagrad (lr_decay 0): sum += g^2; p -= lr * g / (sqrt(sum) + eps).
  virtual void adagrad_step(T* p, T* g, T* sum, int64_t n, const OptimStep& s) = 0;
};

// Factories. The CPU backend exists for float and double.
template <typename T>
std::unique_ptr<Ops<T>> make_cpu_ops();

// ---- host convenience (work on any backend) ------------------------------------------
// Makes `t` a tensor of exactly `shape` on the backend of `ops`, reallocating only when
// its shape changes (activations are kept across steps; no allocation in steady state).
template <typename T, typename U>
void ensure(Ops<T>& ops, Tensor<U>& t, const Shape& shape) {
  if (!t.defined() || t.shape() != shape || t.device() != ops.device()) t = Tensor<U>(shape, ops.allocator());
}
template <typename T>
Tensor<T> to_device(Ops<T>& ops, const std::vector<T>& host, Shape shape) {
  TXL_CHECK(static_cast<int64_t>(host.size()) == shape_numel(shape), "to_device: {} values for shape {}",
            host.size(), shape_string(shape));
  Tensor<T> t = ops.empty(std::move(shape));
  ops.upload(t.data(), host.data(), t.bytes());
  return t;
}
template <typename T>
std::vector<T> to_host(Ops<T>& ops, const Tensor<T>& t) {
  std::vector<T> host(static_cast<size_t>(t.numel()));
  ops.download(host.data(), t.data(), t.bytes());
  return host;
}

}  // namespace txl
