// CudaOps: the CUDA backend of Ops<float>. GEMMs go to cuBLAS (row-major operands are
// passed as their column-major transposes: C^T = op(B)^T op(A)^T), everything else to
// the kernels of src/cuda/*.cu. One stream; the cuBLAS handle and its workspace are bound
// to it, so a whole step can be captured into a CUDA graph (cuda_graph.h).
#include "txl/cuda/cuda_ops.h"

#include <cublas_v2.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <memory>

#include "kernels.h"
#include "txl/cuda/check.h"

namespace txl {

const char* gemm_precision_name(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::kFp32: return "fp32";
    case GemmPrecision::kTf32: return "tf32";
    case GemmPrecision::kBf16: return "bf16";
    case GemmPrecision::kFp16: return "fp16";
  }
  return "?";
}

GemmPrecision parse_gemm_precision(const std::string& name) {
  if (name == "fp32") return GemmPrecision::kFp32;
  if (name == "tf32") return GemmPrecision::kTf32;
  if (name == "bf16") return GemmPrecision::kBf16;
  if (name == "fp16") return GemmPrecision::kFp16;
  failf("precision: unknown value '{}' (expected fp32, tf32, bf16 or fp16)", name);
}

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver / no device: not an error for the caller
    return 0;
  }
  return count;
}

std::string cuda_pci_bus_id(int device) {
  char id[32] = {};
  TXL_CUDA_CHECK(cudaDeviceGetPCIBusId(id, static_cast<int>(sizeof(id)), device));
  return id;
}

namespace {

cublasComputeType_t compute_type(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::kFp32: return CUBLAS_COMPUTE_32F;
    case GemmPrecision::kTf32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case GemmPrecision::kBf16:  // operands are packed to half precision first (run_gemm)
    case GemmPrecision::kFp16: return CUBLAS_COMPUTE_32F;
  }
  return CUBLAS_COMPUTE_32F;
}

cublasOperation_t to_cublas(Trans t) { return t == Trans::kNo ? CUBLAS_OP_N : CUBLAS_OP_T; }

int to_int(int64_t v, const char* what) {
  TXL_CHECK(v >= 0 && v <= INT_MAX, "gemm: {} = {} does not fit cuBLAS's 32-bit sizes", what, v);
  return static_cast<int>(v);
}


cuda::OptimArgs to_args(const OptimStep& s) {
  return cuda::OptimArgs{s.lr,       s.grad_scale, s.beta1, s.beta2, s.eps, s.weight_decay,
                         s.momentum, s.step,       s.device_grad_scale};
}

// Scratch memory of one op: arena blocks returned when the op returns (the kernels that
// use them were enqueued before; later reuse is ordered after them on the one stream).
class OpScratch final : public cuda::Scratch {
 public:
  explicit OpScratch(cuda::CachingArena& arena) : arena_(arena) {}
  ~OpScratch() {
    for (size_t i = 0; i < count_; ++i) arena_.deallocate(blocks_[i].first, blocks_[i].second);
  }
  OpScratch(const OpScratch&) = delete;
  OpScratch& operator=(const OpScratch&) = delete;
  void* allocate(size_t bytes) override {
    TXL_CHECK(count_ < blocks_.size(), "CUDA backend: an op asked for more than {} scratch buffers", blocks_.size());
    void* p = arena_.allocate(bytes);
    blocks_[count_++] = {p, bytes};
    return p;
  }

 private:
  cuda::CachingArena& arena_;
  std::array<std::pair<void*, size_t>, 4> blocks_{};
  size_t count_ = 0;
};

bool same_slices(const std::vector<FlatSlice>& a, const std::vector<FlatSlice>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].offset != b[i].offset || a[i].numel != b[i].numel) return false;
  return true;
}

