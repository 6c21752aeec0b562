// The adaptive-softmax distribution and the token sampler (docs/generate.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "generate_test_util.h"
#include "txl/generate/token_sampler.h"
#include "txl/model/adaptive_softmax.h"

namespace txl {
namespace {

using generate::Candidates;
using generate::ClusteredLogProbs;
using generate::SamplingSettings;

// A random clustered distribution over 60 tokens (shortlist 20, clusters [20, 35), [35, 60)).
ClusteredLogProbs random_distribution(uint64_t seed, double spread = 2.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, spread);
  const std::vector<int64_t> bounds{0, 20, 35, 60};
  auto log_softmax = [&](int64_t n) {
    std::vector<double> x(static_cast<size_t>(n));
    double mx = -1e300, s = 0;
    for (double& v : x) mx = std::max(mx, v = normal(rng));
    for (double v : x) s += std::exp(v - mx);
    for (double& v : x) v -= mx + std::log(s);
    return x;
  };
  std::vector<double> head = log_softmax(22);
  std::vector<std::vector<double>> tails{{}, log_softmax(15), log_softmax(25)};
  return ClusteredLogProbs(bounds, head, [tails](int64_t c) { return tails[static_cast<size_t>(c)]; });
}

Candidates brute_force_sorted(ClusteredLogProbs& d) {
  const std::vector<double> all = d.full();
  Candidates c;
  for (size_t t = 0; t < all.size(); ++t) c.emplace_back(static_cast<int32_t>(t), all[t]);
  std::sort(c.begin(), c.end(), [](const auto& a, const auto& b) {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  });
  return c;
}

// The model's distribution over the full vocabulary: sums to 1 and equals, token by
// token, exp(-nll) of the training loss head (ProjectedAdaptiveLogSoftmax) with that
// token as target.
TEST(AdaptiveDistribution, MatchesTheLossHeadOverTheWholeVocabulary) {
  auto ops = make_cpu_ops<double>();
  for (int64_t div_val : {1, 2}) {
    ModelConfig cfg = test::small_generation_config(0);
    cfg.div_val = div_val;
    cfg.d_embed = div_val == 1 ? 6 : 8;  // projected in both cases
    TransformerXL<double> model(cfg, *ops);
    test::randomize(model, 11);
    AdaptiveSoftmaxDistribution<double> dist(model.config());
    dist.bind(model.params());
    const int64_t M = cfg.d_model, V = cfg.n_token, rows = 3;
    std::mt19937_64 rng(3);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> h(static_cast<size_t>(rows * M));
    for (double& x : h) x = normal(rng);
    const std::vector<double> lp = dist.full_log_probs(*ops, model.params(), to_device(*ops, h, {rows, M}));
    ProjectedAdaptiveLogSoftmax<double> crit(model.config());
    crit.bind(model.params());
    for (int64_t r = 0; r < rows; ++r) {
      double total = 0.0;
      std::vector<double> repeated;
      std::vector<int32_t> targets;
      for (int64_t t = 0; t < V; ++t) {
        total += std::exp(lp[static_cast<size_t>(r * V + t)]);
        repeated.insert(repeated.end(), h.begin() + r * M, h.begin() + (r + 1) * M);
        targets.push_back(static_cast<int32_t>(t));
      }
      EXPECT_NEAR(total, 1.0, 1e-12) << "div_val " << div_val << " row " << r;
      Tensor<double> nll;
      crit.forward(*ops, model.params(), to_device(*ops, repeated, {V, M}), targets, nll);
      const std::vector<double> n = to_host(*ops, nll);
      for (int64_t t = 0; t < V; ++t) EXPECT_NEAR(lp[static_cast<size_t>(r * V + t)], -n[static_cast<size_t>(t)], 1e-12);
    }
  }
}

// Without clusters it is a plain softmax of h·Wᵀ + b with the tied embedding table.
TEST(AdaptiveDistribution, WithoutClustersIsAPlainSoftmax) {
  auto ops = make_cpu_ops<double>();
  ModelConfig cfg = test::small_generation_config(0);
  cfg.cutoffs.clear();
  cfg.div_val = 1;
  cfg.d_embed = -1;
  TransformerXL<double> model(cfg, *ops);
  test::randomize(model, 12);
  AdaptiveSoftmaxDistribution<double> dist(model.config());
  dist.bind(model.params());
  const int64_t M = cfg.d_model, V = cfg.n_token;
  std::vector<double> h(static_cast<size_t>(M));
  for (int64_t i = 0; i < M; ++i) h[static_cast<size_t>(i)] = std::sin(1.0 + static_cast<double>(i));
  const std::vector<double> lp = dist.full_log_probs(*ops, model.params(), to_device(*ops, h, {1, M}));
  const ParamStore<double>& ps = model.params();
  const std::vector<double> W = to_host(*ops, ps.param(ps.id("word_emb.emb_layers.0.weight")));
  const std::vector<double> b = to_host(*ops, ps.param(ps.id("crit.out_layers_biases.0")));
  std::vector<double> logits(static_cast<size_t>(V));
  double mx = -1e300, s = 0.0;
  for (int64_t t = 0; t < V; ++t) {
    double z = b[static_cast<size_t>(t)];
    for (int64_t k = 0; k < M; ++k) z += h[static_cast<size_t>(k)] * W[static_cast<size_t>(t * M + k)];
    mx = std::max(mx, logits[static_cast<size_t>(t)] = z);
  }
  for (double z : logits) s += std::exp(z - mx);
  for (int64_t t = 0; t < V; ++t)
    EXPECT_NEAR(lp[static_cast<size_t>(t)], logits[static_cast<size_t>(t)] - mx - std::log(s), 1e-12);
}

TEST(TokenSampler, GreedyIsTheArgmaxAndTopK1IsGreedy) {
  for (uint64_t seed = 0; seed < 30; ++seed) {
    ClusteredLogProbs d = random_distribution(seed);
    const Candidates all = brute_force_sorted(d);
    SamplingSettings greedy;
    greedy.greedy = true;
    SamplingSettings top1;
    top1.top_k = 1;
    top1.seed = seed;
    EXPECT_EQ(generate::choose_token(d, greedy, 0, 5), all.front().first) << seed;
    EXPECT_EQ(generate::choose_token(d, top1, 3, 9), all.front().first) << seed;
  }
}

TEST(TokenSampler, TopKAndNucleusSetsEqualTheBruteForceSets) {
  for (uint64_t seed = 0; seed < 30; ++seed) {
    ClusteredLogProbs d = random_distribution(seed, 1.0 + static_cast<double>(seed % 4));
    const Candidates all = brute_force_sorted(d);
    for (int64_t k : {1, 3, 10, 25, 60, 100}) {
      ClusteredLogProbs fresh = random_distribution(seed, 1.0 + static_cast<double>(seed % 4));
      const Candidates got = generate::top_k_candidates(fresh, k);
      const Candidates want(all.begin(), all.begin() + std::min<int64_t>(k, 60));
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].first, want[i].first) << seed << " k " << k;
    }
    for (double p : {0.05, 0.5, 0.9, 0.999, 1.0}) {
      ClusteredLogProbs fresh = random_distribution(seed, 1.0 + static_cast<double>(seed % 4));
      const Candidates got = generate::nucleus_candidates(fresh, p);
      size_t n = 0;
      double acc = 0.0;
      while (n < all.size() && acc < p) acc += std::exp(all[n++].second);
      ASSERT_EQ(got.size(), n) << seed << " p " << p;
      for (size_t i = 0; i < n; ++i) EXPECT_EQ(got[i].first, all[i].first);
    }
  }
}

