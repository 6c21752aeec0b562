#include "txl/core/counting_ops.h"

#include <algorithm>

#include "txl/core/error.h"

namespace txl {

PlanPrecision parse_plan_precision(const std::string& name) {
  if (name == "fp32") return PlanPrecision::kFp32;
  if (name == "tf32") return PlanPrecision::kTf32;
  if (name == "bf16") return PlanPrecision::kBf16;
  if (name == "fp16") return PlanPrecision::kFp16;
  failf("precision: unknown value '{}' (expected fp32, tf32, bf16 or fp16)", name);
}

const char* plan_precision_name(PlanPrecision p) {
  switch (p) {
    case PlanPrecision::kFp32:
      return "fp32";
    case PlanPrecision::kTf32:
      return "tf32";
    case PlanPrecision::kBf16:
      return "bf16";
    case PlanPrecision::kFp16:
      return "fp16";
  }
  return "?";
}

PlanStorage parse_plan_storage(const std::string& name) {
  if (name == "fp32") return PlanStorage::kFloat32;
  if (name == "bf16") return PlanStorage::kBf16;
  failf("storage: unknown value '{}' (expected fp32 or bf16)", name);
}

double DeviceSpec::gemm_flops(PlanPrecision p) const {
  switch (p) {
    case PlanPrecision::kFp32:
      return fp32_flops;
    case PlanPrecision::kTf32:
      return tf32_flops;
    case PlanPrecision::kBf16:
    case PlanPrecision::kFp16:
      return half_flops;
  }
  return fp32_flops;
}

// NVIDIA datasheets (docs/gpu.md "Traffic model" cites them): H100 SXM5 80 GB, H200 SXM
// 141 GB, A100 SXM4 80 GB; dense tensor-core rates (the datasheets' sparse figures halved).
const std::array<DeviceSpec, kPlanDevices>& plan_devices() {
  static const std::array<DeviceSpec, kPlanDevices> devices{{
      {"h100", "H100 SXM", 80e9, 3.35e12, 66.9e12, 494.7e12, 989.4e12},
      {"h200", "H200 SXM", 141e9, 4.8e12, 66.9e12, 494.7e12, 989.4e12},
      {"a100", "A100 SXM 80GB", 80e9, 2.039e12, 19.5e12, 156e12, 312e12},
  }};
  return devices;
}

const DeviceSpec* find_plan_device(const std::string& key) {
  for (const DeviceSpec& d : plan_devices())
    if (key == d.key) return &d;
  return nullptr;
}

void TrafficCount::add(const TrafficCount& o) {
  calls += o.calls;
  launches += o.launches;
  host_syncs += o.host_syncs;
  bytes_read += o.bytes_read;
  bytes_written += o.bytes_written;
  flops += o.flops;
  for (int d = 0; d < kPlanDevices; ++d) roofline_s[static_cast<size_t>(d)] += o.roofline_s[static_cast<size_t>(d)];
}

// ---- ShapeOnlyAllocator -------------------------------------------------------------------

void* ShapeOnlyAllocator::allocate(size_t bytes) {
  const size_t size = rounded(std::max<size_t>(bytes, 1));
  void* p = reinterpret_cast<void*>(next_);
  next_ += size;
  blocks_[p] = {size, category_};
  live_ += size;
  live_by_category_[category_] += size;
  note_peak(0);
  return p;
}

void ShapeOnlyAllocator::deallocate(void* ptr, size_t) {
  auto it = blocks_.find(ptr);
  TXL_CHECK(it != blocks_.end(), "ShapeOnlyAllocator: freeing a block it did not hand out");
  live_ -= it->second.first;
  live_by_category_[it->second.second] -= it->second.first;
  blocks_.erase(it);
}

void ShapeOnlyAllocator::touch_transient(size_t bytes) { note_peak(rounded(bytes)); }

void ShapeOnlyAllocator::note_peak(size_t transient) {
  if (live_ + transient <= peak_) return;
  peak_ = live_ + transient;
  at_peak_ = live_by_category_;
  at_peak_["op scratch"] = transient;
}

// ---- CountingOps --------------------------------------------------------------------------

namespace {
constexpr double kHalf = 2.0;                            // bytes of a bf16 / fp16 operand copy
constexpr size_t kStagingMaxBytes = 8u << 20;            // cuda_ops.cpp: larger uploads synchronise
constexpr int64_t kThreads = 256;                        // src/cuda/kernel_utils.cuh
constexpr int64_t kSumBlocks = 512;                      // src/cuda/reductions.cu
constexpr int64_t kColTileX = 32;                        // src/cuda/kernel_utils.cuh column_sum
constexpr int64_t kMultiTensorChunk = int64_t{1} << 16;  // src/cuda/kernels.h

// Unmasked (query i, key j <= i + mlen) entries of n score matrices [qlen, klen].
double unmasked(int64_t n, int64_t qlen, int64_t klen, int64_t mlen) {
  double per = 0;
  for (int64_t i = 0; i < qlen; ++i) per += static_cast<double>(std::min(klen, i + mlen + 1));
  return static_cast<double>(n) * per;
}
}  // namespace

template <typename T>
CountingOps<T>::CountingOps(std::unique_ptr<Ops<T>> inner, PlanPrecision precision, PlanStorage storage)
    : ForwardingOps<T>(std::move(inner)),
      precision_(precision),
      storage_(storage),
      name_(fmt::format("traffic model of cuda-float({} gemm{})", plan_precision_name(precision),
                        storage == PlanStorage::kBf16 ? ", modelled bf16 storage" : "")) {}

template <typename T>
void CountingOps<T>::add_region(const void* begin, size_t bytes, const std::string& region, bool gradient) {
  if (bytes == 0) return;
  regions_[static_cast<const char*>(begin)] = {bytes, region};
  if (gradient) gradient_ranges_[static_cast<const char*>(begin)] = bytes;
}

template <typename T>
void CountingOps<T>::reset_counts() {
  by_op_.clear();
  by_region_.clear();
}

template <typename T>
TrafficCount CountingOps<T>::total() const {
  TrafficCount t;
  for (const auto& [op, c] : by_op_) t.add(c);
  return t;
}

template <typename T>
std::string CountingOps<T>::region_of(const Extent& e) const {
  const char* p = static_cast<const char*>(e.ptr);
  auto it = regions_.upper_bound(p);
  if (it == regions_.begin()) return "";
  --it;
  if (p >= it->first + it->second.first) return "";
  if (static_cast<double>(p - it->first) + e.bytes > static_cast<double>(it->second.first)) return spanning;
  return it->second.second;
}

template <typename T>
bool CountingOps<T>::is_gradient(const void* ptr) const {
  const char* p = static_cast<const char*>(ptr);
  auto it = gradient_ranges_.upper_bound(p);
  if (it == gradient_ranges_.begin()) return false;
  --it;
  return p < it->first + it->second;
}

template <typename T>
void CountingOps<T>::begin_op(std::initializer_list<Extent> touched) {
  op_keys_.clear();
  if (!pinned_.empty()) {
    current_region_ = pinned_;
    return;
  }
  for (const Extent& e : touched) {
    if (!e.ptr) continue;
    const std::string r = region_of(e);
    if (r.empty()) continue;
    current_region_ = r;
    return;
  }
}

template <typename T>
void CountingOps<T>::kernel(const std::string& op, double read, double written, double flops, int64_t syncs) {
  TrafficCount c;
  if (std::find(op_keys_.begin(), op_keys_.end(), op) == op_keys_.end()) {
    op_keys_.push_back(op);
    c.calls = 1;
  }
  if (storage_ == PlanStorage::kBf16 && phase_ != "optimizer" && phase_ != "zero_grad" && op != "upload" &&
      op != "download" && op != "gemm" && op != "gemm_batched") {
    read *= 0.5;  // 16-bit tensors (GEMMs account for their operands themselves)
    written *= 0.5;
  }
  c.launches = 1;
  c.host_syncs = syncs;
  c.bytes_read = read;
  c.bytes_written = written;
  c.flops = flops;
  for (int d = 0; d < kPlanDevices; ++d) {
    const DeviceSpec& dev = plan_devices()[static_cast<size_t>(d)];
    c.roofline_s[static_cast<size_t>(d)] =
        std::max((read + written) / dev.hbm_bytes_per_s,
                 flops > 0 ? flops / dev.gemm_flops(fp32_core_flops_ ? PlanPrecision::kFp32 : precision_) : 0.0);
  }
  by_op_[op].add(c);
  by_region_[{phase_, current_region_}].add(c);
}

template <typename T>
void CountingOps<T>::host_op(const char* op, const std::function<void()>&) {
  begin_op({});
  kernel(op, 0, 0, 0, 1);
  if (std::find(unmodelled_.begin(), unmodelled_.end(), op) == unmodelled_.end()) unmodelled_.push_back(op);
}

template <typename T>
void CountingOps<T>::device_op(const char* op, std::function<void()>) {
  begin_op({});
  kernel(op, 0, 0);
  if (std::find(unmodelled_.begin(), unmodelled_.end(), op) == unmodelled_.end()) unmodelled_.push_back(op);
}

// ---- memory ---------------------------------------------------------------------------------

template <typename T>
void CountingOps<T>::upload(void* dst, const void*, size_t bytes) {
  if (bytes == 0) return;
  begin_op({{dst, static_cast<double>(bytes)}});
  kernel("upload", 0, static_cast<double>(bytes), 0, bytes > kStagingMaxBytes ? 1 : 0);
}

template <typename T>
void CountingOps<T>::download(void*, const void* src, size_t bytes) {
  if (bytes == 0) return;
  begin_op({{src, static_cast<double>(bytes)}});
  kernel("download", static_cast<double>(bytes), 0, 0, 1);
}

template <typename T>
void CountingOps<T>::copy(void* dst, const void* src, size_t bytes) {
  if (bytes == 0 || dst == src) return;
  const double b = static_cast<double>(bytes);
  begin_op({{dst, b}, {src, b}});
  const char* d = static_cast<const char*>(dst);
  const char* s = static_cast<const char*>(src);
  if (d < s + bytes && s < d + bytes) {  // via a temporary, as cuda_ops.cpp
    alloc_.touch_transient(bytes);
    kernel("copy", b, b);
  }
  kernel("copy", b, b);
}

template <typename T>
void CountingOps<T>::synchronize() {
  begin_op({});
  kernel("synchronize", 0, 0, 0, 1);
  by_op_["synchronize"].launches -= 1;  // a wait, not stream work
  by_region_[{phase_, current_region_}].launches -= 1;
}

template <typename T>
void CountingOps<T>::fill(T* x, int64_t n, T) {
  const double b = static_cast<double>(n) * sizeof(T);
  begin_op({{x, b}});
  kernel("fill", 0, b);
}

// ---- GEMMs: cuda_ops.cpp run_gemm --------------------------------------------------------

template <typename T>
void CountingOps<T>::gemm_batch(const std::string& op, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k,
                                int64_t batch, T beta) {
  const double E = sizeof(T), mn = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(batch);
  const double c_read = beta != T(0) ? E * mn : 0.0;
  if (k == 0) {
    kernel("scale_matrices", c_read, E * mn);
    return;
  }
  const double a = static_cast<double>(m) * static_cast<double>(k), b = static_cast<double>(k) * static_cast<double>(n);
  const double flops = 2.0 * mn * static_cast<double>(k);
  (void)ta;
  (void)tb;
  const double nb = static_cast<double>(batch);
  if (storage_ == PlanStorage::kBf16) {  // modelled: 16-bit operands in place; gradients written in fp32
    const double c_bytes = gradient_output_ ? E : kHalf;
    kernel(op, kHalf * (a * a_copies_ + b * b_copies_) + (beta != T(0) ? c_bytes * mn : 0.0), c_bytes * mn, flops);
  } else if (precision_ == PlanPrecision::kBf16 || precision_ == PlanPrecision::kFp16) {
    // Both operands packed densely (every batch entry, even a shared one) into scratch.
    alloc_.touch_transient(static_cast<size_t>(kHalf * nb * (a + b)) + 512);
    kernel("pack_half", E * a * a_copies_, kHalf * nb * a);
    kernel("pack_half", E * b * b_copies_, kHalf * nb * b);
    kernel(op, kHalf * nb * (a + b) + c_read, E * mn, flops);
  } else {
    kernel(op, E * (a * a_copies_ + b * b_copies_) + c_read, E * mn, flops);
  }
}

template <typename T>
void CountingOps<T>::gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (m == 0 || n == 0) return;
  const double E = sizeof(T);
  begin_op({{B, E * static_cast<double>(ldb) * static_cast<double>(tb == Trans::kNo ? k : n)},
            {A, E * static_cast<double>(lda) * static_cast<double>(ta == Trans::kNo ? m : k)},
            {C, E * static_cast<double>(ldc) * static_cast<double>(m)}});
  a_copies_ = b_copies_ = 1;
  gradient_output_ = is_gradient(C);
  gemm_batch("gemm", ta, tb, m, n, alpha == T(0) ? 0 : k, 1, beta);
}

