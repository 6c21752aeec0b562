// One Transformer-XL decoder layer: relative attention block, then position-wise
// feed-forward block (SPEC §3.3).
#pragma once
#include <functional>
#include <vector>

#include "txl/model/positionwise_ff.h"
#include "txl/model/rel_attention.h"

namespace txl {

template <typename T>
class DecoderLayer {
 public:
  DecoderLayer(const ModelConfig& cfg, int64_t layer);

  // pos_ff first, then dec_attn: the order in which backward finalises their gradients.
  void register_params(ParamStore<T>& store);
  void bind_shared_biases(int r_w_bias_id, int r_r_bias_id) { attn_.bind_shared_biases(r_w_bias_id, r_r_bias_id); }
  void set_dropout(double dropout, double dropatt) {
    attn_.set_dropout(dropout, dropatt);
    ff_.set_dropout(dropout);
  }

  // cat [K*B, M] = concat(memory, layer input); pos [K, M]; out [Q*B, M] (must not alias
  // cat). cat and pos must stay unchanged until backward.
  void forward(Ops<T>& ops, const ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g, const T* cat,
               const T* pos, T* out);
  // dout [Q*B, M] -> dh [Q*B, M] (overwritten; must not alias dout). grad_ready (if set) is
  // called for each parameter of this layer once its gradient is final.
  void backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g, const T* dout,
                T* dh, const std::function<void(int)>& grad_ready);

  std::vector<int> param_ids() const;  // registration order

 private:
  int64_t d_model_;
  RelMultiHeadAttention<T> attn_;
  PositionwiseFF<T> ff_;
  Tensor<T> mid_;  // [Q*B, M] attention block output = feed-forward input
};

}  // namespace txl