// A peaked distribution: the tails whose head probability is below the threshold are
// never computed.
TEST(TokenSampler, TailsBelowTheThresholdAreNotMaterialised) {
  const std::vector<int64_t> bounds{0, 3, 5, 8};
  const std::vector<double> head{std::log(0.9), std::log(0.05), std::log(0.03), std::log(0.015), std::log(0.005)};
  auto tails = [](int64_t c) { return std::vector<double>(c == 1 ? 2 : 3, std::log(c == 1 ? 0.5 : 1.0 / 3.0)); };
  ClusteredLogProbs a(bounds, head, tails);
  EXPECT_EQ(generate::top_k_candidates(a, 2).size(), 2u);
  EXPECT_EQ(a.tails_computed(), 0);
  ClusteredLogProbs b(bounds, head, tails);
  EXPECT_EQ(generate::nucleus_candidates(b, 0.9).size(), 1u);
  EXPECT_EQ(b.tails_computed(), 0);
  ClusteredLogProbs c(bounds, head, tails);
  SamplingSettings s;  // T = 1, no filter: the head, then at most one tail
  s.seed = 4;
  generate::choose_token(c, s, 0, 0);
  EXPECT_LE(c.tails_computed(), 1);
}

TEST(TokenSampler, SameSeedSameTokensOtherSeedOtherTokens) {
  for (const SamplingSettings& base :
       {SamplingSettings{}, SamplingSettings{0.7, 0, 1.0, false, 0}, SamplingSettings{1.0, 8, 0.9, false, 0},
        SamplingSettings{1.3, 0, 0.8, false, 0}, SamplingSettings{1.0, 0, 0.95, false, 0}}) {
    std::vector<int32_t> a, b, c;
    for (uint64_t pos = 0; pos < 200; ++pos) {
      SamplingSettings s = base;
      s.seed = 1;
      ClusteredLogProbs d1 = random_distribution(pos), d2 = random_distribution(pos), d3 = random_distribution(pos);
      a.push_back(generate::choose_token(d1, s, 2, pos));
      b.push_back(generate::choose_token(d2, s, 2, pos));
      s.seed = 2;
      c.push_back(generate::choose_token(d3, s, 2, pos));
    }
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
  }
}

