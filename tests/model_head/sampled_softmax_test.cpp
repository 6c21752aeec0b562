// SampledSoftmax and its LogUniformSampler: the sampler's probabilities and log expected
// counts (values from the recipe's formulas, evaluated independently in numpy float32),
// its inverse CDF and draw frequencies, the loss against a naive loop, and finite-
// difference gradients of the sampled and the full softmax (parameters and dhidden),
// with the embedding as a second user of the tables.
#include <cmath>
#include <map>

#include "head_test_util.h"
#include "txl/model/log_uniform_sampler.h"
#include "txl/model/sampled_softmax.h"

namespace txl::test {
namespace {

TEST(LogUniformSampler, ProbabilitiesAndLogExpectedCounts) {
  // n_token 40, n_sample 6 (12 tries): P(id) = (log(id+2) - log(id+1)) / log(41) in float32,
  // log Q = log(1 - (1 + P)^-12) rounded to float32 (numpy).
  const LogUniformSampler s(40, 6);
  const std::map<int64_t, std::pair<double, double>> expected = {
      {0, {0.18665240705013275, -0.13727302849292755}},
      {1, {0.10918466746807098, -0.3402005434036255}},
      {13, {0.01857856847345829, -1.6184743642807007}},
      {39, {0.0066492678597569466, -2.571157455444336}},
  };
  for (const auto& [id, pq] : expected) {
    EXPECT_NEAR(s.probability_float(id), pq.first, 1e-7 * pq.first) << id;
    EXPECT_NEAR(s.probability(id), pq.first, 1e-5 * pq.first) << id;  // float32 cancellation
    EXPECT_NEAR(s.log_expected_count(id), pq.second, 1e-6 * std::abs(pq.second)) << id;
  }
  double total = 0;
  for (int64_t id = 0; id < 40; ++id) total += s.probability(id);
  EXPECT_NEAR(total, 1.0, 1e-12);
}

TEST(LogUniformSampler, InverseCdfPicksTheIntervalOfU) {
  const LogUniformSampler s(1000, 4);
  const double L = std::log(1001.0);
  for (int i = 0; i < 20000; ++i) {
    const double u = (i + 0.5) / 20000.0;
    const int64_t id = s.id_for_uniform(u);
    ASSERT_LE(std::log(static_cast<double>(id) + 1.0) / L, u + 1e-12) << u;
    ASSERT_GT(std::log(static_cast<double>(id) + 2.0) / L, u - 1e-12) << u;
  }
  EXPECT_EQ(s.id_for_uniform(0.0), 0);
  EXPECT_EQ(s.id_for_uniform(0.9999999999), 999);
}

TEST(LogUniformSampler, DrawsAreDistinctSortedAndAFunctionOfSeedAndStep) {
  const LogUniformSampler s(50, 8);
  const std::vector<int32_t> a = s.draw(7, 3);
  EXPECT_EQ(a, s.draw(7, 3));
  EXPECT_NE(a, s.draw(7, 4));
  EXPECT_NE(a, s.draw(8, 3));
  ASSERT_FALSE(a.empty());
  EXPECT_LE(a.size(), 16u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_GE(a[i], 0);
    EXPECT_LT(a[i], 50);
    if (i > 0) {
      EXPECT_LT(a[i - 1], a[i]);
    }
  }
}

// Over many steps, how often id appears among the distinct draws approaches
// 1 - (1 - P)^n_tries; the recipe's correction Q = 1 - (1 + P)^-n_tries is below it
// ((1 - P)(1 + P) < 1) and close to it for small P.
TEST(LogUniformSampler, DistinctDrawFrequenciesFollowTheDistribution) {
  const int64_t V = 20, steps = 20000;
  const LogUniformSampler s(V, 3);
  std::vector<double> seen(static_cast<size_t>(V), 0.0);
  for (int64_t t = 0; t < steps; ++t)
    for (int32_t id : s.draw(11, static_cast<uint64_t>(t))) seen[static_cast<size_t>(id)] += 1.0;
  for (int64_t id = 0; id < V; ++id) {
    const double p = 1.0 - std::pow(1.0 - s.probability(id), 6.0);
    const double sigma = std::sqrt(p * (1 - p) / steps);
    EXPECT_NEAR(seen[static_cast<size_t>(id)] / steps, p, 5 * sigma + 1e-3) << id;
    EXPECT_LT(std::exp(s.log_expected_count(id)), p) << id;
    if (s.probability(id) < 0.03) {
      EXPECT_NEAR(std::exp(s.log_expected_count(id)), p, 0.05 * p) << id;
    }
  }
}

// out_layer.bias then the word_emb tables, random U(-0.5, 0.5).
struct SampledHead {
  ModelConfig cfg;
  std::unique_ptr<Ops<double>> ops = make_cpu_ops<double>();
  ParamStore<double> ps;
  AdaptiveEmbedding<double> emb;
  SampledSoftmax<double> head;
  SampledHead(const ModelConfig& c, uint64_t seed) : cfg(c), emb(c), head(c) {
    head.register_params(ps);
    emb.register_params(ps);
    ps.allocate(*ops);
    emb.bind(ps);
    head.bind(ps);
    const std::vector<double> v = random_vector(static_cast<size_t>(ps.total_numel()), seed, -0.5, 0.5);
    ops->upload(ps.flat_params().data(), v.data(), v.size() * sizeof(double));
  }
};

ModelConfig sampled_config(int64_t div_val, int n_cut, int64_t d_embed) {
  ModelConfig cfg = tiny_config(div_val, n_cut, d_embed, true, {});
  cfg.sample_softmax = 4;
  cfg.validate();
  return cfg;
}

// Targets with repeats, candidates that hit some of them.
const std::vector<int32_t> kTargets = {3, 17, 3, 29, 0, 11, 25, 17, 8, 3};
const std::vector<int32_t> kCandidates = {0, 3, 5, 12, 17, 28};

TEST(SampledSoftmax, LossMatchesNaiveFormula) {
  const ModelConfig cfg = sampled_config(1, 0, 8);
  SampledHead hd(cfg, 5);
  Ops<double>& ops = *hd.ops;
  const int64_t n = static_cast<int64_t>(kTargets.size()), M = cfg.d_model;
  const std::vector<double> x = random_vector(static_cast<size_t>(n * M), 6);
  Tensor<double> nll_s, nll_f;
  hd.head.forward(ops, hd.ps, to_device(ops, x, {n, M}), kTargets, &kCandidates, nll_s);
  const std::vector<double> got_s = to_host(ops, nll_s);
  const Tensor<double> hidden = to_device(ops, x, {n, M});
  hd.head.forward(ops, hd.ps, hidden, kTargets, nullptr, nll_f);
  const std::vector<double> got_f = to_host(ops, nll_f);

  const std::vector<double> table = to_host(ops, hd.ps.param(hd.ps.id(emb_layer_name(0))));
  const std::vector<double> bias = to_host(ops, hd.ps.param(hd.ps.id("out_layer.bias")));
  const LogUniformSampler& sampler = hd.head.sampler();
  auto score = [&](int64_t i, int32_t id) {
    double s = 0;
    for (int64_t k = 0; k < M; ++k) s += x[i * M + k] * table[id * M + k] * std::sqrt(static_cast<double>(M));
    return s + bias[id];
  };
  int hits = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t t = kTargets[static_cast<size_t>(i)];
    std::vector<double> logits = {score(i, t) - sampler.log_expected_count(t)};
    for (int32_t c : kCandidates) {
      if (c == t) ++hits;
      logits.push_back(c == t ? -1e30 : score(i, c) - sampler.log_expected_count(c));
    }
    double mx = -1e300, z = 0;
    for (double l : logits) mx = std::max(mx, l);
    for (double l : logits) z += std::exp(l - mx);
    EXPECT_NEAR(got_s[static_cast<size_t>(i)], -(logits[0] - mx - std::log(z)), 1e-12) << i;

    std::vector<double> full;
    for (int32_t v = 0; v < cfg.n_token; ++v) full.push_back(score(i, v));
    mx = -1e300;
    z = 0;
    for (double l : full) mx = std::max(mx, l);
    for (double l : full) z += std::exp(l - mx);
    EXPECT_NEAR(got_f[static_cast<size_t>(i)], -(full[static_cast<size_t>(t)] - mx - std::log(z)), 1e-12) << i;
  }
  EXPECT_GT(hits, 3);  // the masking is exercised
}

struct GradCase {
  const char* name;
  int64_t div_val;
  int n_cut;
  int64_t d_embed;
  bool sampled;
};
void PrintTo(const GradCase& c, std::ostream* os) { *os << c.name; }
class SampledSoftmaxGrad : public ::testing::TestWithParam<GradCase> {};

// loss = sum_i w_i nll_i(embedding(ids) as hidden): the tables get the gradient of both
// uses; dhidden is checked on its own.
TEST_P(SampledSoftmaxGrad, GradientsMatchFiniteDifferences) {
  const GradCase& gc = GetParam();
  const ModelConfig cfg = sampled_config(gc.div_val, gc.n_cut, gc.d_embed);
  SampledHead hd(cfg, 21);
  Ops<double>& ops = *hd.ops;
  const int64_t n = static_cast<int64_t>(kTargets.size()), M = cfg.d_model;
  const std::vector<int32_t> ids = covering_ids(cfg, n, 22);
  const std::vector<double> w = random_vector(static_cast<size_t>(n), 23);
  const std::vector<int32_t>* cand = gc.sampled ? &kCandidates : nullptr;
  Tensor<double> hidden, nll, dhidden;
  auto loss = [&] {
    hd.emb.forward(ops, hd.ps, ids, hidden);
    hd.head.forward(ops, hd.ps, hidden, kTargets, cand, nll);
    return dot(to_host(ops, nll), w);
  };
  loss();
  hd.ps.zero_grad(ops);
  hd.head.backward(ops, hd.ps, to_device(ops, w, {n}), dhidden);
  const std::vector<double> dx = to_host(ops, dhidden);
  hd.emb.backward(ops, hd.ps, dhidden);
  check_param_gradients(hd.ps, loss, [](const std::string&) { return true; });

  // dhidden: perturb the head's input directly.
  Tensor<double> h = to_device(ops, random_vector(static_cast<size_t>(n * M), 24), {n, M});
  auto head_loss = [&] {
    hd.head.forward(ops, hd.ps, h, kTargets, cand, nll);
    return dot(to_host(ops, nll), w);
  };
  head_loss();
  hd.head.backward(ops, hd.ps, to_device(ops, w, {n}), dhidden);
  const std::vector<double> dh = to_host(ops, dhidden);
  const std::vector<double> dh_num = numeric_gradient(h.data(), h.numel(), head_loss);
  EXPECT_LE(relative_error(dh, dh_num), 1e-6);
  EXPECT_GT(dot(dh_num, dh_num), 0.0);
  EXPECT_EQ(dx.size(), static_cast<size_t>(n * M));
}

INSTANTIATE_TEST_SUITE_P(Configs, SampledSoftmaxGrad,
                         ::testing::Values(GradCase{"dv1_sampled", 1, 0, 8, true},
                                           GradCase{"dv1_full", 1, 0, 8, false},
                                           GradCase{"dv1_proj_sampled", 1, 0, 12, true},
                                           GradCase{"dv2_3cl_sampled", 2, 2, 16, true},
                                           GradCase{"dv2_3cl_full", 2, 2, 16, false}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(SampledSoftmax, BadCandidateAndUntiedConfigFail) {
  SampledHead hd(sampled_config(1, 0, 8), 3);
  Tensor<double> nll;
  const std::vector<int32_t> targets = {1, 2};
  const std::vector<int32_t> bad = {4, 30};
  const Tensor<double> h = to_device(*hd.ops, random_vector(16, 4), {2, 8});
  EXPECT_THROW(hd.head.forward(*hd.ops, hd.ps, h, targets, &bad, nll), Error);
  ModelConfig untied = sampled_config(1, 0, 8);
  untied.tie_weight = false;
  EXPECT_THROW(untied.validate(), Error);
}

}  // namespace
}  // namespace txl::test
