// The recipe's command lines RUN under txl_train / txl_eval (not only parse): each
// run-script argument list of tests/fixtures/recipe/command_lines.txt, the README's
// quick-start, benchmark and test-script lines, and the two YAML files, each a short
// training on tiny corpora and, where the recipe has one, an evaluation; the log lines
// they write parse with the recipe's format strings (log_formats.txt).
//
// Every command is the recipe's argument list unchanged, run from a directory laid out as
// the recipe expects (`../data/<corpus>/`, `wt103_base.yaml` next to it), followed by
// the overrides that make it small; nothing else is changed:
//   training: --cuda false --fp16 false (no GPU here), the model size (--n_layer 2
//     --d_model 32 --n_head 2 --d_head 16 --d_inner 64), the lengths (--tgt_len 16
//     --mem_len 16 --eval_tgt_len 16), the batch (--batch_size 4 --batch_chunk 1), the run
//     (--max_step 4 --eval_interval 2 --eval_max_steps 2 --eval_batch_size 4
//     --log_interval 2), and --work_dir for the lines that are not given one;
//   evaluation: --cuda false --fp16 false --max_size 2, and --work_dir / --model where
//     the recipe's line names no checkpoint this test has.
// The corpora in ../data/ are tiny stand-ins prepared once in txl's format
// (DIR/txl_<dataset>.h5, which `--data DIR` uses): wikitext-103 and one-billion-words
// from the wikitext-2 sample (word level, cutoffs 1000,3000), enwik8 and text8 from its
// bytes / letters (character level, 20000 characters held out for valid and for test).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "train_test_util.h"
#include "txl/data/prep/prep.h"

