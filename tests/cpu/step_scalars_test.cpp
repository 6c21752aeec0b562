// The ops that keep a training step's scalars on the device (ops.h "reductions into
// device memory", "step scalars") and the optimizers' clearing of the gradients they
// consume: device results equal the host ones bit for bit, the clipping arithmetic
// equals the host expression at and around the threshold, non-finite steps are recorded
// once and never applied, and every optimizer (skipped steps too) leaves g == 0.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "test_util.h"

namespace txl {
namespace {

using S = StepScalars;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

std::vector<double> fresh_scalars() { return std::vector<double>(S::kCount, 0.0); }

template <typename T>
void expect_device_sums_match(Ops<T>& ops, int64_t n, uint64_t seed) {
  const auto x = test::random_vector<T>(n, seed, -3.0, 5.0);
  double sum = -1.0, squares = -1.0;
  ops.sum_to_device(x.data(), n, &sum);
  ops.sum_squares_to_device(x.data(), n, &squares);
  EXPECT_TRUE(same_bits(sum, ops.sum(x.data(), n))) << "n " << n;
  EXPECT_TRUE(same_bits(squares, ops.sum_squares(x.data(), n))) << "n " << n;
}

TEST(StepScalarOps, DeviceSumsEqualTheHostSumsBitForBit) {
  auto opsf = make_cpu_ops<float>();
  auto opsd = make_cpu_ops<double>();
  for (int64_t n : {0, 1, 7, 16384, 16385, 200003}) {
    expect_device_sums_match(*opsf, n, 3);
    expect_device_sums_match(*opsd, n, 4);
  }
  // Any thread count gives the same bits (the fixed-block reduction of the host versions).
  const auto x = test::random_vector<float>(300001, 5);
  const int saved = omp_get_max_threads();
  double one = 0, two = 0;
  omp_set_num_threads(1);
  opsf->sum_squares_to_device(x.data(), 300001, &one);
  omp_set_num_threads(std::max(2, saved));
  opsf->sum_squares_to_device(x.data(), 300001, &two);
  omp_set_num_threads(saved);
  EXPECT_TRUE(same_bits(one, two));
}

// The trainer's former host arithmetic: loss += sum_c / tokens / chunks, in chunk order.
TEST(StepScalarOps, StepLossIsTheHostExpressionAndAccumulatesTheInterval) {
  auto ops = make_cpu_ops<float>();
  std::vector<double> s = fresh_scalars();
  const std::vector<double> sums = {1234.5678, 987.125, 3.0e-3};
  StepLossArgs a;
  a.chunks = 3;
  a.tokens_per_chunk = 7 * 3;
  a.step = 4;
  a.new_interval = true;
  ops->step_loss_update(sums.data(), a, s.data());
  double host = 0.0;
  for (double c : sums) host += c / static_cast<double>(7 * 3) / 3.0;
  EXPECT_TRUE(same_bits(s[S::kLoss], host));
  EXPECT_TRUE(same_bits(s[S::kIntervalLoss], host));
  a.new_interval = false;
  ops->step_loss_update(sums.data(), a, s.data());
  EXPECT_TRUE(same_bits(s[S::kIntervalLoss], host + host));
  a.new_interval = true;  // the next interval starts again
  ops->step_loss_update(sums.data(), a, s.data());
  EXPECT_TRUE(same_bits(s[S::kIntervalLoss], host));
  EXPECT_EQ(s[S::kBadLossStep], 0.0);
}

TEST(StepScalarOps, ANonFiniteLossIsRecordedOnceWithItsStep) {
  auto ops = make_cpu_ops<float>();
  std::vector<double> s = fresh_scalars();
  std::vector<double> sums = {1.0, kNaN};
  StepLossArgs a;
  a.chunks = 2;
  a.tokens_per_chunk = 5;
  a.step = 6;
  ops->step_loss_update(sums.data(), a, s.data());
  EXPECT_EQ(s[S::kBadLossStep], 6.0);
  EXPECT_TRUE(std::isnan(s[S::kBadLoss]));
  sums = {kInf, 0.0};
  a.step = 9;
  ops->step_loss_update(sums.data(), a, s.data());
  EXPECT_EQ(s[S::kBadLossStep], 6.0);  // the first one stays
  // fp16 (check_finite off): nothing is recorded.
  std::vector<double> f = fresh_scalars();
  a.check_finite = false;
  ops->step_loss_update(sums.data(), a, f.data());
  EXPECT_EQ(f[S::kBadLossStep], 0.0);
  EXPECT_TRUE(std::isinf(f[S::kLoss]));
  // Argument checks (src/core/ops.cpp).
  a.chunks = 0;
  EXPECT_THROW(ops->step_loss_update(sums.data(), a, f.data()), Error);
}

// The host code the op replaces (the former clip_and_step).
std::pair<double, double> host_norm_and_factor(double sum_squares, double unscale, double clip) {
  const double norm = std::sqrt(sum_squares) * unscale;
  double coef = 1.0;
  if (clip > 0 && norm > clip) coef = clip / (norm + 1e-6);
  return {norm, unscale * coef};
}

TEST(StepScalarOps, GradFactorIsTheHostClippingArithmeticAroundTheThreshold) {
  auto ops = make_cpu_ops<float>();
  const double unscale = 1.0 / 3.0;
  // norm = sqrt(ss) * unscale; with ss = (3 c)^2 the norm is c up to rounding: probe the
  // sums of squares whose norms fall just below, at and just above the threshold.
  const double clip = 0.25;
  std::vector<double> probes;
  for (double ss = std::nextafter(0.5625, 0.0); probes.size() < 3; ss = std::nextafter(ss, 1.0)) probes.push_back(ss);
  probes.push_back(0.5625 * 4);  // clearly clipped
  probes.push_back(0.0);         // zero gradient
  int clipped = 0, unclipped = 0;
  for (double ss : probes) {
    for (double c : {clip, 0.0}) {
      std::vector<double> s = fresh_scalars();
      s[S::kSumSquares] = ss;
      GradFactorArgs a;
      a.unscale = unscale;
      a.clip = c;
      a.step = 2;
      ops->step_grad_factor(a, s.data());
      const auto [norm, factor] = host_norm_and_factor(ss, unscale, c);
      EXPECT_TRUE(same_bits(s[S::kGradNorm], norm)) << "ss " << ss << " clip " << c;
      EXPECT_TRUE(same_bits(s[S::kGradFactor], factor)) << "ss " << ss << " clip " << c;
      if (c > 0) (norm > c ? clipped : unclipped) += 1;
    }
  }
  EXPECT_GT(clipped, 0);  // the probes straddle the threshold
  EXPECT_GT(unclipped, 0);
  // At exactly norm == clip nothing is clipped (the host's strict >).
  std::vector<double> s = fresh_scalars();
  s[S::kSumSquares] = 0.0625;  // norm 0.25 with unscale 1
  GradFactorArgs a;
  a.clip = 0.25;
  ops->step_grad_factor(a, s.data());
  EXPECT_EQ(s[S::kGradNorm], 0.25);
  EXPECT_EQ(s[S::kGradFactor], 1.0);
}

TEST(StepScalarOps, ANonFiniteGradientIsRecordedAndNeverApplied) {
  auto ops = make_cpu_ops<float>();
  std::vector<double> s = fresh_scalars();
  GradFactorArgs a;
  a.unscale = 0.5;
  a.clip = 1.0;
  a.step = 3;
  s[S::kSumSquares] = kInf;
  ops->step_grad_factor(a, s.data());
  EXPECT_EQ(s[S::kBadGradStep], 3.0);
  EXPECT_TRUE(std::isnan(s[S::kGradFactor]));
  // Later finite steps are not applied either (the run stops at the next host check).
  s[S::kSumSquares] = 4.0;
  a.step = 4;
  ops->step_grad_factor(a, s.data());
  EXPECT_EQ(s[S::kBadGradStep], 3.0);
  EXPECT_TRUE(std::isnan(s[S::kGradFactor]));
  EXPECT_EQ(s[S::kGradNorm], 1.0);
  // A recorded non-finite loss blocks the update of its step.
  std::vector<double> l = fresh_scalars();
  l[S::kBadLossStep] = 7.0;
  l[S::kSumSquares] = 4.0;
  ops->step_grad_factor(a, l.data());
  EXPECT_TRUE(std::isnan(l[S::kGradFactor]));
  EXPECT_EQ(l[S::kBadGradStep], 0.0);
  // fp16: an overflow skips its step only and records nothing.
  std::vector<double> f = fresh_scalars();
  a.check_finite = false;
  f[S::kSumSquares] = kNaN;
  ops->step_grad_factor(a, f.data());
  EXPECT_TRUE(std::isnan(f[S::kGradFactor]));
  EXPECT_EQ(f[S::kBadGradStep], 0.0);
  f[S::kSumSquares] = 4.0;
  ops->step_grad_factor(a, f.data());
  EXPECT_EQ(f[S::kGradFactor], 0.5);  // norm 1 == clip: not clipped
  a.unscale = 0.0;
  EXPECT_THROW(ops->step_grad_factor(a, f.data()), Error);
}

// ---- the optimizers consume their gradients ----------------------------------------
enum class Kind { kLamb, kAdam, kSgd, kSgdMomentum, kAdagrad };

struct OptimCase {
  std::vector<float> p, g, s1, s2;
};

OptimCase make_case(int64_t n) {
  OptimCase c;
  c.p = test::random_vector<float>(n, 11);
  c.g = test::random_vector<float>(n, 12);
  c.s1 = test::random_vector<float>(n, 13, 0.0, 0.1);
  c.s2 = test::random_vector<float>(n, 14, 0.0, 0.1);
  return c;
}

void run_step(Ops<float>& ops, Kind k, OptimCase& c, const OptimStep& s) {
  const int64_t n = static_cast<int64_t>(c.p.size());
  switch (k) {
    case Kind::kLamb:
      ops.lamb_step(c.p.data(), c.g.data(), c.s1.data(), c.s2.data(), {{0, n / 3}, {n / 3, n - n / 3}}, s);
      break;
    case Kind::kAdam:
      ops.adam_step(c.p.data(), c.g.data(), c.s1.data(), c.s2.data(), n, s);
      break;
    case Kind::kSgd:
      ops.sgd_step(c.p.data(), c.g.data(), nullptr, n, s);
      break;
    case Kind::kSgdMomentum:
      ops.sgd_step(c.p.data(), c.g.data(), c.s1.data(), n, s);
      break;
    case Kind::kAdagrad:
      ops.adagrad_step(c.p.data(), c.g.data(), c.s1.data(), n, s);
      break;
  }
}

OptimStep hyper(Kind k) {
  OptimStep s;
  s.lr = 0.01;
  s.weight_decay = 0.01;
  s.step = 3;
  if (k == Kind::kSgdMomentum) s.momentum = 0.9;
  return s;
}

bool all_zero(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; });
}