template <typename T>
void CountingOps<T>::gemm_strided_batched(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A,
                                          int64_t /*lda*/, int64_t strideA, const T* B, int64_t /*ldb*/,
                                          int64_t strideB, T beta, T* C, int64_t /*ldc*/, int64_t strideC,
                                          int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  const double E = sizeof(T), nb = static_cast<double>(batch);
  begin_op({{B, E * static_cast<double>(strideB) * nb},
            {A, E * static_cast<double>(strideA) * nb},
            {C, E * static_cast<double>(strideC) * nb}});
  // A shared operand (stride 0) is read once from memory.
  a_copies_ = strideA == 0 ? 1.0 : nb;
  b_copies_ = strideB == 0 ? 1.0 : nb;
  gradient_output_ = is_gradient(C);
  gemm_batch("gemm_batched", ta, tb, m, n, alpha == T(0) ? 0 : k, batch, beta);
}

// ---- elementwise ----------------------------------------------------------------------------

template <typename T>
void CountingOps<T>::add_bias(T* y, const T* bias, int64_t rows, int64_t cols) {
  const double E = sizeof(T), rc = static_cast<double>(rows) * static_cast<double>(cols);
  begin_op({{bias, E * static_cast<double>(cols)}, {y, E * rc}});
  kernel("add_bias", E * (rc + static_cast<double>(cols)), E * rc);
}

