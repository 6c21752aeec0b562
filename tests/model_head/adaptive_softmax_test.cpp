// ProjectedAdaptiveLogSoftmax: loss against a naive loop re-implementation of docs/model.md §6,
// finite-difference gradient checks (parameters and dhidden), the embedding -> loss chain
// with tied parameters, workspace reuse across steps, and bad targets.
#include <map>

#include "head_test_util.h"
#include "txl/core/forwarding_ops.h"

namespace txl::test {
namespace {

struct HeadCase {
  const char* name;
  int64_t div_val;
  int n_cut;
  int64_t d_embed;
  bool tie_weight;
  std::vector<bool> tie_projs;
};
void PrintTo(const HeadCase& c, std::ostream* os) { *os << c.name; }


const std::vector<HeadCase> kCases = {
    {"dv1_nocut_tied", 1, 0, 8, true, {}},
    {"dv1_nocut_proj_untied", 1, 0, 12, false, {false}},
    {"dv1_3cl_noproj_tied", 1, 2, 8, true, {false, true, false}},
    {"dv1_3cl_proj_tied_mixed", 1, 2, 12, true, {false, true, false}},
    {"dv1_3cl_proj_untied_headshare", 1, 2, 12, false, {true, true, false}},
    {"dv1_3cl_proj_untied_none_tied", 1, 2, 12, false, {false, false, false}},
    {"dv2_3cl_tied_mixed", 2, 2, 8, true, {false, true, false}},
    {"dv2_3cl_dembed16_untied", 2, 2, 16, false, {true, false, true}},
    {"dv2_3cl_dembed16_tied", 2, 2, 16, true, {false, false, true}},
    {"dv2_nocut_tied", 2, 0, 16, true, {true}},
};

ModelConfig case_config(const HeadCase& c) {
  return tiny_config(c.div_val, c.n_cut, c.d_embed, c.tie_weight, c.tie_projs);
}

// ---- naive docs/model.md §6, plain loops over host copies of the parameters ------------------
using HostParams = std::map<std::string, std::vector<double>>;

template <typename T>
HostParams download_params(Ops<T>& ops, const ParamStore<T>& ps) {
  HostParams out;
  for (int id = 0; id < ps.size(); ++id) {
    std::vector<T> v = to_host(ops, ps.param(id));
    out[ps.info(id).name] = std::vector<double>(v.begin(), v.end());
  }
  return out;
}

// -log p(t) for each row of x [n, M], straight from the formulas of docs/model.md §6.
std::vector<double> naive_nll(const ModelConfig& cfg, const HostParams& P, const std::vector<double>& x,
                              const std::vector<int32_t>& targets) {
  const int64_t M = cfg.d_model, de = cfg.embed_dim(), C = static_cast<int64_t>(cfg.cutoffs.size());
  std::vector<int64_t> bound = {0};
  for (int64_t c : cfg.cutoffs) bound.push_back(c);
  bound.push_back(cfg.n_token);
  const int64_t S = bound[1], HS = S + C;
  auto width = [&](int64_t c) {
    int64_t d = de;
    if (cfg.div_val > 1)
      for (int64_t i = 0; i < c; ++i) d /= cfg.div_val;
    return d;
  };
  auto at = [&](const std::string& name) -> const std::vector<double>& { return P.at(name); };
  // Row r of W_c / entry r of b_c, r relative to the cluster start.
  auto weight_row = [&](int64_t c, int64_t r) {
    const int64_t d = width(c);
    if (cfg.div_val == 1) {
      const auto& w = cfg.tie_weight ? at("word_emb.emb_layers.0.weight") : at("crit.out_layers_weights.0");
      return std::vector<double>(w.begin() + (bound[c] + r) * d, w.begin() + (bound[c] + r + 1) * d);
    }
    const auto& w = cfg.tie_weight ? at("word_emb.emb_layers." + std::to_string(c) + ".weight")
                                   : at("crit.out_layers_weights." + std::to_string(c));
    return std::vector<double>(w.begin() + r * d, w.begin() + (r + 1) * d);
  };
  auto bias = [&](int64_t c, int64_t r) {
    if (cfg.div_val == 1) return at("crit.out_layers_biases.0")[static_cast<size_t>(bound[c] + r)];
    return at("crit.out_layers_biases." + std::to_string(c))[static_cast<size_t>(r)];
  };
  // x·P_c, or x itself without a projection.
  auto project = [&](int64_t c, const double* xr) {
    const int64_t d = width(c);
    if (cfg.div_val == 1 && de == M) return std::vector<double>(xr, xr + M);
    const bool tied = c < static_cast<int64_t>(cfg.tie_projs.size()) && cfg.tie_projs[static_cast<size_t>(c)];
    const std::string name = tied ? "word_emb.emb_projs." + std::to_string(cfg.div_val == 1 ? 0 : c)
                                  : "crit.out_projs." + std::to_string(c);
    const auto& p = at(name);  // [M, d]
    std::vector<double> y(static_cast<size_t>(d), 0.0);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t e = 0; e < d; ++e) y[static_cast<size_t>(e)] += xr[m] * p[static_cast<size_t>(m * d + e)];
    return y;
  };
  auto log_softmax = [](std::vector<double> z) {
    double mx = z[0];
    for (double v : z) mx = std::max(mx, v);
    double s = 0;
    for (double v : z) s += std::exp(v - mx);
    const double lse = mx + std::log(s);
    for (double& v : z) v -= lse;
    return z;
  };
  auto dotv = [](const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
  };

