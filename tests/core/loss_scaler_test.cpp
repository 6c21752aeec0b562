#include "txl/core/loss_scaler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "txl/core/error.h"

namespace txl {
namespace {

TEST(LossScaler, StartsAtTwoToTheSixteenth) {
  DynamicLossScaler scaler;
  EXPECT_TRUE(scaler.enabled());
  EXPECT_EQ(scaler.scale(), 65536.0);
  EXPECT_EQ(scaler.inverse_scale(), 1.0 / 65536.0);
}

TEST(LossScaler, NonFiniteGradientSkipsAndHalves) {
  DynamicLossScaler scaler;
  EXPECT_FALSE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 32768.0);
  EXPECT_FALSE(scaler.update_from_sum_squares(std::numeric_limits<double>::infinity()));
  EXPECT_FALSE(scaler.update_from_sum_squares(std::nan("")));
  EXPECT_EQ(scaler.scale(), 8192.0);
  EXPECT_EQ(scaler.skipped_steps(), 3);
  EXPECT_EQ(scaler.consecutive_skips(), 3);
  EXPECT_TRUE(scaler.update_from_sum_squares(12.5));
  EXPECT_EQ(scaler.consecutive_skips(), 0);
  EXPECT_EQ(scaler.scale(), 8192.0);
}

TEST(LossScaler, DoublesAfterGrowthIntervalCleanSteps) {
  DynamicLossScaler scaler;
  for (int i = 0; i < 1999; ++i) ASSERT_TRUE(scaler.update(true));
  EXPECT_EQ(scaler.scale(), 65536.0);
  EXPECT_TRUE(scaler.update(true));  // the 2000th clean step
  EXPECT_EQ(scaler.scale(), 131072.0);
  for (int i = 0; i < 1999; ++i) ASSERT_TRUE(scaler.update(true));
  EXPECT_EQ(scaler.scale(), 131072.0);
  EXPECT_TRUE(scaler.update(true));
  EXPECT_EQ(scaler.scale(), 262144.0);
}

TEST(LossScaler, SkipRestartsTheCleanCount) {
  LossScalerOptions o;
  o.growth_interval = 3;
  DynamicLossScaler scaler(o);
  scaler.update(true);
  scaler.update(true);
  scaler.update(false);  // 65536 -> 32768, count restarts
  scaler.update(true);
  scaler.update(true);
  EXPECT_EQ(scaler.scale(), 32768.0);
  scaler.update(true);
  EXPECT_EQ(scaler.scale(), 65536.0);
}

TEST(LossScaler, RespectsBounds) {
  LossScalerOptions o;
  o.initial_scale = 4.0;
  o.min_scale = 1.0;
  o.max_scale = 8.0;
  o.growth_interval = 1;
  DynamicLossScaler scaler(o);
  for (int i = 0; i < 5; ++i) scaler.update(false);
  EXPECT_EQ(scaler.scale(), 1.0);
  for (int i = 0; i < 5; ++i) scaler.update(true);
  EXPECT_EQ(scaler.scale(), 8.0);
}

TEST(LossScaler, DisabledIsIdentity) {
  LossScalerOptions o;
  o.enabled = false;
  DynamicLossScaler scaler(o);
  EXPECT_EQ(scaler.scale(), 1.0);
  EXPECT_TRUE(scaler.update(false));
  EXPECT_TRUE(scaler.update_from_sum_squares(std::numeric_limits<double>::infinity()));
  EXPECT_EQ(scaler.scale(), 1.0);
  EXPECT_EQ(scaler.skipped_steps(), 0);
}

TEST(LossScaler, StateRoundTrips) {
  LossScalerOptions o;
  o.growth_interval = 4;
  DynamicLossScaler a(o);
  a.update(false);
  a.update(true);
  a.update(true);
  DynamicLossScaler b(o);
  b.load(a.state());
  EXPECT_EQ(b.scale(), a.scale());
  EXPECT_EQ(b.skipped_steps(), 1);
  b.update(true);
  b.update(true);  // 4th clean step since the change: grows
  EXPECT_EQ(b.scale(), a.scale() * 2.0);
}

TEST(LossScaler, RejectsBadStateAndOptions) {
  DynamicLossScaler scaler;
  EXPECT_THROW(scaler.load({-1.0, 0, 0}), Error);
  EXPECT_THROW(scaler.load({std::numeric_limits<double>::infinity(), 0, 0}), Error);
  LossScalerOptions o;
  o.backoff_factor = 1.5;
  EXPECT_THROW(DynamicLossScaler{o}, Error);
}

// A loss that is always inf: the scale halves down to min_scale, then after
// max_skips_at_min_scale more skipped steps the run stops with an error naming the step.
TEST(LossScaler, AlwaysInfiniteLossStopsAtTheMinimumScale) {
  LossScalerOptions o;
  o.initial_scale = 8.0;
  o.min_scale = 1.0;
  o.max_skips_at_min_scale = 3;
  DynamicLossScaler scaler(o);
  const double inf = std::numeric_limits<double>::infinity();
  int64_t step = 0;
  std::string error;
  while (error.empty() && step < 100) {
    ++step;
    EXPECT_FALSE(scaler.update_from_sum_squares(inf));
    try {
      scaler.require_progress(step);
    } catch (const Error& e) {
      error = e.what();
    }
  }
  // Steps 1-3 halve 8 -> 1; steps 4, 5, 6 are skipped at the minimum scale 1.
  EXPECT_EQ(step, 6);
  EXPECT_NE(error.find("step 6:"), std::string::npos) << error;
  EXPECT_NE(error.find("minimum loss scale"), std::string::npos) << error;
  // One finite step in between restarts the count.
  DynamicLossScaler again(o);
  for (int i = 0; i < 5; ++i) again.update(false);
  again.update(true);
  again.update(false);
  EXPECT_NO_THROW(again.require_progress(8));
  EXPECT_EQ(again.skips_at_min_scale(), 1);
}

}  // namespace
}  // namespace txl