// kernel_utils.cuh column_sum: K sums per column, a partial pass over `rows` (each element
// `term_bytes` from memory) into float64 partials, then a final pass that adds them to the outputs.
template <typename T>
void CountingOps<T>::column_sum(const std::string& op, double rows, int64_t cols, int outputs, double term_bytes) {
  if (rows <= 0 || cols <= 0) return;
  const int64_t r = static_cast<int64_t>(rows);
  const int64_t col_blocks = (cols + kColTileX - 1) / kColTileX;
  int64_t chunks = std::min((1024 + col_blocks - 1) / col_blocks, (r + 31) / 32);
  chunks = std::max<int64_t>(chunks, 1);
  const int64_t rows_per_chunk = (r + chunks - 1) / chunks;
  chunks = (r + rows_per_chunk - 1) / rows_per_chunk;
  const double partial = 8.0 * outputs * static_cast<double>(chunks) * static_cast<double>(cols);
  const double out = static_cast<double>(sizeof(T)) * outputs * static_cast<double>(cols);
  alloc_.touch_transient(static_cast<size_t>(partial));
  kernel(op, term_bytes * rows * static_cast<double>(cols), partial);
  kernel(op, partial + out, out);
}

template <typename T>
void CountingOps<T>::bias_grad(const T* dy, T* dbias, int64_t rows, int64_t cols) {
  const double E = sizeof(T);
  begin_op({{dbias, E * static_cast<double>(cols)}, {dy, E * static_cast<double>(rows * cols)}});
  column_sum("bias_grad", static_cast<double>(rows), cols, 1, E);
}

template <typename T>
void CountingOps<T>::axpy(int64_t n, T, const T* x, T* y) {
  const double b = static_cast<double>(n) * sizeof(T);
  begin_op({{y, b}, {x, b}});
  kernel("axpy", 2 * b, b);
}

