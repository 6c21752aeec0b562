// Learning-rate schedules against docs/training.md §4 at selected steps.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "txl/optim/lr_scheduler.h"

namespace txl {
namespace {

LrScheduler make(const std::string& kind, double lr, int64_t warmup, int64_t max_step = 1000, double eta_min = 0) {
  ScheduleSettings s;
  s.kind = kind;
  s.lr = lr;
  s.warmup_step = warmup;
  s.max_step = max_step;
  s.eta_min = eta_min;
  return LrScheduler(s);
}

TEST(LrScheduler, CosineWithWarmup) {
  const LrScheduler s = make("cosine", 0.01, 100, 1000, 0.001);
  EXPECT_DOUBLE_EQ(s.lr_for_step(1), 0.01);          // f(0) = lr: the recipe's first step
  EXPECT_DOUBLE_EQ(s.lr_for_step(2), 0.01 * 1 / 100);  // f(1)
  EXPECT_DOUBLE_EQ(s.lr_for_step(100), 0.01 * 99 / 100);
  EXPECT_DOUBLE_EQ(s.lr_for_step(101), 0.01);         // k = W: cos(0)
  EXPECT_NEAR(s.lr_for_step(551), 0.001 + 0.009 * 0.5, 1e-15);  // halfway through the period
  const double k = 777, expect = 0.001 + 0.009 * (1 + std::cos(std::numbers::pi * (k - 100) / 900)) / 2;
  EXPECT_NEAR(s.lr_for_step(778), expect, 1e-15);
  EXPECT_NEAR(s.lr_for_step(1001), 0.001, 1e-15);     // k = T: eta_min
}

TEST(LrScheduler, CosineWithoutWarmupStartsAtLr) {
  const LrScheduler s = make("cosine", 0.5, 0, 10, 0.0);
  EXPECT_DOUBLE_EQ(s.lr_for_step(1), 0.5);
  EXPECT_NEAR(s.lr_for_step(6), 0.25, 1e-15);
  EXPECT_NEAR(s.lr_for_step(11), 0.0, 1e-15);
}

TEST(LrScheduler, Constant) {
  const LrScheduler s = make("constant", 0.2, 10);
  EXPECT_DOUBLE_EQ(s.lr_for_step(1), 0.2);
  EXPECT_DOUBLE_EQ(s.lr_for_step(5), 0.2 * 4 / 10);
  EXPECT_DOUBLE_EQ(s.lr_for_step(11), 0.2);
  EXPECT_DOUBLE_EQ(s.lr_for_step(100000), 0.2);
}

TEST(LrScheduler, InvSqrt) {
  const LrScheduler s = make("inv_sqrt", 0.1, 100);
  EXPECT_DOUBLE_EQ(s.lr_for_step(1), 0.0);  // f(0) = 0 when W > 0
  EXPECT_DOUBLE_EQ(s.lr_for_step(51), 0.1 * 50 / 1000);
  EXPECT_DOUBLE_EQ(s.lr_for_step(101), 0.1 * 100 / 1000);  // k = W: still the warm-up branch
  EXPECT_DOUBLE_EQ(s.lr_for_step(401), 0.1 / 20);
  const LrScheduler z = make("inv_sqrt", 0.1, 0);
  EXPECT_DOUBLE_EQ(z.lr_for_step(1), 0.1);
  EXPECT_DOUBLE_EQ(z.lr_for_step(5), 0.1 / 2);
}

TEST(LrScheduler, DevPerfDecaysOnPlateau) {
  ScheduleSettings st;
  st.kind = "dev_perf";
  st.lr = 1.0;
  st.warmup_step = 4;
  st.decay_rate = 0.5;
  st.patience = 1;
  st.lr_min = 0.3;
  LrScheduler s(st);
  EXPECT_DOUBLE_EQ(s.lr_for_step(1), 1.0);
  EXPECT_DOUBLE_EQ(s.lr_for_step(3), 0.5);  // warm-up f(2) = 2/4
  EXPECT_DOUBLE_EQ(s.lr_for_step(9), 1.0);
  s.on_validation(3.0);   // best
  s.on_validation(2.9);   // best
  s.on_validation(2.9);   // bad 1 (not below best * (1 - 1e-4))
  EXPECT_DOUBLE_EQ(s.lr_for_step(9), 1.0);
  s.on_validation(2.95);  // bad 2 > patience: halve
  EXPECT_DOUBLE_EQ(s.lr_for_step(9), 0.5);
  EXPECT_EQ(s.plateau().bad_evals, 0);
  s.on_validation(2.91);  // bad 1
  EXPECT_DOUBLE_EQ(s.lr_for_step(9), 0.5);
  s.on_validation(2.92);  // bad 2: 0.25 is below lr_min
  EXPECT_DOUBLE_EQ(s.lr_for_step(9), 0.3);
  s.on_validation(2.0);   // improvement: no change
  EXPECT_DOUBLE_EQ(s.lr_for_step(9), 0.3);
  EXPECT_DOUBLE_EQ(s.lr_for_step(2), 0.25);  // warm-up unaffected
  // The plateau state restores exactly (checkpoints).
  LrScheduler r(st);
  r.set_plateau(s.plateau());
  EXPECT_DOUBLE_EQ(r.lr_for_step(100), 0.3);
  EXPECT_DOUBLE_EQ(r.plateau().best, 2.0);
}

TEST(LrScheduler, OtherSchedulesIgnoreValidation) {
  LrScheduler s = make("cosine", 0.01, 0, 100);
  const double before = s.lr_for_step(50);
  for (int i = 0; i < 5; ++i) s.on_validation(5.0);
  EXPECT_DOUBLE_EQ(s.lr_for_step(50), before);
}

}  // namespace
}  // namespace txl
