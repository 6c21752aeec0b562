// Learning-rate schedules of docs/training.md §4, as the recipe applies them: the schedule is
// evaluated after each optimizer step for the next one, so optimizer step s (1-based)
// runs at rate(s - 1).
#pragma once
#include <cstdint>
#include <string>

namespace txl {

struct ScheduleSettings {
  std::string kind = "cosine";  // cosine | inv_sqrt | dev_perf | constant
  double lr = 0.01;
  int64_t warmup_step = 0;
  int64_t max_step = 1;         // cosine period end T (max_step_scheduler or max_step)
  double eta_min = 0.0;         // cosine
  double decay_rate = 0.5;      // dev_perf
  double lr_min = 0.0;          // dev_perf
  int64_t patience = 0;         // dev_perf
};

class LrScheduler {
 public:
  // What dev_perf remembers between evaluations (saved in checkpoints).
  struct PlateauState {
    double rate = 0.0;          // the current post-warm-up rate
    double best = 0.0;          // best validation loss so far (+inf before the first)
    int64_t bad_evals = 0;      // evaluations since the last improvement
  };

  explicit LrScheduler(const ScheduleSettings& s);

  // f(k) of docs/training.md §4.
  double rate(int64_t k) const;
  // The rate of optimizer step `step` (1-based): f(step - 1).
  double lr_for_step(int64_t step) const { return rate(step - 1); }

  // dev_perf: called after every validation with its loss. ReduceLROnPlateau semantics
  // (mode min, relative threshold 1e-4, no cooldown): the rate is multiplied by
  // decay_rate, never below lr_min, when more than `patience` consecutive evaluations
  // did not improve on the best loss. Other schedules ignore it.
  void on_validation(double loss);

  const PlateauState& plateau() const { return plateau_; }
  void set_plateau(const PlateauState& p) { plateau_ = p; }
  const ScheduleSettings& settings() const { return s_; }

 private:
  ScheduleSettings s_;
  PlateauState plateau_;
};

}  // namespace txl