template <typename T>
void CountingOps<T>::scale(int64_t n, T, T* x) {
  const double b = static_cast<double>(n) * sizeof(T);
  begin_op({{x, b}});
  kernel("scale", b, b);
}

template <typename T>
void CountingOps<T>::add(int64_t n, const T* a, const T* b, T* out) {
  const double s = static_cast<double>(n) * sizeof(T);
  begin_op({{out, s}, {a, s}, {b, s}});
  kernel("add", 2 * s, s);
}

template <typename T>
void CountingOps<T>::relu_fwd(int64_t n, const T* x, T* y) {
  const double b = static_cast<double>(n) * sizeof(T);
  begin_op({{x, b}, {y, b}});
  kernel("relu_fwd", b, b);
}

template <typename T>
void CountingOps<T>::relu_bwd(int64_t n, const T* y, const T* dy, T* dx) {
  const double b = static_cast<double>(n) * sizeof(T);
  begin_op({{dx, b}, {y, b}, {dy, b}});
  kernel("relu_bwd", 2 * b, b);
}

template <typename T>
void CountingOps<T>::dropout(const T* x, T* y, float p, const DropoutKey&, const BatchLayout& layout) {
  const double b = static_cast<double>(layout.outer * layout.batch * layout.inner) * sizeof(T);
  begin_op({{x, b}, {y, b}});
  if (b <= 0 || (p == 0.0f && x == y)) return;
  kernel(p == 0.0f ? "dropout (copy)" : "dropout", b, b);
}

// One elementwise kernel each (src/cuda/elementwise.cu).
template <typename T>
void CountingOps<T>::bias_relu_dropout(const T* x, const T* bias, float, const DropoutKey&, const BatchLayout& layout,
                                       T* y) {
  const double E = sizeof(T), b = static_cast<double>(layout.outer * layout.batch * layout.inner) * E;
  const double bias_bytes = E * static_cast<double>(layout.inner);
  begin_op({{bias, bias_bytes}, {x, b}, {y, b}});
  if (b <= 0) return;
  kernel("bias_relu_dropout", b + bias_bytes, b);
}

template <typename T>
void CountingOps<T>::relu_dropout_bwd(int64_t n, const T* y, const T* dy, float, T* dx) {
  const double b = static_cast<double>(n) * sizeof(T);
  begin_op({{y, b}, {dy, b}, {dx, b}});
  if (n <= 0) return;
  kernel("relu_dropout_bwd", 2 * b, b);
}

// ---- normalisation --------------------------------------------------------------------------

template <typename T>
void CountingOps<T>::layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* gamma, const T* beta, T, T* y,
                                   T* mean, T* rstd) {
  const double E = sizeof(T), rc = static_cast<double>(rows) * static_cast<double>(cols);
  begin_op({{gamma, E * static_cast<double>(cols)},
            {beta, E * static_cast<double>(cols)},
            {x, E * rc},
            {y, E * rc},
            {mean, E * static_cast<double>(rows)},
            {rstd, E * static_cast<double>(rows)}});
  if (rows <= 0) return;
  kernel("layernorm_fwd", E * (rc + 2.0 * static_cast<double>(cols)), E * (rc + 2.0 * static_cast<double>(rows)));
}

template <typename T>
void CountingOps<T>::layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* x, const T* gamma, const T*,
                                   const T*, T* dx, T* dgamma, T*) {
  const double E = sizeof(T), rc = static_cast<double>(rows) * static_cast<double>(cols);
  begin_op({{dgamma, E * static_cast<double>(cols)},
            {gamma, E * static_cast<double>(cols)},
            {dy, E * rc},
            {x, E * rc},
            {dx, E * rc}});
  if (rows <= 0) return;
  // (dgamma, dbeta) column sums of dy * xhat and dy, then dx (src/cuda/layernorm.cu).
  column_sum("layernorm_bwd", static_cast<double>(rows), cols, 2, 2 * E);
  kernel("layernorm_bwd", E * (2 * rc + static_cast<double>(cols) + 2.0 * static_cast<double>(rows)), E * rc);
}

// src/cuda/layernorm.cu residual_layernorm_fwd_kernel: one launch reading x, bias,
// residual (and gamma, beta), writing sum (and y, mean, rstd).
template <typename T>
void CountingOps<T>::dropout_residual_layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* bias, float,
                                                    const DropoutKey&, const BatchLayout&, const T* residual,
                                                    const T* gamma, const T* beta, T, T* sum, T* y, T* mean,
                                                    T* rstd) {
  const double E = sizeof(T), rc = static_cast<double>(rows) * static_cast<double>(cols);
  const double C = static_cast<double>(cols), R = static_cast<double>(rows);
  begin_op({{gamma, E * C}, {beta, E * C}, {bias, E * C}, {x, E * rc}, {residual, E * rc}, {sum, E * rc},
            {y, E * rc}, {mean, E * R}, {rstd, E * R}});
  if (rows <= 0) return;
  const double read = E * (2 * rc + (bias ? C : 0.0) + (gamma ? 2 * C : 0.0));
  const double written = E * (rc + (gamma ? rc + 2 * R : 0.0));
  kernel("dropout_residual_layernorm_fwd", read, written);
}

