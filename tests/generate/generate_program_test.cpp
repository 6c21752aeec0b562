// txl_generate end to end on a checkpoint of a few training steps: text for a raw prompt,
// reproducibility, independence of --batch_size, the JSON file, and bad input (one line,
// non-zero exit) through the binary itself.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../train/train_test_util.h"
#include "txl/core/error.h"
#include "txl/data/corpus.h"
#include "txl/generate/generate_program.h"

namespace txl {
namespace {

namespace fs = std::filesystem;

class GenerateProgram : public testing::Test {
 protected:
  // One tiny training run whose corpus is then removed: the checkpoint names a corpus that
  // is not there (no vocabulary), and the tests give --data for the vocabulary.
  static void SetUpTestSuite() {
    const std::string wt2 = test::wt2_corpus();
    dir_ = test::fresh_dir("generate_program");
    fs::create_directories(dir_);
    const std::string corpus = dir_ + "/corpus.h5";
    ASSERT_TRUE(fs::is_regular_file(wt2)) << wt2;
    fs::copy_file(wt2, corpus);
    TrainConfig cfg = test::tiny_train_config(dir_ + "/work");
    cfg.data = corpus;
    cfg.max_step = 2;
    cfg.eval_interval = 2;
    const std::string preset = test::write_preset_file(cfg, dir_ + "/tiny.yaml");
    std::string output;
    ASSERT_EQ(test::run_binary("txl_train", {preset}, &output), 0) << output;
    fs::remove(corpus);
    ckpt_ = dir_ + "/work/checkpoint_last.h5";
  }
  static std::string run(std::vector<std::string> args) {
    std::ostringstream out, log;
    args.insert(args.begin(), {"--model", ckpt_});
    EXPECT_EQ(generate::run_generate_program(args, out, log), 0);
    return out.str();
  }
  static std::string dir_, ckpt_;
};
std::string GenerateProgram::dir_, GenerateProgram::ckpt_;

TEST_F(GenerateProgram, RawPromptGivesTextAndTheSameSeedTheSameText) {
  const std::vector<std::string> a{"--data", test::wt2_corpus(), "--prompt", "The game", "--seed", "1",
                                   "--max_tokens", "12"};
  const std::string text = run(a);
  EXPECT_EQ(text.rfind("The game", 0), 0u) << text;
  EXPECT_GT(text.size(), std::string("The game\n").size()) << text;
  EXPECT_EQ(text.find("@-@"), std::string::npos) << text;
  EXPECT_EQ(run(a), text);
  EXPECT_NE(run({"--data", test::wt2_corpus(), "--prompt", "The game", "--seed", "2", "--max_tokens", "12"}), text);
}

TEST_F(GenerateProgram, TextDoesNotDependOnTheBatchSize) {
  const std::vector<std::string> common{"--data", test::wt2_corpus(), "--prompt", "In 1990 the", "--seed", "3",
                                        "--max_tokens", "10", "--num_samples", "3", "--top_p", "0.9",
                                        "--temperature", "0.8"};
  std::vector<std::string> one = common, three = common;
  one.insert(one.end(), {"--batch_size", "1", "--json", dir_ + "/one.json"});
  three.insert(three.end(), {"--batch_size", "3", "--json", dir_ + "/three.json"});
  EXPECT_EQ(run(one), run(three));
  const nlohmann::json j1 = nlohmann::json::parse(std::ifstream(dir_ + "/one.json"));
  const nlohmann::json j3 = nlohmann::json::parse(std::ifstream(dir_ + "/three.json"));
  ASSERT_EQ(j1["samples"].size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(j1["samples"][i]["ids"], j3["samples"][i]["ids"]);
    EXPECT_EQ(j1["samples"][i]["ids"].size(), 10u);
  }
  EXPECT_NE(j1["samples"][0]["ids"], j1["samples"][1]["ids"]);
}

TEST_F(GenerateProgram, GreedyEqualsTopK1AndStopTokenEndsASample) {
  const std::vector<std::string> base{"--data", test::wt2_corpus(), "--prompt", "The game", "--max_tokens", "8"};
  std::vector<std::string> greedy = base, top1 = base;
  greedy.push_back("--greedy");
  top1.insert(top1.end(), {"--top_k", "1", "--seed", "5"});
  EXPECT_EQ(run(greedy), run(top1));
  // Stop at the symbol of the third token of an unstopped run: the sample ends there.
  const std::vector<std::string> free_run{"--data", test::wt2_corpus(), "--prompt", "The game", "--max_tokens", "8",
                                    "--seed", "4", "--json", dir_ + "/free.json"};
  run(free_run);
  const nlohmann::json f = nlohmann::json::parse(std::ifstream(dir_ + "/free.json"));
  const std::vector<int32_t> ids = f["samples"][0]["ids"];
  ASSERT_EQ(ids.size(), 8u);
  const std::string symbol = data::CorpusFile::open(test::wt2_corpus()).vocabulary().symbol(ids[2]);
  const std::vector<std::string> stopped{"--data", test::wt2_corpus(), "--prompt", "The game", "--max_tokens", "8",
                                        "--seed", "4", "--json", dir_ + "/stopped.json", "--stop", symbol};
  run(stopped);
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(dir_ + "/stopped.json"));
  const std::vector<int32_t> got = j["samples"][0]["ids"];
  const size_t first = static_cast<size_t>(std::find(ids.begin(), ids.end(), ids[2]) - ids.begin());
  EXPECT_EQ(got, std::vector<int32_t>(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(first + 1)));
}

TEST_F(GenerateProgram, PromptIdsWorkWithoutVocabulary) {
  const std::string text = run({"--prompt_ids", "5,6,7", "--max_tokens", "4", "--seed", "1"});
  std::istringstream in(text);
  int count = 0;
  for (std::string w; in >> w; ++count) EXPECT_EQ(w.find_first_not_of("0123456789"), std::string::npos) << text;
  EXPECT_EQ(count, 7) << text;
}

// Bad input through the binary: exit 1 and one line "error: ..." naming the problem.
TEST_F(GenerateProgram, BadInputIsOneLineAndNonZeroExit) {
  const std::string data = test::wt2_corpus();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--data", data, "--prompt", "qwzx vbnmq"}, "none of its 2 token(s) is in the vocabulary"},
      {{"--data", data, "--prompt", ""}, "the prompt is empty"},
      {{"--data", data, "--prompt", "   "}, "the prompt is empty"},
      {{"--data", data, "--prompt", "The", "--top_p", "0"}, "--top_p 0 is outside (0, 1]"},
      {{"--data", data, "--prompt", "The", "--top_p", "1.5"}, "--top_p 1.5 is outside (0, 1]"},
      {{"--prompt", "The game"}, "no vocabulary"},
      {{"--prompt_ids", "1,x"}, "'x' is not a token id"},
      {{"--data", data, "--prompt", "The", "--prompt_ids", "1"}, "exactly one of --prompt"},
  };
  for (const auto& [args, want] : cases) {
    std::vector<std::string> full{"--model", ckpt_};
    full.insert(full.end(), args.begin(), args.end());
    std::string output;
    EXPECT_EQ(test::run_binary("txl_generate", full, &output), 1) << output;
    EXPECT_EQ(output.rfind("error: ", 0), 0u) << output;
    EXPECT_NE(output.find(want), std::string::npos) << output;
    EXPECT_EQ(std::count(output.begin(), output.end(), '\n'), 1) << output;
  }
}

}  // namespace
}  // namespace txl
