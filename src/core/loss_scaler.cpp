#include "txl/core/loss_scaler.h"

#include <algorithm>
#include <cmath>

#include "txl/core/error.h"

namespace txl {

DynamicLossScaler::DynamicLossScaler(const LossScalerOptions& options) : options_(options) {
  if (!options_.enabled) return;  // scale stays 1
  TXL_CHECK(std::isfinite(options_.initial_scale) && options_.initial_scale > 0,
            "loss scaler: initial scale {} must be positive", options_.initial_scale);
  TXL_CHECK(options_.growth_factor > 1.0, "loss scaler: growth factor {} must be > 1", options_.growth_factor);
  TXL_CHECK(options_.backoff_factor > 0.0 && options_.backoff_factor < 1.0,
            "loss scaler: backoff factor {} must be in (0, 1)", options_.backoff_factor);
  TXL_CHECK(options_.growth_interval >= 1, "loss scaler: growth interval {} must be >= 1", options_.growth_interval);
  TXL_CHECK(options_.max_skips_at_min_scale >= 1, "loss scaler: max_skips_at_min_scale {} must be >= 1",
            options_.max_skips_at_min_scale);
  TXL_CHECK(options_.min_scale > 0 && options_.min_scale <= options_.max_scale,
            "loss scaler: need 0 < min_scale ({}) <= max_scale ({})", options_.min_scale, options_.max_scale);
  state_.scale = std::clamp(options_.initial_scale, options_.min_scale, options_.max_scale);
}

bool DynamicLossScaler::update(bool grads_finite) {
  if (!options_.enabled) return true;
  if (!grads_finite) {
    skips_at_min_scale_ = state_.scale <= options_.min_scale ? skips_at_min_scale_ + 1 : 0;
    state_.scale = std::max(options_.min_scale, state_.scale * options_.backoff_factor);
    state_.clean_steps = 0;
    ++state_.skipped_steps;
    ++consecutive_skips_;
    return false;
  }
  consecutive_skips_ = 0;
  skips_at_min_scale_ = 0;
  if (++state_.clean_steps >= options_.growth_interval) {
    state_.scale = std::min(options_.max_scale, state_.scale * options_.growth_factor);
    state_.clean_steps = 0;
  }
  return true;
}

bool DynamicLossScaler::update_from_sum_squares(double grad_sum_squares) {
  return update(std::isfinite(grad_sum_squares));
}

void DynamicLossScaler::load(const State& state) {
  TXL_CHECK(std::isfinite(state.scale) && state.scale > 0, "loss scaler: checkpoint scale {} is not a positive number",
            state.scale);
  TXL_CHECK(state.clean_steps >= 0 && state.skipped_steps >= 0,
            "loss scaler: checkpoint counters must be >= 0 (clean {}, skipped {})", state.clean_steps,
            state.skipped_steps);
  state_ = state;
  if (!options_.enabled) state_.scale = 1.0;
  consecutive_skips_ = 0;
  skips_at_min_scale_ = 0;
}

void DynamicLossScaler::require_progress(int64_t step) const {
  if (!options_.enabled || skips_at_min_scale_ < options_.max_skips_at_min_scale) return;
  failf(
      "step {}: the fp16 gradients were not finite in the last {} steps, all at the minimum loss scale {} (every "
      "step is skipped); lower lr, enable clip, or train with precision: bf16 or fp32",
      step, skips_at_min_scale_, options_.min_scale);
}

}  // namespace txl
