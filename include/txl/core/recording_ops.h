// RecordingOps<T>: an Ops<T> that forwards every op to another backend (forwarding_ops.h), and that can
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

#include "txl/core/forwarding_ops.h"
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

  int open_pool();                 // blocks allocated or freed from now on belong to the new pool
  void close_pool();               // stop adding to the open pool (it stays reserved)
  void release_pool(int pool);     // frees the pool's freed blocks; its live blocks are freed normally later
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
class RecordingOps final : public ForwardingOps<T> {
 public:
  using Recording = std::vector<std::function<void()>>;

  explicit RecordingOps(std::unique_ptr<Ops<T>> inner);
  RecordingAllocator& recording_allocator() { return alloc_; }

  // Between begin and end every device op is appended to the recording instead of running.
  void begin_recording();
  Recording end_recording();
  bool recording() const { return recording_; }

  Allocator& allocator() override { return alloc_; }
  const char* name() const override { return name_.c_str(); }

 protected:
  void host_op(const char* op, const std::function<void()>& call) override;
  void device_op(const char* op, std::function<void()> call) override;

 private:
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
