// Configuration: YAML merge keys, preset files, command line, key validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>

#include "txl/config/command_line.h"
#include "txl/config/eval_config.h"
#include "txl/config/preset_file.h"
#include "txl/config/train_config.h"
#include "txl/config/yaml_merge.h"

namespace txl {
namespace {

// The message of the txl::Error `fn` throws ("" when it throws none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(YamlMerge, MergeKeysFillMissingKeysOnly) {
  const YAML::Node n = resolve_merge_keys(YAML::Load(R"(
base: &base {a: 1, b: 2, nested: {x: 1}}
other: &other {b: 20, c: 30}
one:
  <<: *base
  b: 3
many:
  <<: [*base, *other]
  a: 9
quoted:
  "<<": *base
)"));
  EXPECT_EQ(n["one"]["a"].as<int>(), 1);
  EXPECT_EQ(n["one"]["b"].as<int>(), 3);  // explicit key wins
  EXPECT_FALSE(n["one"]["<<"]);
  EXPECT_EQ(n["one"]["nested"]["x"].as<int>(), 1);
  EXPECT_EQ(n["many"]["a"].as<int>(), 9);
  EXPECT_EQ(n["many"]["b"].as<int>(), 2);   // earlier source wins
  EXPECT_EQ(n["many"]["c"].as<int>(), 30);  // later source fills gaps
  EXPECT_TRUE(n["quoted"]["<<"]);           // a quoted "<<" is an ordinary key
  EXPECT_FALSE(n["quoted"]["a"]);
}

TEST(YamlMerge, NestedMergesAndNoAliasing) {
  const YAML::Node n = resolve_merge_keys(YAML::Load(R"(
default:
  train: &train {lr: 0.01, tgt_len: 192}
  eval: &eval {tgt_len: 64}
fast:
  train:
    <<: *train
    lr: 0.02
  eval: *eval
)"));
  EXPECT_DOUBLE_EQ(n["fast"]["train"]["lr"].as<double>(), 0.02);
  EXPECT_EQ(n["fast"]["train"]["tgt_len"].as<int>(), 192);
  EXPECT_DOUBLE_EQ(n["default"]["train"]["lr"].as<double>(), 0.01);  // the anchor is not modified
}

TEST(YamlMerge, MergingAScalarIsAnError) {
  EXPECT_NE(error_of([] { resolve_merge_keys(YAML::Load("a: {<<: 3}")); }).find("merge key"), std::string::npos);
}

TEST(ClosestName, EditDistance) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3);
  EXPECT_EQ(edit_distance("", "abc"), 3);
  EXPECT_EQ(edit_distance("lr", "lr"), 0);
  EXPECT_EQ(closest_name("lrr", {"lr", "mom", "clip"}), "lr");
  EXPECT_EQ(closest_name("mem_lem", {"tgt_len", "mem_len", "ext_len"}), "mem_len");
}

const char* kPresets = R"(
default:
  train: &train
    data: corpus.h5
    lr: 0.02
    tgt_len: 32
    mem_len: 32
    batch_size: 8
  eval: &eval
    tgt_len: 16
dgx1_2gpu:
  train:
    <<: *train
    batch_chunk: 2
  eval: *eval
)";

TEST(PresetFile, SectionsAndErrors) {
  const PresetFile f = PresetFile::parse(kPresets, "mem.yaml");
  EXPECT_EQ(f.presets(), (std::vector<std::string>{"default", "dgx1_2gpu"}));
  EXPECT_EQ(f.section("dgx1_2gpu", "train")["batch_chunk"].as<int>(), 2);
  EXPECT_EQ(f.section("dgx1_2gpu", "train")["lr"].as<double>(), 0.02);
  const std::string e = error_of([&] { f.section("dgx1_2gpus", "train"); });
  EXPECT_NE(e.find("no preset 'dgx1_2gpus'"), std::string::npos) << e;
  EXPECT_NE(e.find("'dgx1_2gpu'"), std::string::npos) << e;
  const PresetFile bad = PresetFile::parse("default: {trian: {lr: 1}}", "bad.yaml");
  EXPECT_NE(error_of([&] { bad.section("default", "train"); }).find("unknown section 'trian'"), std::string::npos);
  EXPECT_NE(error_of([] { PresetFile::load("/nonexistent/x.yaml"); }).find("not found"), std::string::npos);
  EXPECT_NE(error_of([] { PresetFile::parse("a: [1, 2", "broken.yaml"); }).find("broken.yaml: invalid YAML"),
            std::string::npos);
}

