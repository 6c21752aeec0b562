// The recipe's interface as txl_train reads it: every train.py option of
// tests/fixtures/recipe/options.tsv, the recipe's two YAML files with all their presets,
// its run scripts' command lines (tests/fixtures/recipe/command_lines.txt), and txl's own
// presets carrying the recipe's values. Resolution only: nothing is trained here.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "train_test_util.h"
#include "txl/config/preset_file.h"
#include "txl/programs/programs.h"

namespace txl {
namespace {

namespace fs = std::filesystem;

const std::string kRecipe = std::string(TXL_SOURCE_DIR) + "/tests/fixtures/recipe";
const std::string kConfigs = std::string(TXL_SOURCE_DIR) + "/configs";

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

struct RecipeOption {
  std::string name, action, type, default_value;
};

// train.py's rows of options.tsv.
std::vector<RecipeOption> train_py_options() {
  std::ifstream in(kRecipe + "/options.tsv");
  EXPECT_TRUE(in.good());
  std::vector<RecipeOption> out;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string field; std::getline(ss, field, '\t');) f.push_back(field);
    if (f.size() < 7 || f[0] != "train.py") continue;
    out.push_back({f[2].substr(2), f[3], f[4], f[6]});
  }
  return out;
}

// A value the option accepts: its default where that is a value, else a valid one.
std::string sample_value(const RecipeOption& o) {
  static const std::map<std::string, std::string> chosen = {
      {"multi_gpu", "dp"}, {"max_step_scheduler", "50000"}, {"local_batch_size", "4"},
      {"target_throughput", "1000"}, {"target_perplexity", "30"}, {"amp", "pytorch"}};
  if (auto it = chosen.find(o.name); it != chosen.end()) return it->second;
  std::string v = o.default_value;
  if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') v = v.substr(1, v.size() - 2);
  return v;
}

std::string scalar_of(const TrainConfig& c, const std::string& key) {
  const auto* k = find_key(train_config_keys(), key);
  EXPECT_NE(k, nullptr) << key;
  return k ? yaml_inline(k->value(c)) : "";
}

TrainConfig applied(const std::vector<std::string>& args) {
  TrainConfig c;
  apply_train_overrides(c, parse_train_command_line(args));
  return c;
}

TEST(RecipeOptions, EveryTrainPyOptionIsAcceptedWithItsMeaning) {
  const auto options = train_py_options();
  ASSERT_EQ(options.size(), 76u);
  for (const RecipeOption& o : options) {
    SCOPED_TRACE(o.name);
    if (o.action == "StoreTrue") {
      const TrainConfig c = applied({"--" + o.name});
      if (o.name == "cuda") {
        EXPECT_EQ(c.device, "cuda");
      } else if (o.name == "not_tied") {
        EXPECT_FALSE(c.model.tie_weight);
      } else {
        EXPECT_EQ(scalar_of(c, o.name), "true");
      }
      continue;
    }
    const std::string value = sample_value(o);
    TrainConfig c;
    ASSERT_EQ(error_of([&] { c = applied({"--" + o.name, value}); }), "");
    if (o.name == "config" || o.name == "config_file") continue;
    const std::string got = scalar_of(c, o.name);
    if (o.type == "float") {
      EXPECT_DOUBLE_EQ(std::stod(got), std::stod(value));
    } else {
      EXPECT_EQ(got, value.empty() ? "\"\"" : value);
    }
  }
  // Every option together resolves (the hardware ones to notes), given a corpus.
  std::vector<std::string> all{"--data", "corpus.h5", "--debug"};
  for (const RecipeOption& o : options)
    if (o.action != "StoreTrue" && o.name != "data" && o.name != "restart" && o.name != "sample_softmax") {
      all.push_back("--" + o.name);
      all.push_back(sample_value(o));
    }
  TrainConfig c = applied(all);
  c.device = "cpu";
  ASSERT_EQ(error_of([&] { c.finalize(4); }), "");
  EXPECT_EQ(c.batch_size, 16);  // local_batch_size 4 x 4 ranks, as the recipe
  std::string notes;
  for (const auto& n : c.notes) notes += n + "\n";
  EXPECT_NE(notes.find("multi_gpu dp: txl has no single-process multi-GPU mode"), std::string::npos) << notes;
}

