#include "txl/model/layer_norm.h"

namespace txl {

template <typename T>
void LayerNorm<T>::register_params(ParamStore<T>& store, const std::string& prefix, int64_t dim) {
  dim_ = dim;
  weight_id_ = store.add(prefix + ".weight", {dim}, ParamInit::kLayerNormWeight);
  bias_id_ = store.add(prefix + ".bias", {dim}, ParamInit::kZero);
}

template <typename T>
void LayerNorm<T>::forward(Ops<T>& ops, const ParamStore<T>& store, const T* x, int64_t rows, T* y) {
  ensure(ops, mean_, {rows});
  ensure(ops, rstd_, {rows});
  ops.layernorm_fwd(rows, dim_, x, store.param(weight_id_).data(), store.param(bias_id_).data(), T(kEps), y,
                    mean_.data(), rstd_.data());
}

template <typename T>
void LayerNorm<T>::backward(Ops<T>& ops, ParamStore<T>& store, const T* dy, const T* x, int64_t rows, T* dx) {
  TXL_CHECK(mean_.defined() && mean_.dim(0) == rows, "LayerNorm backward: {} rows, forward had {}", rows,
            mean_.defined() ? mean_.dim(0) : 0);
  ops.layernorm_bwd(rows, dim_, dy, x, store.param(weight_id_).data(), mean_.data(), rstd_.data(), dx,
                    store.grad(weight_id_).data(), store.grad(bias_id_).data());
}

template <typename T>
void LayerNorm<T>::forward_residual(Ops<T>& ops, const ParamStore<T>& store, const DropoutPlan& drop, const T* x,
                                    const T* bias, const T* residual, int64_t rows, T* sum, T* y) {
  ensure(ops, mean_, {rows});
  ensure(ops, rstd_, {rows});
  ops.dropout_residual_layernorm_fwd(rows, dim_, x, bias, drop.active ? drop.p : 0.0f, drop.key, drop.layout,
                                     residual, store.param(weight_id_).data(), store.param(bias_id_).data(),
                                     T(kEps), sum, y, mean_.data(), rstd_.data());
}

template <typename T>
void LayerNorm<T>::backward_residual(Ops<T>& ops, ParamStore<T>& store, const DropoutPlan& drop, const T* dy,
                                     const T* sum, int64_t rows, T* d_sum, T* d_x, T* dbias) {
  TXL_CHECK(mean_.defined() && mean_.dim(0) == rows, "LayerNorm backward: {} rows, forward had {}", rows,
            mean_.defined() ? mean_.dim(0) : 0);
  ops.dropout_residual_layernorm_bwd(rows, dim_, dy, sum, store.param(weight_id_).data(), mean_.data(),
                                     rstd_.data(), drop.active ? drop.p : 0.0f, drop.key, drop.layout, d_sum, d_x,
                                     store.grad(weight_id_).data(), store.grad(bias_id_).data(), dbias);
}

template class LayerNorm<float>;
template class LayerNorm<double>;

}  // namespace txl
