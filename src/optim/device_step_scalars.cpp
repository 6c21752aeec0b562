#include "txl/optim/device_step_scalars.h"

#include <vector>

#include "txl/core/error.h"

namespace txl {

DeviceStepScalars::DeviceStepScalars(Ops<float>& ops) : buf_({StepScalars::kCount}, ops.allocator()) {
  const std::vector<double> zeros(StepScalars::kCount, 0.0);
  ops.upload(buf_.data(), zeros.data(), buf_.bytes());
}

StepScalarValues DeviceStepScalars::read(Ops<float>& ops) const {
  double host[StepScalars::kCount];
  ops.download(host, buf_.data(), sizeof(host));
  StepScalarValues v;
  v.loss = host[StepScalars::kLoss];
  v.interval_loss = host[StepScalars::kIntervalLoss];
  v.sum_squares = host[StepScalars::kSumSquares];
  v.grad_norm = host[StepScalars::kGradNorm];
  v.grad_factor = host[StepScalars::kGradFactor];
  v.bad_loss_step = static_cast<int64_t>(host[StepScalars::kBadLossStep]);
  v.bad_loss = host[StepScalars::kBadLoss];
  v.bad_grad_step = static_cast<int64_t>(host[StepScalars::kBadGradStep]);
  return v;
}

void require_finite_steps(const StepScalarValues& v) {
  if (v.bad_loss_step > 0 && (v.bad_grad_step == 0 || v.bad_loss_step <= v.bad_grad_step))
    failf("step {}: the loss ({}) is not finite; lower lr or enable clip", v.bad_loss_step, v.bad_loss);
  if (v.bad_grad_step > 0) failf("step {}: the gradient is not finite; lower lr or enable clip", v.bad_grad_step);
}

}  // namespace txl