// residual_layernorm_bwd_kernel (reads dy, and with a LayerNorm sum, gamma, mean, rstd;
// writes d_sum when given and d_x), then one column sum over the outputs there are:
// (dgamma, dbeta, dbias) of (dy * xhat, dy, d_x), (dgamma, dbeta) or dbias alone.
template <typename T>
void CountingOps<T>::dropout_residual_layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* sum,
                                                    const T* gamma, const T*, const T*, float, const DropoutKey&,
                                                    const BatchLayout&, T* d_sum, T* d_x, T* dgamma, T* dbeta,
                                                    T* dbias) {
  const double E = sizeof(T), rc = static_cast<double>(rows) * static_cast<double>(cols);
  const double C = static_cast<double>(cols), R = static_cast<double>(rows);
  begin_op({{dgamma, E * C}, {dbeta, E * C}, {dbias, E * C}, {gamma, E * C}, {dy, E * rc}, {sum, E * rc},
            {d_sum, E * rc}, {d_x, E * rc}});
  if (rows <= 0) return;
  const double read = E * (rc + (gamma ? rc + C + 2 * R : 0.0));
  const double written = E * (rc + (d_sum ? rc : 0.0));
  kernel("dropout_residual_layernorm_bwd", read, written);
  // The terms read dy and sum per element with a LayerNorm, and d_x with a bias.
  const int outputs = (gamma ? 2 : 0) + (dbias ? 1 : 0);
  if (outputs > 0) column_sum("dropout_residual_layernorm_bwd", R, cols, outputs, E * outputs);
}

// ---- attention ------------------------------------------------------------------------------

template <typename T>
void CountingOps<T>::split_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                                 const T* bias, T* dst) {
  const double E = sizeof(T), N = static_cast<double>(heads * batch * len * d_head);
  begin_op({{bias, E * static_cast<double>(heads * d_head)},
            {src, E * static_cast<double>(len * batch * ld)},
            {dst, E * N}});
  kernel("split_heads", E * (N + (bias ? static_cast<double>(heads * d_head) : 0.0)), E * N);
}

template <typename T>
void CountingOps<T>::merge_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                                 bool accumulate, T* dst) {
  const double E = sizeof(T), N = static_cast<double>(heads * batch * len * d_head);
  begin_op({{src, E * N}, {dst, E * static_cast<double>(len * batch * ld)}});
  kernel("merge_heads", E * N * (accumulate ? 2 : 1), E * N);
}

template <typename T>
void CountingOps<T>::head_bias_grad(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head,
                                    T* bias_grad) {
  const double E = sizeof(T);
  begin_op({{bias_grad, E * static_cast<double>(heads * d_head)},
            {src, E * static_cast<double>(heads * batch * len * d_head)}});
  column_sum("head_bias_grad", static_cast<double>(batch * len), heads * d_head, 1, E);
}

template <typename T>
void CountingOps<T>::rel_shift_add(const T* bd_raw, int64_t n, int64_t qlen, int64_t klen, int64_t mlen, T* scores) {
  const double E = sizeof(T), all = static_cast<double>(n * qlen * klen);
  begin_op({{bd_raw, E * all}, {scores, E * all}});
  const double u = unmasked(n, qlen, klen, mlen);  // only unmasked scores are touched
  kernel("rel_shift_add", 2 * E * u, E * u);
}

template <typename T>
void CountingOps<T>::rel_shift_bwd(const T* d_scores, int64_t n, int64_t qlen, int64_t klen, int64_t mlen,
                                   T* d_bd_raw) {
  const double E = sizeof(T), all = static_cast<double>(n * qlen * klen);
  begin_op({{d_scores, E * all}, {d_bd_raw, E * all}});
  kernel("rel_shift_bwd", E * unmasked(n, qlen, klen, mlen), E * all);
}

template <typename T>
void CountingOps<T>::attn_softmax_fwd(const T* scores, int64_t n, int64_t qlen, int64_t klen, T, const AttnMask& mask,
                                      T* probs) {
  const double E = sizeof(T), all = static_cast<double>(n * qlen * klen);
  begin_op({{scores, E * all}, {probs, E * all}});
  kernel("attn_softmax_fwd", E * unmasked(n, qlen, klen, mask.mlen), E * all);
}

template <typename T>
void CountingOps<T>::attn_softmax_bwd(const T* probs, const T* d_probs, int64_t n, int64_t qlen, int64_t klen, T,
                                      T* d_scores) {
  const double E = sizeof(T), all = static_cast<double>(n * qlen * klen);
  begin_op({{probs, E * all}, {d_probs, E * all}, {d_scores, E * all}});
  kernel("attn_softmax_bwd", 2 * E * all, E * all);
}

// ---- fused relative attention: src/cuda/rel_attention.cu -----------------------------------
// Each kernel reads its inputs once (the key / value / position tiles that several blocks
// read again are assumed to stay in L2) and never touches an [n, qlen, klen] tensor. The
// operands are read and written in the projections' row layout (a head's d_head columns
// of each row: 64 contiguous values at wt103 sizes, whole sectors), so the bytes are the
// elements touched; q is read once (the biases are added in the tile loads).
// FLOPs per unmasked score, on the float32 CUDA cores: forward 3 dot products of d_head
// (AC, BD, p·v); backward q: 3 recomputed + 2 accumulations; k, v: 3 + 2; r: 3 + 1.

namespace {
double unmasked_scores(const RelAttentionArgs& a) {
  const int64_t over = a.klen - a.mask.mem_len - 1, shift = over > 0 ? a.qlen - over : a.qlen;
  double per = 0;
  for (int64_t i = 0; i < a.qlen; ++i) {
    const int64_t first = a.mask.same_length ? std::max<int64_t>(0, i - shift + 1) : 0;
    per += static_cast<double>(std::min(a.klen - 1, i + a.mask.mlen) - first + 1);
  }
  return static_cast<double>(a.n()) * per;
}
// Query blocks of the backward's d_q kernel (kQueryRows = 16 in rel_attention.cu), each
// leaving a partial column sum of d qu and d qw for the bias gradients.
constexpr int64_t kRelAttentionQueryRows = 16;
}  // namespace

