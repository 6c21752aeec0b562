#include "txl/core/recording_ops.h"

#include <utility>

#include "txl/core/error.h"

namespace txl {

// ---- RecordingAllocator -----------------------------------------------------------------

RecordingAllocator::~RecordingAllocator() {
  for (auto& [id, pool] : pools_)
    for (auto& [ptr, bytes] : pool.held) inner_.deallocate(ptr, bytes);
}

void* RecordingAllocator::allocate(size_t bytes) {
  void* p = inner_.allocate(bytes);
  if (open_ != 0) owner_[p] = open_;
  return p;
}

void RecordingAllocator::deallocate(void* ptr, size_t bytes) {
  int pool = open_;
  if (auto it = owner_.find(ptr); it != owner_.end()) {
    pool = it->second;
    owner_.erase(it);
  }
  if (pool != 0 && pools_.count(pool)) {
    pools_[pool].held.emplace_back(ptr, bytes);  // a recorded op may still use it
    return;
  }
  inner_.deallocate(ptr, bytes);
}

int RecordingAllocator::open_pool() {
  TXL_CHECK(open_ == 0, "RecordingAllocator: a pool is already open");
  open_ = next_pool_++;
  pools_[open_];
  return open_;
}

void RecordingAllocator::close_pool() { open_ = 0; }

void RecordingAllocator::release_pool(int pool) {
  auto it = pools_.find(pool);
  if (it == pools_.end()) return;
  if (open_ == pool) open_ = 0;
  for (auto& [ptr, bytes] : it->second.held) inner_.deallocate(ptr, bytes);
  pools_.erase(it);
  for (auto o = owner_.begin(); o != owner_.end();)  // still-live blocks: freed normally later
    o = o->second == pool ? owner_.erase(o) : std::next(o);
}

size_t RecordingAllocator::reserved_blocks() const {
  size_t n = 0;
  for (const auto& [id, pool] : pools_) n += pool.held.size();
  return n;
}

// ---- RecordingOps -----------------------------------------------------------------------

template <typename T>
RecordingOps<T>::RecordingOps(std::unique_ptr<Ops<T>> inner)
    : inner_(std::move(inner)), alloc_(inner_->allocator()), name_(std::string(inner_->name()) + "+graph") {}

template <typename T>
void RecordingOps<T>::begin_recording() {
  TXL_CHECK(!recording_, "RecordingOps: already recording");
  recording_ = true;
  recording_ops_.clear();
}

template <typename T>
typename RecordingOps<T>::Recording RecordingOps<T>::end_recording() {
  recording_ = false;
  return std::exchange(recording_ops_, {});
}

template <typename T>
void RecordingOps<T>::refuse_while_recording(const char* op) const {
  TXL_CHECK(!recording_, "graph capture: {} moves data between host and device and cannot be recorded in a step graph",
            op);
}

template <typename T>
void RecordingOps<T>::upload(void* dst, const void* host_src, size_t bytes) {
  refuse_while_recording("upload");
  inner_->upload(dst, host_src, bytes);
}
template <typename T>
void RecordingOps<T>::download(void* host_dst, const void* src, size_t bytes) {
  refuse_while_recording("download");
  inner_->download(host_dst, src, bytes);
}
template <typename T>
void RecordingOps<T>::synchronize() {
  refuse_while_recording("synchronize");
  inner_->synchronize();
}
template <typename T>
double RecordingOps<T>::sum(const T* x, int64_t n) {
  refuse_while_recording("sum");
  return inner_->sum(x, n);
}
template <typename T>
double RecordingOps<T>::sum_squares(const T* x, int64_t n) {
  refuse_while_recording("sum_squares");
  return inner_->sum_squares(x, n);
}
template <typename T>
std::vector<double> RecordingOps<T>::sum_squares_slices(const T* x, const std::vector<FlatSlice>& slices) {
  refuse_while_recording("sum_squares_slices");
  return inner_->sum_squares_slices(x, slices);
}

// Every other op: the call with its arguments by value (vectors copied), run now or later.
template <typename T>
void RecordingOps<T>::copy(void* dst, const void* src, size_t bytes) {
  run([o = inner_.get(), dst, src, bytes] { o->copy(dst, src, bytes); });
}
template <typename T>
void RecordingOps<T>::fill(T* x, int64_t n, T value) {
  run([o = inner_.get(), x, n, value] { o->fill(x, n, value); });
}
template <typename T>
void RecordingOps<T>::gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                           const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  run([=, o = inner_.get()] { o->gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc); });
}
template <typename T>
void RecordingOps<T>::gemm_strided_batched(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A,
                                           int64_t lda, int64_t strideA, const T* B, int64_t ldb, int64_t strideB,
                                           T beta, T* C, int64_t ldc, int64_t strideC, int64_t batch) {
  run([=, o = inner_.get()] {
    o->gemm_strided_batched(ta, tb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, batch);
  });
}
template <typename T>
void RecordingOps<T>::add_bias(T* y, const T* bias, int64_t rows, int64_t cols) {
  run([=, o = inner_.get()] { o->add_bias(y, bias, rows, cols); });
}
template <typename T>
void RecordingOps<T>::bias_grad(const T* dy, T* dbias, int64_t rows, int64_t cols) {
  run([=, o = inner_.get()] { o->bias_grad(dy, dbias, rows, cols); });
}
template <typename T>
void RecordingOps<T>::axpy(int64_t n, T alpha, const T* x, T* y) {
  run([=, o = inner_.get()] { o->axpy(n, alpha, x, y); });
}
template <typename T>
void RecordingOps<T>::scale(int64_t n, T alpha, T* x) {
  run([=, o = inner_.get()] { o->scale(n, alpha, x); });
}
template <typename T>
void RecordingOps<T>::add(int64_t n, const T* a, const T* b, T* out) {
  run([=, o = inner_.get()] { o->add(n, a, b, out); });
}
template <typename T>
void RecordingOps<T>::relu_fwd(int64_t n, const T* x, T* y) {
  run([=, o = inner_.get()] { o->relu_fwd(n, x, y); });
}
template <typename T>
void RecordingOps<T>::relu_bwd(int64_t n, const T* y, const T* dy, T* dx) {
  run([=, o = inner_.get()] { o->relu_bwd(n, y, dy, dx); });
}
template <typename T>
void RecordingOps<T>::dropout(const T* x, T* y, float p, const DropoutKey& key, const BatchLayout& layout) {
  run([=, o = inner_.get()] { o->dropout(x, y, p, key, layout); });
}
template <typename T>
void RecordingOps<T>::layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* gamma, const T* beta, T eps,
                                    T* y, T* mean, T* rstd) {
  run([=, o = inner_.get()] { o->layernorm_fwd(rows, cols, x, gamma, beta, eps, y, mean, rstd); });
}
template <typename T>
void RecordingOps<T>::layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* x, const T* gamma,
                                    const T* mean, const T* rstd, T* dx, T* dgamma, T* dbeta) {
  run([=, o = inner_.get()] { o->layernorm_bwd(rows, cols, dy, x, gamma, mean, rstd, dx, dgamma, dbeta); });
}
template <typename T>
void RecordingOps<T>::split_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head,
                                  int64_t ld, const T* bias, T* dst) {
  run([=, o = inner_.get()] { o->split_heads(src, len, batch, heads, d_head, ld, bias, dst); });
}
template <typename T>
void RecordingOps<T>::merge_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head,
                                  int64_t ld, bool accumulate, T* dst) {
  run([=, o = inner_.get()] { o->merge_heads(src, len, batch, heads, d_head, ld, accumulate, dst); });
}
template <typename T>
void RecordingOps<T>::head_bias_grad(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head,
                                     T* bias_grad) {
  run([=, o = inner_.get()] { o->head_bias_grad(src, len, batch, heads, d_head, bias_grad); });
}
template <typename T>
void RecordingOps<T>::rel_shift_add(const T* bd_raw, int64_t n, int64_t qlen, int64_t klen, int64_t mlen,
                                    T* scores) {
  run([=, o = inner_.get()] { o->rel_shift_add(bd_raw, n, qlen, klen, mlen, scores); });
}
template <typename T>
void RecordingOps<T>::rel_shift_bwd(const T* d_scores, int64_t n, int64_t qlen, int64_t klen, int64_t mlen,
                                    T* d_bd_raw) {
  run([=, o = inner_.get()] { o->rel_shift_bwd(d_scores, n, qlen, klen, mlen, d_bd_raw); });
}
template <typename T>
void RecordingOps<T>::attn_softmax_fwd(const T* scores, int64_t n, int64_t qlen, int64_t klen, T scale,
                                       const AttnMask& mask, T* probs) {
  run([=, o = inner_.get()] { o->attn_softmax_fwd(scores, n, qlen, klen, scale, mask, probs); });
}
template <typename T>
void RecordingOps<T>::attn_softmax_bwd(const T* probs, const T* d_probs, int64_t n, int64_t qlen, int64_t klen,
                                       T scale, T* d_scores) {
  run([=, o = inner_.get()] { o->attn_softmax_bwd(probs, d_probs, n, qlen, klen, scale, d_scores); });
}
template <typename T>
void RecordingOps<T>::gather_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) {
  run([=, o = inner_.get()] { o->gather_rows(src, idx, n, cols, dst); });
}
template <typename T>
void RecordingOps<T>::scatter_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) {
  run([=, o = inner_.get()] { o->scatter_rows(src, idx, n, cols, dst); });
}
template <typename T>
void RecordingOps<T>::scatter_add_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) {
  run([=, o = inner_.get()] { o->scatter_add_rows(src, idx, n, cols, dst); });
}
template <typename T>
void RecordingOps<T>::log_softmax(const T* logits, int64_t rows, int64_t cols, T* logp) {
  run([=, o = inner_.get()] { o->log_softmax(logits, rows, cols, logp); });
}
template <typename T>
void RecordingOps<T>::pick_cols(const T* logp, const int32_t* col, int64_t rows, int64_t cols, bool accumulate,
                                T* out) {
  run([=, o = inner_.get()] { o->pick_cols(logp, col, rows, cols, accumulate, out); });
}
template <typename T>
void RecordingOps<T>::log_softmax_pick_bwd(const T* logp, const int32_t* col, const T* coef, int64_t rows,
                                           int64_t cols, T* dlogits) {
  run([=, o = inner_.get()] { o->log_softmax_pick_bwd(logp, col, coef, rows, cols, dlogits); });
}
template <typename T>
void RecordingOps<T>::lamb_step(T* p, const T* g, T* m, T* v, const std::vector<FlatSlice>& slices,
                                const OptimStep& s) {
  run([=, o = inner_.get()] { o->lamb_step(p, g, m, v, slices, s); });
}
template <typename T>
void RecordingOps<T>::adam_step(T* p, const T* g, T* m, T* v, int64_t n, const OptimStep& s) {
  run([=, o = inner_.get()] { o->adam_step(p, g, m, v, n, s); });
}
template <typename T>
void RecordingOps<T>::sgd_step(T* p, const T* g, T* buf, int64_t n, const OptimStep& s) {
  run([=, o = inner_.get()] { o->sgd_step(p, g, buf, n, s); });
}
template <typename T>
void RecordingOps<T>::adagrad_step(T* p, const T* g, T* sum, int64_t n, const OptimStep& s) {
  run([=, o = inner_.get()] { o->adagrad_step(p, g, sum, n, s); });
}

