#include "txl/model/multihead_attention.h"

#include <fmt/format.h>

#include "txl/model/linear.h"

namespace txl {

template <typename T>
MultiHeadAttention<T>::MultiHeadAttention(const ModelConfig& cfg, int64_t layer)
    : layer_(layer),
      n_head_(cfg.n_head),
      d_head_(cfg.d_head),
      d_model_(cfg.d_model),
      pre_lnorm_(cfg.pre_lnorm),
      output_(cfg, layer) {}

template <typename T>
void MultiHeadAttention<T>::register_params(ParamStore<T>& store) {
  const std::string prefix = fmt::format("layers.{}.dec_attn.", layer_);
  const int64_t hd = n_head_ * d_head_;
  // kv_net rows: [0, HD) k, [HD, 2HD) v; head h uses columns h*D..h*D+D-1.
  q_id_ = store.add(prefix + "q_net.weight", {hd, d_model_}, ParamInit::kWeight);
  kv_id_ = store.add(prefix + "kv_net.weight", {2 * hd, d_model_}, ParamInit::kWeight);
  output_.register_params(store, prefix);
}

template <typename T>
std::vector<int> MultiHeadAttention<T>::param_ids() const {
  return {q_id_, kv_id_, output_.o_net_id(), output_.layer_norm().weight_id(), output_.layer_norm().bias_id()};
}

template <typename T>
void MultiHeadAttention<T>::forward(Ops<T>& ops, const ParamStore<T>& store, LayerWorkspace<T>& ws,
                                    const StepGeometry& g, const T* cat, const T* /*pos*/, T* out) {
  const int64_t Q = g.qlen, K = g.klen, B = g.batch, H = n_head_, D = d_head_, M = d_model_, HD = H * D;
  const int64_t NQ = g.query_rows(), NK = g.key_rows(), NM = g.memory_rows();
  geometry_ = g;
  cat_ = cat;
  const T* h = cat + NM * M;

  const T* x = cat;
  if (pre_lnorm_) {
    ensure(ops, ln_cat_, {NK, M});
    output_.layer_norm().forward(ops, store, cat, NK, ln_cat_.data());
    x = ln_cat_.data();
  }
  ensure(ops, ws.q_lin, {NQ, HD});
  ensure(ops, ws.kv_lin, {NK, 2 * HD});
  linear_forward<T>(ops, h, NQ, M, store.param(q_id_).data(), HD, nullptr, ws.q_lin.data());
  linear_forward<T>(ops, x, NK, M, store.param(kv_id_).data(), 2 * HD, nullptr, ws.kv_lin.data());

  ensure(ops, qh_, {H, B, Q, D});
  ensure(ops, kh_, {H, B, K, D});
  ensure(ops, vh_, {H, B, K, D});
  ops.split_heads(ws.q_lin.data(), Q, B, H, D, HD, nullptr, qh_.data());
  ops.split_heads(ws.kv_lin.data(), K, B, H, D, 2 * HD, nullptr, kh_.data());
  ops.split_heads(ws.kv_lin.data() + HD, K, B, H, D, 2 * HD, nullptr, vh_.data());

  ensure(ops, ws.scores, {H * B, Q, K});
  ops.gemm_strided_batched(Trans::kNo, Trans::kYes, Q, K, D, T(1), qh_.data(), D, Q * D, kh_.data(), D, K * D, T(0),
                           ws.scores.data(), K, Q * K, H * B);
  output_.forward(ops, store, ws, g, vh_.data(), h, out);
}

template <typename T>
void MultiHeadAttention<T>::backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws,
                                     const StepGeometry& g, const T* dout, T* dh, T* dmem) {
  TXL_CHECK(cat_ != nullptr && g.qlen == geometry_.qlen && g.klen == geometry_.klen && g.batch == geometry_.batch,
            "layer {}: attention backward without a matching forward", layer_);
  const int64_t Q = g.qlen, K = g.klen, B = g.batch, H = n_head_, D = d_head_, M = d_model_, HD = H * D;
  const int64_t NQ = g.query_rows(), NK = g.key_rows(), NM = g.memory_rows();
  const T* w_q = store.param(q_id_).data();
  const T* w_kv = store.param(kv_id_).data();
  const T* h = cat_ + NM * M;

  output_.backward(ops, store, ws, g, vh_.data(), dout, dh);
  // scores = q·kᵀ
  output_.content_backward(ops, ws, g, qh_.data(), kh_.data());

  ensure(ops, ws.kv_lin, {NK, 2 * HD});
  ops.merge_heads(ws.d_qu.data(), Q, B, H, D, HD, false, ws.q_lin.data());
  ops.merge_heads(ws.d_kh.data(), K, B, H, D, 2 * HD, false, ws.kv_lin.data());
  ops.merge_heads(ws.d_vh.data(), K, B, H, D, 2 * HD, false, ws.kv_lin.data() + HD);

  const T* x = pre_lnorm_ ? ln_cat_.data() : cat_;
  linear_backward_weight<T>(ops, ws.q_lin.data(), h, NQ, M, HD, store.grad(q_id_).data(), nullptr);
  linear_backward_weight<T>(ops, ws.kv_lin.data(), x, NK, M, 2 * HD, store.grad(kv_id_).data(), nullptr);

  // q reads h directly (also with pre-LN).
  linear_backward_input<T>(ops, ws.q_lin.data(), w_q, NQ, M, HD, T(1), dh);
  if (!pre_lnorm_) {
    linear_backward_input<T>(ops, ws.kv_lin.data() + NM * 2 * HD, w_kv, NQ, M, 2 * HD, T(1), dh);
    if (dmem && NM > 0) linear_backward_input<T>(ops, ws.kv_lin.data(), w_kv, NM, M, 2 * HD, T(0), dmem);
  } else {
    // The LayerNorm parameters also see the memory rows, so its backward covers all K rows.
    ensure(ops, ws.d_cat, {NK, M});
    ensure(ops, ws.d_cat_in, {NK, M});
    linear_backward_input<T>(ops, ws.kv_lin.data(), w_kv, NK, M, 2 * HD, T(0), ws.d_cat.data());
    output_.layer_norm().backward(ops, store, ws.d_cat.data(), cat_, NK, ws.d_cat_in.data());
    ops.axpy(NQ * M, T(1), ws.d_cat_in.data() + NM * M, dh);
    if (dmem && NM > 0) ops.copy(dmem, ws.d_cat_in.data(), static_cast<size_t>(NM * M) * sizeof(T));
  }
}

template class MultiHeadAttention<float>;
template class MultiHeadAttention<double>;

}  // namespace txl
