// Parameter names and shapes of the loss head and the embedding (docs/model.md §8) for the
// recipe's settings. Only registration and binding: nothing is allocated.
#include <utility>

#include "head_test_util.h"

namespace txl::test {
namespace {

using NameShapes = std::vector<std::pair<std::string, Shape>>;

ModelConfig wt103_config() {
  ModelConfig cfg;
  cfg.n_token = 267735;
  cfg.d_model = 512;
  cfg.d_embed = 512;
  cfg.n_head = 8;
  cfg.d_head = 64;
  cfg.d_inner = 2048;
  cfg.div_val = 1;
  cfg.cutoffs = {19997, 39997, 199997};
  cfg.tie_weight = true;
  cfg.tie_projs = {false, true, true, true};
  cfg.validate();
  return cfg;
}

// Registers crit then word_emb (the whole model's order), binds both, returns the list.
NameShapes registered(const ModelConfig& cfg) {
  ParamStore<float> ps;
  AdaptiveEmbedding<float> emb(cfg);
  ProjectedAdaptiveLogSoftmax<float> crit(cfg);
  crit.register_params(ps);
  emb.register_params(ps);
  emb.bind(ps);
  crit.bind(ps);
  NameShapes out;
  for (const ParamInfo& p : ps.infos()) out.emplace_back(p.name, p.shape);
  return out;
}

ParamInit init_of(const ModelConfig& cfg, const std::string& name) {
  ParamStore<float> ps;
  ProjectedAdaptiveLogSoftmax<float>(cfg).register_params(ps);
  AdaptiveEmbedding<float>(cfg).register_params(ps);
  return ps.info(ps.id(name)).init;
}

TEST(HeadParams, Wt103Base) {
  const NameShapes want = {
      {"crit.cluster_weight", {3, 512}},
      {"crit.cluster_bias", {3}},
      {"crit.out_layers_biases.0", {267735}},
      {"word_emb.emb_layers.0.weight", {267735, 512}},
  };
  EXPECT_EQ(registered(wt103_config()), want);
}

TEST(HeadParams, Wt103LargeVocabDivVal4) {
  ModelConfig cfg = wt103_config();
  cfg.div_val = 4;
  cfg.d_embed = 1024;
  const NameShapes want = {
      {"crit.cluster_weight", {3, 1024}},
      {"crit.cluster_bias", {3}},
      {"crit.out_layers_biases.0", {19997}},
      {"crit.out_layers_biases.1", {20000}},
      {"crit.out_layers_biases.2", {160000}},
      {"crit.out_layers_biases.3", {67738}},
      {"crit.out_projs.0", {512, 1024}},
      {"word_emb.emb_layers.0.weight", {19997, 1024}},
      {"word_emb.emb_layers.1.weight", {20000, 256}},
      {"word_emb.emb_layers.2.weight", {160000, 64}},
      {"word_emb.emb_layers.3.weight", {67738, 16}},
      {"word_emb.emb_projs.0", {512, 1024}},
      {"word_emb.emb_projs.1", {512, 256}},
      {"word_emb.emb_projs.2", {512, 64}},
      {"word_emb.emb_projs.3", {512, 16}},
  };
  EXPECT_EQ(registered(cfg), want);
}

TEST(HeadParams, UntiedDivVal1WithProjection) {
  ModelConfig cfg = wt103_config();
  cfg.d_embed = 256;
  cfg.tie_weight = false;
  const NameShapes want = {
      {"crit.cluster_weight", {3, 256}},
      {"crit.cluster_bias", {3}},
      {"crit.out_layers_weights.0", {267735, 256}},
      {"crit.out_layers_biases.0", {267735}},
      {"crit.out_projs.0", {512, 256}},  // clusters 1..3 tie to word_emb.emb_projs.0
      {"word_emb.emb_layers.0.weight", {267735, 256}},
      {"word_emb.emb_projs.0", {512, 256}},
  };
  EXPECT_EQ(registered(cfg), want);
}

TEST(HeadParams, Lm1bStyleUntiedDivVal4) {
  ModelConfig cfg;
  cfg.n_token = 793470;
  cfg.d_model = 1024;
  cfg.d_embed = 1024;
  cfg.div_val = 4;
  cfg.cutoffs = {59997, 99997, 639997};
  cfg.tie_weight = false;
  cfg.tie_projs = {false, false, false, false};
  cfg.validate();
  const NameShapes want = {
      {"crit.cluster_weight", {3, 1024}},
      {"crit.cluster_bias", {3}},
      {"crit.out_layers_weights.0", {59997, 1024}},
      {"crit.out_layers_weights.1", {40000, 256}},
      {"crit.out_layers_weights.2", {540000, 64}},
      {"crit.out_layers_weights.3", {153473, 16}},
      {"crit.out_layers_biases.0", {59997}},
      {"crit.out_layers_biases.1", {40000}},
      {"crit.out_layers_biases.2", {540000}},
      {"crit.out_layers_biases.3", {153473}},
      {"crit.out_projs.0", {1024, 1024}},  // exists although d_0 == d_model (div_val > 1)
      {"crit.out_projs.1", {1024, 256}},
      {"crit.out_projs.2", {1024, 64}},
      {"crit.out_projs.3", {1024, 16}},
      {"word_emb.emb_layers.0.weight", {59997, 1024}},
      {"word_emb.emb_layers.1.weight", {40000, 256}},
      {"word_emb.emb_layers.2.weight", {540000, 64}},
      {"word_emb.emb_layers.3.weight", {153473, 16}},
      {"word_emb.emb_projs.0", {1024, 1024}},
      {"word_emb.emb_projs.1", {1024, 256}},
      {"word_emb.emb_projs.2", {1024, 64}},
      {"word_emb.emb_projs.3", {1024, 16}},
  };
  EXPECT_EQ(registered(cfg), want);
}

TEST(HeadParams, CharLevelNoCutoffs) {
  ModelConfig cfg;
  cfg.n_token = 204;
  cfg.d_model = 512;
  cfg.tie_weight = true;
  cfg.validate();
  const NameShapes want = {
      {"crit.out_layers_biases.0", {204}},
      {"word_emb.emb_layers.0.weight", {204, 512}},
  };
  EXPECT_EQ(registered(cfg), want);
}

TEST(HeadParams, InitKinds) {
  ModelConfig cfg = wt103_config();
  cfg.div_val = 4;
  cfg.d_embed = 1024;
  cfg.tie_weight = false;
  EXPECT_EQ(init_of(cfg, "crit.cluster_weight"), ParamInit::kWeight);
  EXPECT_EQ(init_of(cfg, "crit.cluster_bias"), ParamInit::kZero);
  EXPECT_EQ(init_of(cfg, "crit.out_layers_weights.2"), ParamInit::kWeight);
  EXPECT_EQ(init_of(cfg, "crit.out_layers_biases.2"), ParamInit::kZero);
  EXPECT_EQ(init_of(cfg, "crit.out_projs.0"), ParamInit::kProjection);
  EXPECT_EQ(init_of(cfg, "word_emb.emb_layers.1.weight"), ParamInit::kWeight);
  EXPECT_EQ(init_of(cfg, "word_emb.emb_projs.3"), ParamInit::kProjection);
}

TEST(HeadParams, BindWithoutTiedEmbeddingNamesTheMissingTensor) {
  ParamStore<float> ps;
  ProjectedAdaptiveLogSoftmax<float> crit(wt103_config());
  crit.register_params(ps);  // word_emb not registered
  try {
    crit.bind(ps);
    ADD_FAILURE() << "bind succeeded without word_emb.emb_layers.0.weight";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "word_emb.emb_layers.0.weight")) << e.what();
  }
}

}  // namespace
}  // namespace txl::test
