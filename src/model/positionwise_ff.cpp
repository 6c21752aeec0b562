#include "txl/model/positionwise_ff.h"

#include <fmt/format.h>

#include "txl/model/linear.h"

namespace txl {

template <typename T>
PositionwiseFF<T>::PositionwiseFF(const ModelConfig& cfg, int64_t layer)
    : layer_(layer), d_model_(cfg.d_model), d_inner_(cfg.d_inner), pre_lnorm_(cfg.pre_lnorm), dropout_(cfg.dropout) {}

template <typename T>
void PositionwiseFF<T>::register_params(ParamStore<T>& store) {
  const std::string prefix = fmt::format("layers.{}.pos_ff.", layer_);
  w1_id_ = store.add(prefix + "CoreNet.0.weight", {d_inner_, d_model_}, ParamInit::kWeight);
  b1_id_ = store.add(prefix + "CoreNet.0.bias", {d_inner_}, ParamInit::kZero);
  w2_id_ = store.add(prefix + "CoreNet.3.weight", {d_model_, d_inner_}, ParamInit::kWeight);
  b2_id_ = store.add(prefix + "CoreNet.3.bias", {d_model_}, ParamInit::kZero);
  layer_norm_.register_params(store, prefix + "layer_norm", d_model_);
}

template <typename T>
std::vector<int> PositionwiseFF<T>::param_ids() const {
  return {w1_id_, b1_id_, w2_id_, b2_id_, layer_norm_.weight_id(), layer_norm_.bias_id()};
}

template <typename T>
void PositionwiseFF<T>::forward(Ops<T>& ops, const ParamStore<T>& store, const StepGeometry& g, const T* x, T* y) {
  const int64_t N = g.query_rows(), M = d_model_, F = d_inner_;
  x_ = x;
  const T* in = x;
  if (pre_lnorm_) {
    ensure(ops, ln_x_, {N, M});
    layer_norm_.forward(ops, store, x, N, ln_x_.data());
    in = ln_x_.data();
  }
  ensure(ops, inner_, {N, F});
  // W1's bias, the ReLU and the inner dropout are one op after the GEMM.
  linear_forward<T>(ops, in, N, M, store.param(w1_id_).data(), F, nullptr, inner_.data());
  drop_inner_ =
      stream_dropout(g.ctx, dropout_, dropout_site::layer(layer_, DropoutPlace::kFFInner), g.qlen, g.batch, F);
  ops.bias_relu_dropout(inner_.data(), store.param(b1_id_).data(), drop_inner_.active ? drop_inner_.p : 0.0f,
                        drop_inner_.key, drop_inner_.layout, inner_.data());
  drop_out_ = stream_dropout(g.ctx, dropout_, dropout_site::layer(layer_, DropoutPlace::kFFOut), g.qlen, g.batch, M);

  // W2's bias, the output dropout, the residual (and LayerNorm) are one op after the GEMM.
  const T* b2 = store.param(b2_id_).data();
  if (pre_lnorm_) {  // y = x + f is built in place
    linear_forward<T>(ops, inner_.data(), N, F, store.param(w2_id_).data(), M, nullptr, y);
    dropout_residual_forward(ops, drop_out_, y, b2, x, N, M, y);
  } else {
    ensure(ops, x2_, {N, M});
    linear_forward<T>(ops, inner_.data(), N, F, store.param(w2_id_).data(), M, nullptr, x2_.data());
    layer_norm_.forward_residual(ops, store, drop_out_, x2_.data(), b2, x, N, x2_.data(), y);
  }
}

template <typename T>
void PositionwiseFF<T>::backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g,
                                 const T* dy, T* dx) {
  const int64_t N = g.query_rows(), M = d_model_, F = d_inner_;
  TXL_CHECK(x_ != nullptr && inner_.defined() && inner_.dim(0) == N,
            "layer {}: feed-forward backward without a matching forward", layer_);
  ensure(ops, ws.d_a, {N, M});
  ensure(ops, ws.d_b, {N, M});

  // One op: d_sum = d of the residual sum x + f, d_f = d of W2's output (d_sum through the
  // output dropout), and W2's bias gradient.
  const T* d_sum = dy;
  const T* d_f = ws.d_b.data();
  if (!pre_lnorm_) {
    layer_norm_.backward_residual(ops, store, drop_out_, dy, x2_.data(), N, ws.d_a.data(), ws.d_b.data(),
                                  store.grad(b2_id_).data());
    d_sum = ws.d_a.data();
  } else {
    dropout_residual_backward(ops, drop_out_, dy, N, M, static_cast<T*>(nullptr), ws.d_b.data(),
                              store.grad(b2_id_).data());
  }
  linear_backward_weight<T>(ops, d_f, inner_.data(), N, F, M, store.grad(w2_id_).data(), nullptr);
  ensure(ops, ws.d_inner, {N, F});
  linear_backward_input<T>(ops, d_f, store.param(w2_id_).data(), N, F, M, T(0), ws.d_inner.data());
  // inner_ holds the relu output after dropout: positive exactly where relu was active and
  // the element was kept, so it alone gives both masks.
  ops.relu_dropout_bwd(N * F, inner_.data(), ws.d_inner.data(), drop_inner_.active ? drop_inner_.p : 0.0f,
                       ws.d_inner.data());

  const T* in = pre_lnorm_ ? ln_x_.data() : x_;
  linear_backward_weight<T>(ops, ws.d_inner.data(), in, N, M, F, store.grad(w1_id_).data(), store.grad(b1_id_).data());
  if (!pre_lnorm_) {
    linear_backward_input<T>(ops, ws.d_inner.data(), store.param(w1_id_).data(), N, M, F, T(0), dx);
    ops.axpy(N * M, T(1), d_sum, dx);
  } else {
    // ws.d_a is free in pre-LN (d_sum is dy itself).
    linear_backward_input<T>(ops, ws.d_inner.data(), store.param(w1_id_).data(), N, M, F, T(0), ws.d_a.data());
    layer_norm_.backward(ops, store, ws.d_a.data(), x_, N, dx);
    ops.axpy(N * M, T(1), dy, dx);
  }
}

template class PositionwiseFF<float>;
template class PositionwiseFF<double>;

}  // namespace txl
