// Standard multi-head attention over concat(memory, input), for the absolute-position
// models (attn_type 2 and 3: the model adds the positions to the layer inputs; the block
// itself sees none), forward and backward written out by hand against Ops<T>. Residual
// and LayerNorm included (post-LN: after the residual). With pre-LN only k and v read
// LayerNorm(concat(mem, h)); q reads h itself, as in the recipe.
//
// Layouts as in rel_attention.h: cat [K, B, M] time-major (memory rows first), per-head
// tensors [H, B, len, D], scores/probs [H*B, Q, K].
#pragma once
#include <string>
#include <vector>

#include "txl/model/attention_block.h"
#include "txl/model/attention_output.h"
#include "txl/model/model_config.h"

namespace txl {

template <typename T>
class MultiHeadAttention : public AttentionBlock<T> {
 public:
  MultiHeadAttention(const ModelConfig& cfg, int64_t layer);

  // layers.{L}.dec_attn.{q_net,kv_net,o_net}.weight and .layer_norm.{weight,bias}.
  void register_params(ParamStore<T>& store) override;
  void set_dropout(double dropout, double dropatt) override { output_.set_dropout(dropout, dropatt); }
  // pos is unused.
  void forward(Ops<T>& ops, const ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g, const T* cat,
               const T* pos, T* out) override;
  void backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g, const T* dout,
                T* dh, T* dmem) override;
  std::vector<int> param_ids() const override;

 private:
  int64_t layer_, n_head_, d_head_, d_model_;
  bool pre_lnorm_;
  int q_id_ = -1, kv_id_ = -1;
  AttentionOutput<T> output_;  // softmax .. LayerNorm, and o_net

  // Kept from forward for backward.
  StepGeometry geometry_;
  const T* cat_ = nullptr;  // [K*B, M] (owned by the model)
  Tensor<T> ln_cat_;        // [K*B, M] pre-LN: LayerNorm(cat)
  Tensor<T> qh_;            // [H, B, Q, D]
  Tensor<T> kh_, vh_;       // [H, B, K, D]
};

}  // namespace txl
