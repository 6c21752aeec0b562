// The half of multi-head attention that every position scheme shares (docs/model.md
// §4.2-§4.3, §9): masked softmax of the scores, dropatt, the weighted sum of the values,
// o_net, its dropout, the residual and the block's LayerNorm; and, backwards, everything
// from the block's output gradient down to the gradient of the scores, plus the content
// term q·kᵀ. RelMultiHeadAttention (attn_type 0, 1) and MultiHeadAttention (2, 3) compute
// their own q, k, v and scores and hand them to this part.
//
// Layouts as in rel_attention.h: per-head tensors [H, B, len, D], scores [H*B, Q, K],
// rows [Q*B, M] time-major.
#pragma once
#include <string>

#include "txl/core/param_store.h"
#include "txl/model/dropout_sites.h"
#include "txl/model/layer_norm.h"
#include "txl/model/layer_workspace.h"
#include "txl/model/model_config.h"
#include "txl/model/step_geometry.h"

namespace txl {

template <typename T>
class AttentionOutput {
 public:
  AttentionOutput(const ModelConfig& cfg, int64_t layer);

  // prefix + "o_net.weight" [M, HD], then prefix + "layer_norm.{weight,bias}".
  void register_params(ParamStore<T>& store, const std::string& prefix);
  void set_dropout(double dropout, double dropatt) {
    dropout_ = dropout;
    dropatt_ = dropatt;
  }
  int o_net_id() const { return o_net_id_; }
  double dropatt() const { return dropatt_; }
  // The block's LayerNorm: after the residual (post-LN), or on the keys' rows before the
  // projections (pre-LN), which the block applies itself.
  LayerNorm<T>& layer_norm() { return layer_norm_; }
  const LayerNorm<T>& layer_norm() const { return layer_norm_; }

  // ws.scores [H*B, Q, K] (unscaled, unmasked scores; overwritten), vh [H, B, K, D] (kept
  // until backward), h [Q*B, M] the block input -> out [Q*B, M]: LayerNorm(h + o) post-LN,
  // h + o pre-LN.
  void forward(Ops<T>& ops, const ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g, const T* vh,
               const T* h, T* out);
  // dout [Q*B, M] -> dh [Q*B, M] (the residual's share, overwritten), ws.d_vh = d v, and
  // ws.scores = d scores (the unscaled scores' gradient). o_net and LayerNorm gradients
  // are accumulated.
  void backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g, const T* vh,
                const T* dout, T* dh);
  // The second half of forward on its own: av [H, B, Q, D] (the weighted sum of the
  // values) and h -> out: heads merged, o_net, dropout, residual, LayerNorm.
  void project(Ops<T>& ops, const ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g, const T* av,
               const T* h, T* out);
  // Its backward: dout -> dh (overwritten) and ws.av = d av; o_net and LayerNorm gradients
  // accumulated.
  void project_backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g,
                        const T* dout, T* dh);
  // For a caller that writes the attention output with the heads already merged (attn_type
  // 0: Ops::rel_attention_fwd): the o_net input attn_vec [Q*B, HD], sized for g. It is
  // kept until backward; fill it, then call project_merged.
  T* attn_vec(Ops<T>& ops, const StepGeometry& g);
  const T* attn_vec() const { return attn_vec_.data(); }
  // project without the merge: attn_vec (as filled) and h -> out.
  void project_merged(Ops<T>& ops, const ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g,
                      const T* h, T* out);
  // Its backward: dout -> dh (overwritten) and d_attn_vec [Q*B, HD] (overwritten) in the
  // layout of attn_vec; o_net and LayerNorm gradients accumulated.
  void project_merged_backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g,
                               const T* dout, T* dh, T* d_attn_vec);
  // The content term scores += q·kᵀ backwards: from ws.scores, ws.d_qu = d q and
  // ws.d_kh = d k (both overwritten). q [H, B, Q, D], kh [H, B, K, D].
  void content_backward(Ops<T>& ops, LayerWorkspace<T>& ws, const StepGeometry& g, const T* q, const T* kh) const;

 private:
  const T* probs_used() const { return drop_probs_.active ? probs_drop_.data() : probs_.data(); }

  int64_t layer_, n_head_, d_head_, d_model_;
  bool pre_lnorm_;
  double dropout_, dropatt_;
  int o_net_id_ = -1;
  LayerNorm<T> layer_norm_;

  // Kept from forward for backward.
  Tensor<T> probs_;       // [H*B, Q, K] softmax output
  Tensor<T> probs_drop_;  // [H*B, Q, K] after dropatt (only when active)
  Tensor<T> attn_vec_;    // [Q*B, HD] heads merged
  Tensor<T> x1_;          // [Q*B, M] post-LN: h + o (LayerNorm input)
  DropoutPlan drop_probs_, drop_out_;
};

}  // namespace txl