cuda::RelAttentionShape rel_attention_shape(const char* op, const RelAttentionArgs& a) {
  check_rel_attention_args(op, a);
  TXL_CHECK(a.d_head <= 128, "{}: d_head {} > 128 is not supported by the CUDA kernel", op, a.d_head);
  const int64_t over = a.klen - a.mask.mem_len - 1;
  return cuda::RelAttentionShape{a.heads,       a.batch,
                                 a.qlen,        a.klen,
                                 a.d_head,      a.mask.mlen,
                                 static_cast<float>(a.scale), a.mask.same_length,
                                 over > 0 ? a.qlen - over : a.qlen, a.dropatt,
                                 a.key,         a.layout,
                                 a.ld.ld_q,     a.ld.ld_k,
                                 a.ld.ld_v,     a.ld.ld_r,
                                 a.ld.ld_out};
}

class CudaOps final : public CudaBackend {
 public:
  explicit CudaOps(const CudaOptions& options) : device_(options.device), precision_(options.precision) {
    const int count = cuda_device_count();
    TXL_CHECK(count > 0, "CUDA backend: no CUDA device is available (cudaGetDeviceCount found none)");
    TXL_CHECK(device_ >= 0 && device_ < count, "CUDA backend: device {} requested, {} available", device_, count);
    TXL_CUDA_CHECK(cudaSetDevice(device_));
    arena_ = std::make_unique<cuda::CachingArena>(cuda::make_cuda_raw_memory(device_), options.arena_bytes);
    TXL_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    TXL_CUBLAS_CHECK(cublasCreate(&cublas_));
    TXL_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    TXL_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));  // precision comes from the compute type
    if (options.cublas_workspace_bytes > 0) {
      workspace_bytes_ = options.cublas_workspace_bytes;
      workspace_ = arena_->allocate(workspace_bytes_);
      TXL_CUBLAS_CHECK(cublasSetWorkspace(cublas_, workspace_, workspace_bytes_));
    }
    result_ = Tensor<double>({1}, *arena_);
  }

  ~CudaOps() override {
    // Destructors never throw: errors are reported and ignored.
    cudaSetDevice(device_);
    if (stream_) cudaStreamSynchronize(stream_);
    for (Staging& st : staging_) {
      cudaEventDestroy(st.done);
      cudaFreeHost(st.host);
    }
    plan_items_ = Tensor<cuda::MultiTensorItem>();
    plan_begin_ = Tensor<int32_t>();
    result_ = Tensor<double>();
    if (cublas_) cublasDestroy(cublas_);
    if (workspace_) arena_->deallocate(workspace_, workspace_bytes_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  // ---- CudaBackend ----------------------------------------------------------------------
  int device_index() const override { return device_; }
  cudaStream_t stream() const override { return stream_; }
  GemmPrecision precision() const override { return precision_; }
  void set_precision(GemmPrecision p) override { precision_ = p; }
  cuda::CachingArena& arena() override { return *arena_; }

  // ---- Ops<float> -----------------------------------------------------------------------
  Device device() const override { return Device::kCUDA; }
  Allocator& allocator() override { return *arena_; }
  const char* name() const override {
    switch (precision_) {
      case GemmPrecision::kFp32: return "cuda-float(fp32)";
      case GemmPrecision::kTf32: return "cuda-float(tf32 gemm)";
      case GemmPrecision::kBf16: return "cuda-float(bf16 gemm)";
      case GemmPrecision::kFp16: return "cuda-float(fp16 gemm)";
    }
    return "cuda-float";
  }

  // Small uploads (token ids, index permutations: a few per step) go through pinned
  // staging buffers and return without waiting for the GPU; the staging buffer is reused
  // once its copy has completed. Large uploads (checkpoints) copy synchronously.
  void upload(void* dst, const void* host_src, size_t bytes) override {
    if (bytes == 0) return;
    enter();
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    TXL_CUDA_CHECK(cudaStreamIsCapturing(stream_, &capture));
    TXL_CHECK(capture == cudaStreamCaptureStatusNone,
              "upload: not allowed while a CUDA graph is captured (upload the inputs before replay())");
    if (bytes > kStagingMaxBytes) {
      TXL_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream_));
      TXL_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the host buffer may be reused at once
      return;
    }
    Staging* slot = nullptr;
    for (Staging& st : staging_) {
      if (st.bytes < bytes) continue;
      const cudaError_t q = cudaEventQuery(st.done);
      if (q == cudaSuccess) {
        slot = &st;
        break;
      }
      if (q != cudaErrorNotReady) TXL_CUDA_CHECK(q);
      (void)cudaGetLastError();  // "not ready" is not an error: do not leave it behind
    }
    if (!slot && staging_.size() >= kStagingMaxSlots) {  // many uploads in flight: wait instead
      TXL_CUDA_CHECK(cudaStreamSynchronize(stream_));
      for (Staging& st : staging_)
        if (st.bytes >= bytes) {
          slot = &st;
          break;
        }
    }
    if (!slot) {
      Staging st;
      st.bytes = std::max<size_t>(bytes, size_t{64} << 10);
      TXL_CUDA_CHECK(cudaHostAlloc(&st.host, st.bytes, cudaHostAllocDefault));
      TXL_CUDA_CHECK(cudaEventCreateWithFlags(&st.done, cudaEventDisableTiming));
      staging_.push_back(st);
      slot = &staging_.back();
    }
    std::memcpy(slot->host, host_src, bytes);
    TXL_CUDA_CHECK(cudaMemcpyAsync(dst, slot->host, bytes, cudaMemcpyHostToDevice, stream_));
    TXL_CUDA_CHECK(cudaEventRecord(slot->done, stream_));
  }
  void download(void* host_dst, const void* src, size_t bytes) override {
    if (bytes == 0) return;
    enter();
    TXL_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    TXL_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  // swap_mem: page-locked host buffers, so the copies below run asynchronously on the
  // stream (from pageable memory the driver would copy synchronously through its own).
  // cudaFreeHost waits for the device, so a buffer is never freed under a pending copy.
  std::shared_ptr<void> staging_buffer(size_t bytes) override {
    enter();
    void* host = nullptr;
    TXL_CUDA_CHECK(cudaHostAlloc(&host, bytes > 0 ? bytes : 1, cudaHostAllocDefault));
    return std::shared_ptr<void>(host, [](void* p) { cudaFreeHost(p); });
  }
  void stage_to_device(void* dst, const void* staging_src, size_t bytes) override {
    if (bytes == 0) return;
    enter();
    TXL_CUDA_CHECK(cudaMemcpyAsync(dst, staging_src, bytes, cudaMemcpyHostToDevice, stream_));
  }
  void stage_to_host(void* staging_dst, const void* src, size_t bytes) override {
    if (bytes == 0) return;
    enter();
    TXL_CUDA_CHECK(cudaMemcpyAsync(staging_dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0 || dst == src) return;
    enter();
    const char* d = static_cast<const char*>(dst);
    const char* s = static_cast<const char*>(src);
    if (d < s + bytes && s < d + bytes) {  // overlapping ranges (memmove semantics): via a temporary
      Tensor<char> tmp({static_cast<int64_t>(bytes)}, *arena_);
      TXL_CUDA_CHECK(cudaMemcpyAsync(tmp.data(), src, bytes, cudaMemcpyDeviceToDevice, stream_));
      TXL_CUDA_CHECK(cudaMemcpyAsync(dst, tmp.data(), bytes, cudaMemcpyDeviceToDevice, stream_));
      return;
    }
    TXL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
  }
  void synchronize() override {
    enter();
    TXL_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void fill(float* x, int64_t n, float value) override {
    enter();
    cuda::launch_fill(x, n, value, stream_);
  }

  void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* A, int64_t lda,
            const float* B, int64_t ldb, float beta, float* C, int64_t ldc) override {
    check_gemm_args(ta, tb, m, n, k, lda, ldb, ldc);
    if (m == 0 || n == 0) return;
    enter();
    if (k == 0 || alpha == 0.0f) {  // C = beta C (beta == 0 never reads C)
      cuda::launch_scale_matrices(C, m, n, ldc, 0, 1, beta, stream_);
      return;
    }
    run_gemm(ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1, false);
  }

  void gemm_strided_batched(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* A,
                            int64_t lda, int64_t strideA, const float* B, int64_t ldb, int64_t strideB, float beta,
                            float* C, int64_t ldc, int64_t strideC, int64_t batch) override {
    check_gemm_args(ta, tb, m, n, k, lda, ldb, ldc);
    check_gemm_batch(batch);
    if (m == 0 || n == 0 || batch == 0) return;
    enter();
    if (k == 0 || alpha == 0.0f) {
      cuda::launch_scale_matrices(C, m, n, ldc, strideC, batch, beta, stream_);
      return;
    }
    run_gemm(ta, tb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, batch, true);
  }

  void add_bias(float* y, const float* bias, int64_t rows, int64_t cols) override {
    enter();
    cuda::launch_add_bias(y, bias, rows, cols, stream_);
  }
  void bias_grad(const float* dy, float* dbias, int64_t rows, int64_t cols) override {
    enter();
    OpScratch scratch(*arena_);
    cuda::launch_bias_grad(dy, dbias, rows, cols, scratch, stream_);
  }
  void axpy(int64_t n, float alpha, const float* x, float* y) override {
    enter();
    cuda::launch_axpy(n, alpha, x, y, stream_);
  }
  void scale(int64_t n, float alpha, float* x) override {
    enter();
    cuda::launch_scale(n, alpha, x, stream_);
  }
  void add(int64_t n, const float* a, const float* b, float* out) override {
    enter();
    cuda::launch_add(n, a, b, out, stream_);
  }
  void relu_fwd(int64_t n, const float* x, float* y) override {
    enter();
    cuda::launch_relu_fwd(n, x, y, stream_);
  }
  void relu_bwd(int64_t n, const float* y, const float* dy, float* dx) override {
    enter();
    cuda::launch_relu_bwd(n, y, dy, dx, stream_);
  }
  void dropout(const float* x, float* y, float p, const DropoutKey& key, const BatchLayout& layout) override {
    check_dropout_args(p, layout);
    enter();
    cuda::launch_dropout(x, y, p, key, layout, stream_);
  }
  void bias_relu_dropout(const float* x, const float* bias, float p, const DropoutKey& key, const BatchLayout& layout,
                         float* y) override {
    check_dropout_args(p, layout);
    enter();
    cuda::launch_bias_relu_dropout(x, bias, p, key, layout, y, stream_);
  }
  void relu_dropout_bwd(int64_t n, const float* y, const float* dy, float p, float* dx) override {
    check_dropout_probability("relu_dropout_bwd", p);
    enter();
    cuda::launch_relu_dropout_bwd(n, y, dy, p, dx, stream_);
  }

  void layernorm_fwd(int64_t rows, int64_t cols, const float* x, const float* gamma, const float* beta, float eps,
                     float* y, float* mean, float* rstd) override {
    check_layernorm_shape("layernorm_fwd", rows, cols);
    enter();
    cuda::launch_layernorm_fwd(rows, cols, x, gamma, beta, eps, y, mean, rstd, stream_);
  }
  void layernorm_bwd(int64_t rows, int64_t cols, const float* dy, const float* x, const float* gamma,
                     const float* mean, const float* rstd, float* dx, float* dgamma, float* dbeta) override {
    check_layernorm_shape("layernorm_bwd", rows, cols);
    enter();
    OpScratch scratch(*arena_);
    cuda::launch_layernorm_bwd(rows, cols, dy, x, gamma, mean, rstd, dx, dgamma, dbeta, scratch, stream_);
  }
  void dropout_residual_layernorm_fwd(int64_t rows, int64_t cols, const float* x, const float* bias, float p,
                                      const DropoutKey& key, const BatchLayout& layout, const float* residual,
                                      const float* gamma, const float* beta, float eps, float* sum, float* y,
                                      float* mean, float* rstd) override {
    check_dropout_residual_layernorm("dropout_residual_layernorm_fwd", rows, cols, p, layout);
    enter();
    cuda::launch_dropout_residual_layernorm_fwd(rows, cols, x, bias, p, key, layout, residual, gamma, beta, eps, sum,
                                                y, mean, rstd, stream_);
  }
  void dropout_residual_layernorm_bwd(int64_t rows, int64_t cols, const float* dy, const float* sum,
                                      const float* gamma, const float* mean, const float* rstd, float p,
                                      const DropoutKey& key, const BatchLayout& layout, float* d_sum, float* d_x,
                                      float* dgamma, float* dbeta, float* dbias) override {
    check_dropout_residual_layernorm("dropout_residual_layernorm_bwd", rows, cols, p, layout);
    check_dropout_residual_layernorm_grads(d_x, gamma, d_sum);
    enter();
    OpScratch scratch(*arena_);
    cuda::launch_dropout_residual_layernorm_bwd(rows, cols, dy, sum, gamma, mean, rstd, p, key, layout, d_sum, d_x,
                                                dgamma, dbeta, dbias, scratch, stream_);
  }

  void split_heads(const float* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                   const float* bias, float* dst) override {
    check_head_stride("split_heads", ld, heads, d_head);
    enter();
    cuda::launch_split_heads(src, len, batch, heads, d_head, ld, bias, dst, stream_);
  }
  void merge_heads(const float* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                   bool accumulate, float* dst) override {
    check_head_stride("merge_heads", ld, heads, d_head);
    enter();
    cuda::launch_merge_heads(src, len, batch, heads, d_head, ld, accumulate, dst, stream_);
  }
  void head_bias_grad(const float* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head,
                      float* bias_grad) override {
    enter();
    OpScratch scratch(*arena_);
    cuda::launch_head_bias_grad(src, len, batch, heads, d_head, bias_grad, scratch, stream_);
  }
  void rel_shift_add(const float* bd_raw, int64_t n, int64_t qlen, int64_t klen, int64_t mlen,
                     float* scores) override {
    check_rel_shift("rel_shift_add", qlen, klen, mlen);
    enter();
    cuda::launch_rel_shift_add(bd_raw, n, qlen, klen, mlen, scores, stream_);
  }
  void rel_shift_bwd(const float* d_scores, int64_t n, int64_t qlen, int64_t klen, int64_t mlen,
                     float* d_bd_raw) override {
    check_rel_shift("rel_shift_bwd", qlen, klen, mlen);
    enter();
    cuda::launch_rel_shift_bwd(d_scores, n, qlen, klen, mlen, d_bd_raw, stream_);
  }
  void attn_softmax_fwd(const float* scores, int64_t n, int64_t qlen, int64_t klen, float scale,
                        const AttnMask& mask, float* probs) override {
    enter();
    cuda::launch_attn_softmax_fwd(scores, n, qlen, klen, scale, mask.mlen, mask.same_length, mask.mem_len, probs,
                                  stream_);
  }
  void attn_softmax_bwd(const float* probs, const float* d_probs, int64_t n, int64_t qlen, int64_t klen,
                        float scale, float* d_scores) override {
    enter();
    cuda::launch_attn_softmax_bwd(probs, d_probs, n, qlen, klen, scale, d_scores, stream_);
  }

  void rel_attention_fwd(const RelAttentionArgs& a, const float* q, const float* u, const float* w, const float* k,
                         const float* v, const float* r, float* out, float* lse) override {
    const cuda::RelAttentionShape shape = rel_attention_shape("rel_attention_fwd", a);
    enter();
    cuda::launch_rel_attention_fwd(shape, q, u, w, k, v, r, out, lse, stream_);
  }
  void rel_attention_bwd(const RelAttentionArgs& a, const float* q, const float* u, const float* w, const float* k,
                         const float* v, const float* r, const float* out, const float* lse, const float* d_out,
                         float* d_q, float* d_u, float* d_w, float* d_k, float* d_v, float* d_r) override {
    const cuda::RelAttentionShape shape = rel_attention_shape("rel_attention_bwd", a);
    enter();
    OpScratch scratch(*arena_);
    cuda::launch_rel_attention_bwd(shape, q, u, w, k, v, r, out, lse, d_out, d_q, d_u, d_w, d_k, d_v, d_r, scratch,
                                   stream_);
  }

  void gather_rows(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst) override {
    enter();
    cuda::launch_gather_rows(src, idx, n, cols, dst, stream_);
  }
  void scatter_rows(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst) override {
    enter();
    cuda::launch_scatter_rows(src, idx, n, cols, dst, stream_);
  }
  void scatter_add_rows(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst) override {
    enter();
    OpScratch scratch(*arena_);
    cuda::launch_scatter_add_rows(src, idx, n, cols, dst, scratch, stream_);
  }

  void log_softmax(const float* logits, int64_t rows, int64_t cols, float* logp) override {
    enter();
    cuda::launch_log_softmax(logits, rows, cols, logp, stream_);
  }
  void pick_cols(const float* logp, const int32_t* col, int64_t rows, int64_t cols, bool accumulate,
                 float* out) override {
    enter();
    cuda::launch_pick_cols(logp, col, rows, cols, accumulate, out, stream_);
  }
  void log_softmax_pick_bwd(const float* logp, const int32_t* col, const float* coef, int64_t rows, int64_t cols,
                            float* dlogits) override {
    enter();
    cuda::launch_log_softmax_pick_bwd(logp, col, coef, rows, cols, dlogits, stream_);
  }
  void biased_log_softmax_pick(const float* logits, const float* bias, const int32_t* col, int64_t rows,
                               int64_t cols, bool accumulate, float* out, float* lse) override {
    check_softmax_block("biased_log_softmax_pick", rows, cols);
    enter();
    cuda::launch_biased_log_softmax_pick(logits, bias, col, rows, cols, accumulate, out, lse, stream_);
  }
  void biased_log_softmax_pick_bwd(const float* logits, const float* bias, const float* lse, const int32_t* col,
                                   const float* coef, int64_t rows, int64_t cols, float* dlogits) override {
    check_softmax_block("biased_log_softmax_pick_bwd", rows, cols);
    enter();
    cuda::launch_biased_log_softmax_pick_bwd(logits, bias, lse, col, coef, rows, cols, dlogits, stream_);
  }

  double sum(const float* x, int64_t n) override { return reduce(x, n, false); }
  double sum_squares(const float* x, int64_t n) override { return reduce(x, n, true); }
  std::vector<double> sum_squares_slices(const float* x, const std::vector<FlatSlice>& slices) override {
    enter();
    std::vector<double> out(slices.size(), 0.0);
    if (slices.empty()) return out;
    const cuda::MultiTensorPlan& plan = plan_for(slices, "sum_squares_slices");
    Tensor<double> dev({static_cast<int64_t>(slices.size())}, *arena_);
    {
      OpScratch scratch(*arena_);
      cuda::launch_sum_squares_slices(x, plan, dev.data(), scratch, stream_);
    }
    download(out.data(), dev.data(), out.size() * sizeof(double));
    return out;
  }

  // Device results: the same kernels as sum / sum_squares, no download.
  void sum_to_device(const float* x, int64_t n, double* out) override { reduce_to(x, n, false, out); }
  void sum_squares_to_device(const float* x, int64_t n, double* out) override { reduce_to(x, n, true, out); }
  void step_loss_update(const double* chunk_sums, const StepLossArgs& a, double* scalars) override {
    check_step_loss_args(a, chunk_sums, scalars);
    enter();
    cuda::launch_step_loss_update(chunk_sums, a, scalars, stream_);
  }
  void step_grad_factor(const GradFactorArgs& a, double* scalars) override {
    check_grad_factor_args(a, scalars);
    enter();
    cuda::launch_step_grad_factor(a, scalars, stream_);
  }

  void lamb_step(float* p, float* g, float* m, float* v, const std::vector<FlatSlice>& slices,
                 const OptimStep& s) override {
    enter();
    if (slices.empty()) return;
    const cuda::MultiTensorPlan& plan = plan_for(slices, "lamb_step");
    OpScratch scratch(*arena_);
    cuda::launch_lamb_step(p, g, m, v, plan, to_args(s), scratch, stream_);
  }
  void adam_step(float* p, float* g, float* m, float* v, int64_t n, const OptimStep& s) override {
    check_adam_step(s);
    enter();
    cuda::launch_adam_step(p, g, m, v, n, to_args(s), stream_);
  }
  void sgd_step(float* p, float* g, float* buf, int64_t n, const OptimStep& s) override {
    check_sgd_buffer(s, buf);
    enter();
    cuda::launch_sgd_step(p, g, buf, n, to_args(s), stream_);
  }
  void adagrad_step(float* p, float* g, float* sum, int64_t n, const OptimStep& s) override {
    enter();
    cuda::launch_adagrad_step(p, g, sum, n, to_args(s), stream_);
  }

 private:
  // One (batched) product on cuBLAS, sizes checked and non-empty. fp32 / tf32: float
  // operands, the precision is the compute type. bf16 / fp16: both operands are first
  // packed densely into bfloat16 / float16 copies (round to nearest even) in scratch
  // memory, then multiplied by cuBLAS's half x half -> float GEMM with float32
  // accumulation, so the rounding is exactly known (and the GEMM runs on native
  // half-precision tensor-core kernels).
  void run_gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* A, int64_t lda,
                int64_t strideA, const float* B, int64_t ldb, int64_t strideB, float beta, float* C, int64_t ldc,
                int64_t strideC, int64_t batch, bool batched) {
    const void* a = A;
    const void* b = B;
    cudaDataType_t type = CUDA_R_32F;
    cublasComputeType_t compute = compute_type(precision_);
    OpScratch scratch(*arena_);
    if (precision_ == GemmPrecision::kBf16 || precision_ == GemmPrecision::kFp16) {
      const bool bf16 = precision_ == GemmPrecision::kBf16;
      type = bf16 ? CUDA_R_16BF : CUDA_R_16F;
      compute = CUBLAS_COMPUTE_32F;
      const int64_t a_rows = ta == Trans::kNo ? m : k, a_cols = ta == Trans::kNo ? k : m;
      const int64_t b_rows = tb == Trans::kNo ? k : n, b_cols = tb == Trans::kNo ? n : k;
      void* a16 = scratch.allocate(static_cast<size_t>(batch * a_rows * a_cols) * 2);
      void* b16 = scratch.allocate(static_cast<size_t>(batch * b_rows * b_cols) * 2);
      cuda::launch_pack_half(A, a_rows, a_cols, lda, strideA, batch, bf16, a16, stream_);
      cuda::launch_pack_half(B, b_rows, b_cols, ldb, strideB, batch, bf16, b16, stream_);
      a = a16;
      b = b16;
      lda = a_cols;
      ldb = b_cols;
      strideA = a_rows * a_cols;
      strideB = b_rows * b_cols;
    }
    if (!batched) {
      TXL_CUBLAS_CHECK(cublasGemmEx(cublas_, to_cublas(tb), to_cublas(ta), to_int(n, "n"), to_int(m, "m"),
                                    to_int(k, "k"), &alpha, b, type, to_int(ldb, "ldb"), a, type, to_int(lda, "lda"),
                                    &beta, C, CUDA_R_32F, to_int(ldc, "ldc"), compute, CUBLAS_GEMM_DEFAULT));
    } else {
      TXL_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          cublas_, to_cublas(tb), to_cublas(ta), to_int(n, "n"), to_int(m, "m"), to_int(k, "k"), &alpha, b, type,
          to_int(ldb, "ldb"), strideB, a, type, to_int(lda, "lda"), strideA, &beta, C, CUDA_R_32F, to_int(ldc, "ldc"),
          strideC, to_int(batch, "batch"), compute, CUBLAS_GEMM_DEFAULT));
    }
  }

  // Makes this backend's GPU current for the calling thread (ops may be called from
  // several threads, e.g. a communication thread).
  void enter() const {
    int current = -1;
    TXL_CUDA_CHECK(cudaGetDevice(&current));
    if (current != device_) TXL_CUDA_CHECK(cudaSetDevice(device_));
  }

  double reduce(const float* x, int64_t n, bool squares) {
    enter();
    if (n <= 0) return 0.0;
    reduce_to(x, n, squares, result_.data());
    double host = 0.0;
    download(&host, result_.data(), sizeof(double));
    return host;
  }
  // *out_device = the sum (of squares) of x; an empty x writes 0.
  void reduce_to(const float* x, int64_t n, bool squares, double* out_device) {
    enter();
    if (n <= 0) {
      TXL_CUDA_CHECK(cudaMemsetAsync(out_device, 0, sizeof(double), stream_));
      return;
    }
    OpScratch scratch(*arena_);
    cuda::launch_sum(x, n, squares, out_device, scratch, stream_);
  }

  // The item decomposition of `slices`, uploaded once and reused while the slices stay
  // the same (the optimizer passes the same list every step).
  const cuda::MultiTensorPlan& plan_for(const std::vector<FlatSlice>& slices, const char* op) {
    if (plan_.num_slices > 0 && same_slices(slices, plan_slices_)) return plan_;
    std::vector<cuda::MultiTensorItem> items;
    std::vector<int32_t> begin;
    begin.reserve(slices.size() + 1);
    for (size_t s = 0; s < slices.size(); ++s) {
      check_flat_slice(op, s, slices[s]);
      begin.push_back(static_cast<int32_t>(items.size()));
      for (int64_t b = 0; b < slices[s].numel; b += cuda::kMultiTensorChunk) {
        const int64_t e = std::min(slices[s].numel, b + cuda::kMultiTensorChunk);
        items.push_back({slices[s].offset + b, slices[s].offset + e, static_cast<int32_t>(s), 0});
      }
      TXL_CHECK(items.size() < static_cast<size_t>(INT32_MAX), "{}: too many slices", op);
    }
    begin.push_back(static_cast<int32_t>(items.size()));
    plan_items_ = Tensor<cuda::MultiTensorItem>({std::max<int64_t>(1, static_cast<int64_t>(items.size()))}, *arena_);
    plan_begin_ = Tensor<int32_t>({static_cast<int64_t>(begin.size())}, *arena_);
    if (!items.empty()) upload(plan_items_.data(), items.data(), items.size() * sizeof(cuda::MultiTensorItem));
    upload(plan_begin_.data(), begin.data(), begin.size() * sizeof(int32_t));
    plan_.items = plan_items_.data();
    plan_.slice_item_begin = plan_begin_.data();
    plan_.num_items = static_cast<int32_t>(items.size());
    plan_.num_slices = static_cast<int32_t>(slices.size());
    plan_slices_ = slices;
    return plan_;
  }

  struct Staging {  // pinned host buffer for one upload in flight
    void* host = nullptr;
    size_t bytes = 0;
    cudaEvent_t done = nullptr;
  };
  static constexpr size_t kStagingMaxBytes = size_t{8} << 20;
  static constexpr size_t kStagingMaxSlots = 16;

  int device_;
  GemmPrecision precision_;
  std::unique_ptr<cuda::CachingArena> arena_;  // first member destroyed last: tensors below use it
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  Tensor<double> result_;  // device scalar for sum / sum_squares
  std::vector<Staging> staging_;
  std::vector<FlatSlice> plan_slices_;
  cuda::MultiTensorPlan plan_;
  Tensor<cuda::MultiTensorItem> plan_items_;
  Tensor<int32_t> plan_begin_;
};

}  // namespace

std::unique_ptr<Ops<float>> make_cuda_ops(const CudaOptions& options) { return std::make_unique<CudaOps>(options); }

CudaBackend* as_cuda_backend(Ops<float>& ops) { return dynamic_cast<CudaBackend*>(&ops); }

}  // namespace txl
