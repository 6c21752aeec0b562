#include "txl/model/rel_attention.h"

#include <cmath>

#include <fmt/format.h>

#include "txl/model/linear.h"

namespace txl {

template <typename T>
RelMultiHeadAttention<T>::RelMultiHeadAttention(const ModelConfig& cfg, int64_t layer)
    : layer_(layer),
      n_head_(cfg.n_head),
      d_head_(cfg.d_head),
      d_model_(cfg.d_model),
      pre_lnorm_(cfg.pre_lnorm),
      learned_(cfg.attn_type == 1),
      output_(cfg, layer) {}

template <typename T>
void RelMultiHeadAttention<T>::register_params(ParamStore<T>& store) {
  const std::string prefix = fmt::format("layers.{}.dec_attn.", layer_);
  const int64_t hd = n_head_ * d_head_;
  // qkv_net rows: [0, HD) q, [HD, 2HD) k, [2HD, 3HD) v; head h uses columns h*D..h*D+D-1.
  qkv_id_ = store.add(prefix + "qkv_net.weight", {3 * hd, d_model_}, ParamInit::kWeight);
  if (!learned_) r_net_id_ = store.add(prefix + "r_net.weight", {hd, d_model_}, ParamInit::kWeight);
  output_.register_params(store, prefix);
}

template <typename T>
void RelMultiHeadAttention<T>::bind_shared_biases(int r_w_bias_id, int r_r_bias_id) {
  r_w_bias_id_ = r_w_bias_id;
  r_r_bias_id_ = r_r_bias_id;
}

template <typename T>
void RelMultiHeadAttention<T>::bind_learned_positions(int r_emb_id, int r_w_bias_id, int r_bias_id,
                                                      int64_t table_rows, const Tensor<int32_t>* rows) {
  TXL_CHECK(learned_, "layer {}: learned positions bound to an attn_type 0 block", layer_);
  r_emb_id_ = r_emb_id;
  r_w_bias_id_ = r_w_bias_id;
  r_bias_id_ = r_bias_id;
  table_rows_ = table_rows;
  table_rows_used_ = rows;
}

template <typename T>
std::vector<int> RelMultiHeadAttention<T>::param_ids() const {
  const LayerNorm<T>& ln = output_.layer_norm();
  if (learned_) return {qkv_id_, output_.o_net_id(), ln.weight_id(), ln.bias_id()};
  return {qkv_id_, r_net_id_, output_.o_net_id(), ln.weight_id(), ln.bias_id()};
}

template <typename T>
void RelMultiHeadAttention<T>::forward(Ops<T>& ops, const ParamStore<T>& store, LayerWorkspace<T>& ws,
                                       const StepGeometry& g, const T* cat, const T* pos, T* out) {
  TXL_CHECK(learned_ ? r_emb_id_ >= 0 && table_rows_used_ != nullptr : r_w_bias_id_ >= 0 && r_r_bias_id_ >= 0,
            "layer {}: attention position parameters not bound", layer_);
  TXL_CHECK(!learned_ || table_rows_used_->numel() == g.klen, "layer {}: {} learned position rows for klen {}",
            layer_, learned_ ? table_rows_used_->numel() : 0, g.klen);
  const int64_t Q = g.qlen, K = g.klen, B = g.batch, H = n_head_, D = d_head_, M = d_model_, HD = H * D;
  const int64_t NQ = g.query_rows(), NK = g.key_rows(), NM = g.memory_rows();
  geometry_ = g;
  cat_ = cat;
  pos_ = pos;
  const T* w_qkv = store.param(qkv_id_).data();

  // Projections. q only for the Q new rows; k and v for all K rows (memory included).
  const T* x = cat;
  if (pre_lnorm_) {
    ensure(ops, ln_cat_, {NK, M});
    output_.layer_norm().forward(ops, store, cat, NK, ln_cat_.data());
    x = ln_cat_.data();
  }

  if (!learned_) {
    // attn_type 0: the projections are kept (the fused backward reads them) and the fused
    // attention reads its heads from their rows, adds u and w itself, and writes the o_net
    // input with the heads merged.
    ensure(ops, q_lin_, {NQ, HD});
    ensure(ops, kv_lin_, {NK, 2 * HD});
    ensure(ops, r_lin_, {K, HD});
    linear_forward<T>(ops, x + NM * M, NQ, M, w_qkv, HD, nullptr, q_lin_.data());
    linear_forward<T>(ops, x, NK, M, w_qkv + HD * M, 2 * HD, nullptr, kv_lin_.data());
    linear_forward<T>(ops, pos, K, M, store.param(r_net_id_).data(), HD, nullptr, r_lin_.data());
    ensure(ops, lse_, {H * B, Q});
    ops.rel_attention_fwd(fused_args(g), q_lin_.data(), store.param(r_w_bias_id_).data(),
                          store.param(r_r_bias_id_).data(), kv_lin_.data(), kv_lin_.data() + HD, r_lin_.data(),
                          output_.attn_vec(ops, g), lse_.data());
    output_.project_merged(ops, store, ws, g, cat + NM * M, out);
    return;
  }

  ensure(ops, ws.q_lin, {NQ, HD});
  ensure(ops, ws.kv_lin, {NK, 2 * HD});
  linear_forward<T>(ops, x + NM * M, NQ, M, w_qkv, HD, nullptr, ws.q_lin.data());
  linear_forward<T>(ops, x, NK, M, w_qkv + HD * M, 2 * HD, nullptr, ws.kv_lin.data());

  ensure(ops, qu_, {H, B, Q, D});
  ensure(ops, qw_, {H, B, Q, D});
  ensure(ops, kh_, {H, B, K, D});
  ensure(ops, vh_, {H, B, K, D});
  ops.split_heads(ws.q_lin.data(), Q, B, H, D, HD, store.param(r_w_bias_id_).data() + layer_ * HD, qu_.data());
  ops.split_heads(ws.q_lin.data(), Q, B, H, D, HD, nullptr, qw_.data());
  ops.split_heads(ws.kv_lin.data(), K, B, H, D, 2 * HD, nullptr, kh_.data());
  ops.split_heads(ws.kv_lin.data() + HD, K, B, H, D, 2 * HD, nullptr, vh_.data());

  // R [K, HD] -> [H, K, D]: the step's rows of this layer's r_emb.
  ensure(ops, ws.r_lin, {K, HD});
  ensure(ops, rh_, {H, K, D});
  ops.gather_rows(store.param(r_emb_id_).data() + layer_ * table_rows_ * HD, table_rows_used_->data(), K, HD,
                  ws.r_lin.data());
  ops.split_heads(ws.r_lin.data(), K, 1, H, D, HD, nullptr, rh_.data());

  // attn_type 1. AC[n] = (q+u)[n] · k[n]ᵀ over n = (h, b). BD_raw for head h: (q+w)[h] viewed
  // as [B*Q, D] times R[h]ᵀ (+ r_bias); the relative shift adds BD_raw[n, i, klen-1-mlen-i+j].
  ensure(ops, ws.scores, {H * B, Q, K});
  ensure(ops, ws.bd, {H * B, Q, K});
  ops.gemm_strided_batched(Trans::kNo, Trans::kYes, Q, K, D, T(1), qu_.data(), D, Q * D, kh_.data(), D, K * D, T(0),
                           ws.scores.data(), K, Q * K, H * B);
  ops.gemm_strided_batched(Trans::kNo, Trans::kYes, B * Q, K, D, T(1), qw_.data(), D, B * Q * D, rh_.data(), D,
                           K * D, T(0), ws.bd.data(), K, B * Q * K, H);
  // BD_raw[h, b, i, r] += r_bias[row r, h]: per head, ones[B*Q] times that column.
  ensure(ops, ws.r_bias, {K, H});
  ensure(ops, ws.ones, {B * Q});
  ops.fill(ws.ones.data(), B * Q, T(1));
  ops.gather_rows(store.param(r_bias_id_).data() + layer_ * table_rows_ * H, table_rows_used_->data(), K, H,
                  ws.r_bias.data());
  for (int64_t h = 0; h < H; ++h)
    ops.gemm(Trans::kNo, Trans::kYes, B * Q, K, 1, T(1), ws.ones.data(), 1, ws.r_bias.data() + h, H, T(1),
             ws.bd.data() + h * B * Q * K, K);
  ops.rel_shift_add(ws.bd.data(), H * B, Q, K, g.mlen, ws.scores.data());

  output_.forward(ops, store, ws, g, vh_.data(), cat + NM * M, out);
}

template <typename T>
void RelMultiHeadAttention<T>::backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws,
                                        const StepGeometry& g, const T* dout, T* dh, T* dmem) {
  TXL_CHECK(dmem == nullptr, "layer {}: relative attention gives no memory gradient", layer_);
  TXL_CHECK(cat_ != nullptr && g.qlen == geometry_.qlen && g.klen == geometry_.klen && g.batch == geometry_.batch,
            "layer {}: attention backward without a matching forward", layer_);
  const int64_t Q = g.qlen, K = g.klen, B = g.batch, H = n_head_, D = d_head_, M = d_model_, HD = H * D;
  const int64_t NQ = g.query_rows(), NK = g.key_rows(), NM = g.memory_rows();
  const T* w_qkv = store.param(qkv_id_).data();

  if (!learned_) {
    // attn_type 0. o_net .. LayerNorm backwards leaves d attn_vec in ws.d_attn_vec; the
    // fused attention writes d q, d k | d v and d R in the projections' layouts and adds
    // the gradients of the shared biases u, w.
    ensure(ops, ws.d_attn_vec, {NQ, HD});
    output_.project_merged_backward(ops, store, ws, g, dout, dh, ws.d_attn_vec.data());
    ensure(ops, ws.q_lin, {NQ, HD});
    ensure(ops, ws.kv_lin, {NK, 2 * HD});
    ensure(ops, ws.r_lin, {K, HD});
    ops.rel_attention_bwd(fused_args(g), q_lin_.data(), store.param(r_w_bias_id_).data(),
                          store.param(r_r_bias_id_).data(), kv_lin_.data(), kv_lin_.data() + HD, r_lin_.data(),
                          output_.attn_vec(), lse_.data(), ws.d_attn_vec.data(), ws.q_lin.data(),
                          store.grad(r_w_bias_id_).data(), store.grad(r_r_bias_id_).data(), ws.kv_lin.data(),
                          ws.kv_lin.data() + HD, ws.r_lin.data());
    // r_net: R = pos · W_rᵀ (the position embedding itself needs no gradient).
    linear_backward_weight<T>(ops, ws.r_lin.data(), pos_, K, M, HD, store.grad(r_net_id_).data(), nullptr);
  } else {
    // attn_type 1. Softmax .. LayerNorm backwards: ws.scores = d scores (AC + BD, before
    // scaling).
    output_.backward(ops, store, ws, g, vh_.data(), dout, dh);
    // AC = (q+u)·kᵀ
    output_.content_backward(ops, ws, g, qu_.data(), kh_.data());
    // BD through the relative shift: d BD_raw, then d q and d R per head.
    ensure(ops, ws.d_qw, {H, B, Q, D});
    ensure(ops, ws.d_rh, {H, K, D});
    ensure(ops, ws.bd, {H * B, Q, K});
    ops.rel_shift_bwd(ws.scores.data(), H * B, Q, K, g.mlen, ws.bd.data());
    ops.gemm_strided_batched(Trans::kNo, Trans::kNo, B * Q, D, K, T(1), ws.bd.data(), K, B * Q * K, rh_.data(), D,
                             K * D, T(0), ws.d_qw.data(), D, B * Q * D, H);
    ops.gemm_strided_batched(Trans::kYes, Trans::kNo, K, D, B * Q, T(1), ws.bd.data(), K, B * Q * K, qw_.data(), D,
                             B * Q * D, T(0), ws.d_rh.data(), D, K * D, H);

    // R and r_bias were table rows (repeated rows collect every use).
    ensure(ops, ws.r_lin, {K, HD});
    ops.merge_heads(ws.d_rh.data(), K, 1, H, D, HD, false, ws.r_lin.data());
    ops.scatter_add_rows(ws.r_lin.data(), table_rows_used_->data(), K, HD,
                         store.grad(r_emb_id_).data() + layer_ * table_rows_ * HD);
    ensure(ops, ws.r_bias, {K, H});
    ensure(ops, ws.ones, {B * Q});
    ops.fill(ws.ones.data(), B * Q, T(1));
    for (int64_t h = 0; h < H; ++h)
      ops.gemm(Trans::kYes, Trans::kNo, K, 1, B * Q, T(1), ws.bd.data() + h * B * Q * K, K, ws.ones.data(), 1, T(0),
               ws.r_bias.data() + h, H);
    ops.scatter_add_rows(ws.r_bias.data(), table_rows_used_->data(), K, H,
                         store.grad(r_bias_id_).data() + layer_ * table_rows_ * H);
    ops.head_bias_grad(ws.d_qu.data(), Q, B, H, D, store.grad(r_w_bias_id_).data() + layer_ * HD);

    // Back to the projections: d q = d(q+u) + d q (BD); d k, d v interleaved like kv_lin.
    ensure(ops, ws.q_lin, {NQ, HD});
    ensure(ops, ws.kv_lin, {NK, 2 * HD});
    ops.merge_heads(ws.d_qu.data(), Q, B, H, D, HD, false, ws.q_lin.data());
    ops.merge_heads(ws.d_qw.data(), Q, B, H, D, HD, true, ws.q_lin.data());
    ops.merge_heads(ws.d_kh.data(), K, B, H, D, 2 * HD, false, ws.kv_lin.data());
    ops.merge_heads(ws.d_vh.data(), K, B, H, D, 2 * HD, false, ws.kv_lin.data() + HD);
  }

  const T* x = pre_lnorm_ ? ln_cat_.data() : cat_;
  T* d_w_qkv = store.grad(qkv_id_).data();
  linear_backward_weight<T>(ops, ws.q_lin.data(), x + NM * M, NQ, M, HD, d_w_qkv, nullptr);
  linear_backward_weight<T>(ops, ws.kv_lin.data(), x, NK, M, 2 * HD, d_w_qkv + HD * M, nullptr);

  if (!pre_lnorm_) {
    // Only the Q new rows of cat need a gradient (memory is detached).
    linear_backward_input<T>(ops, ws.q_lin.data(), w_qkv, NQ, M, HD, T(1), dh);
    linear_backward_input<T>(ops, ws.kv_lin.data() + NM * 2 * HD, w_qkv + HD * M, NQ, M, 2 * HD, T(1), dh);
  } else {
    // The LayerNorm parameters also see the memory rows, so its backward covers all K rows.
    ensure(ops, ws.d_cat, {NK, M});
    ensure(ops, ws.d_cat_in, {NK, M});
    linear_backward_input<T>(ops, ws.kv_lin.data(), w_qkv + HD * M, NK, M, 2 * HD, T(0), ws.d_cat.data());
    linear_backward_input<T>(ops, ws.q_lin.data(), w_qkv, NQ, M, HD, T(1), ws.d_cat.data() + NM * M);
    output_.layer_norm().backward(ops, store, ws.d_cat.data(), cat_, NK, ws.d_cat_in.data());
    ops.axpy(NQ * M, T(1), ws.d_cat_in.data() + NM * M, dh);
  }
}

template <typename T>
RelAttentionArgs RelMultiHeadAttention<T>::fused_args(const StepGeometry& g) const {
  RelAttentionArgs a;
  a.heads = n_head_;
  a.batch = g.batch;
  a.qlen = g.qlen;
  a.klen = g.klen;
  a.d_head = d_head_;
  a.scale = 1.0 / std::sqrt(static_cast<double>(d_head_));
  a.mask = g.mask;
  const int64_t hd = n_head_ * d_head_;
  a.ld = RelAttentionLayout{hd, 2 * hd, 2 * hd, hd, hd};  // q_lin, kv_lin (k | v), r_lin, attn_vec
  const DropoutPlan drop = stream_dropout(g.ctx, output_.dropatt(),
                                          dropout_site::layer(layer_, DropoutPlace::kAttnProbs), n_head_, g.batch,
                                          g.qlen * g.klen);
  if (drop.active) {
    a.dropatt = drop.p;
    a.key = drop.key;
    a.layout = drop.layout;
  }
  return a;
}

template class RelMultiHeadAttention<float>;
template class RelMultiHeadAttention<double>;

}  // namespace txl
