// The scalars of a training step in device memory and the arguments of the ops that
// form them (Ops::step_loss_update, Ops::step_grad_factor in ops.h). Free of fmt, so the
// CUDA kernels can include it.
#pragma once
#include <cstdint>

namespace txl {

// The scalars of a training step, kept in device memory so that a step never waits on the
// host: doubles at these indices of one device buffer of kCount (zeroed when created).
// The host reads them only when it logs or before a checkpoint (txl/optim/device_step_scalars.h).
struct StepScalars {
  enum Index : int {
    kLoss = 0,      // the last step's loss (mean over its tokens)
    kIntervalLoss,  // the sum of kLoss over the steps since the log interval started
    kSumSquares,    // the last step's gradient sum of squares (Ops::sum_squares_to_device)
    kGradNorm,      // sqrt(kSumSquares) * unscale: the norm of the mean gradient
    kGradFactor,    // the optimizer's gradient factor (OptimStep::device_grad_scale); NaN: skip
    kBadLossStep,   // the first step whose loss was not finite, 0 when none
    kBadLoss,       // that step's loss
    kBadGradStep,   // the first step whose gradient was not finite, 0 when none
    kCount
  };
};

// Ops::step_loss_update: one step's loss from the per-chunk sums of its token losses.
struct StepLossArgs {
  int64_t chunks = 1;            // chunk_sums[0 .. chunks)
  int64_t tokens_per_chunk = 1;  // the loss is sum_c chunk_sums[c] / tokens_per_chunk / chunks
  int64_t step = 1;              // recorded in kBadLossStep when the loss is not finite
  bool new_interval = false;     // kIntervalLoss restarts at this step's loss
  bool check_finite = true;      // false (fp16 loss scaling): nothing is recorded
};

// Ops::step_grad_factor: clipping and unscaling from the gradient sum of squares.
struct GradFactorArgs {
  double unscale = 1.0;      // 1 / (ranks x loss scale)
  double clip = 0.0;         // global-norm clipping threshold, 0: none
  int64_t step = 1;          // recorded in kBadGradStep when the gradient is not finite
  bool check_finite = true;  // false (fp16): a non-finite gradient only skips the update
};

}  // namespace txl
