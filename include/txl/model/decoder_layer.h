// One Transformer-XL decoder layer: attention block (relative for attn_type 0 and 1,
// standard for the absolute-position types 2 and 3), then position-wise feed-forward block
// (docs/model.md §4).
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "txl/model/positionwise_ff.h"
#include "txl/model/multihead_attention.h"
#include "txl/model/rel_attention.h"

namespace txl {

template <typename T>
class DecoderLayer {
 public:
  DecoderLayer(const ModelConfig& cfg, int64_t layer);

  // pos_ff first, then dec_attn: the order in which backward finalises their gradients.
  void register_params(ParamStore<T>& store);
  // The relative attention block (attn_type 0 and 1), to bind its position parameters;
  // null for the absolute types.
  RelMultiHeadAttention<T>* relative_attention() { return rel_attn_.get(); }
  void set_dropout(double dropout, double dropatt) {
    attn_->set_dropout(dropout, dropatt);
    ff_.set_dropout(dropout);
  }

  // cat [K*B, M] = concat(memory, layer input); pos [K, M]; out [Q*B, M] (must not alias
  // cat). cat and pos must stay unchanged until backward.
  void forward(Ops<T>& ops, const ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g, const T* cat,
               const T* pos, T* out);
  // dout [Q*B, M] -> dh [Q*B, M] (overwritten; must not alias dout); dmem (absolute
  // types only; may be null): the gradient w.r.t. the memory rows of cat. grad_ready (if
  // set) is called for each parameter of this layer once its gradient is final.
  void backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g, const T* dout,
                T* dh, T* dmem, const std::function<void(int)>& grad_ready);

  std::vector<int> param_ids() const;  // registration order

 private:
  int64_t d_model_;
  std::unique_ptr<RelMultiHeadAttention<T>> rel_attn_;
  std::unique_ptr<MultiHeadAttention<T>> abs_attn_;
  AttentionBlock<T>* attn_ = nullptr;  // the one of the two that exists
  PositionwiseFF<T> ff_;
  Tensor<T> mid_;  // [Q*B, M] attention block output = feed-forward input
};

}  // namespace txl