  std::vector<double> nll(targets.size());
  for (size_t r = 0; r < targets.size(); ++r) {
    const double* xr = x.data() + static_cast<int64_t>(r) * M;
    const int64_t t = targets[r];
    const std::vector<double> y0 = project(0, xr);
    std::vector<double> head(static_cast<size_t>(HS));
    for (int64_t j = 0; j < S; ++j) head[static_cast<size_t>(j)] = dotv(y0, weight_row(0, j)) + bias(0, j);
    for (int64_t i = 0; i < C; ++i) {
      const auto& cw = at("crit.cluster_weight");
      const std::vector<double> row(cw.begin() + i * width(0), cw.begin() + (i + 1) * width(0));
      head[static_cast<size_t>(S + i)] = dotv(y0, row) + at("crit.cluster_bias")[static_cast<size_t>(i)];
    }
    const std::vector<double> head_logp = log_softmax(head);
    int64_t c = 0;
    while (t >= bound[c + 1]) ++c;
    double logp;
    if (c == 0) {
      logp = head_logp[static_cast<size_t>(t)];
    } else {
      const std::vector<double> yc = project(c, xr);
      std::vector<double> tail(static_cast<size_t>(bound[c + 1] - bound[c]));
      for (int64_t j = 0; j < static_cast<int64_t>(tail.size()); ++j)
        tail[static_cast<size_t>(j)] = dotv(yc, weight_row(c, j)) + bias(c, j);
      logp = head_logp[static_cast<size_t>(HS - c)] + log_softmax(tail)[static_cast<size_t>(t - bound[c])];
    }
    nll[r] = -logp;
  }
  return nll;
}

class AdaptiveSoftmaxCase : public ::testing::TestWithParam<HeadCase> {};

TEST_P(AdaptiveSoftmaxCase, LossMatchesNaiveFormula) {
  const ModelConfig cfg = case_config(GetParam());
  const int64_t n = 14, M = cfg.d_model;
  const std::vector<int32_t> targets = covering_ids(cfg, n, 11);
  const std::vector<double> x = random_vector(static_cast<size_t>(n * M), 12, -2.0, 2.0);

  Head<double> hd(cfg, 13);
  Tensor<double> hidden = to_device(*hd.ops, x, {n, M}), nll;
  hd.crit.forward(*hd.ops, hd.ps, hidden, targets, nll);
  const std::vector<double> got = to_host(*hd.ops, nll);
  const std::vector<double> want = naive_nll(cfg, download_params(*hd.ops, hd.ps), x, targets);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_GT(want[i], 0.0);
    EXPECT_NEAR(got[i], want[i], 1e-12 * std::max(1.0, want[i])) << "token " << i << " target " << targets[i];
  }