template <typename T>
void CountingOps<T>::rel_attention_fwd(const RelAttentionArgs& a, const T* q, const T* u, const T* w, const T* k,
                                       const T* v, const T* r, T* out, T* lse) {
  const double E = sizeof(T), D = static_cast<double>(a.d_head), n = static_cast<double>(a.n());
  const double q_rows = n * static_cast<double>(a.qlen), k_rows = n * static_cast<double>(a.klen);
  const double r_rows = static_cast<double>(a.heads * a.klen), hd = static_cast<double>(a.heads * a.d_head);
  const double rows_q = static_cast<double>(a.qlen * a.batch), rows_k = static_cast<double>(a.klen * a.batch);
  begin_op({{q, E * rows_q * static_cast<double>(a.ld.ld_q)}, {k, E * rows_k * static_cast<double>(a.ld.ld_k)},
            {v, E * rows_k * static_cast<double>(a.ld.ld_v)}, {r, E * static_cast<double>(a.klen * a.ld.ld_r)},
            {out, E * rows_q * static_cast<double>(a.ld.ld_out)}, {lse, E * q_rows}, {u, E * hd}, {w, E * hd}});
  if (a.qlen == 0) return;
  fp32_core_flops_ = true;
  kernel("rel_attention_fwd", E * (D * (q_rows + 2 * k_rows + r_rows) + 2 * hd), E * (q_rows * D + q_rows),
         6.0 * D * unmasked_scores(a));
  fp32_core_flops_ = false;
}

template <typename T>
void CountingOps<T>::rel_attention_bwd(const RelAttentionArgs& a, const T* q, const T* u, const T* w, const T* k,
                                       const T* v, const T* r, const T* out, const T* lse, const T* d_out, T* d_q,
                                       T* d_u, T* d_w, T* d_k, T* d_v, T* d_r) {
  const double E = sizeof(T), D = static_cast<double>(a.d_head), n = static_cast<double>(a.n());
  const double q_rows = n * static_cast<double>(a.qlen), k_rows = n * static_cast<double>(a.klen);
  const double r_rows = static_cast<double>(a.heads * a.klen), hd = static_cast<double>(a.heads * a.d_head);
  const double rows_q = static_cast<double>(a.qlen * a.batch), rows_k = static_cast<double>(a.klen * a.batch);
  begin_op({{q, E * rows_q * static_cast<double>(a.ld.ld_q)}, {k, E * rows_k * static_cast<double>(a.ld.ld_k)},
            {r, E * static_cast<double>(a.klen * a.ld.ld_r)}, {d_q, E * rows_q * static_cast<double>(a.ld.ld_q)},
            {d_k, E * rows_k * static_cast<double>(a.ld.ld_k)}, {d_v, E * rows_k * static_cast<double>(a.ld.ld_v)},
            {d_r, E * static_cast<double>(a.klen * a.ld.ld_r)}, {out, E * rows_q * static_cast<double>(a.ld.ld_out)},
            {lse, E * q_rows}, {d_out, E * rows_q * static_cast<double>(a.ld.ld_out)},
            {v, E * rows_k * static_cast<double>(a.ld.ld_v)}, {u, E * hd}, {w, E * hd}, {d_u, E * hd},
            {d_w, E * hd}});
  if (a.qlen == 0) return;
  const double unmasked = unmasked_scores(a);
  // Every recomputing kernel reads q (+ both biases), d_out, k, v, r, lse and delta.
  const double inputs = E * (D * (2 * q_rows + 2 * k_rows + r_rows) + 2 * q_rows + 2 * hd);
  // The d_q kernel's partial bias sums (float32): two per column of each query block.
  const double q_blocks = static_cast<double>((a.qlen + kRelAttentionQueryRows - 1) / kRelAttentionQueryRows);
  const double partials = 4.0 * 2 * n * q_blocks * D;
  const bool bias_grads = d_u != nullptr || d_w != nullptr;
  alloc_.touch_transient(static_cast<size_t>(E * q_rows + (bias_grads ? partials : 0.0)) + 1024);  // delta, partials
  kernel("rel_attention_bwd", 2 * E * q_rows * D, E * q_rows);  // delta = d_out · out
  fp32_core_flops_ = true;
  kernel("rel_attention_bwd", inputs, E * q_rows * D + (bias_grads ? partials : 0.0), 10.0 * D * unmasked);
  kernel("rel_attention_bwd", inputs, 2 * E * k_rows * D, 10.0 * D * unmasked);
  kernel("rel_attention_bwd", inputs, E * r_rows * D, 8.0 * D * unmasked);
  fp32_core_flops_ = false;
  // d_u, d_w += the partials summed over the batch and the query blocks in order.
  if (bias_grads) kernel("rel_attention_bwd", partials + 2 * E * 2 * hd, 2 * E * hd);
}

// ---- gather / scatter, loss -----------------------------------------------------------------

template <typename T>
void CountingOps<T>::gather_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) {
  const double E = sizeof(T), b = E * static_cast<double>(n * cols);
  begin_op({{src, b}, {dst, b}});
  if (n * cols <= 0) return;
  kernel("gather_rows", b + 4.0 * static_cast<double>(n), b);
  (void)idx;
}