// docs/recipe-users.md has a row for every train.py option.
TEST(RecipeOptions, DocsNameEveryTrainPyOption) {
  std::ifstream in(std::string(TXL_SOURCE_DIR) + "/docs/recipe-users.md");
  ASSERT_TRUE(in.good());
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const RecipeOption& o : train_py_options())
    EXPECT_NE(doc.find("| `--" + o.name + "` |"), std::string::npos) << o.name;
}

TEST(RecipeOptions, ParserSpellings) {
  // '-' for '_', unique prefixes, --key=value, bare flags, several list words.
  TrainConfig c = applied({"--save-all", "--eval_int", "7", "--max_step=9", "--cutoffs", "10", "20", "30", "--roll",
                           "--clamp_len", "-1", "--multi_gpu", "--gpu0_bsz", "4", "--local_rank=3"});
  EXPECT_TRUE(c.save_all);
  EXPECT_EQ(c.eval_interval, 7);
  EXPECT_EQ(c.max_step, 9);
  EXPECT_EQ(c.model.cutoffs, (std::vector<int64_t>{10, 20, 30}));
  EXPECT_TRUE(c.roll);
  EXPECT_EQ(c.model.clamp_len, -1);
  EXPECT_EQ(c.multi_gpu, "ddp");  // a bare --multi_gpu, as the recipe's enwik8/text8/lm1b scripts write it
  EXPECT_EQ(c.local_rank, 3);
  // A later --device wins over --cuda; --not_tied false keeps tied weights.
  c = applied({"--cuda", "--device", "cpu", "--not_tied", "false"});
  EXPECT_EQ(c.device, "cpu");
  EXPECT_TRUE(c.model.tie_weight);

  const CommandLine cl = parse_train_command_line({"--config_file", "a.yaml", "--config", "dgx1_8gpu_fp16"});
  EXPECT_EQ(cl.config_file, "a.yaml");
  EXPECT_EQ(cl.preset, "dgx1_8gpu_fp16");
  EXPECT_NE(error_of([] { parse_train_command_line({"b.yaml", "--config_file", "a.yaml"}); })
                .find("two configuration files: 'b.yaml' (positional argument) and 'a.yaml' (--config_file)"),
            std::string::npos);
}

// The shared parser for txl_eval's nargs='+' options: a list of strings takes every word
// up to the next option, or one word as a list of one.
struct WordsConfig {
  std::vector<std::string> manual;
  std::vector<double> percentiles;
};

TEST(RecipeOptions, StringAndNumberListsTakeSeveralWords) {
  const std::vector<ConfigKey<WordsConfig>> keys = {{"manual", &WordsConfig::manual, "raw text"},
                                                    {"percentiles", &WordsConfig::percentiles, "latency percentiles"}};
  WordsConfig w;
  apply_overrides(w, keys,
                  parse_command_line({"--manual", "it's", "a, b", "c", "--percentiles", "90", "95", "99.5"},
                                     option_types(keys)));
  EXPECT_EQ(w.manual, (std::vector<std::string>{"it's", "a, b", "c"}));
  EXPECT_EQ(w.percentiles, (std::vector<double>{90, 95, 99.5}));
  apply_overrides(w, keys, parse_command_line({"--manual", "one line, with a comma"}, option_types(keys)));
  EXPECT_EQ(w.manual, (std::vector<std::string>{"one line, with a comma"}));
  WordsConfig back;  // the resolved configuration reads back the same
  apply_section(back, keys, YAML::Load(yaml_to_text(config_to_yaml(w, keys))), "round trip");
  EXPECT_EQ(back.manual, w.manual);
}

