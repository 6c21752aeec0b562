// LayerNorm over the last dimension (eps 1e-5, PyTorch nn.LayerNorm), with parameters
// `<prefix>.weight` / `<prefix>.bias` and the per-row statistics kept for backward.
#pragma once
#include <string>

#include "txl/core/param_store.h"
#include "txl/model/dropout_sites.h"

namespace txl {

template <typename T>
class LayerNorm {
 public:
  static constexpr double kEps = 1e-5;

  void register_params(ParamStore<T>& store, const std::string& prefix, int64_t dim);
  // y[rows, dim] = LayerNorm(x); x must stay unchanged until backward.
  void forward(Ops<T>& ops, const ParamStore<T>& store, const T* x, int64_t rows, T* y);
  // dx overwritten; weight/bias gradients accumulated.
  void backward(Ops<T>& ops, ParamStore<T>& store, const T* dy, const T* x, int64_t rows, T* dx);
  // The post-LN residual tail in one op (Ops::dropout_residual_layernorm_fwd):
  //   sum = residual + dropout(x + bias), y = LayerNorm(sum)
  // x, residual, sum, y [rows, dim]; bias [dim] or null. sum may alias x or residual and
  // must stay unchanged until backward_residual.
  void forward_residual(Ops<T>& ops, const ParamStore<T>& store, const DropoutPlan& drop, const T* x, const T* bias,
                        const T* residual, int64_t rows, T* sum, T* y);
  // Its backward: dy -> d_sum (the residual's gradient) and d_x = dropout(d_sum) (x's),
  // both overwritten; weight/bias gradients accumulated, and dbias when given.
  void backward_residual(Ops<T>& ops, ParamStore<T>& store, const DropoutPlan& drop, const T* dy, const T* sum,
                         int64_t rows, T* d_sum, T* d_x, T* dbias);

  int weight_id() const { return weight_id_; }
  int bias_id() const { return bias_id_; }

 private:
  int64_t dim_ = 0;
  int weight_id_ = -1, bias_id_ = -1;
  Tensor<T> mean_, rstd_;  // [rows]
};

}  // namespace txl
