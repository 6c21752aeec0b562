// CountingOps<T>: the traffic and memory model of a step on the CUDA backend. It takes
// the op calls of a real step at the real shapes but does no arithmetic and allocates no
// memory: its allocator hands out addresses that are never dereferenced and only counts
// bytes. Per op it counts what src/cuda/cuda_ops.cpp and src/cuda/*.cu would do: kernel
// launches and stream copies, device-memory (HBM) bytes read and written, GEMM FLOPs,
// host synchronisations, and scratch memory. Traffic is the ideal of each kernel: every
// input read once and every output written once (re-reads inside a kernel are assumed to
// hit the caches), so it is a lower bound for the landed kernels.
//
// Counts are kept per op and per (phase, region): the phase is set by the caller
// (forward, backward, optimizer, ...), the region is the model part an op belongs to,
// found from the parameter or gradient ranges it touches (add_region) or pinned by the
// caller (pin_region). Ops of ops.h this file does not model yet still reach device_op /
// host_op of ForwardingOps: they are counted as one launch each and listed by
// unmodelled(), so a new op shows up instead of silently costing nothing.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "txl/core/forwarding_ops.h"

namespace txl {

// The CUDA backend's GEMM modes (cuda_ops.h GemmPrecision): fp32 and tf32 multiply the
// float operands in place; bf16 and fp16 first pack both operands into 16-bit copies.
enum class PlanPrecision { kFp32, kTf32, kBf16, kFp16 };
PlanPrecision parse_plan_precision(const std::string& name);  // fp32 | tf32 | bf16 | fp16
const char* plan_precision_name(PlanPrecision p);

// Storage of activations and weights as the step reads them. kFloat32 is the landed CUDA
// backend. kBf16 is a MODELLED design (docs/gpu.md "Mixed-precision storage"), not an
// implemented one: activations and a bf16 copy of the weights in 16 bits (every
// non-optimizer kernel moves half the bytes, GEMMs need no packing), gradients, master
// weights and optimizer state stay fp32, and the optimizer also writes the bf16 copy.
enum class PlanStorage { kFloat32, kBf16 };
PlanStorage parse_plan_storage(const std::string& name);  // fp32 | bf16

// Public datasheet figures of the GPUs the model prices a step for (docs/gpu.md lists the
// sources). FLOP rates are dense (no sparsity).
struct DeviceSpec {
  const char* key;  // --plan_device value
  const char* name;
  double memory_bytes;
  double hbm_bytes_per_s;
  double fp32_flops, tf32_flops, half_flops;  // half: bf16 / fp16 tensor cores
  double gemm_flops(PlanPrecision p) const;
};
inline constexpr int kPlanDevices = 3;
const std::array<DeviceSpec, kPlanDevices>& plan_devices();
const DeviceSpec* find_plan_device(const std::string& key);  // nullptr when unknown

struct TrafficCount {
  int64_t calls = 0;
  int64_t launches = 0;  // kernels and stream copies enqueued
  int64_t host_syncs = 0;
  double bytes_read = 0, bytes_written = 0;
  double flops = 0;  // GEMM multiply-adds x 2
  // Roofline time on each plan_devices() entry: per call max(bytes / bandwidth, flops / peak).
  std::array<double, kPlanDevices> roofline_s{};
  double bytes() const { return bytes_read + bytes_written; }
  void add(const TrafficCount& o);
};

// Hands out fake, never dereferenced addresses; counts live bytes (rounded to 512 B, the
// arena's smallest class) by category and remembers the categories at the peak.
class ShapeOnlyAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  Device device() const override { return Device::kCUDA; }

  void set_category(std::string category) { category_ = std::move(category); }
  size_t live() const { return live_; }
  // A transient block of `bytes` on top of the live ones (an op's scratch).
  void touch_transient(size_t bytes);
  size_t peak() const { return peak_; }
  const std::map<std::string, size_t>& at_peak() const { return at_peak_; }  // incl. "op scratch"
  static size_t rounded(size_t bytes) { return (bytes + 511) / 512 * 512; }

 private:
  void note_peak(size_t transient);
  uintptr_t next_ = uintptr_t{1} << 44;
  std::string category_ = "other";
  std::map<void*, std::pair<size_t, std::string>> blocks_;
  std::map<std::string, size_t> live_by_category_;
  size_t live_ = 0, peak_ = 0;
  std::map<std::string, size_t> at_peak_;
};

