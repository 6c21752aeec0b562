#include "txl/optim/update_step.h"

#include <cmath>

#include "txl/core/error.h"

namespace txl {

UpdateOutcome clip_and_step(Ops<float>& ops, ParamStore<float>& params, Optimizer<float>& optimizer,
                            DynamicLossScaler& scaler, int world, double clip, double lr, int64_t step) {
  Tensor<float>& grads = params.flat_grads();
  const double sum_squares = ops.sum_squares(grads.data(), grads.numel());
  const double loss_scale = scaler.enabled() ? scaler.scale() : 1.0;
  const double unscale = 1.0 / (static_cast<double>(world) * loss_scale);
  UpdateOutcome out;
  out.applied = true;
  if (scaler.enabled()) {
    out.applied = scaler.update_from_sum_squares(sum_squares);
    scaler.require_progress(step);
  } else if (!std::isfinite(sum_squares)) {
    failf("step {}: the gradient is not finite; lower lr or enable clip", step);
  }
  out.grad_norm = std::sqrt(sum_squares) * unscale;
  double clip_coef = 1.0;
  if (clip > 0 && out.grad_norm > clip) clip_coef = clip / (out.grad_norm + 1e-6);
  if (out.applied) optimizer.step(lr, unscale * clip_coef);
  return out;
}

}  // namespace txl