TrainConfig config_from(const std::string& yaml_train_section, int world = 1) {
  TrainConfig c;
  apply_section(c, train_config_keys(), YAML::Load(yaml_train_section), "test.yaml [default.train]");
  c.finalize(world);
  return c;
}

TEST(TrainConfig, AppliesSectionAndOverrides) {
  const PresetFile f = PresetFile::parse(kPresets, "mem.yaml");
  TrainConfig c;
  apply_section(c, train_config_keys(), f.section("dgx1_2gpu", "train"), f.where("dgx1_2gpu", "train"));
  const CommandLine cl = parse_command_line(
      {"mem.yaml", "--config", "dgx1_2gpu", "--lr", "0.5", "--roll", "--same_length", "false", "--cutoffs=10,20",
       "--clamp_len", "-1", "--tie_projs", "[false, true]"},
      option_types(train_config_keys()));
  EXPECT_EQ(cl.config_file, "mem.yaml");
  EXPECT_EQ(cl.preset, "dgx1_2gpu");
  apply_overrides(c, train_config_keys(), cl);
  c.finalize(2);
  EXPECT_DOUBLE_EQ(c.lr, 0.5);
  EXPECT_TRUE(c.roll);
  EXPECT_FALSE(c.model.same_length);
  EXPECT_EQ(c.model.cutoffs, (std::vector<int64_t>{10, 20}));
  EXPECT_EQ(c.model.tie_projs, (std::vector<bool>{false, true}));
  EXPECT_EQ(c.model.clamp_len, -1);
  EXPECT_EQ(c.batch_chunk, 2);
  EXPECT_EQ(c.model.tgt_len, 32);
  EXPECT_EQ(c.eval_tgt_len, 32);  // -1 resolves to tgt_len
}

TEST(TrainConfig, UnknownKeyNamesTheClosest) {
  std::string e = error_of([] { config_from("{data: x.h5, lrr: 0.1}"); });
  EXPECT_NE(e.find("unknown key 'lrr'"), std::string::npos) << e;
  EXPECT_NE(e.find("closest known key: 'lr'"), std::string::npos) << e;
  e = error_of([] { parse_command_line({"--mem_lem", "3"}, option_types(train_config_keys())); });
  EXPECT_NE(e.find("'--mem_lem'"), std::string::npos) << e;
  EXPECT_NE(e.find("'--mem_len'"), std::string::npos) << e;
}

TEST(TrainConfig, WrongTypeNamesKeyAndType) {
  std::string e = error_of([] { config_from("{data: x.h5, lr: fast}"); });
  EXPECT_NE(e.find("key 'lr' expects a number, got 'fast'"), std::string::npos) << e;
  e = error_of([] { config_from("{data: x.h5, n_layer: 2.5}"); });
  EXPECT_NE(e.find("key 'n_layer' expects an integer"), std::string::npos) << e;
  e = error_of([] { config_from("{data: x.h5, roll: maybe}"); });
  EXPECT_NE(e.find("key 'roll' expects true or false"), std::string::npos) << e;
  e = error_of([] { config_from("{data: x.h5, cutoffs: [1, b]}"); });
  EXPECT_NE(e.find("key 'cutoffs' expects a list of integers"), std::string::npos) << e;
  e = error_of([] { config_from("{data: x.h5, work_dir: [a]}"); });
  EXPECT_NE(e.find("key 'work_dir' expects a string"), std::string::npos) << e;
  e = error_of([] { parse_command_line({"--lr"}, option_types(train_config_keys())); });
  EXPECT_NE(e.find("--lr needs a value"), std::string::npos) << e;
}

