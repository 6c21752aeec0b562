// CudaGraph: records the ops that one step enqueues on a CUDA backend's stream into a
// CUDA graph, then replays the whole step with one launch (the counterpart of the
// recipe's TorchScript inference path; `txl_eval --type graph` through EvalStep). The
// StepGraph for CUDA backends; its CPU twin is RecordedStepGraph (recording_ops.h).
//
// A replay re-runs the recorded kernels with the recorded pointers and scalars, so:
//  - run the step once eagerly before capture: every persistent buffer (activations kept
//    by ensure(), memory tensors, the cached optimizer plan) must already exist;
//  - the captured step must not synchronise (no download, upload, sum or sum_squares):
//    inputs are uploaded into the same device buffers before each replay(), outputs are
//    downloaded after it;
//  - state that changes between replays (e.g. the Transformer-XL memory) must be updated
//    in place inside the step (copy into the same buffers), not by swapping tensors.
// Memory allocated during capture belongs to a private pool of the arena and stays
// reserved until the graph is destroyed, so a replay never writes into memory that has
// been handed to someone else.
#pragma once
#include <cuda_runtime.h>

#include <functional>

#include "txl/core/step_graph.h"
#include "txl/cuda/cuda_ops.h"

namespace txl {

class CudaGraph final : public StepGraph {
 public:
  explicit CudaGraph(Ops<float>& cuda_ops);  // throws when `cuda_ops` is not a CUDA backend
  ~CudaGraph() override;
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Records what `step` enqueues (nothing executes) and instantiates the graph. Replaces
  // a previous capture.
  void capture(const std::function<void()>& step) override;
  // Launches the recorded step on the backend's stream (asynchronous).
  void replay() override;
  bool captured() const override { return exec_ != nullptr; }
  size_t num_nodes() const override;  // kernels, copies and memsets in the graph

 private:
  void reset();
  CudaBackend& backend_;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  int pool_ = 0;
};

}  // namespace txl
