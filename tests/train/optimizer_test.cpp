// Optimizer classes end to end on a tiny parameter store, against updates computed
// here by hand from docs/training.md §4 / PyTorch's definitions, over several steps (state carried).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "txl/optim/optimizer.h"

namespace txl {
namespace {

struct Tiny {
  std::unique_ptr<Ops<double>> ops = make_cpu_ops<double>();
  ParamStore<double> params;
  Tiny() {
    params.add("w", {2, 3}, ParamInit::kWeight);
    params.add("zero_bias", {4}, ParamInit::kZero);  // ||p|| = 0 at first: LAMB trust 1
    params.add("big", {3}, ParamInit::kWeight);      // ||p|| > 10: LAMB clamps the weight norm
    params.allocate(*ops);
    std::mt19937_64 rng(7);
    std::normal_distribution<double> d(0.0, 1.0);
    std::vector<double> p(static_cast<size_t>(params.total_numel()));
    for (auto& x : p) x = d(rng);
    for (int i = 6; i < 10; ++i) p[static_cast<size_t>(i)] = 0.0;
    for (int i = 10; i < 13; ++i) p[static_cast<size_t>(i)] = 8.0 + i;
    ops->upload(params.flat_params().data(), p.data(), p.size() * sizeof(double));
  }
  std::vector<double> values() { return to_host(*ops, params.flat_params()); }
  void set_grads(int step) {
    std::mt19937_64 rng(100 + step);
    std::normal_distribution<double> d(0.0, 0.5);
    std::vector<double> g(static_cast<size_t>(params.total_numel()));
    for (auto& x : g) x = d(rng);
    ops->upload(params.flat_grads().data(), g.data(), g.size() * sizeof(double));
  }
  std::vector<double> grads() { return to_host(*ops, params.flat_grads()); }
};

constexpr double kScale = 0.7, kWd = 0.01;
const double kLr[] = {0.1, 0.05, 0.02};

void expect_near_all(const std::vector<double>& a, const std::vector<double>& b, double tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << "element " << i;
}

TEST(Optimizer, LambMatchesHandComputedUpdate) {
  Tiny t;
  auto opt = make_optimizer<double>({"lamb", kWd, 0.0}, t.params, *t.ops);
  std::vector<double> p = t.values(), m(p.size(), 0.0), v(p.size(), 0.0);
  for (int step = 0; step < 3; ++step) {
    t.set_grads(step);
    const std::vector<double> g = t.grads();
    for (const ParamInfo& info : t.params.infos()) {
      const size_t o = static_cast<size_t>(info.slice.offset), n = static_cast<size_t>(info.slice.numel);
      std::vector<double> a(n);
      double pn = 0, an = 0;
      for (size_t i = 0; i < n; ++i) {
        const double gi = g[o + i] * kScale;
        m[o + i] = 0.9 * m[o + i] + 0.1 * gi;
        v[o + i] = 0.999 * v[o + i] + 0.001 * gi * gi;
        a[i] = m[o + i] / (std::sqrt(v[o + i]) + 1e-6) + kWd * p[o + i];
        pn += p[o + i] * p[o + i];
        an += a[i] * a[i];
      }
      const double wn = std::min(std::sqrt(pn), 10.0);
      an = std::sqrt(an);
      const double trust = (wn == 0 || an == 0) ? 1.0 : wn / (an + 1e-6);
      for (size_t i = 0; i < n; ++i) p[o + i] -= kLr[step] * trust * a[i];
    }
    opt->step(kLr[step], kScale);
    expect_near_all(t.values(), p, 1e-12);
  }
  EXPECT_EQ(opt->steps(), 3);
  EXPECT_EQ(opt->state_names(), (std::vector<std::string>{"exp_avg", "exp_avg_sq"}));
  expect_near_all(to_host(*t.ops, opt->state(0)), m, 1e-14);
  expect_near_all(to_host(*t.ops, opt->state(1)), v, 1e-14);
}

TEST(Optimizer, AdamMatchesHandComputedUpdate) {
  Tiny t;
  auto opt = make_optimizer<double>({"adam", kWd, 0.0}, t.params, *t.ops);
  std::vector<double> p = t.values(), m(p.size(), 0.0), v(p.size(), 0.0);
  for (int step = 0; step < 3; ++step) {
    t.set_grads(step);
    const std::vector<double> g = t.grads();
    const double bc1 = 1 - std::pow(0.9, step + 1), bc2 = 1 - std::pow(0.999, step + 1);
    for (size_t i = 0; i < p.size(); ++i) {
      const double gi = g[i] * kScale + kWd * p[i];
      m[i] = 0.9 * m[i] + 0.1 * gi;
      v[i] = 0.999 * v[i] + 0.001 * gi * gi;
      p[i] -= kLr[step] / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + 1e-8);
    }
    opt->step(kLr[step], kScale);
    expect_near_all(t.values(), p, 1e-12);
  }
}

TEST(Optimizer, SgdMomentumMatchesHandComputedUpdate) {
  for (double momentum : {0.0, 0.9}) {
    Tiny t;
    auto opt = make_optimizer<double>({"sgd", kWd, momentum}, t.params, *t.ops);
    std::vector<double> p = t.values(), buf(p.size(), 0.0);
    for (int step = 0; step < 3; ++step) {
      t.set_grads(step);
      const std::vector<double> g = t.grads();
      for (size_t i = 0; i < p.size(); ++i) {
        const double gi = g[i] * kScale + kWd * p[i];
        buf[i] = step == 0 ? gi : momentum * buf[i] + gi;  // PyTorch: the first step sets buf = g
        p[i] -= kLr[step] * buf[i];
      }
      opt->step(kLr[step], kScale);
      expect_near_all(t.values(), p, 1e-12);
    }
  }
}

TEST(Optimizer, AdagradMatchesHandComputedUpdate) {
  Tiny t;
  auto opt = make_optimizer<double>({"adagrad", kWd, 0.0}, t.params, *t.ops);
  std::vector<double> p = t.values(), sum(p.size(), 0.0);
  for (int step = 0; step < 3; ++step) {
    t.set_grads(step);
    const std::vector<double> g = t.grads();
    for (size_t i = 0; i < p.size(); ++i) {
      const double gi = g[i] * kScale + kWd * p[i];
      sum[i] += gi * gi;
      p[i] -= kLr[step] * gi / (std::sqrt(sum[i]) + 1e-10);
    }
    opt->step(kLr[step], kScale);
    expect_near_all(t.values(), p, 1e-12);
  }
}

// Saved state, loaded into a fresh optimizer, continues bit-identically.
TEST(Optimizer, SaveLoadContinuesIdentically) {
  const std::string path = (std::filesystem::temp_directory_path() / "txl_optimizer_test.h5").string();
  for (const char* kind : {"lamb", "adam", "sgd", "adagrad"}) {
    SCOPED_TRACE(kind);
    Tiny a, b;
    auto oa = make_optimizer<double>({kind, kWd, 0.9}, a.params, *a.ops);
    for (int step = 0; step < 2; ++step) {
      a.set_grads(step);
      oa->step(kLr[step], kScale);
    }
    {
      h5::File f = h5::File::create(path);
      oa->save(f);
    }
    auto ob = make_optimizer<double>({kind, kWd, 0.9}, b.params, *b.ops);
    ob->load(h5::File::open(path));
    EXPECT_EQ(ob->steps(), 2);
    b.ops->copy(b.params.flat_params().data(), a.params.flat_params().data(), a.params.flat_params().bytes());
    a.set_grads(2);
    b.set_grads(2);
    oa->step(kLr[2], kScale);
    ob->step(kLr[2], kScale);
    EXPECT_EQ(a.values(), b.values());
  }
  // Another optimizer's state is refused with a message naming both.
  Tiny c;
  auto adam = make_optimizer<double>({"adam", 0.0, 0.0}, c.params, *c.ops);
  try {
    adam->load(h5::File::open(path));  // holds adagrad state
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'adagrad'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("adam"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace txl