// ---- RecordedStepGraph ------------------------------------------------------------------

template <typename T>
RecordedStepGraph<T>::~RecordedStepGraph() {
  reset();
}

template <typename T>
void RecordedStepGraph<T>::reset() {
  steps_.clear();
  captured_ = false;
  if (pool_ != 0) ops_.recording_allocator().release_pool(pool_);
  pool_ = 0;
}

template <typename T>
void RecordedStepGraph<T>::capture(const std::function<void()>& step) {
  reset();
  pool_ = ops_.recording_allocator().open_pool();
  ops_.begin_recording();
  try {
    step();
  } catch (...) {
    ops_.end_recording();
    ops_.recording_allocator().close_pool();
    reset();
    throw;
  }
  steps_ = ops_.end_recording();
  ops_.recording_allocator().close_pool();
  captured_ = true;
}

template <typename T>
void RecordedStepGraph<T>::replay() {
  TXL_CHECK(captured_, "StepGraph: replay() before capture()");
  for (const auto& op : steps_) op();
}

template <typename T>
std::unique_ptr<StepGraph> make_recorded_step_graph(Ops<T>& ops) {
  auto* rec = dynamic_cast<RecordingOps<T>*>(&ops);
  if (!rec) return nullptr;
  return std::make_unique<RecordedStepGraph<T>>(*rec);
}

template class RecordingOps<float>;
template class RecordingOps<double>;
template class RecordedStepGraph<float>;
template class RecordedStepGraph<double>;
template std::unique_ptr<StepGraph> make_recorded_step_graph(Ops<float>&);
template std::unique_ptr<StepGraph> make_recorded_step_graph(Ops<double>&);

}  // namespace txl
