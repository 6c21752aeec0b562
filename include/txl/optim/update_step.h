// The update that follows a step's backward pass, written once for txl_train's trainer,
// the traffic model (step_plan.cpp) and gpu_bench: the global L2 norm of the gradients,
// the fp16 loss scaler's skip decision, clipping, and the optimizer step
// (docs/training.md §4), all on the device (DeviceStepScalars) except the fp16 decision.
#pragma once
#include <cstdint>

#include "txl/core/loss_scaler.h"
#include "txl/core/param_store.h"
#include "txl/optim/device_step_scalars.h"
#include "txl/optim/optimizer.h"

namespace txl {

struct UpdateOutcome {
  // fp16: false when the scaler skipped the step (overflow; the scale was halved).
  // Otherwise true: a non-finite gradient is recorded on the device instead (the
  // optimizer skips it; require_finite_steps reports it when the host next looks).
  bool applied = true;
};

// The gradients of `params` hold the sum over `world` ranks of loss_scale × each rank's
// mean gradient. The sum of squares, the norm (scalars[kGradNorm]) and the optimizer's one
// gradient factor (1/world, 1/loss_scale and the clipping coefficient
// min(1, clip / (norm + 1e-6)), 1 when clip is 0) are formed on the device; without fp16
// scaling nothing waits on the host, and a non-finite gradient is recorded at `step`
// (scalars[kBadGradStep]) and not applied. With fp16 scaling the sum of squares is read
// back (one synchronisation per step): the scaler's decision and next scale live on the
// host (it also stops the run after too many skips in a row). The optimizer clears the
// gradients either way.
UpdateOutcome clip_and_step(Ops<float>& ops, ParamStore<float>& params, Optimizer<float>& optimizer,
                            DynamicLossScaler& scaler, int world, double clip, double lr, int64_t step,
                            DeviceStepScalars& scalars);

}  // namespace txl
