// DeviceStepScalars: the device buffer of a training step's scalars (StepScalars,
// txl/core/step_scalars.h) and their host reads. Each step writes the loss, the gradient
// sum of squares and norm and the optimizer's factor there without a host round trip;
// the trainer reads them only when it logs, checkpoints, evaluates or finishes.
#pragma once
#include <cstdint>

#include "txl/core/ops.h"

namespace txl {

// A host copy of the scalars (one download).
struct StepScalarValues {
  double loss = 0, interval_loss = 0, sum_squares = 0, grad_norm = 0, grad_factor = 0;
  int64_t bad_loss_step = 0;  // the first step whose loss was not finite, 0: none
  double bad_loss = 0;
  int64_t bad_grad_step = 0;  // the first step whose gradient was not finite, 0: none
};

class DeviceStepScalars {
 public:
  explicit DeviceStepScalars(Ops<float>& ops);  // all zero (one upload)

  double* data() { return buf_.data(); }
  double* at(StepScalars::Index i) { return buf_.data() + i; }
  // Downloads every scalar (synchronises).
  StepScalarValues read(Ops<float>& ops) const;

 private:
  Tensor<double> buf_;
};

// A txl::Error naming the first step whose loss or gradient was not finite, if any (the
// loss when both are recorded at the same step, as the step checks the loss first).
void require_finite_steps(const StepScalarValues& v);

}  // namespace txl
