// Optimizer steps against hand-computed updates on tiny tensors. The literal numbers
// were worked out from the docs/training.md §4 / PyTorch formulas written next to them.
#include <gtest/gtest.h>

#include "test_util.h"

namespace txl {
namespace {

constexpr double kTol = 1e-12;

void expect_values(const std::vector<double>& actual, const std::vector<double>& expected, const char* what) {
  test::expect_close(actual, expected, kTol, what);
}

// ---- LAMB ----------------------------------------------------------------------------
// Flat buffer: slice A [0,2), slice B [2,5) (all-zero weights), slice D [5,9) (|p| > 10).
// lr 0.02, grad_scale 0.5, weight decay 0.01, beta 0.9/0.999, eps 1e-6.
//  A: p = (3, 4), |p| = 5; g' = 0.5 g = (0.5, -1); m0 = (0.2, -0.1), v0 = (0.01, 0.04)
//     m = 0.9 m0 + 0.1 g' = (0.23, -0.19);  v = 0.999 v0 + 0.001 g'^2 = (0.01024, 0.04096)
//     a = m / (sqrt(v) + 1e-6) + 0.01 p = (0.23/0.101201 + 0.03, -0.19/0.202401 + 0.04)
//       = (2.30286460753048, -0.89879654171353);  |a| = 2.47204786038069
//     trust = 5 / (2.47204786038069 + 1e-6) = 2.02261374365797
//     p -= 0.02 * trust * a  ->  (2.90684388790051, 4.03635836476044)
//  B: p = 0 -> wn = 0 -> trust = 1; g' = (0.25, -0.5, 1); m = 0.1 g'; v = 0.001 g'^2
//     a = m / (sqrt(v) + 1e-6) ~ (3.16188, -3.16208, 3.16218); p = -0.02 a
//  D: p = (6, 8, 0, 10), |p| = sqrt(200) = 14.14 -> wn = 10 (clamped); m0 = v0 = 0
//     g' = (0.15, -0.1, 0.05, 0.2); a = 0.1 g' / (sqrt(0.001) |g'| + 1e-6) + 0.01 p
//     |a| = 6.36393032373135; trust = 10 / (|a| + 1e-6) = 1.57135573771980 (1.5714 != 2.0226)
TEST(Optimizers, LambTrustRatios) {
  auto ops = make_cpu_ops<double>();
  std::vector<double> p = {3, 4, 0, 0, 0, 6, 8, 0, 10};
  std::vector<double> g = {1, -2, 0.5, -1, 2, 0.3, -0.2, 0.1, 0.4};
  std::vector<double> m = {0.2, -0.1, 0, 0, 0, 0, 0, 0, 0};
  std::vector<double> v = {0.01, 0.04, 0, 0, 0, 0, 0, 0, 0};
  OptimStep s;
  s.lr = 0.02;
  s.grad_scale = 0.5;
  s.weight_decay = 0.01;
  s.beta1 = 0.9;
  s.beta2 = 0.999;
  s.eps = 1e-6;
  ops->lamb_step(p.data(), g.data(), m.data(), v.data(), {{0, 2}, {2, 3}, {5, 4}}, s);
  expect_values({m[0], m[1]}, {0.23, -0.19}, "m (A)");
  expect_values({v[0], v[1]}, {0.01024, 0.04096}, "v (A)");
  expect_values({p[0], p[1]}, {2.9068438879005067, 4.036358364760441}, "p (A)");
  expect_values({p[2], p[3], p[4]}, {-0.06323755421516843, 0.06324155345633375, -0.0632435532666111},
                "p (B: |p| = 0, trust 1)");
  expect_values({p[5], p[6], p[7], p[8]},
                {5.898754057197184, 8.096835676551253, -0.09931844840924489, 9.897491736686424},
                "p (D: |p| clamped to 10)");
}

// an == 0: zero gradient, zero state and no weight decay give a = 0; the trust ratio is
// then 1 and p must stay exactly as it was (no 0/0). A second slice in the same call
// still moves.
TEST(Optimizers, LambZeroUpdateDirection) {
  auto ops = make_cpu_ops<double>();
  std::vector<double> p = {1, -2, 0.5};
  std::vector<double> g = {0, 0, 1};
  std::vector<double> m(3, 0.0), v(3, 0.0);
  OptimStep s;
  s.lr = 0.1;
  s.eps = 1e-6;
  ops->lamb_step(p.data(), g.data(), m.data(), v.data(), {{0, 2}, {2, 1}}, s);
  EXPECT_EQ(p[0], 1.0);
  EXPECT_EQ(p[1], -2.0);
  EXPECT_EQ(m[0], 0.0);
  EXPECT_EQ(v[1], 0.0);
  // Slice 2: m = 0.1, v = 0.001, a = 0.1/(sqrt(0.001)+1e-6) = 3.16217766...,
  // wn = 0.5, trust = 0.5/(a + 1e-6), so p = 0.5 - 0.1 * 0.5 * a/(a+1e-6).
  const double a = 0.1 / (std::sqrt(0.001) + 1e-6);
  EXPECT_NEAR(p[2], 0.5 - 0.1 * 0.5 * a / (a + 1e-6), kTol);
}

TEST(Optimizers, LambFloatMatchesDouble) {
  auto opsf = make_cpu_ops<float>();
  std::vector<float> p = {3, 4, 0, 0, 0, 6, 8, 0, 10};
  std::vector<float> g = {1, -2, 0.5, -1, 2, 0.3f, -0.2f, 0.1f, 0.4f};
  std::vector<float> m = {0.2f, -0.1f, 0, 0, 0, 0, 0, 0, 0}, v = {0.01f, 0.04f, 0, 0, 0, 0, 0, 0, 0};
  OptimStep s;
  s.lr = 0.02;
  s.grad_scale = 0.5;
  s.weight_decay = 0.01;
  opsf->lamb_step(p.data(), g.data(), m.data(), v.data(), {{0, 2}, {2, 3}, {5, 4}}, s);
  test::expect_close(p,
                     std::vector<double>{2.9068438879005067, 4.036358364760441, -0.06323755421516843,
                                         0.06324155345633375, -0.0632435532666111, 5.898754057197184,
                                         8.096835676551253, -0.09931844840924489, 9.897491736686424},
                     2e-6, "p (float)");
}

// ---- Adam ----------------------------------------------------------------------------
// Textbook form of PyTorch Adam with L2 weight decay:
//   g_t = s*grad + wd*p;  m_t = b1 m + (1-b1) g_t;  v_t = b2 v + (1-b2) g_t^2
//   p -= lr * (m_t / (1-b1^t)) / (sqrt(v_t / (1-b2^t)) + eps)
// At t = 1 the bias-corrected moments are g and g^2: p -= lr * g / (|g| + eps).
TEST(Optimizers, AdamBiasCorrectionSteps1And3) {
  auto ops = make_cpu_ops<double>();
  std::vector<std::vector<double>> grads = {{0.1, -0.2, 0.3}, {-0.3, 0.1, 0.2}, {0.05, 0.4, -0.1}};
  std::vector<double> p = {0.5, -1.5, 2.0}, m(3, 0.0), v(3, 0.0);
  OptimStep s;
  s.lr = 0.01;
  s.grad_scale = 2.0;
  s.weight_decay = 0.1;
  s.beta1 = 0.9;
  s.beta2 = 0.999;
  s.eps = 1e-8;

  std::vector<double> ref_p = p, ref_m(3, 0.0), ref_v(3, 0.0);
  for (int64_t t = 1; t <= 3; ++t) {
    const auto& grad = grads[static_cast<size_t>(t - 1)];
    std::vector<double> step1(3);
    for (size_t i = 0; i < 3; ++i) {
      const double gi = 2.0 * grad[i] + 0.1 * ref_p[i];
      ref_m[i] = 0.9 * ref_m[i] + 0.1 * gi;
      ref_v[i] = 0.999 * ref_v[i] + 0.001 * gi * gi;
      const double mhat = ref_m[i] / (1.0 - std::pow(0.9, static_cast<double>(t)));
      const double vhat = ref_v[i] / (1.0 - std::pow(0.999, static_cast<double>(t)));
      step1[i] = ref_p[i] - 0.01 * gi / (std::abs(gi) + 1e-8);  // the t = 1 shortcut
      ref_p[i] -= 0.01 * mhat / (std::sqrt(vhat) + 1e-8);
    }
    s.step = t;
    ops->adam_step(p.data(), grads[static_cast<size_t>(t - 1)].data(), m.data(), v.data(), 3, s);
    if (t == 1) {
      expect_values(p, step1, "p after step 1 (shortcut)");
      expect_values(p, ref_p, "p after step 1");
    }
    if (t == 3) {
      expect_values(p, ref_p, "p after step 3");
      expect_values(m, ref_m, "m after step 3");
      expect_values(v, ref_v, "v after step 3");
    }
  }
  s.step = 0;
  EXPECT_THROW(ops->adam_step(p.data(), grads[0].data(), m.data(), v.data(), 3, s), Error);
}

// ---- SGD -----------------------------------------------------------------------------
// lr 0.1, momentum 0.9, weight decay 0.01, p0 = (1, -2):
//  step 1: d = g1 + 0.01 p0 = (0.5 + 0.01, 0.25 - 0.02) = (0.51, 0.23); buf = d
//          p1 = p0 - 0.1 buf = (0.949, -2.023)
//  step 2: d = g2 + 0.01 p1 = (-1 + 0.00949, 0.5 - 0.02023) = (-0.99051, 0.47977)
//          buf = 0.9 (0.51, 0.23) + d = (-0.53151, 0.68677)
//          p2 = p1 - 0.1 buf = (1.002151, -2.091677)
TEST(Optimizers, SgdMomentumTwoSteps) {
  auto ops = make_cpu_ops<double>();
  std::vector<double> p = {1, -2}, buf(2, 0.0);
  std::vector<double> g1 = {0.5, 0.25}, g2 = {-1, 0.5};
  OptimStep s;
  s.lr = 0.1;
  s.momentum = 0.9;
  s.weight_decay = 0.01;
  ops->sgd_step(p.data(), g1.data(), buf.data(), 2, s);
  expect_values(buf, {0.51, 0.23}, "buf after step 1");
  expect_values(p, {0.949, -2.023}, "p after step 1");
  ops->sgd_step(p.data(), g2.data(), buf.data(), 2, s);
  expect_values(buf, {-0.53151, 0.68677}, "buf after step 2");
  expect_values(p, {1.002151, -2.091677}, "p after step 2");
}

// Plain SGD (momentum 0, no buffer): p -= lr * (s*g + wd*p) = 1 - 0.5*(4*0.25 + 0.1*1) = 0.45
TEST(Optimizers, SgdPlain) {
  auto ops = make_cpu_ops<double>();
  std::vector<double> p = {1, -1};
  std::vector<double> g = {0.25, 0.5};
  OptimStep s;
  s.lr = 0.5;
  s.grad_scale = 4.0;
  s.weight_decay = 0.1;
  ops->sgd_step(p.data(), g.data(), nullptr, 2, s);
  expect_values(p, {0.45, -1 - 0.5 * (2.0 - 0.1)}, "p");
}

// ---- Adagrad -------------------------------------------------------------------------
// lr 0.5, eps 1e-10, accumulator initialised to 0.1, p0 = (1, -1):
//  step 1: g = (0.3, -0.4); sum = (0.19, 0.26);
//          p1 = (1 - 0.5*0.3/sqrt(0.19), -1 + 0.5*0.4/sqrt(0.26)) = (0.65587639927310, -0.60776772980056)
//  step 2: g = (0.1, 0.2); sum = (0.2, 0.3);
//          p2 = (p1 - 0.5*0.1/sqrt(0.2), p1 - 0.5*0.2/sqrt(0.3)) = (0.54407300042312, -0.79034191560228)
TEST(Optimizers, AdagradTwoSteps) {
  auto ops = make_cpu_ops<double>();
  std::vector<double> p = {1, -1}, sum(2, 0.1);
  std::vector<double> g1 = {0.3, -0.4}, g2 = {0.1, 0.2};
  OptimStep s;
  s.lr = 0.5;
  s.eps = 1e-10;
  s.initial_accumulator = 0.1;
  ops->adagrad_step(p.data(), g1.data(), sum.data(), 2, s);
  expect_values(sum, {0.19, 0.26}, "sum after step 1");
  expect_values(p, {0.6558763992731047, -0.607767729800555}, "p after step 1");
  ops->adagrad_step(p.data(), g2.data(), sum.data(), 2, s);
  expect_values(sum, {0.2, 0.3}, "sum after step 2");
  expect_values(p, {0.5440730004231152, -0.7903419156022771}, "p after step 2");
}

// Weight decay and gradient scale enter Adagrad's gradient: g = 2*0.3 + 0.5*1 = 1.1,
// sum = 0 + 1.21, p = 1 - 0.1 * 1.1 / (1.1 + eps).
TEST(Optimizers, AdagradWeightDecay) {
  auto ops = make_cpu_ops<double>();
  std::vector<double> p = {1}, sum = {0};
  std::vector<double> g = {0.3};
  OptimStep s;
  s.lr = 0.1;
  s.eps = 1e-10;
  s.grad_scale = 2.0;
  s.weight_decay = 0.5;
  ops->adagrad_step(p.data(), g.data(), sum.data(), 1, s);
  expect_values(sum, {1.21}, "sum");
  expect_values(p, {1 - 0.1 * 1.1 / (1.1 + 1e-10)}, "p");
}

// Large flat buffers go through the threaded paths and must equal the small-vector math.
TEST(Optimizers, ThreadedMatchesElementwise) {
  auto ops = make_cpu_ops<float>();
  const int64_t n = 200003;
  auto g = test::random_vector<float>(n, 1);
  auto g_small = g;  // the step clears the gradient it reads
  auto p = test::random_vector<float>(n, 2);
  std::vector<float> m(static_cast<size_t>(n), 0.0f), v(m.size(), 0.0f);
  auto p_small = p;
  std::vector<float> m_small = m, v_small = v;
  OptimStep s;
  s.lr = 1e-3;
  s.step = 2;
  s.weight_decay = 0.01;
  ops->adam_step(p.data(), g.data(), m.data(), v.data(), n, s);
  for (int64_t i = 0; i < n; i += 997)  // one element at a time: the single-thread path
    ops->adam_step(p_small.data() + i, g_small.data() + i, m_small.data() + i, v_small.data() + i, 1, s);
  for (int64_t i = 0; i < n; i += 997) ASSERT_EQ(p[static_cast<size_t>(i)], p_small[static_cast<size_t>(i)]);
}

}  // namespace
}  // namespace txl