TEST(RecipeOptions, TyposAndBadValuesGiveOneLine) {
  EXPECT_EQ(error_of([] { parse_train_command_line({"--n_layr", "3"}); }),
            "command line: unknown key '--n_layr' (closest known key: '--n_layer')");
  EXPECT_EQ(error_of([] { parse_train_command_line({"--cdua"}); }),
            "command line: unknown key '--cdua' (closest known key: '--cuda')");
  EXPECT_NE(error_of([] { parse_train_command_line({"--eval", "3"}); }).find("option '--eval' is ambiguous (it could be"),
            std::string::npos);
  TrainConfig c;
  EXPECT_EQ(error_of([&] { apply_train_section(c, YAML::Load("{cuda_: true}"), "f.yaml [default.train]"); }),
            "f.yaml [default.train]: unknown key 'cuda_' (closest known key: 'cuda')");
  EXPECT_EQ(error_of([&] { apply_train_section(c, YAML::Load("{cuda: maybe}"), "f.yaml [default.train]"); }),
            "f.yaml [default.train]: key 'cuda' expects true or false, got 'maybe'");
  auto finalize_error = [](const std::vector<std::string>& args) {
    TrainConfig t = applied(args);
    t.data = "corpus.h5";
    return error_of([&] { t.finalize(1); });
  };
  EXPECT_EQ(finalize_error({"--multi_gpu", "ddd"}),
            "config: multi_gpu: unknown value 'ddd' (expected ddp | dp; closest: 'ddp')");
  EXPECT_NE(finalize_error({"--affinity", "sockets"}).find("closest: 'socket'"), std::string::npos);
  EXPECT_EQ(finalize_error({"--vocab", "bpe"}), "");  // the corpus must then be a BPE corpus (trainer.cpp)
  EXPECT_NE(finalize_error({"--cuda", "--fp16", "--apex_amp_opt_level", "O3"})
                .find("config: apex_amp_opt_level: O3 (pure float16 without float32 master weights)"),
            std::string::npos);
  EXPECT_NE(finalize_error({"--sample_softmax", "1000", "--not_tied"}).find("config: sample_softmax:"), std::string::npos);
  EXPECT_NE(finalize_error({"--clip_nonemb"}).find("config: clip_nonemb:"), std::string::npos);
  EXPECT_NE(finalize_error({"--txtlog_file", "a/b.log"}).find("config: txtlog_file: must be a file name"),
            std::string::npos);
  // fp16 maps to txl's precision: apex O0 is float32, pytorch / O1 / O2 are fp16.
  TrainConfig o0 = applied({"--cuda", "--fp16", "--apex_amp_opt_level", "O0"});
  o0.data = "corpus.h5";
  o0.finalize(1);
  EXPECT_EQ(o0.precision, "fp32");
  TrainConfig amp = applied({"--cuda", "--fp16", "--amp", "pytorch"});
  amp.data = "corpus.h5";
  amp.finalize(1);
  EXPECT_EQ(amp.precision, "fp16");
}

// A run ending inside the warm-up is accepted; one reaching past it still needs the cosine
// period to end after the warm-up.
TEST(RecipeOptions, RunMayEndInsideTheWarmUp) {
  TrainConfig c = applied({"--data", "corpus.h5", "--warmup_step", "50", "--max_step", "30"});
  EXPECT_EQ(error_of([&] { c.finalize(1); }), "");
  c = applied({"--data", "corpus.h5", "--warmup_step", "50", "--max_step", "60", "--max_step_scheduler", "40"});
  EXPECT_NE(error_of([&] { c.finalize(1); }).find("config: warmup_step: 50 must be below the cosine period end"),
            std::string::npos);
  c = applied({"--data", "corpus.h5", "--warmup_step", "50", "--max_step", "50"});
  EXPECT_NE(error_of([&] { c.finalize(1); }).find("config: warmup_step"), std::string::npos);
}

// Rank count a preset name implies: "dgx1_4gpu_fp16" -> 4, "8dgx2_16gpu_fp16" -> 128.
int world_of(const std::string& preset) {
  const size_t g = preset.find("gpu");
  if (g == std::string::npos) return 1;
  size_t b = g;
  while (b > 0 && std::isdigit(static_cast<unsigned char>(preset[b - 1]))) --b;
  int world = b < g ? std::stoi(preset.substr(b, g - b)) : 1;
  if (const size_t d = preset.find("dgx2"); d != std::string::npos && d > 0) world *= std::stoi(preset.substr(0, d));
  return world;
}