template <typename T>
class CountingOps final : public ForwardingOps<T> {
 public:
  struct Extent {
    const void* ptr;
    double bytes;
  };
  using PhaseRegion = std::pair<std::string, std::string>;

  // `inner` is never called for a device op; it only names the element type's backend.
  CountingOps(std::unique_ptr<Ops<T>> inner, PlanPrecision precision, PlanStorage storage = PlanStorage::kFloat32);

  Device device() const override { return Device::kCUDA; }
  Allocator& allocator() override { return alloc_; }
  const char* name() const override { return name_.c_str(); }
  ShapeOnlyAllocator& shape_allocator() { return alloc_; }
  PlanPrecision precision() const { return precision_; }
  PlanStorage storage() const { return storage_; }

  void set_phase(std::string phase) { phase_ = std::move(phase); }
  // Ops touching [begin, begin + bytes) belong to `region` (and so do later ops that
  // touch no region). An op touching more than one region's range belongs to `spanning`.
  // `gradient`: the range holds fp32 gradients (kept 32-bit under PlanStorage::kBf16).
  void add_region(const void* begin, size_t bytes, const std::string& region, bool gradient = false);
  void pin_region(std::string region) { pinned_ = std::move(region); }
  void unpin_region() { pinned_.clear(); }
  void reset_counts();

  const std::map<std::string, TrafficCount>& by_op() const { return by_op_; }
  const std::map<PhaseRegion, TrafficCount>& by_phase_region() const { return by_region_; }
  TrafficCount total() const;
  const std::vector<std::string>& unmodelled() const { return unmodelled_; }
  static constexpr const char* spanning = "all parameters";