TEST(OptimizerClearsGradients, EveryStepLeavesZeroGradientsAndTheDeviceFactorEqualsTheHostOne) {
  auto ops = make_cpu_ops<float>();
  for (Kind k : {Kind::kLamb, Kind::kAdam, Kind::kSgd, Kind::kSgdMomentum, Kind::kAdagrad}) {
    SCOPED_TRACE(static_cast<int>(k));
    const int64_t n = 70001;  // the threaded paths
    OptimCase host = make_case(n), device = make_case(n);
    OptimStep s = hyper(k);
    s.grad_scale = 0.37;
    run_step(*ops, k, host, s);
    const double factor = 0.37;
    s.grad_scale = 123.0;  // ignored: the device factor wins
    s.device_grad_scale = &factor;
    run_step(*ops, k, device, s);
    EXPECT_TRUE(all_zero(host.g));
    EXPECT_TRUE(all_zero(device.g));
    EXPECT_EQ(host.p, device.p);
    EXPECT_EQ(host.s1, device.s1);
    EXPECT_EQ(host.s2, device.s2);
  }
}

TEST(OptimizerClearsGradients, ASkippedStepClearsAndChangesNothingElse) {
  auto ops = make_cpu_ops<float>();
  for (double bad : {kNaN, kInf}) {
    for (Kind k : {Kind::kLamb, Kind::kAdam, Kind::kSgd, Kind::kSgdMomentum, Kind::kAdagrad}) {
      SCOPED_TRACE(static_cast<int>(k));
      OptimCase c = make_case(1001);
      const OptimCase before = c;
      OptimStep s = hyper(k);
      s.device_grad_scale = &bad;
      run_step(*ops, k, c, s);
      EXPECT_TRUE(all_zero(c.g));
      EXPECT_EQ(c.p, before.p);
      EXPECT_EQ(c.s1, before.s1);
      EXPECT_EQ(c.s2, before.s2);
    }
  }
}

}  // namespace
}  // namespace txl