TEST(TrainConfig, InconsistentValuesNameTheKey) {
  std::string e = error_of([] { config_from("{data: x.h5, batch_size: 12, batch_chunk: 5}"); });
  EXPECT_NE(e.find("batch_size"), std::string::npos) << e;
  EXPECT_NE(e.find("not divisible"), std::string::npos) << e;
  e = error_of([] { config_from("{data: x.h5, batch_size: 12, batch_chunk: 2}", 4); });
  EXPECT_NE(e.find("ranks x batch_chunk = 4 x 2"), std::string::npos) << e;
  EXPECT_EQ(error_of([] { config_from("{data: x.h5, batch_size: 16, batch_chunk: 2}", 4); }), "");
  e = error_of([] { config_from("{data: x.h5, tgt_len: 10, mem_len: 5, eval_tgt_len: 16}"); });
  EXPECT_NE(e.find("eval_tgt_len"), std::string::npos) << e;
  e = error_of([] { config_from("{data: x.h5, fp16: true}"); });
  EXPECT_NE(e.find("device: cuda"), std::string::npos) << e;
  e = error_of([] { config_from("{data: x.h5, precision: bf16}"); });
  EXPECT_NE(e.find("precision"), std::string::npos) << e;
  e = error_of([] { config_from("{data: x.h5, optim: lamb2}"); });
  EXPECT_NE(e.find("optim: unknown value 'lamb2'"), std::string::npos) << e;
  e = error_of([] { config_from("{lr: 0.1}"); });
  EXPECT_NE(e.find("data"), std::string::npos) << e;
  e = error_of([] { config_from("{data: x.h5, local_batch_size: 3}", 4); });
  EXPECT_EQ(e, "");
  EXPECT_EQ(config_from("{data: x.h5, local_batch_size: 3}", 4).batch_size, 12);
}

