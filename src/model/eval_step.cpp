#include "txl/model/eval_step.h"

namespace txl {

template <typename T>
EvalStep<T>::EvalStep(TransformerXL<T>& model, std::unique_ptr<StepGraph> graph)
    : model_(model), graph_(std::move(graph)) {}

template <typename T>
typename EvalStep<T>::Key EvalStep<T>::key_of(const Memory<T>& mem) const {
  const StepGeometry& g = model_.geometry();
  Key k{g.qlen, g.mlen, g.batch, {}};
  for (const Tensor<T>& t : mem.layers) k.buffers.push_back(t.data());
  return k;
}

template <typename T>
const Tensor<T>& EvalStep<T>::forward(const int32_t* data, const int32_t* target, int64_t qlen, int64_t batch,
                                      Memory<T>& mem, const StepContext& ctx) {
  if (!graph_) return model_.forward(data, target, qlen, batch, mem, ctx);
  TXL_CHECK(!ctx.train, "EvalStep: training steps (dropout) cannot be replayed from a graph");
  model_.forward_embed(data, target, qlen, batch, mem, ctx);
  const Key key = key_of(mem);
  // Only a step that keeps its memory length writes the memory in its own buffers, so
  // only such a step can be replayed (the model checks it again after each replay).
  const bool steady = model_.keeps_memory_length();
  // A recording is valid only while the geometry stays the same from step to step: a
  // different step in between may reallocate buffers it uses (activations, the position
  // embedding), so it is recorded anew afterwards.
  if (!(key == previous_)) recorded_ = Key{};
  if (steady && graph_->captured() && key == recorded_) {
    graph_->replay();
    model_.forward_layers_replayed(mem);
    ++replays_;
  } else if (steady && key == previous_) {
    // The host side of forward_layers runs now; its device work is recorded, then replayed.
    graph_->capture([&] { model_.forward_layers(mem); });
    ++captures_;
    recorded_ = key;
    graph_->replay();
    ++replays_;
  } else {
    model_.forward_layers(mem);
  }
  previous_ = key;
  return model_.forward_loss();
}

template class EvalStep<float>;
template class EvalStep<double>;

}  // namespace txl
