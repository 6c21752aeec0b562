#include "txl/optim/update_step.h"

namespace txl {

UpdateOutcome clip_and_step(Ops<float>& ops, ParamStore<float>& params, Optimizer<float>& optimizer,
                            DynamicLossScaler& scaler, int world, double clip, double lr, int64_t step,
                            DeviceStepScalars& scalars) {
  Tensor<float>& grads = params.flat_grads();
  ops.sum_squares_to_device(grads.data(), grads.numel(), scalars.at(StepScalars::kSumSquares));
  const double loss_scale = scaler.enabled() ? scaler.scale() : 1.0;
  const double unscale = 1.0 / (static_cast<double>(world) * loss_scale);
  UpdateOutcome out;
  if (scaler.enabled()) {
    // fp16 keeps one host read per step: the skip decision and the next step's scale
    // (which the host folds into the loss gradient) are the scaler's, on the host. Moving
    // them to the device would need a device-side scale for the loss gradient as well.
    double sum_squares = 0.0;
    ops.download(&sum_squares, scalars.at(StepScalars::kSumSquares), sizeof(double));
    out.applied = scaler.update_from_sum_squares(sum_squares);
    scaler.require_progress(step);
  }
  GradFactorArgs a;
  a.unscale = unscale;
  a.clip = clip;
  a.step = step;
  a.check_finite = !scaler.enabled();
  ops.step_grad_factor(a, scalars.data());
  optimizer.step_with_device_factor(lr, scalars.at(StepScalars::kGradFactor), out.applied);
  return out;
}

}  // namespace txl