  // The float backend path gives the same loss to float rounding.
  Head<float> hf(cfg, 13);
  std::vector<float> xf(x.begin(), x.end());
  Tensor<float> hidden_f = to_device(*hf.ops, xf, {n, M}), nll_f;
  hf.crit.forward(*hf.ops, hf.ps, hidden_f, targets, nll_f);
  const std::vector<float> got_f = to_host(*hf.ops, nll_f);
  const std::vector<double> want_f = naive_nll(cfg, download_params(*hf.ops, hf.ps), std::vector<double>(xf.begin(), xf.end()), targets);
  for (size_t i = 0; i < want_f.size(); ++i)
    EXPECT_NEAR(got_f[i], want_f[i], 2e-5 * std::max(1.0, want_f[i])) << "float, token " << i;
}

TEST_P(AdaptiveSoftmaxCase, GradientsMatchFiniteDifferences) {
  const ModelConfig cfg = case_config(GetParam());
  const int64_t n = 12, M = cfg.d_model;
  const std::vector<int32_t> targets = covering_ids(cfg, n, 21);
  const std::vector<double> w = random_vector(static_cast<size_t>(n), 22);  // d loss / d nll

  Head<double> hd(cfg, 23);
  Ops<double>& ops = *hd.ops;
  Tensor<double> hidden = to_device(ops, random_vector(static_cast<size_t>(n * M), 24, -2.0, 2.0), {n, M});
  Tensor<double> nll, dhidden;
  auto loss = [&] {
    hd.crit.forward(ops, hd.ps, hidden, targets, nll);
    return dot(to_host(ops, nll), w);
  };
  loss();
  const Tensor<double> dnll = to_device(ops, w, {n});
  hd.crit.backward(ops, hd.ps, dnll, dhidden);
  const std::vector<double> dx = to_host(ops, dhidden);

  // The loss head uses every crit.* tensor, plus the embedding tensors it ties.
  auto used = [&](const std::string& name) {
    if (name.rfind("crit.", 0) == 0) return true;
    if (name.rfind("word_emb.emb_layers.", 0) == 0) return cfg.tie_weight;
    return false;  // tied projections are checked for correctness, not required to be used
  };
  check_param_gradients(hd.ps, loss, used);
  // Tied projections must receive gradient exactly when some cluster ties them.
  for (int64_t c = 0; c <= cfg.n_clusters(); ++c) {
    if (!cfg.tie_proj(c) || (cfg.div_val == 1 && cfg.embed_dim() == cfg.d_model)) continue;
    const int id = hd.ps.id(emb_proj_name(cfg.div_val == 1 ? 0 : c));
    EXPECT_GT(ops.sum_squares(hd.ps.grad(id).data(), hd.ps.grad(id).numel()), 0.0) << hd.ps.info(id).name;
  }

  const std::vector<double> dx_num = numeric_gradient(hidden.data(), hidden.numel(), loss);
  const double err = relative_error(dx, dx_num);
  EXPECT_LE(err, 1e-6) << "dhidden relative error " << err;
  std::printf("  [gradcheck] dhidden relative error %.2e\n", err);
  EXPECT_GT(dot(dx_num, dx_num), 0.0);
}

