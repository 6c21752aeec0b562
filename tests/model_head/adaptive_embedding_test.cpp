// AdaptiveEmbedding: output against a naive loop re-implementation of docs/model.md §2,
// finite-difference gradient checks, gradient accumulation, and bad ids.
#include "head_test_util.h"

namespace txl::test {
namespace {

struct EmbCase {
  const char* name;
  int64_t div_val;
  int n_cut;
  int64_t d_embed;
};
void PrintTo(const EmbCase& c, std::ostream* os) { *os << c.name; }


const std::vector<EmbCase> kEmbCases = {
    {"dv1_nocut", 1, 0, 8},          {"dv1_nocut_proj", 1, 0, 12}, {"dv1_3cl", 1, 2, 8},
    {"dv1_3cl_proj", 1, 2, 12},      {"dv2_nocut", 2, 0, 8},       {"dv2_3cl", 2, 2, 8},
    {"dv2_3cl_dembed16", 2, 2, 16},
};

ModelConfig emb_config(const EmbCase& c) { return tiny_config(c.div_val, c.n_cut, c.d_embed, true, {}); }

// out[i] = sqrt(M) * E_c[id - l_c] · P_cᵀ (no projection with div_val 1 and d_embed == M).
std::vector<double> naive_embedding(const ModelConfig& cfg, ParamStore<double>& ps, const std::vector<int32_t>& ids) {
  const int64_t M = cfg.d_model;
  std::vector<double> out(ids.size() * static_cast<size_t>(M), 0.0);
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t t = ids[i];
    int64_t c = 0, begin = 0, d = cfg.embed_dim();
    if (cfg.div_val > 1) {
      while (t >= cfg.cluster_end(c)) ++c;
      begin = cfg.cluster_begin(c);
      for (int64_t k = 0; k < c; ++k) d /= cfg.div_val;
    }
    const double* row = ps.param(ps.id("word_emb.emb_layers." + std::to_string(c) + ".weight")).data() + (t - begin) * d;
    double* o = out.data() + i * static_cast<size_t>(M);
    if (cfg.div_val == 1 && d == M) {
      for (int64_t m = 0; m < M; ++m) o[m] = row[m];
    } else {
      const double* p = ps.param(ps.id("word_emb.emb_projs." + std::to_string(c))).data();  // [M, d]
      for (int64_t m = 0; m < M; ++m)
        for (int64_t e = 0; e < d; ++e) o[m] += row[e] * p[m * d + e];
    }
    for (int64_t m = 0; m < M; ++m) o[m] *= std::sqrt(static_cast<double>(M));
  }
  return out;
}

class AdaptiveEmbeddingCase : public ::testing::TestWithParam<EmbCase> {};

TEST_P(AdaptiveEmbeddingCase, OutputMatchesNaiveLoops) {
  const ModelConfig cfg = emb_config(GetParam());
  Head<double> hd(cfg, 101);
  const std::vector<int32_t> ids = covering_ids(cfg, 15, 102);
  Tensor<double> out;
  hd.emb.forward(*hd.ops, hd.ps, ids, out);
  ASSERT_EQ(out.shape(), Shape({15, cfg.d_model}));
  const std::vector<double> got = to_host(*hd.ops, out);
  const std::vector<double> want = naive_embedding(cfg, hd.ps, ids);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-13) << "element " << i;
}

TEST_P(AdaptiveEmbeddingCase, GradientsMatchFiniteDifferencesAndAccumulate) {
  const ModelConfig cfg = emb_config(GetParam());
  const int64_t n = 12, M = cfg.d_model;
  Head<double> hd(cfg, 111);
  Ops<double>& ops = *hd.ops;
  const std::vector<int32_t> ids = covering_ids(cfg, n, 112);
  const std::vector<double> w = random_vector(static_cast<size_t>(n * M), 113);
  Tensor<double> out;
  auto loss = [&] {
    hd.emb.forward(ops, hd.ps, ids, out);
    return dot(to_host(ops, out), w);
  };
  loss();
  const Tensor<double> dout = to_device(ops, w, {n, M});
  hd.emb.backward(ops, hd.ps, dout);
  check_param_gradients(hd.ps, loss, [](const std::string& name) { return name.rfind("word_emb.", 0) == 0; });

  // A second backward adds the same gradient again.
  const std::vector<double> once = to_host(ops, hd.ps.flat_grads());
  hd.emb.backward(ops, hd.ps, dout);
  const std::vector<double> twice = to_host(ops, hd.ps.flat_grads());
  for (size_t i = 0; i < once.size(); ++i) EXPECT_NEAR(twice[i], 2 * once[i], 1e-12 * (1 + std::abs(once[i])));
}

TEST_P(AdaptiveEmbeddingCase, FloatMatchesDouble) {
  const ModelConfig cfg = emb_config(GetParam());
  Head<double> hd(cfg, 121);
  Head<float> hf(cfg, 121);
  const std::vector<int32_t> ids = covering_ids(cfg, 10, 122);
  Tensor<double> od;
  Tensor<float> of;
  hd.emb.forward(*hd.ops, hd.ps, ids, od);
  hf.emb.forward(*hf.ops, hf.ps, ids, of);
  const std::vector<double> d = to_host(*hd.ops, od);
  const std::vector<float> f = to_host(*hf.ops, of);
  for (size_t i = 0; i < d.size(); ++i) EXPECT_NEAR(f[i], d[i], 1e-5 * (1 + std::abs(d[i])));
}

INSTANTIATE_TEST_SUITE_P(Configs, AdaptiveEmbeddingCase, ::testing::ValuesIn(kEmbCases),
                         [](const ::testing::TestParamInfo<EmbCase>& info) { return std::string(info.param.name); });

TEST(AdaptiveEmbedding, BadIdNamesIdAndPosition) {
  const ModelConfig cfg = tiny_config(2, 2, 8, true, {});
  Head<double> hd(cfg, 131);
  Tensor<double> out;
  for (int32_t bad : {-1, 30, 99999}) {
    try {
      hd.emb.forward(*hd.ops, hd.ps, {0, 5, 29, bad}, out);
      ADD_FAILURE() << "id " << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_TRUE(contains(e.what(), std::to_string(bad))) << e.what();
      EXPECT_TRUE(contains(e.what(), "position 3")) << e.what();
    }
  }
}

}  // namespace
}  // namespace txl::test