  // ---- memory and host transfers
  void upload(void* dst, const void* host_src, size_t bytes) override;
  void download(void* host_dst, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void synchronize() override;
  void fill(T* x, int64_t n, T value) override;
  // ---- GEMMs
  void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B,
            int64_t ldb, T beta, T* C, int64_t ldc) override;
  void gemm_strided_batched(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                            int64_t strideA, const T* B, int64_t ldb, int64_t strideB, T beta, T* C, int64_t ldc,
                            int64_t strideC, int64_t batch) override;
  // ---- elementwise, normalisation, attention, gather/scatter, loss
  void add_bias(T* y, const T* bias, int64_t rows, int64_t cols) override;
  void bias_grad(const T* dy, T* dbias, int64_t rows, int64_t cols) override;
  void axpy(int64_t n, T alpha, const T* x, T* y) override;
  void scale(int64_t n, T alpha, T* x) override;
  void add(int64_t n, const T* a, const T* b, T* out) override;
  void relu_fwd(int64_t n, const T* x, T* y) override;
  void relu_bwd(int64_t n, const T* y, const T* dy, T* dx) override;
  void dropout(const T* x, T* y, float p, const DropoutKey& key, const BatchLayout& layout) override;
  void bias_relu_dropout(const T* x, const T* bias, float p, const DropoutKey& key, const BatchLayout& layout,
                         T* y) override;
  void relu_dropout_bwd(int64_t n, const T* y, const T* dy, float p, T* dx) override;
  void layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* gamma, const T* beta, T eps, T* y, T* mean,
                     T* rstd) override;
  void layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* x, const T* gamma, const T* mean, const T* rstd,
                     T* dx, T* dgamma, T* dbeta) override;
  void dropout_residual_layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* bias, float p,
                                      const DropoutKey& key, const BatchLayout& layout, const T* residual,
                                      const T* gamma, const T* beta, T eps, T* sum, T* y, T* mean, T* rstd) override;
  void dropout_residual_layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* sum, const T* gamma,
                                      const T* mean, const T* rstd, float p, const DropoutKey& key,
                                      const BatchLayout& layout, T* d_sum, T* d_x, T* dgamma, T* dbeta,
                                      T* dbias) override;
  void split_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld, const T* bias,
                   T* dst) override;
  void merge_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld, bool accumulate,
                   T* dst) override;
  void head_bias_grad(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, T* bias_grad) override;
  void rel_shift_add(const T* bd_raw, int64_t n, int64_t qlen, int64_t klen, int64_t mlen, T* scores) override;
  void rel_shift_bwd(const T* d_scores, int64_t n, int64_t qlen, int64_t klen, int64_t mlen, T* d_bd_raw) override;
  void attn_softmax_fwd(const T* scores, int64_t n, int64_t qlen, int64_t klen, T scale, const AttnMask& mask,
                        T* probs) override;
  void attn_softmax_bwd(const T* probs, const T* d_probs, int64_t n, int64_t qlen, int64_t klen, T scale,
                        T* d_scores) override;
  void rel_attention_fwd(const RelAttentionArgs& a, const T* q, const T* u, const T* w, const T* k, const T* v,
                         const T* r, T* out, T* lse) override;
  void rel_attention_bwd(const RelAttentionArgs& a, const T* q, const T* u, const T* w, const T* k, const T* v,
                         const T* r, const T* out, const T* lse, const T* d_out, T* d_q, T* d_u, T* d_w,
                         T* d_k, T* d_v, T* d_r) override;
  void gather_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) override;
  void scatter_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) override;
  void scatter_add_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) override;
  void log_softmax(const T* logits, int64_t rows, int64_t cols, T* logp) override;
  void pick_cols(const T* logp, const int32_t* col, int64_t rows, int64_t cols, bool accumulate, T* out) override;
  void log_softmax_pick_bwd(const T* logp, const int32_t* col, const T* coef, int64_t rows, int64_t cols,
                            T* dlogits) override;
  void biased_log_softmax_pick(const T* logits, const T* bias, const int32_t* col, int64_t rows, int64_t cols,
                               bool accumulate, T* out, T* lse) override;
  void biased_log_softmax_pick_bwd(const T* logits, const T* bias, const T* lse, const int32_t* col, const T* coef,
                                   int64_t rows, int64_t cols, T* dlogits) override;
  // ---- reductions
  double sum(const T* x, int64_t n) override;
  double sum_squares(const T* x, int64_t n) override;
  std::vector<double> sum_squares_slices(const T* x, const std::vector<FlatSlice>& slices) override;
  // ---- device-result reductions and step scalars (no host synchronisation)
  void sum_to_device(const T* x, int64_t n, double* out) override;
  void sum_squares_to_device(const T* x, int64_t n, double* out) override;
  void step_loss_update(const double* chunk_sums, const StepLossArgs& a, double* scalars) override;
  void step_grad_factor(const GradFactorArgs& a, double* scalars) override;
  // ---- optimizers (each also writes its cleared gradient)
  void lamb_step(T* p, T* g, T* m, T* v, const std::vector<FlatSlice>& slices, const OptimStep& s) override;
  void adam_step(T* p, T* g, T* m, T* v, int64_t n, const OptimStep& s) override;
  void sgd_step(T* p, T* g, T* buf, int64_t n, const OptimStep& s) override;
  void adagrad_step(T* p, T* g, T* sum, int64_t n, const OptimStep& s) override;

 protected:
  void host_op(const char* op, const std::function<void()>& call) override;
  void device_op(const char* op, std::function<void()> call) override;

 private:
  // One kernel (or stream copy) of `op`: bytes read / written, GEMM flops.
  void kernel(const std::string& op, double read, double written, double flops = 0.0, int64_t syncs = 0);
  void begin_op(std::initializer_list<Extent> touched);  // resolves the region of the op
  void column_sum(const std::string& op, double rows, int64_t cols, int outputs, double term_bytes);
  void reduction(const std::string& op, double n, bool to_host = true);
  void gemm_batch(const std::string& op, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, int64_t batch, T beta);
  std::string region_of(const Extent& e) const;
  bool is_gradient(const void* ptr) const;

  ShapeOnlyAllocator alloc_;
  PlanPrecision precision_;
  PlanStorage storage_;
  bool gradient_output_ = false;  // the current GEMM writes a gradient range
  bool fp32_core_flops_ = false;  // the current kernel's FLOPs run on the float32 CUDA cores
  std::string name_;
  std::string phase_ = "setup", current_region_ = "other", pinned_;
  std::map<const char*, std::pair<size_t, std::string>> regions_;  // begin -> (bytes, name)
  std::map<const char*, size_t> gradient_ranges_;                  // begin -> bytes
  std::map<std::string, TrafficCount> by_op_;
  std::map<PhaseRegion, TrafficCount> by_region_;
  std::vector<std::string> unmodelled_;
  std::vector<FlatSlice> plan_slices_;  // the multi-tensor plan the backend has uploaded
  std::vector<std::string> op_keys_;    // op names counted so far in the current op call
  double a_copies_ = 1, b_copies_ = 1;  // distinct operand matrices read by a (batched) GEMM
};

}  // namespace txl
