// RecordingOps<T>: an Ops<T> that forwards every op to another backend, and that can
// instead RECORD the ops for later replay — the CPU twin of CUDA-graph capture.
// RecordedStepGraph is the StepGraph built on it: capture() records the op calls of a
// step (arguments by value: the same pointers and scalars, as a CUDA graph keeps them),
// replay() runs them again. Ops that move data to or from the host (upload, download,
// synchronize, sum, sum_squares, sum_squares_slices) are refused while recording, as a
// CUDA capture refuses them, so a model step that obeys step_graph.h's rules here obeys
// them on the GPU. Memory freed while recording, or allocated while recording, stays
// reserved until the recording is discarded (the arena's private pool on CUDA).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "txl/core/ops.h"
#include "txl/core/step_graph.h"

namespace txl {

// Forwards to another allocator; keeps blocks of live recordings from being reused.
class RecordingAllocator final : public Allocator {
 public:
  explicit RecordingAllocator(Allocator& inner) : inner_(inner) {}
  ~RecordingAllocator() override;
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  Device device() const override { return inner_.device(); }

  int open_pool();        // blocks allocated or freed from now on belong to the new pool
  void close_pool();      // stop adding to the open pool (it stays reserved)
  void release_pool(int pool);  // frees the pool's freed blocks; its live blocks are freed normally later
  size_t reserved_blocks() const;  // freed blocks held back by pools

 private:
  struct Pool {
    std::vector<std::pair<void*, size_t>> held;  // freed while reserved
  };
  Allocator& inner_;
  int next_pool_ = 1;
  int open_ = 0;
  std::unordered_map<int, Pool> pools_;
  std::unordered_map<void*, int> owner_;  // block -> pool it was allocated in
};

template <typename T>
class RecordingOps final : public Ops<T> {
 public:
  using Recording = std::vector<std::function<void()>>;

  explicit RecordingOps(std::unique_ptr<Ops<T>> inner);
  Ops<T>& inner() { return *inner_; }
  RecordingAllocator& recording_allocator() { return alloc_; }

  // Between begin and end every op is appended to the recording instead of running.
  void begin_recording();
  Recording end_recording();
  bool recording() const { return recording_; }

  Device device() const override { return inner_->device(); }
  Allocator& allocator() override { return alloc_; }
  const char* name() const override { return name_.c_str(); }

  void upload(void* dst, const void* host_src, size_t bytes) override;
  void download(void* host_dst, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void synchronize() override;
  void fill(T* x, int64_t n, T value) override;
  void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B,
            int64_t ldb, T beta, T* C, int64_t ldc) override;
  void gemm_strided_batched(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                            int64_t strideA, const T* B, int64_t ldb, int64_t strideB, T beta, T* C, int64_t ldc,
                            int64_t strideC, int64_t batch) override;
  void add_bias(T* y, const T* bias, int64_t rows, int64_t cols) override;
  void bias_grad(const T* dy, T* dbias, int64_t rows, int64_t cols) override;
  void axpy(int64_t n, T alpha, const T* x, T* y) override;
  void scale(int64_t n, T alpha, T* x) override;
  void add(int64_t n, const T* a, const T* b, T* out) override;
  void relu_fwd(int64_t n, const T* x, T* y) override;
  void relu_bwd(int64_t n, const T* y, const T* dy, T* dx) override;
  void dropout(const T* x, T* y, float p, const DropoutKey& key, const BatchLayout& layout) override;
  void layernorm_fwd(int64_t rows, int64_t cols, const T* x, const T* gamma, const T* beta, T eps, T* y, T* mean,
                     T* rstd) override;
  void layernorm_bwd(int64_t rows, int64_t cols, const T* dy, const T* x, const T* gamma, const T* mean,
                     const T* rstd, T* dx, T* dgamma, T* dbeta) override;
  void split_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                   const T* bias, T* dst) override;
  void merge_heads(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head, int64_t ld,
                   bool accumulate, T* dst) override;
  void head_bias_grad(const T* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head,
                      T* bias_grad) override;
  void rel_shift_add(const T* bd_raw, int64_t n, int64_t qlen, int64_t klen, int64_t mlen, T* scores) override;
  void rel_shift_bwd(const T* d_scores, int64_t n, int64_t qlen, int64_t klen, int64_t mlen, T* d_bd_raw) override;
  void attn_softmax_fwd(const T* scores, int64_t n, int64_t qlen, int64_t klen, T scale, const AttnMask& mask,
                        T* probs) override;
  void attn_softmax_bwd(const T* probs, const T* d_probs, int64_t n, int64_t qlen, int64_t klen, T scale,
                        T* d_scores) override;
  void gather_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) override;
  void scatter_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) override;
  void scatter_add_rows(const T* src, const int32_t* idx, int64_t n, int64_t cols, T* dst) override;
  void log_softmax(const T* logits, int64_t rows, int64_t cols, T* logp) override;
  void pick_cols(const T* logp, const int32_t* col, int64_t rows, int64_t cols, bool accumulate, T* out) override;
  void log_softmax_pick_bwd(const T* logp, const int32_t* col, const T* coef, int64_t rows, int64_t cols,
                            T* dlogits) override;
  double sum(const T* x, int64_t n) override;
  double sum_squares(const T* x, int64_t n) override;
  std::vector<double> sum_squares_slices(const T* x, const std::vector<FlatSlice>& slices) override;
  void lamb_step(T* p, const T* g, T* m, T* v, const std::vector<FlatSlice>& slices, const OptimStep& s) override;
  void adam_step(T* p, const T* g, T* m, T* v, int64_t n, const OptimStep& s) override;
  void sgd_step(T* p, const T* g, T* buf, int64_t n, const OptimStep& s) override;
  void adagrad_step(T* p, const T* g, T* sum, int64_t n, const OptimStep& s) override;

 private:
  template <typename F>
  void run(F&& op) {
    if (recording_) recording_ops_.emplace_back(std::forward<F>(op));
    else op();
  }
  void refuse_while_recording(const char* op) const;

  std::unique_ptr<Ops<T>> inner_;
  RecordingAllocator alloc_;
  std::string name_;
  bool recording_ = false;
  Recording recording_ops_;
};

// StepGraph over a RecordingOps backend (the CPU twin of CudaGraph).
template <typename T>
class RecordedStepGraph final : public StepGraph {
 public:
  explicit RecordedStepGraph(RecordingOps<T>& ops) : ops_(ops) {}
  ~RecordedStepGraph() override;
  RecordedStepGraph(const RecordedStepGraph&) = delete;
  RecordedStepGraph& operator=(const RecordedStepGraph&) = delete;

  void capture(const std::function<void()>& step) override;
  void replay() override;
  bool captured() const override { return captured_; }
  size_t num_nodes() const override { return steps_.size(); }

 private:
  void reset();
  RecordingOps<T>& ops_;
  typename RecordingOps<T>::Recording steps_;
  bool captured_ = false;
  int pool_ = 0;
};

// The StepGraph for `ops`: RecordedStepGraph for a RecordingOps backend, nullptr for any
// other (the CUDA one is made by make_cuda_step_graph, include/txl/cuda/cuda_graph.h).
template <typename T>
std::unique_ptr<StepGraph> make_recorded_step_graph(Ops<T>& ops);

}  // namespace txl