template <typename T>
void CountingOps<T>::scatter_rows(const T* src, const int32_t*, int64_t n, int64_t cols, T* dst) {
  const double E = sizeof(T), b = E * static_cast<double>(n * cols);
  begin_op({{dst, b}, {src, b}});
  if (n * cols <= 0) return;
  kernel("scatter_rows", b + 4.0 * static_cast<double>(n), b);
}

// src/cuda/loss.cu: row ids 0..n-1, a stable radix sort of (index, row) pairs (CUB: about
// one histogram pass and one pass per 8 key bits, each reading and writing keys and
// values), then each segment's rows added into its destination row in order.
template <typename T>
void CountingOps<T>::scatter_add_rows(const T* src, const int32_t*, int64_t n, int64_t cols, T* dst) {
  const double E = sizeof(T), b = E * static_cast<double>(n * cols), nn = static_cast<double>(n);
  begin_op({{dst, b}, {src, b}});
  if (n * cols <= 0) return;
  alloc_.touch_transient(static_cast<size_t>(12 * nn + 16 * nn));
  kernel("scatter_add_rows", 0, 4 * nn);  // row ids
  kernel("scatter_add_rows", 4 * nn, 0);  // digit histograms
  for (int pass = 0; pass < 4; ++pass) kernel("scatter_add_rows", 8 * nn, 8 * nn);
  kernel("scatter_add_rows", 2 * b + 8 * nn, b);  // at most n distinct destination rows read and written
}

template <typename T>
void CountingOps<T>::log_softmax(const T* logits, int64_t rows, int64_t cols, T* logp) {
  const double b = static_cast<double>(sizeof(T)) * static_cast<double>(rows * cols);
  begin_op({{logits, b}, {logp, b}});
  if (rows <= 0) return;
  kernel("log_softmax", b, b);
}

template <typename T>
void CountingOps<T>::pick_cols(const T* logp, const int32_t*, int64_t rows, int64_t cols, bool accumulate, T* out) {
  const double E = sizeof(T), r = static_cast<double>(rows);
  begin_op({{logp, E * r * static_cast<double>(cols)}, {out, E * r}});
  if (rows <= 0) return;
  kernel("pick_cols", r * (E + 4) + (accumulate ? E * r : 0.0), E * r);
}

template <typename T>
void CountingOps<T>::log_softmax_pick_bwd(const T* logp, const int32_t*, const T* coef, int64_t rows, int64_t cols,
                                          T* dlogits) {
  const double E = sizeof(T), b = E * static_cast<double>(rows * cols), r = static_cast<double>(rows);
  begin_op({{logp, b}, {coef, E * r}, {dlogits, b}});
  if (rows * cols <= 0) return;
  kernel("log_softmax_pick_bwd", b + r * (E + 4), b);
}

// One kernel each (src/cuda/loss.cu): the forward reads the block once (its passes over a
// row hit the cache) and writes two values per row; the backward reads it and writes the
// gradient.
template <typename T>
void CountingOps<T>::biased_log_softmax_pick(const T* logits, const T* bias, const int32_t*, int64_t rows,
                                             int64_t cols, bool accumulate, T* out, T* lse) {
  const double E = sizeof(T), b = E * static_cast<double>(rows * cols), r = static_cast<double>(rows);
  const double bias_bytes = bias ? E * static_cast<double>(cols) : 0.0;
  begin_op({{logits, b}, {bias, bias_bytes}, {out, E * r}, {lse, E * r}});
  if (rows <= 0) return;
  kernel("biased_log_softmax_pick", b + bias_bytes + r * 4 + (accumulate ? E * r : 0.0), 2 * E * r);
}

template <typename T>
void CountingOps<T>::biased_log_softmax_pick_bwd(const T* logits, const T* bias, const T* lse, const int32_t*,
                                                 const T* coef, int64_t rows, int64_t cols, T* dlogits) {
  const double E = sizeof(T), b = E * static_cast<double>(rows * cols), r = static_cast<double>(rows);
  const double bias_bytes = bias ? E * static_cast<double>(cols) : 0.0;
  begin_op({{logits, b}, {bias, bias_bytes}, {lse, E * r}, {coef, E * r}, {dlogits, b}});
  if (rows * cols <= 0) return;
  kernel("biased_log_softmax_pick_bwd", b + bias_bytes + r * (2 * E + 4), b);
}

// ---- reductions -----------------------------------------------------------------------------

// src/cuda/reductions.cu launch_sum: partial sums, the final sum into a device double;
// then (to_host) the 8-byte download that synchronises.
template <typename T>
void CountingOps<T>::reduction(const std::string& op, double n, bool to_host) {
  const int64_t blocks =
      std::min<int64_t>(kSumBlocks, std::max<int64_t>(1, (static_cast<int64_t>(n) + kThreads - 1) / kThreads));
  alloc_.touch_transient(static_cast<size_t>(8 * blocks));
  kernel(op, sizeof(T) * n, 8.0 * static_cast<double>(blocks));
  kernel(op, 8.0 * static_cast<double>(blocks), 8);
  if (to_host) kernel("download", 8, 0, 0, 1);
}

template <typename T>
double CountingOps<T>::sum(const T* x, int64_t n) {
  begin_op({{x, static_cast<double>(n) * sizeof(T)}});
  if (n > 0) reduction("sum", static_cast<double>(n));
  return 0.0;
}