namespace txl {
namespace {

namespace fs = std::filesystem;
using Args = std::vector<std::string>;

const std::string kRecipe = std::string(TXL_SOURCE_DIR) + "/tests/fixtures/recipe";
const std::string kSample = std::string(TXL_SOURCE_DIR) + "/data_prep/samples/wikitext-2";

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

Args operator+(Args a, const Args& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const Args kTrainSmall = {"--cuda",          "false", "--fp16",       "false", "--n_layer",         "2",
                          "--d_model",       "32",  "--n_head",     "2",     "--d_head",          "16",
                          "--d_inner",       "64",  "--tgt_len",    "16",    "--mem_len",         "16",
                          "--eval_tgt_len",  "16",  "--batch_size", "4",     "--batch_chunk",     "1",
                          "--max_step",      "4",   "--eval_interval", "2",  "--eval_max_steps",  "2",
                          "--eval_batch_size", "4", "--log_interval", "2"};
const Args kEvalSmall = {"--cuda", "false", "--fp16", "false", "--max_size", "2"};

// The argument lists of command_lines.txt's `python train.py` / `python eval.py` calls
// inside run_<corpus>.sh, by script and program ("train" / "eval").
std::map<std::string, Args> run_script_args() {
  std::ifstream in(kRecipe + "/command_lines.txt");
  std::map<std::string, Args> out;
  std::string line, script, current;
  while (std::getline(in, line)) {
    if (line.rfind("### ", 0) == 0) {
      script = line.substr(4);
      current.clear();
    } else if (line.find("python train.py") != std::string::npos || line.find("python eval.py") != std::string::npos) {
      current = script + (line.find("train.py") != std::string::npos ? " train" : " eval");
      out[current];
    } else if (!current.empty() && line.find("${@:2}") != std::string::npos) {
      current.clear();
    } else if (!current.empty()) {
      std::stringstream ss(line);
      for (std::string w; ss >> w;)
        if (w != "\\") out[current].push_back(w);
    }
  }
  return out;
}

// What the recipe's format strings produce ({:3d} -> at least 3 characters, ...).
struct RecipeFormats {
  // {:d} of the batch count; txl writes -1 where it is unknown (lm1b's sentence streams).
  std::regex train{R"(\| epoch [ \d]{3,} step [ \d]{8,} \| batches [ \d]{6,} / -?\d+ \| lr \d\.\d{3}e[-+]\d{2} \| ms/batch [ \d]{3,}\.\d \| tok/s [ \d]{7,} \| loss [ \d]{2,}\.\d{2} \| (ppl [ \d]{5,}\.\d{2}|bpc [ \d]{3,}\.\d{5}))"};
  std::regex eval{R"(\| Eval [ \d]{3,} at step [ \d]{8,} \| time: [ \d]{2,}\.\d{2}s \| valid loss [ \d]{2,}\.\d{2} \| (valid ppl [ \d]{5,}\.\d{3}|bpc [ \d]{3,}\.\d{5}))"};
  std::regex end{R"(\| End of training \| test time: [ \d]{2,}\.\d{2}s \| test loss [ \d]{2,}\.\d{2} \| (test ppl [ \d]{5,}\.\d{3}|test bpc [ \d]{3,}\.\d{5}))"};
  std::regex training_time{R"(Training time: \d+\.\d{2} minutes)"};
  std::regex training_throughput{R"(Training throughput: \d+\.\d{2} tok/s)"};
  // eval.py
  std::regex evaluating{R"(Evaluating with: math fp32 type (pytorch|torchscript) bsz \d+ tgt_len \d+ ext_len \d+ mem_len \d+ clamp_len -?\d+)"};
  std::regex interval{R"(\| step [ \d]{8,} \| batches [ \d]{6,} / \d+ \| ms/batch [ \d]{2,}\.\d{2} \| tok/s [ \d]{7,} \| loss [ \d]{2,}\.\d{2} \| ppl [ \d]{2,}\.\d{2})"};
  std::regex time{R"(Time : \d+\.\d{2}s, \d+\.\d{2}ms/segment)"};
  std::regex split{R"(\| (test|valid) loss [ \d]{2,}\.\d{2} \| (test|valid) (ppl [ \d]{5,}\.\d{3}|bpc [ \d]{3,}\.\d{5}) )"};
  std::regex latency{R"((Throughput Avg: \d+\.\d{2} tok/s|Latency Avg: \d+\.\d{2} ms|Latency \d+%: \d+\.\d{2} ms))"};
};

// Counts of the recipe's lines among `messages`; a message that starts like one of them
// must match its format whole.
std::map<std::string, int> recipe_lines(const std::vector<std::string>& messages) {
  static const RecipeFormats f;
  const std::vector<std::tuple<const char*, const char*, const std::regex*>> kinds = {
      {"train", "| epoch", &f.train},
      {"eval", "| Eval", &f.eval},
      {"end", "| End of training |", &f.end},
      {"training time", "Training time:", &f.training_time},
      {"training throughput", "Training throughput:", &f.training_throughput},
      {"evaluating", "Evaluating with:", &f.evaluating},
      {"interval", "| step", &f.interval},
      {"time", "Time :", &f.time},
      {"split", "| test loss", &f.split},
      {"split", "| valid loss", &f.split},
      {"latency", "Throughput Avg", &f.latency},
      {"latency", "Latency ", &f.latency}};
  std::map<std::string, int> counts;
  for (const std::string& m : messages)
    for (const auto& [name, start, format] : kinds) {
      if (m.rfind(start, 0) != 0) continue;
      EXPECT_TRUE(std::regex_match(m, *format)) << name << " line not in the recipe's format: '" << m << "'";
      ++counts[name];
    }
  return counts;
}

// The messages of a log file written with the recipe's prefix (every line must have it).
std::vector<std::string> log_file_messages(const fs::path& path) {
  static const std::regex prefix(R"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} - INFO - (.*))");
  std::vector<std::string> out;
  for (const std::string& line : test::read_lines(path.string())) {
    std::smatch m;
    EXPECT_TRUE(std::regex_match(line, m, prefix)) << path << ": " << line;
    out.push_back(m[1]);
  }
  EXPECT_FALSE(out.empty()) << path;
  return out;
}
std::vector<std::string> console_lines(const std::string& out) {
  std::vector<std::string> lines;
  std::stringstream ss(out);
  for (std::string l; std::getline(ss, l);) lines.push_back(l);
  return lines;
}

class RecipeCommandRuns : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = test::fresh_dir("recipe_command_runs");
    const fs::path data = fs::path(root_) / "data", raw = fs::path(root_) / "raw";
    auto prep = [&](const std::string& dataset, const fs::path& source, const std::string& dir) {
      data::prep::PrepOptions o;
      o.dataset = dataset;
      o.data = source.string();
      o.out = (data / dir / ("txl_" + dataset + ".h5")).string();
      if (dataset == "wt103" || dataset == "lm1b") {
        o.cutoffs = {1000, 3000};
        o.cutoffs_given = true;
      }
      o.holdout = 20000;
      o.threads = 1;
      o.progress.enabled = false;
      fs::create_directories(data / dir);
      data::prep::prepare_corpus(o);
    };
    prep("wt103", kSample, "wikitext-103");
    const std::string text = read_file(fs::path(kSample) / "train.txt");
    write_file(raw / "enwik8/enwik8", text);
    std::string letters;
    for (char ch : text) {
      const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      const char keep = c >= 'a' && c <= 'z' ? c : ' ';
      if (keep != ' ' || (!letters.empty() && letters.back() != ' ')) letters += keep;
    }
    write_file(raw / "text8/text8", letters);
    prep("enwik8", raw / "enwik8", "enwik8");
    prep("text8", raw / "text8", "text8");
    // lm1b's download tree: vocabulary, training shards, valid and test sentences.
    const fs::path lm = raw / "lm1b";
    std::map<std::string, int64_t> counts;
    std::stringstream words(text);
    for (std::string w; words >> w;) ++counts[w];
    std::string vocab = "<S> 0\n</S> 0\n<UNK> 0\n";
    for (const auto& [w, n] : counts) vocab += w + " " + std::to_string(n) + "\n";
    write_file(lm / "1b_word_vocab.txt", vocab);
    const std::string shards =
        "1-billion-word-language-modeling-benchmark-r13output/training-monolingual.tokenized.shuffled/";
    write_file(lm / shards / "news.en-00001-of-00100", text.substr(0, text.size() / 2));
    write_file(lm / shards / "news.en-00002-of-00100", text.substr(text.size() / 2));
    write_file(lm / "valid.txt", read_file(fs::path(kSample) / "valid.txt"));
    write_file(lm / "test.txt", read_file(fs::path(kSample) / "test.txt"));
    prep("lm1b", lm, "one-billion-words");
    // The recipe's files sit next to the scripts, in the directory the commands run from.
    run_ = fs::path(root_) / "run";
    fs::create_directories(run_);
    fs::copy_file(kRecipe + "/wt103_base.yaml", run_ / "wt103_base.yaml");
    fs::copy_file(kRecipe + "/wt103_large.yaml", run_ / "wt103_large.yaml");
    previous_ = fs::current_path();
    fs::current_path(run_);  // ../data/<corpus>/ as the recipe's scripts say
  }
  static void TearDownTestSuite() { fs::current_path(previous_); }

