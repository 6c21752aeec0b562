// Shared helpers of the loss-head tests: small configurations, random parameters,
// targets that cover every cluster, and a central finite-difference gradient checker.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "txl/core/ops.h"
#include "txl/core/param_store.h"
#include "txl/model/adaptive_embedding.h"
#include "txl/model/adaptive_softmax.h"
#include "txl/model/model_config.h"

namespace txl::test {

// A tiny configuration: n_token 30, d_model 8; `n_cut` 0 or 2 cutoffs ([10, 20]).
inline ModelConfig tiny_config(int64_t div_val, int n_cut, int64_t d_embed, bool tie_weight,
                               std::vector<bool> tie_projs) {
  ModelConfig cfg;
  cfg.n_token = 30;
  cfg.n_layer = 1;
  cfg.n_head = 2;
  cfg.d_head = 4;
  cfg.d_model = 8;
  cfg.d_inner = 16;
  cfg.d_embed = d_embed;
  cfg.div_val = div_val;
  if (n_cut == 2) cfg.cutoffs = {10, 20};
  cfg.tie_weight = tie_weight;
  cfg.tie_projs = std::move(tie_projs);
  cfg.validate();
  return cfg;
}

// Registers crit then word_emb (the whole model's order), allocates, binds, and fills
// every parameter (biases included) with U(-0.5, 0.5).
template <typename T>
struct Head {
  ModelConfig cfg;
  std::unique_ptr<Ops<T>> ops = make_cpu_ops<T>();
  ParamStore<T> ps;
  AdaptiveEmbedding<T> emb;
  ProjectedAdaptiveLogSoftmax<T> crit;

  Head(const ModelConfig& c, uint64_t seed) : cfg(c), emb(c), crit(c) {
    crit.register_params(ps);
    emb.register_params(ps);
    ps.allocate(*ops);
    emb.bind(ps);
    crit.bind(ps);
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(-0.5, 0.5);
    std::vector<T> host(static_cast<size_t>(ps.total_numel()));
    for (T& v : host) v = static_cast<T>(u(rng));
    ops->upload(ps.flat_params().data(), host.data(), host.size() * sizeof(T));
  }
};

// n ids in [0, n_token), at least two from each cluster of cfg, in random order.
inline std::vector<int32_t> covering_ids(const ModelConfig& cfg, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids;
  for (int64_t c = 0; c <= cfg.n_clusters(); ++c) {
    std::uniform_int_distribution<int64_t> d(cfg.cluster_begin(c), cfg.cluster_end(c) - 1);
    for (int k = 0; k < 2; ++k) ids.push_back(static_cast<int32_t>(d(rng)));
  }
  std::uniform_int_distribution<int64_t> any(0, cfg.n_token - 1);
  while (static_cast<int64_t>(ids.size()) < n) ids.push_back(static_cast<int32_t>(any(rng)));
  std::shuffle(ids.begin(), ids.end(), rng);
  return ids;
}

inline std::vector<double> random_vector(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = u(rng);
  return v;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// ||a - b|| / max(||a||, ||b||): the per-tensor relative error of a gradient.
inline double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  const double scale = std::sqrt(std::max(na, nb));
  return scale == 0 ? 0 : std::sqrt(diff) / scale;
}

// Central differences of `loss` w.r.t. x[0..n) (host-addressable: CPU backend).
inline std::vector<double> numeric_gradient(double* x, int64_t n, const std::function<double()>& loss,
                                            double h = 1e-5) {
  std::vector<double> g(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = loss();
    x[i] = keep - h;
    const double down = loss();
    x[i] = keep;
    g[static_cast<size_t>(i)] = (up - down) / (2 * h);
  }
  return g;
}

// Compares the accumulated analytic gradient of every parameter tensor with central
// differences of `loss`. Tensors for which `must_be_used(name)` holds must have a
// non-zero gradient (so the check cannot pass vacuously).
inline void check_param_gradients(ParamStore<double>& ps, const std::function<double()>& loss,
                                  const std::function<bool(const std::string&)>& must_be_used, double tol = 1e-6) {
  double worst = 0;
  for (int id = 0; id < ps.size(); ++id) {
    const ParamInfo& info = ps.info(id);
    Tensor<double> p = ps.param(id), g = ps.grad(id);
    const std::vector<double> analytic(g.data(), g.data() + g.numel());
    const std::vector<double> numeric = numeric_gradient(p.data(), p.numel(), loss);
    const double err = relative_error(analytic, numeric);
    double norm = 0;
    for (double v : numeric) norm += v * v;
    if (must_be_used(info.name)) {
      EXPECT_GT(norm, 0.0) << info.name << " gets no gradient";
    }
    EXPECT_LE(err, tol) << info.name << " " << shape_string(info.shape) << " relative error " << err;
    worst = std::max(worst, err);
  }
  std::printf("  [gradcheck] %d parameter tensors, worst relative error %.2e\n", ps.size(), worst);
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace txl::test
