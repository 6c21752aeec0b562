// Position-wise feed-forward block of a decoder layer (docs/model.md §4, `pos_ff`):
// f(x) = dropout(W2·dropout(relu(W1·x + b1)) + b2); post-LN: LayerNorm(x + f(x));
// pre-LN: x + f(LayerNorm(x)). Forward and backward written out against Ops<T>.
#pragma once
#include <vector>

#include "txl/model/dropout_sites.h"
#include "txl/model/layer_norm.h"
#include "txl/model/layer_workspace.h"
#include "txl/model/model_config.h"
#include "txl/model/step_geometry.h"

namespace txl {

template <typename T>
class PositionwiseFF {
 public:
  PositionwiseFF(const ModelConfig& cfg, int64_t layer);

  // layers.{L}.pos_ff.CoreNet.{0,3}.{weight,bias} and .layer_norm.{weight,bias}.
  void register_params(ParamStore<T>& store);
  void set_dropout(double dropout) { dropout_ = dropout; }

  // x [Q*B, M] (must stay unchanged until backward) -> y [Q*B, M]; y may not alias x.
  void forward(Ops<T>& ops, const ParamStore<T>& store, const StepGeometry& g, const T* x, T* y);
  // dy [Q*B, M] -> dx [Q*B, M] (overwritten; may not alias dy). Gradients accumulated.
  void backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g, const T* dy, T* dx);

  std::vector<int> param_ids() const;  // registration order

 private:
  int64_t layer_, d_model_, d_inner_;
  bool pre_lnorm_;
  double dropout_;
  int w1_id_ = -1, b1_id_ = -1, w2_id_ = -1, b2_id_ = -1;
  LayerNorm<T> layer_norm_;

  // Kept from forward for backward.
  const T* x_ = nullptr;  // [Q*B, M] block input (owned by the caller)
  Tensor<T> ln_x_;        // [Q*B, M] pre-LN: LayerNorm(x)
  Tensor<T> inner_;       // [Q*B, d_inner] relu(W1·x + b1) after its dropout
  Tensor<T> x2_;          // [Q*B, M] post-LN: x + f(x) (LayerNorm input)
  DropoutPlan drop_inner_, drop_out_;
};

}  // namespace txl
