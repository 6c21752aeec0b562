#include "txl/model/attention_output.h"

#include <cmath>

#include "txl/model/linear.h"

namespace txl {

template <typename T>
AttentionOutput<T>::AttentionOutput(const ModelConfig& cfg, int64_t layer)
    : layer_(layer),
      n_head_(cfg.n_head),
      d_head_(cfg.d_head),
      d_model_(cfg.d_model),
      pre_lnorm_(cfg.pre_lnorm),
      dropout_(cfg.dropout),
      dropatt_(cfg.dropatt) {}

template <typename T>
void AttentionOutput<T>::register_params(ParamStore<T>& store, const std::string& prefix) {
  o_net_id_ = store.add(prefix + "o_net.weight", {d_model_, n_head_ * d_head_}, ParamInit::kWeight);
  layer_norm_.register_params(store, prefix + "layer_norm", d_model_);
}

template <typename T>
void AttentionOutput<T>::forward(Ops<T>& ops, const ParamStore<T>& store, LayerWorkspace<T>& ws,
                                 const StepGeometry& g, const T* vh, const T* h, T* out) {
  const int64_t Q = g.qlen, K = g.klen, B = g.batch, H = n_head_, D = d_head_;
  const T scale = T(1.0 / std::sqrt(static_cast<double>(D)));

  ensure(ops, probs_, {H * B, Q, K});
  ops.attn_softmax_fwd(ws.scores.data(), H * B, Q, K, scale, g.mask, probs_.data());
  drop_probs_ = stream_dropout(g.ctx, dropatt_, dropout_site::layer(layer_, DropoutPlace::kAttnProbs), H, B, Q * K);
  if (drop_probs_.active) {
    ensure(ops, probs_drop_, {H * B, Q, K});
    apply_dropout(ops, drop_probs_, probs_.data(), probs_drop_.data());
  }

  // a[n] = p[n] · v[n] over n = (h, b), heads merged back to [Q, B, HD].
  ensure(ops, ws.av, {H, B, Q, D});
  ops.gemm_strided_batched(Trans::kNo, Trans::kNo, Q, D, K, T(1), probs_used(), K, Q * K, vh, D, K * D, T(0),
                           ws.av.data(), D, Q * D, H * B);
  project(ops, store, ws, g, ws.av.data(), h, out);
}

template <typename T>
void AttentionOutput<T>::project(Ops<T>& ops, const ParamStore<T>& store, LayerWorkspace<T>& ws,
                                 const StepGeometry& g, const T* av, const T* h, T* out) {
  const int64_t Q = g.qlen, B = g.batch, H = n_head_, D = d_head_, HD = H * D;
  ops.merge_heads(av, Q, B, H, D, HD, false, attn_vec(ops, g));
  project_merged(ops, store, ws, g, h, out);
}

template <typename T>
T* AttentionOutput<T>::attn_vec(Ops<T>& ops, const StepGeometry& g) {
  ensure(ops, attn_vec_, {g.query_rows(), n_head_ * d_head_});
  return attn_vec_.data();
}

template <typename T>
void AttentionOutput<T>::project_merged(Ops<T>& ops, const ParamStore<T>& store, LayerWorkspace<T>& ws,
                                        const StepGeometry& g, const T* h, T* out) {
  const int64_t Q = g.qlen, B = g.batch, M = d_model_, HD = n_head_ * d_head_;
  const int64_t NQ = g.query_rows();
  TXL_CHECK(attn_vec_.defined() && attn_vec_.shape() == Shape({NQ, HD}), "layer {}: attn_vec not filled for {} rows",
            layer_, NQ);
  ensure(ops, ws.o, {NQ, M});
  linear_forward<T>(ops, attn_vec_.data(), NQ, HD, store.param(o_net_id_).data(), M, nullptr, ws.o.data());
  drop_out_ = stream_dropout(g.ctx, dropout_, dropout_site::layer(layer_, DropoutPlace::kAttnOut), Q, B, M);

  // Dropout, residual (and LayerNorm) in one op.
  if (pre_lnorm_) {
    dropout_residual_forward(ops, drop_out_, ws.o.data(), static_cast<const T*>(nullptr), h, NQ, M, out);
  } else {
    ensure(ops, x1_, {NQ, M});
    layer_norm_.forward_residual(ops, store, drop_out_, ws.o.data(), nullptr, h, NQ, x1_.data(), out);
  }
}

template <typename T>
void AttentionOutput<T>::backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws,
                                  const StepGeometry& g, const T* vh, const T* dout, T* dh) {
  const int64_t Q = g.qlen, K = g.klen, B = g.batch, H = n_head_, D = d_head_;
  const T scale = T(1.0 / std::sqrt(static_cast<double>(D)));

  project_backward(ops, store, ws, g, dout, dh);

  // a = p·v: d p = d a · vᵀ, d v = pᵀ · d a; then through dropatt and the softmax (scale
  // included), which leaves d scores in ws.scores.
  ensure(ops, ws.scores, {H * B, Q, K});
  ensure(ops, ws.d_vh, {H, B, K, D});
  ops.gemm_strided_batched(Trans::kNo, Trans::kYes, Q, K, D, T(1), ws.av.data(), D, Q * D, vh, D, K * D, T(0),
                           ws.scores.data(), K, Q * K, H * B);
  ops.gemm_strided_batched(Trans::kYes, Trans::kNo, K, D, Q, T(1), probs_used(), K, Q * K, ws.av.data(), D, Q * D,
                           T(0), ws.d_vh.data(), D, K * D, H * B);
  if (drop_probs_.active) apply_dropout(ops, drop_probs_, ws.scores.data(), ws.scores.data());
  ops.attn_softmax_bwd(probs_.data(), ws.scores.data(), H * B, Q, K, scale, ws.scores.data());
}