// Top-level entries of a recipe file that are presets ({train:, eval:}); the others are
// anchors (`wt103:`, `train:`, `eval:`, `train_multinode:`).
std::vector<std::string> recipe_presets(const std::string& path) {
  std::vector<std::string> out;
  const YAML::Node root = YAML::LoadFile(path);
  for (const auto& kv : root)
    if (kv.second.IsMap() && kv.second["train"] && kv.second["train"].IsMap()) out.push_back(kv.first.Scalar());
  return out;
}

TrainInvocation resolve(const std::vector<std::string>& args, int world) {
  return resolve_train_invocation(parse_train_command_line(args), world);
}

// The keys txl's presets set differently on purpose: where files live, and the recipe's
// multi_gpu (txl is always data parallel over its ranks).
const std::set<std::string> kPlumbing = {"data", "work_dir", "multi_gpu"};

TEST(RecipeYaml, EveryPresetOfBothFilesLoadsAndTxlPresetsMatchIt) {
  const std::string work = test::fresh_dir("recipe_yaml");
  for (const char* name : {"wt103_base", "wt103_large"}) {
    const std::string recipe_file = kRecipe + "/" + name + ".yaml", txl_file = kConfigs + "/" + name + ".yaml";
    const std::vector<std::string> presets = recipe_presets(recipe_file);
    EXPECT_GE(presets.size(), std::string(name) == "wt103_base" ? 28u : 38u);
    const PresetFile txl_presets = PresetFile::load(txl_file);
    for (const std::string& preset : presets) {
      SCOPED_TRACE(std::string(name) + " " + preset);
      const int world = world_of(preset);
      TrainInvocation r;
      ASSERT_EQ(error_of([&] {
                  r = resolve({"--config_file", recipe_file, "--config", preset, "--work_dir", work}, world);
                }),
                "");
      EXPECT_EQ(r.cfg.device, "cuda");  // cuda: true
      EXPECT_EQ(r.cfg.dataset, "wt103");
      EXPECT_EQ(r.cfg.multi_gpu, "ddp");
      std::string notes;
      for (const auto& n : r.cfg.notes) notes += n + "\n";
      EXPECT_NE(notes.find("multi_gpu ddp: txl trains data parallel over its MPI ranks"), std::string::npos) << notes;
      EXPECT_EQ(r.cfg.precision, preset.find("fp16") != std::string::npos ? "fp16" : "fp32");

      // txl's preset of the same name trains the same thing.
      TrainInvocation t;
      ASSERT_EQ(error_of([&] { t = resolve({txl_file, "--config", preset, "--work_dir", work}, world); }), "");
      for (const auto& key : train_config_keys()) {
        if (kPlumbing.count(key.name) || (key.name == "precision" && preset.find("tf32") != std::string::npos))
          continue;
        // trainbench validates once at the end in both: the recipe through eval_interval 5000 > 500 steps
        if (key.name == "eval_interval" && preset.rfind("trainbench", 0) == 0) continue;
        EXPECT_EQ(yaml_inline(key.value(t.cfg)), yaml_inline(key.value(r.cfg))) << key.name;
      }
      if (preset.find("tf32") != std::string::npos) {
        EXPECT_EQ(t.cfg.precision, "tf32");
      }
    }
  }
  // Spot values, read off the recipe's files.
  auto cfg = [&](const char* file, const char* preset) {
    return resolve({"--config_file", kRecipe + "/" + file, "--config", preset, "--work_dir", work}, world_of(preset)).cfg;
  };
  EXPECT_EQ(cfg("wt103_base.yaml", "dgx1_1gpu_fp32").batch_chunk, 16);
  EXPECT_EQ(cfg("wt103_base.yaml", "trainbench").max_step_scheduler, 40000);
  const TrainConfig big = cfg("wt103_large.yaml", "dgx1_1gpu_fp32");
  EXPECT_EQ(big.batch_chunk, 64);
  EXPECT_TRUE(big.swap_mem);
  std::string notes;
  for (const auto& n : big.notes) notes += n + "\n";
  EXPECT_NE(notes.find("swap_mem: between steps each layer's memory is kept in pinned host memory"), std::string::npos)
      << notes;
  const TrainConfig multi = cfg("wt103_large.yaml", "2dgx2_16gpu_fp32");
  EXPECT_DOUBLE_EQ(multi.lr, 0.02);
  EXPECT_EQ(multi.batch_size, 512);
  EXPECT_EQ(multi.batch_chunk, 2);
  EXPECT_EQ(multi.eval_interval, 1000);
  EXPECT_EQ(multi.max_step, 25000);
  // The eval sections travel with the run for txl_eval, recipe-only keys included.
  const TrainInvocation m =
      resolve({"--config_file", kRecipe + "/wt103_base.yaml", "--config", "manual_eval", "--work_dir", work}, 1);
  EXPECT_NE(m.eval_config_yaml.find("manual_config"), std::string::npos);
  EXPECT_NE(m.eval_config_yaml.find("mem_len: 640"), std::string::npos);
}