  // Runs `program` with `args`; expects exit code `rc`; returns the console output.
  static std::string run(const std::string& program, const Args& args, int rc = 0) {
    std::string out, text;
    for (const auto& a : args) text += a + " ";
    EXPECT_EQ(test::run_binary(program, args, &out), rc) << program << " " << text << "\n" << out;
    return out;
  }

  static std::string root_;
  static fs::path run_, previous_;
};
std::string RecipeCommandRuns::root_;
fs::path RecipeCommandRuns::run_, RecipeCommandRuns::previous_;

// run_{enwik8,text8,lm1b}_{base,large}.sh: `train` then `eval` of what it trained.
TEST_F(RecipeCommandRuns, RunScriptsTrainAndEvaluate) {
  const auto scripts = run_script_args();
  int n_scripts = 0;
  for (const auto& [key, args] : scripts) {
    if (key.size() < 6 || key.compare(key.size() - 6, 6, " train") != 0) continue;
    const std::string script = key.substr(0, key.size() - 6);
    if (script.rfind("run_multinode", 0) == 0) continue;  // RunSubAndMultinodeScript
    SCOPED_TRACE(script);
    ++n_scripts;
    const std::string work = "runs/" + script;
    run("txl_train", args + kTrainSmall + Args{"--work_dir", work});
    const auto train = recipe_lines(log_file_messages(fs::path(work) / "train_log.log"));
    EXPECT_EQ(train.count("train") ? train.at("train") : 0, 2);
    EXPECT_EQ(train.count("eval") ? train.at("eval") : 0, 2);
    EXPECT_EQ(train.count("end") ? train.at("end") : 0, 1);
    EXPECT_EQ(train.count("training time") ? train.at("training time") : 0, 1);
    ASSERT_TRUE(scripts.count(script + " eval"));
    run("txl_eval", scripts.at(script + " eval") + kEvalSmall + Args{"--work_dir", work});
    const auto eval = recipe_lines(log_file_messages(fs::path(work) / "eval_log.log"));
    EXPECT_EQ(eval.count("evaluating") ? eval.at("evaluating") : 0, 1);
    EXPECT_EQ(eval.count("time") ? eval.at("time") : 0, 1);
    EXPECT_EQ(eval.count("split") ? eval.at("split") : 0, 1);  // --split test
  }
  EXPECT_EQ(n_scripts, 6);
}

// run_wt103_{base,large}.sh (--config_file FILE, and the README's preset), the
// multi-node script with run.sub's extra parameters (its variables filled in), and the
// README's quick start with --save-all.
TEST_F(RecipeCommandRuns, YamlScriptsRunSubAndQuickStart) {
  struct Line {
    std::string name;
    Args train, eval;
  };
  const std::vector<Line> lines = {
      {"wt103_base", {"--config_file", "wt103_base.yaml", "--config", "dgx1_8gpu_fp16"},
       {"--config_file", "wt103_base.yaml", "--config", "dgx1_8gpu_fp16"}},
      {"wt103_large", {"--config_file", "wt103_large.yaml", "--config", "dgx2_16gpu_fp32"},
       {"--config_file", "wt103_large.yaml", "--config", "dgx2_16gpu_fp32"}},
      // run_multinode_wt103_large.sh + run.sub's EXTRA_TRAIN_PARAMS / EXTRA_EVAL_PARAMS
      {"multinode",
       {"--config_file", "wt103_large.yaml", "--config", "8dgx2_16gpu_fp16", "--work_dir", "runs/multinode",
        "--max_step", "4", "--seed", "1", "--batch_size", "4", "--local_batch_size", "4", "--batch_chunk", "1",
        "--eval_interval", "2", "--log_interval", "2", "--eval_batch_size", "4", "--lr", "0.01", "--fp16", "--config",
        "8dgx2_16gpu_fp16"},
       {"--config_file", "wt103_large.yaml", "--config", "8dgx2_16gpu_fp16", "--work_dir", "runs/multinode",
        "--batch_size", "4", "--fp16", "--config", "8dgx2_16gpu_fp16"}},
  };
  for (const Line& l : lines) {
    SCOPED_TRACE(l.name);
    const std::string work = "runs/" + l.name;
    run("txl_train", l.train + kTrainSmall + Args{"--work_dir", work});
    const auto train = recipe_lines(log_file_messages(fs::path(work) / "train_log.log"));
    EXPECT_EQ(train.count("train") ? train.at("train") : 0, 2);
    EXPECT_EQ(train.count("end") ? train.at("end") : 0, 1);
    run("txl_eval", l.eval + kEvalSmall + Args{"--work_dir", work});
    const auto eval = recipe_lines(log_file_messages(fs::path(work) / "eval_log.log"));
    EXPECT_GE(eval.count("split") ? eval.at("split") : 0, 1);
    EXPECT_EQ(eval.count("time") ? eval.at("time") : 0, eval.at("split"));
  }
  // README quick start: every evaluation's checkpoint is kept (--save-all).
  run("txl_train", Args{"--cuda", "--data", "../data/wikitext-103/", "--dataset", "wt103", "--vocab", "word",
                        "--adaptive", "--save-all"} +
                       kTrainSmall + Args{"--work_dir", "runs/quick_start"});
  EXPECT_TRUE(fs::exists("runs/quick_start/checkpoint_2.h5"));
  EXPECT_TRUE(fs::exists("runs/quick_start/checkpoint_4.h5"));
  const auto quick = recipe_lines(log_file_messages("runs/quick_start/train_log.log"));
  EXPECT_EQ(quick.count("train") ? quick.at("train") : 0, 2);
}

// scripts/tests/train_{bench,full,long,short}.sh on a DGX-1 (SYSTEM dgx1, 8 GPUs, fp16:
// their variables filled in), as run_wt103_base.sh passes them: debug mode (console
// only), the targets' exit codes; and scripts/inference_benchmark.sh's and
// scripts/tests/infer_bench.sh's evaluation lines (fp32, both --type values).
TEST_F(RecipeCommandRuns, TestAndBenchmarkScripts) {
  const Args base = {"--config_file", "wt103_base.yaml"};
  struct Line {
    Args args;
    int rc;
  };
  const std::vector<Line> trains = {
      {{"--config", "dgx1_8gpu_fp16", "--max_step", "64", "--debug", "--no_eval", "--log_interval", "1",
        "--target_throughput", "1"},
       0},
      {{"--config", "dgx1_8gpu_fp16", "--debug", "--target_perplexity", "23.4", "--log_interval", "1"}, 1},
      {{"--config", "dgx1_8gpu_fp16", "--debug", "--max_step", "30000", "--max_step_scheduler", "40000",
        "--target_perplexity", "24.2", "--log_interval", "1"},
       1},
      {{"--config", "dgx1_8gpu_fp16", "--debug", "--max_step", "5000", "--max_step_scheduler", "40000",
        "--target_perplexity", "43.5", "--log_interval", "1"},
       1},
  };
  for (const Line& l : trains) {
    const std::string out = run("txl_train", base + l.args + kTrainSmall + Args{"--work_dir", "runs/debug"}, l.rc);
    const auto lines = recipe_lines(console_lines(out));
    EXPECT_EQ(lines.count("train") ? lines.at("train") : 0, 2) << out;
    EXPECT_EQ(lines.count("training time") ? lines.at("training time") : 0, 1) << out;
    const bool bench = l.args[3] == "64";
    EXPECT_NE(out.find(bench ? "Throughput test passed" : "Perplexity test failed"), std::string::npos) << out;
  }
  EXPECT_FALSE(fs::exists("runs/debug"));  // --debug writes nothing

  // A checkpoint to evaluate, as the benchmark scripts' CHECKPOINT.
  run("txl_train", base + kTrainSmall + Args{"--work_dir", "runs/bench_model"});
  const std::string ckpt = "runs/bench_model/checkpoint_best.h5";
  for (const char* type : {"pytorch", "torchscript"}) {
    SCOPED_TRACE(type);
    const std::string dir = std::string("runs/inference/v100_4_fp32_") + type;
    fs::create_directories(dir);
    // bash run_wt103_base.sh eval 1 --work_dir DIR --model CKPT --type T --batch_size 4
    //   --log_interval 1 --no_env "" --save_data
    run("txl_eval", base + Args{"--work_dir", dir, "--model", ckpt, "--type", type, "--batch_size", "4",
                                "--log_interval", "1", "--no_env", "", "--save_data"} +
                        kEvalSmall);
    const auto eval = recipe_lines(log_file_messages(fs::path(dir) / "eval_log.log"));
    EXPECT_GE(eval.count("interval") ? eval.at("interval") : 0, 2);
    EXPECT_GE(eval.count("latency") ? eval.at("latency") : 0, 5);  // throughput, average, 90 95 99 %
    EXPECT_TRUE(fs::exists(fs::path(dir) / (std::string("eval_data_4_fp32_") + type)));
  }
  // infer_bench.sh: --model checkpoint/checkpoint_best.pt --target_perplexity 23.4
  //   --batch_size 16 --type pytorch (a txl checkpoint in place of the .pt; the tiny model
  //   misses the target: exit 1)
  const std::string out = run("txl_eval", base + Args{"--model", ckpt, "--target_perplexity", "23.4", "--batch_size",
                                                      "16", "--type", "pytorch"} +
                                              kEvalSmall,
                              1);
  EXPECT_NE(out.find("Perplexity test failed"), std::string::npos) << out;
}

}  // namespace
}  // namespace txl