template <typename T>
void AttentionOutput<T>::project_backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws,
                                          const StepGeometry& g, const T* dout, T* dh) {
  const int64_t Q = g.qlen, B = g.batch, H = n_head_, D = d_head_, HD = H * D;
  ensure(ops, ws.q_lin, {g.query_rows(), HD});
  project_merged_backward(ops, store, ws, g, dout, dh, ws.q_lin.data());
  ensure(ops, ws.av, {H, B, Q, D});
  ops.split_heads(ws.q_lin.data(), Q, B, H, D, HD, nullptr, ws.av.data());
}

template <typename T>
void AttentionOutput<T>::project_merged_backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws,
                                                 const StepGeometry& g, const T* dout, T* dh, T* d_attn_vec) {
  const int64_t M = d_model_, HD = n_head_ * d_head_;
  const int64_t NQ = g.query_rows();

  // One op: dh = the gradient of the residual sum h + o (which is also h's direct share),
  // ws.o = its dropout, the gradient of the o_net output.
  ensure(ops, ws.o, {NQ, M});
  if (pre_lnorm_) {
    dropout_residual_backward(ops, drop_out_, dout, NQ, M, dh, ws.o.data(), static_cast<T*>(nullptr));
  } else {
    layer_norm_.backward_residual(ops, store, drop_out_, dout, x1_.data(), NQ, dh, ws.o.data(), nullptr);
  }

  // o_net: d attn_vec.
  linear_backward_weight<T>(ops, ws.o.data(), attn_vec_.data(), NQ, HD, M, store.grad(o_net_id_).data(), nullptr);
  linear_backward_input<T>(ops, ws.o.data(), store.param(o_net_id_).data(), NQ, HD, M, T(0), d_attn_vec);
}

template <typename T>
void AttentionOutput<T>::content_backward(Ops<T>& ops, LayerWorkspace<T>& ws, const StepGeometry& g, const T* q,
                                          const T* kh) const {
  const int64_t Q = g.qlen, K = g.klen, B = g.batch, H = n_head_, D = d_head_;
  ensure(ops, ws.d_qu, {H, B, Q, D});
  ensure(ops, ws.d_kh, {H, B, K, D});
  ops.gemm_strided_batched(Trans::kNo, Trans::kNo, Q, D, K, T(1), ws.scores.data(), K, Q * K, kh, D, K * D, T(0),
                           ws.d_qu.data(), D, Q * D, H * B);
  ops.gemm_strided_batched(Trans::kYes, Trans::kNo, K, D, Q, T(1), ws.scores.data(), K, Q * K, q, D, Q * D, T(0),
                           ws.d_kh.data(), D, K * D, H * B);
}

template class AttentionOutput<float>;
template class AttentionOutput<double>;

}  // namespace txl