// hidden = embedding(ids), loss = sum w * nll(hidden, targets): tied tensors collect the
// gradient of both uses.
TEST_P(AdaptiveSoftmaxCase, EmbeddingToLossChainGradients) {
  const ModelConfig cfg = case_config(GetParam());
  const int64_t n = 12;
  const std::vector<int32_t> ids = covering_ids(cfg, n, 31), targets = covering_ids(cfg, n, 32);
  const std::vector<double> w = random_vector(static_cast<size_t>(n), 33);

  Head<double> hd(cfg, 34);
  Ops<double>& ops = *hd.ops;
  Tensor<double> hidden, nll, dhidden;
  auto loss = [&] {
    hd.emb.forward(ops, hd.ps, ids, hidden);
    hd.crit.forward(ops, hd.ps, hidden, targets, nll);
    return dot(to_host(ops, nll), w);
  };
  loss();
  hd.crit.backward(ops, hd.ps, to_device(ops, w, {n}), dhidden);
  hd.emb.backward(ops, hd.ps, dhidden);
  check_param_gradients(hd.ps, loss, [](const std::string&) { return true; });
}

// One instance used for steps of different sizes and target mixes gives the same results
// as a fresh instance (the grow-only workspaces and saved index lists are per step).
TEST_P(AdaptiveSoftmaxCase, ReusedInstanceMatchesFreshOne) {
  const ModelConfig cfg = case_config(GetParam());
  const int64_t M = cfg.d_model;
  std::vector<int32_t> first(9, 1);  // all in the shortlist
  first[4] = static_cast<int32_t>(cfg.n_token - 1);
  const std::vector<int32_t> second = covering_ids(cfg, 20, 41);
  const std::vector<double> x1 = random_vector(static_cast<size_t>(9 * M), 42);
  const std::vector<double> x2 = random_vector(static_cast<size_t>(20 * M), 43);
  const std::vector<double> w1 = random_vector(9, 44), w2 = random_vector(20, 45);

  Head<double> reused(cfg, 46), fresh(cfg, 46);
  Tensor<double> nll, dx;
  reused.crit.forward(*reused.ops, reused.ps, to_device(*reused.ops, x1, {9, M}), first, nll);
  reused.crit.backward(*reused.ops, reused.ps, to_device(*reused.ops, w1, {9}), dx);
  reused.ps.zero_grad(*reused.ops);
  reused.crit.forward(*reused.ops, reused.ps, to_device(*reused.ops, x2, {20, M}), second, nll);
  reused.crit.backward(*reused.ops, reused.ps, to_device(*reused.ops, w2, {20}), dx);

  Tensor<double> nll2, dx2;
  fresh.crit.forward(*fresh.ops, fresh.ps, to_device(*fresh.ops, x2, {20, M}), second, nll2);
  fresh.crit.backward(*fresh.ops, fresh.ps, to_device(*fresh.ops, w2, {20}), dx2);

  EXPECT_EQ(to_host(*reused.ops, nll), to_host(*fresh.ops, nll2));
  EXPECT_EQ(to_host(*reused.ops, dx), to_host(*fresh.ops, dx2));
  EXPECT_EQ(to_host(*reused.ops, reused.ps.flat_grads()), to_host(*fresh.ops, fresh.ps.flat_grads()));
}

INSTANTIATE_TEST_SUITE_P(Configs, AdaptiveSoftmaxCase, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<HeadCase>& info) { return std::string(info.param.name); });