// attn_type 0..3 are accepted; another value, or a clamp_len beyond attn_type 1's
// learned table (max_klen = tgt_len + ext_len + mem_len rows), fails with one line.
TEST(TrainConfig, AttnTypesAndTheirBadCombinations) {
  for (int attn_type : {0, 1, 2, 3}) {
    TrainConfig c = config_from("{data: x.h5, attn_type: " + std::to_string(attn_type) + "}");
    EXPECT_EQ(c.model_config(1000, {}, "wt2").attn_type, attn_type);
  }
  std::string e = error_of([] { config_from("{data: x.h5, attn_type: 4}"); });
  EXPECT_NE(e.find("attn_type: 4 is not one of 0"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  TrainConfig c = config_from("{data: x.h5, attn_type: 1, tgt_len: 10, mem_len: 5, clamp_len: 16}");
  e = error_of([&] { c.model_config(1000, {}, "wt2"); });
  EXPECT_NE(e.find("clamp_len 16 exceeds the 15 rows of r_emb"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  c.model.clamp_len = 15;
  EXPECT_EQ(error_of([&] { c.model_config(1000, {}, "wt2"); }), "");
  c.model.attn_type = 0;  // attn_type 0 clamps sinusoid positions: any clamp_len
  c.model.clamp_len = 1000;
  EXPECT_EQ(error_of([&] { c.model_config(1000, {}, "wt2"); }), "");
}

TEST(TrainConfig, ResolvedYamlRoundTrips) {
  TrainConfig a = config_from("{data: x.h5, lr: 0.003, cutoffs: [5, 9], tie_projs: [false, true, true], roll: true}");
  const std::string text = yaml_to_text(config_to_yaml(a, train_config_keys()));
  TrainConfig b;
  apply_section(b, train_config_keys(), YAML::Load(text), "round trip");
  EXPECT_EQ(yaml_to_text(config_to_yaml(b, train_config_keys())), text);
  EXPECT_EQ(b.lr, a.lr);
  EXPECT_EQ(b.model.cutoffs, a.model.cutoffs);
  EXPECT_EQ(b.model.tie_projs, a.model.tie_projs);
}

// Each configurable ModelConfig field is declared once, in ModelConfig: TrainConfig holds it
// as `model`, one key of the training table (named as the field) addresses it, and its
// value survives the resolved YAML and reaches model_config().
TEST(TrainConfig, EveryModelFieldHasExactlyOneKey) {
  TrainConfig cfg;
  ModelConfig& m = cfg.model;
  // Every ModelConfig field but n_token (the corpus's) and max_klen (not a training key).
  const std::vector<std::pair<std::string, const void*>> fields = {
      {"n_layer", &m.n_layer},         {"n_head", &m.n_head},
      {"d_head", &m.d_head},           {"d_model", &m.d_model},
      {"d_inner", &m.d_inner},         {"d_embed", &m.d_embed},
      {"div_val", &m.div_val},         {"cutoffs", &m.cutoffs},
      {"tie_weight", &m.tie_weight},   {"tie_projs", &m.tie_projs},
      {"pre_lnorm", &m.pre_lnorm},     {"dropout", &m.dropout},
      {"dropatt", &m.dropatt},         {"tgt_len", &m.tgt_len},
      {"mem_len", &m.mem_len},         {"ext_len", &m.ext_len},
      {"same_length", &m.same_length}, {"clamp_len", &m.clamp_len},
      {"attn_type", &m.attn_type},     {"sample_softmax", &m.sample_softmax},
      {"init", &m.init.init},          {"init_std", &m.init.init_std},
      {"proj_init_std", &m.init.proj_init_std}, {"init_range", &m.init.init_range}};
  const auto inside_model = [&](const void* p) {
    const auto a = reinterpret_cast<std::uintptr_t>(p), lo = reinterpret_cast<std::uintptr_t>(&m);
    return a >= lo && a < lo + sizeof(ModelConfig);
  };
  std::set<std::string> names;
  int model_keys = 0;
  for (const auto& k : train_config_keys()) {
    EXPECT_TRUE(names.insert(k.name).second) << "key declared twice: " << k.name;
    const void* at = k.visit(cfg, [](auto& f) -> const void* { return &f; });
    if (!inside_model(at)) continue;
    ++model_keys;
    const auto it = std::find_if(fields.begin(), fields.end(), [&](const auto& f) { return f.second == at; });
    ASSERT_NE(it, fields.end()) << k.name << " addresses a ModelConfig field this test does not list";
    EXPECT_EQ(k.name, it->first);
  }
  EXPECT_EQ(model_keys, static_cast<int>(fields.size()));  // with the names unique: one key per field

  // Not the defaults (but tie_weight), and a model that validates (3 clusters of 50 ids).
  const TrainConfig a = config_from(R"({data: x.h5, n_layer: 3, n_head: 3, d_head: 7, d_model: 18, d_inner: 40,
      d_embed: 16, div_val: 2, adaptive: true, cutoffs: [10, 20], tie_weight: true, tie_projs: [true, false, true],
      pre_lnorm: true, dropout: 0.25, dropatt: 0.125, tgt_len: 12, mem_len: 9, ext_len: 2, same_length: true,
      clamp_len: 5, attn_type: 2, sample_softmax: 4, init: uniform, init_std: 0.5, proj_init_std: 0.75,
      init_range: 0.3})");
  const TrainConfig defaults;
  for (const auto& k : train_config_keys()) {
    if (inside_model(k.visit(cfg, [](auto& f) -> const void* { return &f; })) && k.name != "tie_weight") {
      EXPECT_NE(yaml_inline(k.value(a)), yaml_inline(k.value(defaults))) << k.name << " kept its default";
    }
  }
  const std::string text = yaml_to_text(config_to_yaml(a, train_config_keys()));
  TrainConfig b;
  apply_section(b, train_config_keys(), YAML::Load(text), "round trip");
  b.finalize(1);
  EXPECT_EQ(yaml_to_text(config_to_yaml(b, train_config_keys())), text);

  const ModelConfig r = b.model_config(50, {}, "wt103");
  EXPECT_EQ(r.n_token, 50);
  EXPECT_EQ(r.n_layer, 3);
  EXPECT_EQ(r.n_head, 3);
  EXPECT_EQ(r.d_head, 7);
  EXPECT_EQ(r.d_model, 18);
  EXPECT_EQ(r.d_inner, 40);
  EXPECT_EQ(r.d_embed, 16);
  EXPECT_EQ(r.div_val, 2);
  EXPECT_EQ(r.cutoffs, (std::vector<int64_t>{10, 20}));
  EXPECT_TRUE(r.tie_weight);
  EXPECT_EQ(r.tie_projs, (std::vector<bool>{true, false, true}));
  EXPECT_TRUE(r.pre_lnorm);
  EXPECT_EQ(r.dropout, 0.25);
  EXPECT_EQ(r.dropatt, 0.125);
  EXPECT_EQ(r.tgt_len, 12);
  EXPECT_EQ(r.mem_len, 9);
  EXPECT_EQ(r.ext_len, 2);
  EXPECT_TRUE(r.same_length);
  EXPECT_EQ(r.clamp_len, 5);
  EXPECT_EQ(r.attn_type, 2);
  EXPECT_EQ(r.sample_softmax, 4);
  EXPECT_EQ(r.max_klen, 0);
  EXPECT_EQ(r.init.init, "uniform");
  EXPECT_EQ(r.init.init_std, 0.5);
  EXPECT_EQ(r.init.proj_init_std, 0.75);
  EXPECT_EQ(r.init.init_range, 0.3);
  // tie_weight: true above (the sampled softmax needs it); the other value here.
  EXPECT_FALSE(config_from("{data: x.h5, tie_weight: false}").model_config(50, {}, "wt2").tie_weight);
}

TEST(TrainConfig, ModelConfigFollowsRecipeTieRule) {
  TrainConfig c = config_from("{data: x.h5, adaptive: true, d_model: 64, n_head: 2, d_head: 32, d_inner: 128}");
  ModelConfig m = c.model_config(1000, {100, 500}, "wt103");
  EXPECT_EQ(m.cutoffs, (std::vector<int64_t>{100, 500}));
  EXPECT_EQ(m.tie_projs, (std::vector<bool>{false, true, true}));
  m = c.model_config(1000, {100, 500}, "lm1b");
  EXPECT_EQ(m.tie_projs, (std::vector<bool>{false, false, false}));
  c.adaptive = false;
  EXPECT_TRUE(c.model_config(1000, {100, 500}, "wt103").cutoffs.empty());
  c.adaptive = true;
  c.model.cutoffs = {10, 2000};
  EXPECT_NE(error_of([&] { c.model_config(1000, {}, "wt2"); }).find("cutoffs"), std::string::npos);
}

// Every preset of every shipped configuration file is valid for the rank count its
// name implies ("..._8gpu_...": 8), in both sections.
TEST(TrainConfig, SampleSoftmaxNeedsTiedWeightsAndReachesTheModel) {
  const std::string e = error_of([] { config_from("{data: x.h5, sample_softmax: 8, tie_weight: false}"); });
  EXPECT_NE(e.find("config: sample_softmax: needs tie_weight: true"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  TrainConfig c = config_from("{data: x.h5, sample_softmax: 8}");
  EXPECT_EQ(c.model_config(1000, {}, "wt103").sample_softmax, 8);
  EXPECT_EQ(config_from("{data: x.h5}").model_config(1000, {}, "wt103").sample_softmax, -1);
}

TEST(ShippedConfigs, EveryPresetValidates) {
  const std::string dir = std::string(TXL_SOURCE_DIR) + "/configs";
  int files = 0, presets = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    const PresetFile f = PresetFile::load(entry.path().string());
    for (const std::string& preset : f.presets()) {
      SCOPED_TRACE(entry.path().filename().string() + " " + preset);
      int world = 1;
      if (const size_t g = preset.find("gpu"); g != std::string::npos) {
        size_t b = g;
        while (b > 0 && std::isdigit(static_cast<unsigned char>(preset[b - 1]))) --b;
        if (b < g) world = std::stoi(preset.substr(b, g - b));
      }
      TrainConfig c;
      apply_section(c, train_config_keys(), f.section(preset, "train"), f.where(preset, "train"));
      if (c.data.empty()) c.data = "corpus.h5";
      if (c.device == "cpu" && c.precision != "fp32") c.device = "cuda";  // GPU presets on a CPU test machine
      EXPECT_EQ(error_of([&] { c.finalize(world); }), "");
      ++presets;
    }
  }
  EXPECT_GE(files, 9);
  EXPECT_GE(presets, 9);
}

// docs/training.md documents every key.
TEST(ShippedConfigs, DocsNameEveryKey) {
  std::ifstream in(std::string(TXL_SOURCE_DIR) + "/docs/training.md");
  ASSERT_TRUE(in.good());
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& k : train_config_keys()) EXPECT_NE(doc.find("`" + k.name + "`"), std::string::npos) << k.name;
  for (const auto& k : eval_config_keys()) EXPECT_NE(doc.find("`" + k.name + "`"), std::string::npos) << k.name;
}

}  // namespace
}  // namespace txl