// Draws follow the distribution (T = 1, no filter), and the filtered draws stay in their set.
TEST(TokenSampler, DrawsFollowTheDistribution) {
  ClusteredLogProbs d = random_distribution(42, 1.0);
  const std::vector<double> lp = d.full();
  const int n = 40000;
  std::vector<int> counts(lp.size(), 0);
  SamplingSettings s;
  s.seed = 9;
  for (int i = 0; i < n; ++i) ++counts[static_cast<size_t>(generate::choose_token(d, s, 0, static_cast<uint64_t>(i)))];
  for (size_t t = 0; t < lp.size(); ++t) {
    const double p = std::exp(lp[t]), sigma = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(counts[t] / static_cast<double>(n), p, 5 * sigma + 1e-4) << "token " << t;
  }
  const Candidates nucleus = generate::nucleus_candidates(d, 0.6);
  s.top_p = 0.6;
  s.temperature = 1.0;
  for (int i = 0; i < 500; ++i) {
    const int32_t t = generate::choose_token(d, s, 1, static_cast<uint64_t>(i));
    EXPECT_TRUE(std::any_of(nucleus.begin(), nucleus.end(), [&](const auto& c) { return c.first == t; }));
  }
}

TEST(TokenSampler, BadSettingsAreOneLine) {
  auto message = [](SamplingSettings s) {
    try {
      generate::check_sampling_settings(s);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(message(SamplingSettings{1.0, 0, 0.0, false, 0}), "--top_p 0 is outside (0, 1]");
  EXPECT_EQ(message(SamplingSettings{1.0, 0, 1.5, false, 0}), "--top_p 1.5 is outside (0, 1]");
  EXPECT_EQ(message(SamplingSettings{0.0, 0, 1.0, false, 0}), "--temperature 0 must be a positive number");
  EXPECT_EQ(message(SamplingSettings{1.0, -2, 1.0, false, 0}), "--top_k -2 must be >= 0 (0: no top-k filter)");
  EXPECT_EQ(message(SamplingSettings{1.0, 5, 1.0, false, 0}), "");
}

}  // namespace
}  // namespace txl
