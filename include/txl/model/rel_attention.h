// Relative multi-head attention of Transformer-XL (docs/model.md §4, attn_type 0), forward and
// backward written out by hand against Ops<T>. Includes the residual connection and the
// block's LayerNorm (post-LN: after the residual; pre-LN: on concat(mem, h) before qkv).
// With learned positions (attn_type 1, Shaw et al.; docs/model.md) R is this layer's slice
// of the model's r_emb table instead of r_net(pos), the BD term adds r_bias and uses q
// without a bias, and u is this layer's row of r_w_bias.
//
// Layouts (Q = qlen, K = klen, B = batch, H heads of width D, M = d_model):
//   cat [K, B, M] time-major (memory rows first), pos [K, M] (position klen-1 first).
//   attn_type 0: q [Q*B, HD], k|v [K*B, 2HD], R [K, HD] stay in the projections' rows (the
//   fused op addresses head h at column h*D); attn_type 1: per-head tensors head-major
//   [H, B, len, D], scores/probs [H*B, Q, K].
#pragma once
#include <string>
#include <vector>

#include "txl/model/attention_block.h"
#include "txl/model/attention_output.h"
#include "txl/model/layer_workspace.h"
#include "txl/model/model_config.h"
#include "txl/model/step_geometry.h"

namespace txl {

template <typename T>
class RelMultiHeadAttention : public AttentionBlock<T> {
 public:
  RelMultiHeadAttention(const ModelConfig& cfg, int64_t layer);

  // layers.{L}.dec_attn.{qkv_net,r_net,o_net}.weight and .layer_norm.{weight,bias}; no
  // r_net with learned positions.
  void register_params(ParamStore<T>& store) override;
  // attn_type 0: the biases u = r_w_bias and w = r_r_bias are model-level parameters
  // shared by layers.
  void bind_shared_biases(int r_w_bias_id, int r_r_bias_id);
  // attn_type 1: model-level r_emb [n_layer, table_rows, H, D], r_w_bias [n_layer, H, D],
  // r_bias [n_layer, table_rows, H]; `rows` [klen] (device, owned by the model and filled
  // before every forward, learned_position_rows.h) picks the table rows of the step.
  void bind_learned_positions(int r_emb_id, int r_w_bias_id, int r_bias_id, int64_t table_rows,
                              const Tensor<int32_t>* rows);
  void set_dropout(double dropout, double dropatt) override { output_.set_dropout(dropout, dropatt); }

  // cat [K*B, M]: the memory rows, then the layer input h (the last Q*B rows).
  // pos [K, M]: the position embedding (after its dropout). Both must stay unchanged until
  // backward. out [Q*B, M] = LayerNorm(h + o) (post-LN) or h + o (pre-LN).
  // pos is unused with learned positions.
  void forward(Ops<T>& ops, const ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g, const T* cat,
               const T* pos, T* out) override;
  // dout [Q*B, M] -> dh [Q*B, M] (overwritten): gradient w.r.t. h. No gradient flows into
  // the memory rows (dmem must be null). Parameter gradients (including the model-level
  // position parameters) are accumulated.
  void backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g, const T* dout,
                T* dh, T* dmem) override;

  // This block's own parameters (not u, w, r_emb, r_bias), in registration order.
  std::vector<int> param_ids() const override;

 private:
  int64_t layer_, n_head_, d_head_, d_model_;
  bool pre_lnorm_;
  int qkv_id_ = -1, r_net_id_ = -1;
  int r_w_bias_id_ = -1, r_r_bias_id_ = -1;
  bool learned_;  // attn_type 1
  int r_emb_id_ = -1, r_bias_id_ = -1;
  int64_t table_rows_ = 0;
  const Tensor<int32_t>* table_rows_used_ = nullptr;  // [K] rows of r_emb / r_bias
  AttentionOutput<T> output_;  // softmax .. LayerNorm, and o_net

  // Kept from forward for backward.
  StepGeometry geometry_;
  const T* cat_ = nullptr;      // [K*B, M] (owned by the model)
  const T* pos_ = nullptr;      // [K, M] (owned by the model)
  Tensor<T> ln_cat_;            // [K*B, M] pre-LN: LayerNorm(cat)
  // attn_type 0 (Ops::rel_attention_fwd reads the heads from the projections' rows; the
  // attention output itself is the o_net input, kept by output_).
  Tensor<T> q_lin_;             // [Q*B, HD] q projection
  Tensor<T> kv_lin_;            // [K*B, 2HD] k | v projection
  Tensor<T> r_lin_;             // [K, HD] R = pos · W_rᵀ
  Tensor<T> lse_;               // [H*B, Q] row log-sum-exps of the scores
  // attn_type 1 (the unfused path).
  Tensor<T> qu_, qw_;           // [H, B, Q, D] q + u, q
  Tensor<T> kh_, vh_;           // [H, B, K, D]
  Tensor<T> rh_;                // [H, K, D] R split by head

  RelAttentionArgs fused_args(const StepGeometry& g) const;
};

}  // namespace txl
