// Helpers shared by the model tests: tiny configurations, random parameters and tokens.
#pragma once
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "txl/model/transformer_xl.h"

namespace txl::test {

// The tiny shape used by the gradient checks (docs/model.md hyper-parameters).
inline ModelConfig tiny_config() {
  ModelConfig c;
  c.n_token = 30;
  c.n_layer = 2;
  c.n_head = 2;
  c.d_head = 4;
  c.d_model = 8;
  c.d_inner = 12;
  c.dropout = 0.0;
  c.dropatt = 0.0;
  c.tgt_len = 5;
  c.mem_len = 4;
  return c;
}

// Overwrites every parameter with random values large enough to exercise the
// non-linearities (attention far from uniform, ReLU on both sides).
template <typename T>
void randomize_params(TransformerXL<T>& model, uint64_t seed, double scale = 0.4) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  ParamStore<T>& ps = model.params();
  std::vector<T> host(static_cast<size_t>(ps.total_numel()));
  for (const ParamInfo& p : ps.infos()) {
    const bool ln_weight = p.init == ParamInit::kLayerNormWeight;
    for (int64_t i = 0; i < p.slice.numel; ++i)
      host[static_cast<size_t>(p.slice.offset + i)] = static_cast<T>((ln_weight ? 1.0 : 0.0) + normal(rng));
  }
  model.ops().upload(ps.flat_params().data(), host.data(), host.size() * sizeof(T));
}

// Random ids in [0, n_token); the first ids cycle through every cluster so each cluster
// (and each tail's parameters) is used.
inline std::vector<int32_t> random_tokens(const ModelConfig& cfg, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % (cfg.n_clusters() + 1);
    std::uniform_int_distribution<int64_t> d(cfg.cluster_begin(c), cfg.cluster_end(c) - 1);
    ids[static_cast<size_t>(i)] = static_cast<int32_t>(d(rng));
  }
  std::shuffle(ids.begin(), ids.end(), rng);
  return ids;
}

template <typename T>
std::vector<T> host_of(Ops<T>& ops, const Tensor<T>& t) {
  return to_host(ops, t);
}

template <typename T>
double sum_weighted(const std::vector<T>& v, const std::vector<T>& w) {
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += static_cast<double>(v[i]) * static_cast<double>(w[i]);
  return s;
}

}  // namespace txl::test
