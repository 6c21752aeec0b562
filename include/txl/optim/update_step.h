// The update that follows a step's backward pass, written once for txl_train's trainer and
// gpu_bench: the global L2 norm of the gradients, the fp16 loss scaler's skip decision,
// clipping, and the optimizer step (docs/training.md §4).
#pragma once
#include <cstdint>

#include "txl/core/loss_scaler.h"
#include "txl/core/param_store.h"
#include "txl/optim/optimizer.h"

namespace txl {

struct UpdateOutcome {
  double grad_norm = 0;  // of the mean gradient (after the division by ranks and loss scale)
  bool applied = false;  // false: fp16 overflow, the step was skipped and the scale halved
};

// The gradients of `params` hold the sum over `world` ranks of loss_scale × each rank's
// mean gradient. Without fp16 scaling a non-finite gradient stops the run (txl::Error
// naming `step`); with it, the scaler decides whether the step is applied (and stops the
// run after too many skips in a row). The clipping coefficient
// min(1, clip / (norm + 1e-6)) (1 when clip is 0), 1/world and 1/loss_scale are folded
// into the optimizer's one gradient factor.
UpdateOutcome clip_and_step(Ops<float>& ops, ParamStore<float>& params, Optimizer<float>& optimizer,
                            DynamicLossScaler& scaler, int world, double clip, double lr, int64_t step);

}  // namespace txl
