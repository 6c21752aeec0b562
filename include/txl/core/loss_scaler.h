// Dynamic loss scaling for fp16 mixed precision (docs/training.md §4). The loss gradient is
// multiplied by scale() before backward so that small gradients survive the float16
// GEMM operands; the optimizer removes the factor again (multiply its grad_scale by
// inverse_scale()). After backward the trainer checks the gradients (the global sum of
// squares it needs for clipping anyway: finite or not) and calls update():
//   - a non-finite gradient: the step is skipped and the scale halved;
//   - growth_interval clean steps in a row: the scale doubles.
//   - max_skips_at_min_scale steps in a row not finite at min_scale: require_progress()
//     throws (the run can no longer make progress; it would skip every step forever).
// Disabled (fp32 / tf32 / bf16), the scale is 1 and every step is applied.
#pragma once
#include <cstdint>

namespace txl {

struct LossScalerOptions {
  bool enabled = true;
  double initial_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;      // clean steps before the scale grows
  double min_scale = 1.0;              // the scale never drops below this
  double max_scale = 16777216.0;       // 2^24; the scale never grows above this
  int64_t max_skips_at_min_scale = 8;  // consecutive skips at min_scale before giving up
};

class DynamicLossScaler {
 public:
  struct State {  // what a checkpoint stores
    double scale = 1.0;
    int64_t clean_steps = 0;    // clean steps since the last change of scale
    int64_t skipped_steps = 0;  // total steps skipped
  };

  explicit DynamicLossScaler(const LossScalerOptions& options = {});

  bool enabled() const { return options_.enabled; }
  double scale() const { return state_.scale; }
  double inverse_scale() const { return 1.0 / state_.scale; }
  // Records one optimizer step; returns true when it must be applied, false when it
  // must be skipped (gradients not finite). Adjusts the scale.
  bool update(bool grads_finite);
  // Convenience: update(std::isfinite(grad_sum_squares)).
  bool update_from_sum_squares(double grad_sum_squares);

  int64_t skipped_steps() const { return state_.skipped_steps; }
  int64_t consecutive_skips() const { return consecutive_skips_; }
  int64_t skips_at_min_scale() const { return skips_at_min_scale_; }
  // After update() of optimizer step `step`: a txl::Error naming the step when the last
  // max_skips_at_min_scale steps were all skipped at the minimum scale.
  void require_progress(int64_t step) const;
  State state() const { return state_; }
  void load(const State& state);  // validates (positive, finite scale)

 private:
  LossScalerOptions options_;
  State state_;
  int64_t consecutive_skips_ = 0;
  int64_t skips_at_min_scale_ = 0;
};

}  // namespace txl
