// Step scalars on the device: one thread forms the step's loss and the optimizer's
// gradient factor with the arithmetic the host used to do (txl/core/step_scalar_math.h),
// so a training step needs no host synchronisation.
#include "kernel_utils.cuh"
#include "kernels.h"
#include "txl/core/step_scalar_math.h"

namespace txl::cuda {
namespace {

__global__ void step_loss_update_kernel(const double* chunk_sums, StepLossArgs a, double* scalars) {
  step_math::step_loss_update(chunk_sums, a, scalars);
}

__global__ void step_grad_factor_kernel(GradFactorArgs a, double* scalars) { step_math::step_grad_factor(a, scalars); }

}  // namespace

void launch_step_loss_update(const double* chunk_sums, const StepLossArgs& a, double* scalars, cudaStream_t stream) {
  step_loss_update_kernel<<<1, 1, 0, stream>>>(chunk_sums, a, scalars);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_step_grad_factor(const GradFactorArgs& a, double* scalars, cudaStream_t stream) {
  step_grad_factor_kernel<<<1, 1, 0, stream>>>(a, scalars);
  TXL_CUDA_LAUNCH_CHECK();
}

}  // namespace txl::cuda
