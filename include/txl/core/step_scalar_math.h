// The arithmetic of Ops::step_loss_update and Ops::step_grad_factor, written once for the
// CPU backend and the CUDA kernels (host and device functions under nvcc), so both
// backends form the same doubles as the host code they replace.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "txl/core/step_scalars.h"

#if defined(__CUDACC__)
#define TXL_HOST_DEVICE __host__ __device__
#else
#define TXL_HOST_DEVICE
#endif

namespace txl::step_math {

TXL_HOST_DEVICE inline bool is_finite(double x) {
#if defined(__CUDA_ARCH__)
  return ::isfinite(x);
#else
  return std::isfinite(x);
#endif
}

TXL_HOST_DEVICE inline double quiet_nan() {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(0x7ff8000000000000LL);
#else
  return std::numeric_limits<double>::quiet_NaN();
#endif
}

TXL_HOST_DEVICE inline double square_root(double x) {
#if defined(__CUDA_ARCH__)
  return ::sqrt(x);  // IEEE correctly rounded in double, as std::sqrt
#else
  return std::sqrt(x);
#endif
}

TXL_HOST_DEVICE inline void step_loss_update(const double* chunk_sums, const StepLossArgs& a, double* s) {
  double loss = 0.0;
  for (int64_t c = 0; c < a.chunks; ++c)
    loss += chunk_sums[c] / static_cast<double>(a.tokens_per_chunk) / static_cast<double>(a.chunks);
  s[StepScalars::kLoss] = loss;
  s[StepScalars::kIntervalLoss] = a.new_interval ? loss : s[StepScalars::kIntervalLoss] + loss;
  if (a.check_finite && !is_finite(loss) && s[StepScalars::kBadLossStep] == 0.0) {
    s[StepScalars::kBadLossStep] = static_cast<double>(a.step);
    s[StepScalars::kBadLoss] = loss;
  }
}

TXL_HOST_DEVICE inline void step_grad_factor(const GradFactorArgs& a, double* s) {
  const double sum_squares = s[StepScalars::kSumSquares];
  const double norm = square_root(sum_squares) * a.unscale;
  double coef = 1.0;
  if (a.clip > 0 && norm > a.clip) coef = a.clip / (norm + 1e-6);
  double factor = a.unscale * coef;
  const bool finite = is_finite(sum_squares);
  if (a.check_finite && !finite && s[StepScalars::kBadGradStep] == 0.0)
    s[StepScalars::kBadGradStep] = static_cast<double>(a.step);
  // After a non-finite step nothing more is applied: the host stops the run when it next
  // reads the record, with the parameters of the last good step.
  const bool recorded = s[StepScalars::kBadLossStep] != 0.0 || s[StepScalars::kBadGradStep] != 0.0;
  if (!finite || (a.check_finite && recorded)) factor = quiet_nan();
  s[StepScalars::kGradNorm] = norm;
  s[StepScalars::kGradFactor] = factor;
}

}  // namespace txl::step_math