template <typename T>
double CountingOps<T>::sum_squares(const T* x, int64_t n) {
  begin_op({{x, static_cast<double>(n) * sizeof(T)}});
  if (n > 0) reduction("sum_squares", static_cast<double>(n));
  return 0.0;
}

// Device results: the same two kernels without the download (an empty x: one 8-byte memset).
template <typename T>
void CountingOps<T>::sum_to_device(const T* x, int64_t n, double*) {
  begin_op({{x, static_cast<double>(n) * sizeof(T)}});
  if (n > 0) reduction("sum_to_device", static_cast<double>(n), false);
  else kernel("sum_to_device", 0, 8);
}

template <typename T>
void CountingOps<T>::sum_squares_to_device(const T* x, int64_t n, double*) {
  begin_op({{x, static_cast<double>(n) * sizeof(T)}});
  if (n > 0) reduction("sum_squares_to_device", static_cast<double>(n), false);
  else kernel("sum_squares_to_device", 0, 8);
}

// src/cuda/step_scalars.cu: one single-thread kernel each over a few doubles.
template <typename T>
void CountingOps<T>::step_loss_update(const double*, const StepLossArgs& a, double*) {
  begin_op({});
  kernel("step_loss_update", 8.0 * static_cast<double>(a.chunks + 2), 8.0 * 4);
}

template <typename T>
void CountingOps<T>::step_grad_factor(const GradFactorArgs&, double*) {
  begin_op({});
  kernel("step_grad_factor", 8.0 * 3, 8.0 * 3);
}

namespace {
double slices_numel(const std::vector<FlatSlice>& slices) {
  double n = 0;
  for (const FlatSlice& s : slices) n += static_cast<double>(s.numel);
  return n;
}
int64_t slices_items(const std::vector<FlatSlice>& slices) {
  int64_t items = 0;
  for (const FlatSlice& s : slices) items += (s.numel + kMultiTensorChunk - 1) / kMultiTensorChunk;
  return items;
}
bool same(const std::vector<FlatSlice>& a, const std::vector<FlatSlice>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].offset != b[i].offset || a[i].numel != b[i].numel) return false;
  return true;
}
}  // namespace

template <typename T>
std::vector<double> CountingOps<T>::sum_squares_slices(const T* x, const std::vector<FlatSlice>& slices) {
  const double n = slices_numel(slices);
  begin_op({{x, n * sizeof(T)}});
  if (slices.empty()) return {};
  const double items = static_cast<double>(slices_items(slices));
  if (!same(plan_slices_, slices)) {  // cuda_ops.cpp plan_for: the item list is uploaded once
    plan_slices_ = slices;
    kernel("upload", 0, 24.0 * items);
    kernel("upload", 0, 4.0 * static_cast<double>(slices.size() + 1));
  }
  alloc_.touch_transient(static_cast<size_t>(8 * items + 8 * static_cast<double>(slices.size())));
  kernel("sum_squares_slices", sizeof(T) * n, 8 * items);
  kernel("sum_squares_slices", 8 * items, 8.0 * static_cast<double>(slices.size()));
  kernel("download", 8.0 * static_cast<double>(slices.size()), 0, 0, 1);
  return std::vector<double>(slices.size(), 0.0);
}

// ---- optimizers -----------------------------------------------------------------------------

template <typename T>
void CountingOps<T>::lamb_step(T* p, T*, T*, T*, const std::vector<FlatSlice>& slices, const OptimStep&) {
  const double E = sizeof(T), n = slices_numel(slices);
  begin_op({{p, E * n}});
  if (slices.empty()) return;
  const double items = static_cast<double>(slices_items(slices));
  if (!same(plan_slices_, slices)) {
    plan_slices_ = slices;
    kernel("upload", 0, 24.0 * items);
    kernel("upload", 0, 4.0 * static_cast<double>(slices.size() + 1));
  }
  alloc_.touch_transient(static_cast<size_t>(16 * items + 4 * static_cast<double>(slices.size())));
  // src/cuda/optimizers.cu: moments (p, g, m, v -> m, v and the cleared g), trust ratios,
  // apply (p, m, v -> p).
  kernel("lamb_step", 4 * E * n, 3 * E * n + 16 * items);
  kernel("lamb_step", 16 * items, 4.0 * static_cast<double>(slices.size()));
  kernel("lamb_step", 3 * E * n, E * n + (storage_ == PlanStorage::kBf16 ? kHalf * n : 0.0));
}

template <typename T>
void CountingOps<T>::adam_step(T* p, T*, T*, T*, int64_t n, const OptimStep&) {
  const double b = static_cast<double>(n) * sizeof(T);
  begin_op({{p, b}});
  kernel("adam_step", 4 * b, 4 * b + (storage_ == PlanStorage::kBf16 ? b / 2 : 0.0));
}

template <typename T>
void CountingOps<T>::sgd_step(T* p, T*, T* buf, int64_t n, const OptimStep& s) {
  const double b = static_cast<double>(n) * sizeof(T);
  begin_op({{p, b}});
  if (s.momentum != 0.0 && buf)
    kernel("sgd_step", 3 * b, 3 * b);
  else
    kernel("sgd_step", 2 * b, 2 * b);
}

template <typename T>
void CountingOps<T>::adagrad_step(T* p, T*, T*, int64_t n, const OptimStep&) {
  const double b = static_cast<double>(n) * sizeof(T);
  begin_op({{p, b}});
  kernel("adagrad_step", 3 * b, 3 * b);
}

template class CountingOps<float>;
template class CountingOps<double>;

}  // namespace txl
