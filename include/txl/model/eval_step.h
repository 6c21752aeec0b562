// EvalStep: the evaluation forward pass (no dropout, memory carried between calls) that
// can replay its decoder layers from a StepGraph — `txl_eval --type graph`, the
// counterpart of the recipe's TorchScript path. Per call:
//   1. model.forward_embed (eager: token ids to the device, embedding, position rows);
//   2. the decoder layers and the in-place memory update: replayed from the graph when
//      this step has the geometry (qlen, mlen, batch) and memory buffers of the recorded
//      one and every step since the recording had it too; recorded (then replayed) when
//      the previous step had the same geometry, so every buffer the step uses already
//      exists; run eagerly otherwise (the first steps while the memory fills, a shorter
//      last batch);
//   3. model.forward_loss (eager: the adaptive softmax partitions tokens by cluster on
//      the host, so its shapes change from batch to batch).
// Without a graph every step is eager (model.forward). Results are the same either way:
// a replay runs the same kernels on the same buffers.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "txl/core/step_graph.h"
#include "txl/model/transformer_xl.h"

namespace txl {

template <typename T>
class EvalStep {
 public:
  // `graph` may be null (eager).
  EvalStep(TransformerXL<T>& model, std::unique_ptr<StepGraph> graph);

  // As TransformerXL::forward; ctx.train must be false when a graph is used.
  const Tensor<T>& forward(const int32_t* data, const int32_t* target, int64_t qlen, int64_t batch, Memory<T>& mem,
                           const StepContext& ctx);

  bool graphed() const { return graph_ != nullptr; }
  int64_t captures() const { return captures_; }  // recordings made
  int64_t replays() const { return replays_; }    // steps whose layers were replayed
  size_t graph_nodes() const { return graph_ ? graph_->num_nodes() : 0; }

 private:
  struct Key {
    int64_t qlen = -1, mlen = -1, batch = -1;
    std::vector<const void*> buffers;  // memory layer buffers at the start of the step
    bool operator==(const Key&) const = default;
  };
  Key key_of(const Memory<T>& mem) const;

  TransformerXL<T>& model_;
  std::unique_ptr<StepGraph> graph_;
  Key previous_, recorded_;
  int64_t captures_ = 0, replays_ = 0;
};

}  // namespace txl