TEST(AdaptiveSoftmax, ClusterOneIsTheLastHeadColumn) {
  // With cluster_weight row C-1 pushed up, only cluster-1 targets become more likely.
  const ModelConfig cfg = tiny_config(1, 2, 8, true, {false, false, false});
  Head<double> hd(cfg, 51);
  Ops<double>& ops = *hd.ops;
  const int64_t M = cfg.d_model;
  const std::vector<int32_t> targets = {3, 12, 25};  // clusters 0, 1, 2
  Tensor<double> hidden = to_device(ops, random_vector(static_cast<size_t>(3 * M), 52), {3, M}), before, after;
  hd.crit.forward(ops, hd.ps, hidden, targets, before);
  const std::vector<double> b = to_host(ops, before);
  Tensor<double> cb = hd.ps.param(hd.ps.id("crit.cluster_bias"));
  std::vector<double> cbh = to_host(ops, cb);
  cbh[1] += 3.0;  // row C - 1 = 1 <-> cluster 1
  ops.upload(cb.data(), cbh.data(), cbh.size() * sizeof(double));
  hd.crit.forward(ops, hd.ps, hidden, targets, after);
  const std::vector<double> a = to_host(ops, after);
  EXPECT_GT(a[0], b[0]);  // shortlist target: less likely
  EXPECT_LT(a[1], b[1]);  // cluster 1 target: more likely
  EXPECT_GT(a[2], b[2]);  // cluster 2 target: less likely
}

TEST(AdaptiveSoftmax, BadTargetNamesIdAndPosition) {
  const ModelConfig cfg = tiny_config(2, 2, 8, true, {false, true, false});
  Head<double> hd(cfg, 61);
  Tensor<double> hidden = to_device(*hd.ops, random_vector(3 * 8, 62), {3, 8}), nll;
  for (int32_t bad : {-7, 30, 1234}) {
    try {
      hd.crit.forward(*hd.ops, hd.ps, hidden, {1, bad, 2}, nll);
      ADD_FAILURE() << "target " << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_TRUE(contains(e.what(), std::to_string(bad))) << e.what();
      EXPECT_TRUE(contains(e.what(), "position 1")) << e.what();
    }
  }
  // hidden of the wrong shape.
  EXPECT_THROW(hd.crit.forward(*hd.ops, hd.ps, hidden, {1, 2}, nll), Error);
}

// The CPU backend with an allocator that counts its allocations.
class AllocationCountingOps final : public ForwardingOps<float> {
 public:
  AllocationCountingOps() : ForwardingOps<float>(make_cpu_ops<float>()), counter_(inner().allocator()) {}
  Allocator& allocator() override { return counter_; }
  int64_t allocations() const { return counter_.count; }

 private:
  struct Counter final : Allocator {
    explicit Counter(Allocator& a) : inner(a) {}
    void* allocate(size_t bytes) override {
      ++count;
      return inner.allocate(bytes);
    }
    void deallocate(void* p, size_t bytes) override { inner.deallocate(p, bytes); }
    Device device() const override { return inner.device(); }
    Allocator& inner;
    int64_t count = 0;
  } counter_;
};

// Batches with ever more tail tokens (1, 2, ..., 60 of 64 rows in the last cluster): the
// tail workspace grows geometrically, so the arena is asked for new memory a few times,
// not at every new maximum (growth by 25 % alone would take 14 allocations here).
TEST(AdaptiveSoftmax, TailWorkspaceGrowsGeometrically) {
  const ModelConfig cfg = tiny_config(1, 2, -1, false, {false, false, false});
  AllocationCountingOps ops;  // before hd: the head's workspaces come from it and must be freed first
  Head<float> hd(cfg, 31);
  const int64_t n = 64, M = cfg.d_model;
  const Tensor<float> hidden = to_device(ops, std::vector<float>(static_cast<size_t>(n * M), 0.1f), {n, M});
  Tensor<float> nll;
  int64_t after_first = 0;
  for (int64_t k = 1; k <= 60; ++k) {
    std::vector<int32_t> targets(static_cast<size_t>(n), 3);                                              // shortlist
    for (int64_t i = 0; i < k; ++i) targets[static_cast<size_t>(i)] = 20 + static_cast<int32_t>(i % 10);  // last tail
    hd.crit.forward(ops, hd.ps, hidden, targets, nll);
    if (k == 1) after_first = ops.allocations();
  }
  EXPECT_LE(ops.allocations() - after_first, 7);
}

}  // namespace
}  // namespace txl::test
