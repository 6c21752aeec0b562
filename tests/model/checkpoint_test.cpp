// Model checkpoints (docs/training.md §6): /model/<docs/model.md §8 name> float32 datasets plus hyper-parameter
// attributes; a save/load round trip reproduces the loss bit for bit; files of another
// model are refused with an error naming the first mismatch.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "model_test_util.h"
#include "txl/model/model_checkpoint.h"

namespace txl::test {
namespace {

ModelConfig checkpoint_config() {
  ModelConfig cfg = tiny_config();
  cfg.n_token = 40;
  cfg.cutoffs = {12, 25};
  cfg.tie_projs = {false, true, true};
  cfg.div_val = 2;
  return cfg;
}

class Checkpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("txl_model_ckpt_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string save(const TransformerXL<float>& model, Ops<float>& ops, const std::string& name) {
    const std::string path = (dir_ / name).string();
    h5::write_atomically(path, [&](const std::string& tmp) {
      h5::File f = h5::File::create(tmp);
      save_model_params(f, model.params(), model.config(), ops);
    });
    return path;
  }
  static std::string load_error(const std::string& path, const ModelConfig& cfg) {
    auto ops = make_cpu_ops<float>();
    TransformerXL<float> model(cfg, *ops);
    try {
      load_model_params(h5::File::open(path), model.params(), cfg, *ops);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  std::filesystem::path dir_;
};

std::vector<float> loss_of(TransformerXL<float>& model, Ops<float>& ops) {
  const ModelConfig& cfg = model.config();
  Memory<float> mem;
  std::vector<float> all;
  for (uint64_t step = 0; step < 2; ++step) {
    const auto data = random_tokens(cfg, 5 * 2, 60 + step), target = random_tokens(cfg, 5 * 2, 70 + step);
    const auto nll = to_host(ops, model.forward(data.data(), target.data(), 5, 2, mem, {}));
    all.insert(all.end(), nll.begin(), nll.end());
  }
  return all;
}

TEST_F(Checkpoint, RoundTripGivesTheSameLossBitForBit) {
  const ModelConfig cfg = checkpoint_config();
  auto ops = make_cpu_ops<float>();
  TransformerXL<float> model(cfg, *ops);
  model.init_params(3);
  randomize_params(model, 8, 0.3);
  const std::vector<float> before = loss_of(model, *ops);
  const std::string path = save(model, *ops, "model.h5");

  TransformerXL<float> fresh(cfg, *ops);
  load_model_params(h5::File::open(path), fresh.params(), cfg, *ops);
  EXPECT_EQ(to_host(*ops, fresh.params().flat_params()), to_host(*ops, model.params().flat_params()));
  EXPECT_EQ(loss_of(fresh, *ops), before);

  // Stored shapes and types are the docs/model.md §8 shapes, float32.
  h5::File f = h5::File::open(path);
  for (const ParamInfo& p : model.params().infos()) EXPECT_EQ(f.shape("/model/" + p.name), p.shape) << p.name;
  const ModelConfig back = read_model_config(f);
  EXPECT_EQ(back.n_layer, cfg.n_layer);
  EXPECT_EQ(back.cutoffs, cfg.cutoffs);
  EXPECT_EQ(back.div_val, cfg.div_val);
  EXPECT_EQ(back.tie_projs, cfg.tie_projs);
  EXPECT_EQ(back.embed_dim(), cfg.embed_dim());
  EXPECT_NO_THROW(check_model_config(f, back));
}

// Every attn_type: the position parameters round-trip, and the learned tables' length
// (max_klen) comes back from the file even when the model is rebuilt with other lengths
// (as evaluation does).
TEST_F(Checkpoint, RoundTripKeepsEachAttnType) {
  for (int64_t attn_type : {0, 1, 2, 3}) {
    SCOPED_TRACE("attn_type " + std::to_string(attn_type));
    ModelConfig cfg = checkpoint_config();
    cfg.attn_type = attn_type;
    auto ops = make_cpu_ops<float>();
    TransformerXL<float> model(cfg, *ops);
    randomize_params(model, 8, 0.3);
    const std::vector<float> before = loss_of(model, *ops);
    const std::string path = save(model, *ops, "attn" + std::to_string(attn_type) + ".h5");

    h5::File f = h5::File::open(path);
    ModelConfig back = read_model_config(f);
    EXPECT_EQ(back.attn_type, attn_type);
    if (cfg.learned_positions()) {
      EXPECT_EQ(back.max_klen, cfg.tgt_len + cfg.ext_len + cfg.mem_len);
      EXPECT_TRUE(f.exists("/model/r_emb"));
    }
    back.tgt_len = 2;  // evaluation lengths: the tables keep their length
    back.mem_len = 3;
    TransformerXL<float> fresh(back, *ops);
    load_model_params(f, fresh.params(), fresh.config(), *ops);
    fresh.set_lengths(cfg.tgt_len, cfg.ext_len, cfg.mem_len, cfg.same_length, cfg.clamp_len);
    EXPECT_EQ(loss_of(fresh, *ops), before);

    ModelConfig other = cfg;
    other.attn_type = (attn_type + 1) % 4;
    EXPECT_NE(load_error(path, other).find("'attn_type'"), std::string::npos) << load_error(path, other);
  }
}

TEST_F(Checkpoint, DoubleModelLoadsAFloatFile) {
  const ModelConfig cfg = checkpoint_config();
  auto ops = make_cpu_ops<float>();
  TransformerXL<float> model(cfg, *ops);
  randomize_params(model, 8, 0.3);
  const std::string path = save(model, *ops, "model.h5");
  auto dops = make_cpu_ops<double>();
  TransformerXL<double> dmodel(cfg, *dops);
  load_model_params(h5::File::open(path), dmodel.params(), cfg, *dops);
  const auto f = to_host(*ops, model.params().flat_params());
  const auto d = to_host(*dops, dmodel.params().flat_params());
  ASSERT_EQ(f.size(), d.size());
  for (size_t i = 0; i < f.size(); ++i) ASSERT_EQ(static_cast<double>(f[i]), d[i]);
}

TEST_F(Checkpoint, H5dumpListsTheSpecNames) {
  if (std::system("h5dump --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "h5dump not installed: skipped";
  const ModelConfig cfg = checkpoint_config();
  auto ops = make_cpu_ops<float>();
  TransformerXL<float> model(cfg, *ops);
  const std::string path = save(model, *ops, "model.h5");
  FILE* pipe = ::popen(("h5dump -H " + path).c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string listing;
  char buf[4096];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, pipe)) > 0) listing.append(buf, got);
  ASSERT_EQ(::pclose(pipe), 0);
  for (const char* name :
       {"r_w_bias", "r_r_bias", "word_emb.emb_layers.0.weight", "word_emb.emb_layers.2.weight", "word_emb.emb_projs.1",
        "layers.0.dec_attn.qkv_net.weight", "layers.1.dec_attn.r_net.weight", "layers.1.dec_attn.o_net.weight",
        "layers.0.dec_attn.layer_norm.weight", "layers.0.dec_attn.layer_norm.bias", "layers.1.pos_ff.CoreNet.0.weight",
        "layers.1.pos_ff.CoreNet.0.bias", "layers.0.pos_ff.CoreNet.3.weight", "layers.0.pos_ff.CoreNet.3.bias",
        "layers.1.pos_ff.layer_norm.weight", "crit.cluster_weight", "crit.cluster_bias", "crit.out_layers_biases.2",
        "crit.out_projs.0"})
    EXPECT_NE(listing.find("DATASET \"" + std::string(name) + "\""), std::string::npos) << name;
  // Every tensor is float32 (the only doubles are the dropout attributes).
  size_t f32 = 0;
  for (size_t at = listing.find("H5T_IEEE_F32LE"); at != std::string::npos; at = listing.find("H5T_IEEE_F32LE", at + 1))
    ++f32;
  EXPECT_EQ(f32, static_cast<size_t>(model.params().size()));
  EXPECT_NE(listing.find("ATTRIBUTE \"n_layer\""), std::string::npos);
}

TEST_F(Checkpoint, RefusesAnotherModel) {
  const ModelConfig cfg = checkpoint_config();
  auto ops = make_cpu_ops<float>();
  TransformerXL<float> model(cfg, *ops);
  const std::string path = save(model, *ops, "model.h5");

  ModelConfig deeper = cfg;
  deeper.n_layer = 3;
  EXPECT_NE(load_error(path, deeper).find("'n_layer' is 2 in the file but 3 in this model"), std::string::npos)
      << load_error(path, deeper);
  ModelConfig other_cut = cfg;
  other_cut.cutoffs = {12, 30};
  EXPECT_NE(load_error(path, other_cut).find("'cutoffs'"), std::string::npos) << load_error(path, other_cut);
  ModelConfig untied = cfg;
  untied.tie_weight = false;
  EXPECT_NE(load_error(path, untied).find("'tie_weight'"), std::string::npos);
  ModelConfig preln = cfg;
  preln.pre_lnorm = true;
  EXPECT_NE(load_error(path, preln).find("'pre_lnorm'"), std::string::npos);
  EXPECT_EQ(load_error(path, cfg), "");

  {  // a tensor missing
    h5::File f = h5::File::open(path, true);
    ASSERT_GE(H5Ldelete(f.id(), "/model/r_r_bias", H5P_DEFAULT), 0);
  }
  EXPECT_NE(load_error(path, cfg).find("missing tensor 'r_r_bias'"), std::string::npos) << load_error(path, cfg);
  {  // ... put back with another shape
    h5::File f = h5::File::open(path, true);
    f.write("/model/r_r_bias", std::vector<float>(8, 0.0f));
  }
  EXPECT_NE(load_error(path, cfg).find("tensor 'r_r_bias' has shape [8] in the file but [2, 4]"), std::string::npos)
      << load_error(path, cfg);
  {  // ... right shape again, plus a tensor the model does not have
    h5::File f = h5::File::open(path, true);
    ASSERT_GE(H5Ldelete(f.id(), "/model/r_r_bias", H5P_DEFAULT), 0);
    const std::vector<float> zeros(8, 0.0f);
    f.write("/model/r_r_bias", zeros.data(), Shape{2, 4});
    f.write("/model/layers.5.extra", zeros.data(), Shape{8});
  }
  EXPECT_NE(load_error(path, cfg).find("'layers.5.extra' in the file is not a parameter"), std::string::npos)
      << load_error(path, cfg);
}

}  // namespace
}  // namespace txl::test
