#include "txl/optim/lr_scheduler.h"

#include <cmath>
#include <limits>
#include <numbers>

#include "txl/core/error.h"

namespace txl {

LrScheduler::LrScheduler(const ScheduleSettings& s) : s_(s) {
  TXL_CHECK(s_.kind == "cosine" || s_.kind == "inv_sqrt" || s_.kind == "dev_perf" || s_.kind == "constant",
            "scheduler: unknown kind '{}'", s_.kind);
  TXL_CHECK(s_.warmup_step >= 0, "scheduler: warmup_step must be >= 0 (got {})", s_.warmup_step);
  plateau_.rate = s_.lr;
  plateau_.best = std::numeric_limits<double>::infinity();
}

double LrScheduler::rate(int64_t k) const {
  const double W = static_cast<double>(s_.warmup_step);
  const double kd = static_cast<double>(k);
  if (s_.kind == "inv_sqrt") {
    if (k == 0 && s_.warmup_step == 0) return s_.lr;
    if (k <= s_.warmup_step) return s_.lr * kd / std::pow(W, 1.5);
    return s_.lr / std::sqrt(kd);
  }
  // cosine, dev_perf, constant: step 1 runs at the base rate, then linear warm-up.
  if (k == 0) return s_.lr;
  if (k < s_.warmup_step) return s_.lr * kd / W;
  if (s_.kind == "cosine") {
    // A run may end inside the warm-up with the period end at or before it (the
    // recipe's short benchmarks); the cosine part exists only past the warm-up.
    TXL_CHECK(s_.max_step > s_.warmup_step, "scheduler: cosine at step {} needs max_step ({}) > warmup_step ({})", k,
              s_.max_step, s_.warmup_step);
    const double T = static_cast<double>(s_.max_step);
    return s_.eta_min + (s_.lr - s_.eta_min) * (1.0 + std::cos(std::numbers::pi * (kd - W) / (T - W))) / 2.0;
  }
  if (s_.kind == "dev_perf") return plateau_.rate;
  return s_.lr;
}

void LrScheduler::on_validation(double loss) {
  if (s_.kind != "dev_perf") return;
  constexpr double kThreshold = 1e-4;
  if (loss < plateau_.best * (1.0 - kThreshold)) {
    plateau_.best = loss;
    plateau_.bad_evals = 0;
  } else {
    ++plateau_.bad_evals;
  }
  if (plateau_.bad_evals > s_.patience) {
    const double reduced = std::max(plateau_.rate * s_.decay_rate, s_.lr_min);
    if (plateau_.rate - reduced > 1e-8) plateau_.rate = reduced;
    plateau_.bad_evals = 0;
  }
}

}  // namespace txl