// The argument lists of the recipe's run_<corpus>.sh train branches.
std::map<std::string, std::vector<std::string>> run_script_train_args() {
  std::ifstream in(kRecipe + "/command_lines.txt");
  EXPECT_TRUE(in.good());
  std::map<std::string, std::vector<std::string>> out;
  std::string line, script;
  bool in_train = false;
  while (std::getline(in, line)) {
    if (line.rfind("### ", 0) == 0) {
      script = line.substr(4);
      in_train = false;
    } else if (line.find("python train.py") != std::string::npos) {
      in_train = true;
      out[script];
    } else if (in_train && line.find("${@:2}") != std::string::npos) {
      in_train = false;
    } else if (in_train) {
      std::stringstream ss(line);
      for (std::string w; ss >> w;)
        if (w != "\\") out[script].push_back(w);
    }
  }
  return out;
}

TEST(RecipeCommandLines, RunScriptsResolveToTxlPresets) {
  const std::string work = test::fresh_dir("recipe_scripts");
  const auto scripts = run_script_train_args();
  ASSERT_EQ(scripts.size(), 7u);  // enwik8, lm1b, text8 x base, large; multinode wt103_large
  for (const auto& [script, args] : scripts) {
    SCOPED_TRACE(script);
    if (script == "run_multinode_wt103_large.sh") {  // --config_file wt103_large.yaml --config 8dgx2_16gpu_fp16
      ASSERT_EQ(args.size(), 4u);
      EXPECT_EQ(resolve({args[0], kRecipe + "/" + args[1], args[2], args[3], "--work_dir", work}, 128).cfg.batch_size,
                512);
      continue;
    }
    const std::string corpus = script.substr(4, script.size() - 7);  // run_<corpus>.sh
    std::vector<std::string> cl = args;
    cl.insert(cl.end(), {"--work_dir", work});
    TrainInvocation r;
    ASSERT_EQ(error_of([&] { r = resolve(cl, 1); }), "");
    EXPECT_EQ(r.cfg.device, "cuda");
    TrainInvocation t;
    ASSERT_EQ(error_of([&] { t = resolve({kConfigs + "/" + corpus + ".yaml", "--work_dir", work}, 1); }), "");
    for (const auto& key : train_config_keys()) {
      if (kPlumbing.count(key.name) || key.name == "gpu0_bsz") continue;
      EXPECT_EQ(yaml_inline(key.value(t.cfg)), yaml_inline(key.value(r.cfg))) << key.name;
    }
  }
}

