// StepGraph: records what one step enqueues on a backend once, then replays the same
// work many times with one call. The CUDA implementation is a CUDA graph (CudaGraph,
// include/txl/cuda/cuda_graph.h); the CPU twin replays recorded op calls
// (RecordedStepGraph, include/txl/core/recording_ops.h), so the rules below are tested
// on any machine.
//
// Rules for a step that is recorded (a replay re-runs the same ops with the same
// pointers and scalars; host code inside the step does NOT run again):
//  - capture() only records: nothing executes until replay();
//  - run the step eagerly once before capturing, so every buffer it uses exists;
//  - the step must not return data to the host or take data from it (no download,
//    upload, sum): capture then fails with a txl::Error naming the op;
//  - inputs are written into the same buffers before each replay, and state carried
//    between steps (the Transformer-XL memory) is updated in place inside the step;
//  - memory allocated while recording stays reserved until the graph is destroyed.
#pragma once
#include <cstddef>
#include <functional>

namespace txl {

class StepGraph {
 public:
  virtual ~StepGraph() = default;
  // Records what `step` enqueues and makes it replayable; replaces a previous capture.
  virtual void capture(const std::function<void()>& step) = 0;
  // Runs the recorded work (asynchronously on the CUDA backend's stream).
  virtual void replay() = 0;
  virtual bool captured() const = 0;
  // Recorded operations (kernels, copies and memsets for CUDA; op calls for the CPU twin).
  virtual size_t num_nodes() const = 0;
};

}  // namespace txl
