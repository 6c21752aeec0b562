// TransformerXL API contracts: parameter names/shapes/init kinds (docs/model.md §8, §7),
// registration order = gradient-completion order, grad_ready, gradient accumulation,
// activation reuse, float/double agreement, FLOP count.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "model_test_util.h"
#include "txl/model/positional_embedding.h"

namespace txl::test {
namespace {

TEST(ModelApi, ParameterNamesShapesAndInitKinds) {
  ModelConfig cfg = tiny_config();
  cfg.cutoffs = {10, 20};
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> model(cfg, *ops);
  const ParamStore<double>& ps = model.params();
  const std::map<std::string, std::pair<Shape, ParamInit>> want = {
      {"r_w_bias", {{2, 4}, ParamInit::kWeight}},
      {"r_r_bias", {{2, 4}, ParamInit::kWeight}},
      {"layers.1.dec_attn.qkv_net.weight", {{24, 8}, ParamInit::kWeight}},
      {"layers.1.dec_attn.r_net.weight", {{8, 8}, ParamInit::kWeight}},
      {"layers.1.dec_attn.o_net.weight", {{8, 8}, ParamInit::kWeight}},
      {"layers.1.dec_attn.layer_norm.weight", {{8}, ParamInit::kLayerNormWeight}},
      {"layers.1.dec_attn.layer_norm.bias", {{8}, ParamInit::kZero}},
      {"layers.0.pos_ff.CoreNet.0.weight", {{12, 8}, ParamInit::kWeight}},
      {"layers.0.pos_ff.CoreNet.0.bias", {{12}, ParamInit::kZero}},
      {"layers.0.pos_ff.CoreNet.3.weight", {{8, 12}, ParamInit::kWeight}},
      {"layers.0.pos_ff.CoreNet.3.bias", {{8}, ParamInit::kZero}},
      {"layers.0.pos_ff.layer_norm.weight", {{8}, ParamInit::kLayerNormWeight}},
      {"layers.0.pos_ff.layer_norm.bias", {{8}, ParamInit::kZero}},
  };
  for (const auto& [name, spec] : want) {
    const int id = ps.find(name);
    ASSERT_GE(id, 0) << name;
    EXPECT_EQ(ps.info(id).shape, spec.first) << name;
    EXPECT_EQ(ps.info(id).init, spec.second) << name;
  }
  // Per layer: 3 attention weights + 2 LayerNorm, 4 feed-forward + 2 LayerNorm.
  int layer_params = 0;
  for (const ParamInfo& p : ps.infos()) layer_params += p.name.rfind("layers.", 0) == 0;
  EXPECT_EQ(layer_params, 2 * 11);
}

TEST(ModelApi, RegistrationOrderFollowsGradientCompletion) {
  ModelConfig cfg = tiny_config();
  cfg.n_layer = 3;
  cfg.cutoffs = {10, 20};
  cfg.tie_weight = true;
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> model(cfg, *ops);
  const ParamStore<double>& ps = model.params();
  auto group = [](const std::string& n) -> int {  // expected rank of a name's group
    if (n.rfind("crit.", 0) == 0) return 0;
    if (n.rfind("layers.2.", 0) == 0) return 1;
    if (n.rfind("layers.1.", 0) == 0) return 2;
    if (n.rfind("layers.0.", 0) == 0) return 3;
    if (n == "r_w_bias" || n == "r_r_bias") return 4;
    if (n.rfind("word_emb.", 0) == 0) return 5;
    return 99;
  };
  int prev = 0;
  for (const ParamInfo& p : ps.infos()) {
    const int gr = group(p.name);
    EXPECT_NE(gr, 99) << p.name;
    EXPECT_GE(gr, prev) << p.name << " registered out of order";
    prev = gr;
  }
  EXPECT_EQ(ps.info(ps.size() - 1).name.rfind("word_emb.", 0), 0u);

  // grad_ready: once per parameter, in registration order.
  randomize_params(model, 1);
  const auto data = random_tokens(cfg, 10, 1);
  Memory<double> mem;
  const Tensor<double>& nll = model.forward(data.data(), data.data(), 5, 2, mem, {});
  const Tensor<double> ones = to_device(*ops, std::vector<double>(10, 1.0), {5, 2});
  (void)nll;
  std::vector<int> ready;
  model.backward(ones, [&](int id) { ready.push_back(id); });
  ASSERT_EQ(static_cast<int>(ready.size()), ps.size());
  for (int i = 0; i < ps.size(); ++i) EXPECT_EQ(ready[static_cast<size_t>(i)], i);
}

TEST(ModelApi, BackwardAccumulatesAndActivationsAreReused) {
  ModelConfig cfg = tiny_config();
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> model(cfg, *ops);
  randomize_params(model, 2);
  const auto data = random_tokens(cfg, 10, 1), target = random_tokens(cfg, 10, 2);
  const Tensor<double> ones = to_device(*ops, std::vector<double>(10, 1.0), {5, 2});
  Memory<double> mem;
  model.forward(data.data(), target.data(), 5, 2, mem, {});  // fills the memory
  const Memory<double> mem0 = clone_memory(*ops, mem);

  ParamStore<double>& ps = model.params();
  ps.zero_grad(*ops);
  Memory<double> m1 = clone_memory(*ops, mem0);
  model.forward(data.data(), target.data(), 5, 2, m1, {});
  const double* layer_in = model.layer_input(1).data();
  const double* emb_grad_before = nullptr;
  model.backward(ones);
  emb_grad_before = model.embedding_grad().data();
  const std::vector<double> once = to_host(*ops, ps.flat_grads());
  Memory<double> m2 = clone_memory(*ops, mem0);
  model.forward(data.data(), target.data(), 5, 2, m2, {});
  model.backward(ones);
  const std::vector<double> twice = to_host(*ops, ps.flat_grads());
  double norm = 0;
  for (size_t i = 0; i < once.size(); ++i) {
    EXPECT_NEAR(twice[i], 2 * once[i], 1e-12 * std::max(1.0, std::abs(once[i])));
    norm += once[i] * once[i];
  }
  EXPECT_GT(norm, 0.0);
  // Same shapes: the same activation buffers are used again (no per-step allocation).
  EXPECT_EQ(model.layer_input(1).data(), layer_in);
  EXPECT_EQ(model.embedding_grad().data(), emb_grad_before);
}

TEST(ModelApi, FloatAgreesWithDouble) {
  ModelConfig cfg = tiny_config();
  cfg.cutoffs = {10, 20};
  cfg.div_val = 2;
  cfg.pre_lnorm = true;
  auto dops = make_cpu_ops<double>();
  auto fops = make_cpu_ops<float>();
  TransformerXL<double> dm(cfg, *dops);
  TransformerXL<float> fm(cfg, *fops);
  randomize_params(dm, 4, 0.3);
  const auto dp = to_host(*dops, dm.params().flat_params());
  const std::vector<float> fp(dp.begin(), dp.end());
  fops->upload(fm.params().flat_params().data(), fp.data(), fp.size() * sizeof(float));
  Memory<double> dmem;
  Memory<float> fmem;
  for (uint64_t step = 0; step < 2; ++step) {
    const auto data = random_tokens(cfg, 10, step), target = random_tokens(cfg, 10, 9 + step);
    const auto d = to_host(*dops, dm.forward(data.data(), target.data(), 5, 2, dmem, {}));
    const auto f = to_host(*fops, fm.forward(data.data(), target.data(), 5, 2, fmem, {}));
    for (size_t i = 0; i < d.size(); ++i) EXPECT_NEAR(f[i], d[i], 1e-4 * std::abs(d[i]));
  }
}

TEST(ModelApi, InitParamsIsDeterministicAndFollowsTheKinds) {
  ModelConfig cfg = tiny_config();
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> a(cfg, *ops), b(cfg, *ops);
  a.init_params(42);
  b.init_params(42);
  EXPECT_EQ(to_host(*ops, a.params().flat_params()), to_host(*ops, b.params().flat_params()));
  const auto ln = to_host(*ops, a.params().param(a.params().id("layers.0.dec_attn.layer_norm.weight")));
  for (double v : ln) EXPECT_NEAR(v, 1.0, 0.2);
  const auto bias = to_host(*ops, a.params().param(a.params().id("layers.0.pos_ff.CoreNet.0.bias")));
  for (double v : bias) EXPECT_EQ(v, 0.0);
}

TEST(ModelApi, FlopCountOfASmallConfig) {
  ModelConfig cfg = tiny_config();  // M 8, H*D 8, d_inner 12, tgt 5, mem 4, n_token 30
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> model(cfg, *ops);
  const double Q = 5, K = 9, B = 2, M = 8, HD = 8, F = 12;
  const double layer = 2 * M * HD + 4 * M * HD * K / Q + 2 * K * M * HD / (Q * B) + 6 * HD * K + 2 * HD * M + 4 * M * F;
  EXPECT_DOUBLE_EQ(model.flops_per_token_fwd(2), 2 * layer + 2 * M * 30);
}

// Tail clusters [10, 20) and [20, 30) of a 30-word vocabulary, d_embed 8, div_val 2: the
// tail dims are 4 and 2, each projected from d_model 8.
TEST(ModelApi, TailClusterFlopsCountEachTargetsCluster) {
  ModelConfig cfg = tiny_config();
  cfg.cutoffs = {10, 20};
  cfg.div_val = 2;
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> model(cfg, *ops);
  const std::vector<int32_t> target = {0, 9, 10, 19, 20, 29, 5};
  const double c1 = 2.0 * 4 * 10 + 2.0 * 8 * 4, c2 = 2.0 * 2 * 10 + 2.0 * 8 * 2;
  EXPECT_DOUBLE_EQ(model.tail_cluster_flops_fwd(target.data(), 7), 2 * c1 + 2 * c2);
  EXPECT_DOUBLE_EQ(model.tail_cluster_flops_fwd(target.data(), 2), 0.0);  // shortlist only
}

TEST(PositionEmbedding, SinesThenCosinesOfClampedPositions) {
  const auto pos = relative_positions(6, 3);
  EXPECT_EQ(pos, (std::vector<int64_t>{3, 3, 3, 2, 1, 0}));
  const auto pe = position_embedding<double>(6, 4, 3);  // inv_freq = {1, 1/100} rounded to float32
  const double f100 = static_cast<double>(1.0f / 100.0f);
  EXPECT_NE(f100, 1.0 / 100);  // the float32 rounding is visible in double
  EXPECT_DOUBLE_EQ(pe[0], std::sin(3.0));
  EXPECT_DOUBLE_EQ(pe[1], std::sin(3.0 * f100));
  EXPECT_DOUBLE_EQ(pe[2], std::cos(3.0));
  EXPECT_DOUBLE_EQ(pe[3], std::cos(3.0 * f100));
  EXPECT_DOUBLE_EQ(pe[5 * 4 + 0], 0.0);
  EXPECT_DOUBLE_EQ(pe[5 * 4 + 2], 1.0);
}

}  // namespace
}  // namespace txl::test
