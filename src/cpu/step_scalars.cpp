// Step scalars on the CPU backend: its device memory is host memory, so the shared
// arithmetic (txl/core/step_scalar_math.h) runs in place.
#include "cpu_kernels.h"
#include "txl/core/step_scalar_math.h"

namespace txl::cpu {

void step_loss_update(const double* chunk_sums, const StepLossArgs& a, double* scalars) {
  step_math::step_loss_update(chunk_sums, a, scalars);
}

void step_grad_factor(const GradFactorArgs& a, double* scalars) { step_math::step_grad_factor(a, scalars); }

}  // namespace txl::cpu