// The other recipe command lines that target train.py, with the scripts' variables filled
// in: run_wt103_*.sh and run.sub, the README's quick start and benchmark, scripts/tests.
TEST(RecipeCommandLines, ReadmeAndTestScriptLinesResolve) {
  const std::string work = test::fresh_dir("recipe_lines");
  const std::string base = kRecipe + "/wt103_base.yaml", large = kRecipe + "/wt103_large.yaml";
  struct Line {
    std::vector<std::string> args;
    int world;
  };
  const std::vector<Line> lines = {
      {{"--config_file", base, "--config", "dgx1_8gpu_fp16", "--local_rank=0"}, 8},
      {{"--config_file", large, "--config", "dgx2_16gpu_fp32", "--local_rank=5"}, 16},
      {{"--config_file", large, "--config", "8dgx2_16gpu_fp16", "--max_step", "25000", "--seed", "1",
        "--batch_size", "512", "--local_batch_size", "4", "--batch_chunk", "1", "--eval_interval", "1000",
        "--log_interval", "100", "--eval_batch_size", "128", "--lr", "0.02", "--fp16"},
       128},
      // README quick start (what its YAML-free line passes)
      {{"--cuda", "--data", "../data/wikitext-103/", "--dataset", "wt103", "--vocab", "word", "--adaptive",
        "--save-all"},
       1},
      // train_bench.sh, train_full.sh, train_long.sh, train_short.sh on a DGX-1 in fp16
      {{"--config_file", base, "--config", "dgx1_8gpu_fp16", "--max_step", "64", "--debug", "--no_eval",
        "--log_interval", "1", "--target_throughput", "100000"},
       8},
      {{"--config_file", base, "--config", "dgx1_8gpu_fp16", "--debug", "--target_perplexity", "23.4",
        "--log_interval", "1"},
       8},
      {{"--config_file", base, "--config", "dgx1_8gpu_fp16", "--debug", "--max_step", "30000",
        "--max_step_scheduler", "40000", "--target_perplexity", "24.2", "--log_interval", "1"},
       8},
      {{"--config_file", base, "--config", "dgx1_8gpu_fp32", "--debug", "--max_step", "5000",
        "--max_step_scheduler", "40000", "--target_perplexity", "43.5", "--log_interval", "1"},
       8},
      // the README's benchmark: a few steps of the trainbench preset
      {{"--config_file", base, "--config", "trainbench", "--max_step", "30", "--warmup_step", "50", "--debug"}, 8},
  };
  for (const Line& l : lines) {
    std::string text;
    for (const auto& a : l.args) text += a + " ";
    SCOPED_TRACE(text);
    std::vector<std::string> args = l.args;
    args.insert(args.end(), {"--work_dir", work});
    TrainInvocation r;
    ASSERT_EQ(error_of([&] { r = resolve(args, l.world); }), "");
  }
  const TrainConfig bench = resolve({"--config_file", base, "--config", "dgx1_8gpu_fp16", "--max_step", "64",
                                     "--debug", "--no_eval", "--work_dir", work},
                                    8)
                                .cfg;
  EXPECT_TRUE(bench.debug);
  EXPECT_TRUE(bench.no_eval);
  EXPECT_EQ(bench.precision, "fp16");
  const TrainConfig quick =
      resolve({"--cuda", "--data", "x", "--vocab", "word", "--adaptive", "--save-all", "--work_dir", work}, 1).cfg;
  EXPECT_TRUE(quick.adaptive);
  EXPECT_TRUE(quick.save_all);
  const TrainConfig multi = resolve({"--config_file", large, "--config", "8dgx2_16gpu_fp16", "--local_batch_size",
                                     "4", "--fp16", "--work_dir", work},
                                    128)
                                .cfg;
  EXPECT_EQ(multi.batch_size, 512);
  // A recipe file on the CPU: a later --device cpu wins over its cuda: true.
  EXPECT_EQ(resolve({"--config_file", base, "--config", "dgx1_1gpu_fp32", "--device", "cpu", "--work_dir", work}, 1)
                .cfg.device,
            "cpu");
}

TEST(RecipeCommandLines, AppendDatasetAndTime) {
  const std::string work = test::fresh_dir("recipe_append");
  const TrainConfig c = resolve_train_invocation(parse_train_command_line({"--data", "x.h5", "--dataset", "enwik8",
                                                                           "--work_dir", work, "--append_dataset",
                                                                           "--append_time"}),
                                                 1, "20260101-120000")
                            .cfg;
  EXPECT_EQ(c.work_dir, (fs::path(work + "-enwik8") / "20260101-120000").string());
  EXPECT_FALSE(c.append_dataset);  // applied once: the stored configuration does not append again
  EXPECT_FALSE(c.append_time);
}

}  // namespace
}  // namespace txl
