// txl_train / txl_eval as programs: bad configurations (one clear message, non-zero exit,
// work dir untouched), SIGTERM and kill -9 followed by --restart, and txl_eval's output.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "train_test_util.h"
#include "txl/programs/programs.h"
#include "txl/train/trainer.h"
#include "txl/train/training_checkpoint.h"

namespace txl {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Modification times and sizes of everything in a directory.
std::vector<std::string> snapshot(const std::string& dir) {
  std::vector<std::string> out;
  for (const std::string& name : test::list_dir(dir)) {
    const fs::path p = fs::path(dir) / name;
    out.push_back(name + " " + std::to_string(fs::file_size(p)) + " " +
                  std::to_string(fs::last_write_time(p).time_since_epoch().count()));
  }
  return out;
}

int64_t last_logged_step(const std::string& work_dir) {
  int64_t step = 0;
  for (const std::string& line : test::read_lines(work_dir + "/train_log.jsonl")) {
    const json r = json::parse(line, nullptr, false);
    if (!r.is_discarded() && r.value("type", "") == "train") step = r["step"];
  }
  return step;
}

class TrainProgram : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    cfg_ = test::tiny_train_config(dir_ + "/work");
    config_file_ = test::write_preset_file(cfg_, dir_ + "/tiny.yaml");
    comm_ = make_single_process_communicator();
  }
  // Runs txl_train in-process on the preset file plus `extra`; returns the error message.
  std::string train_error(const std::vector<std::string>& extra) {
    std::vector<std::string> args{config_file_};
    args.insert(args.end(), extra.begin(), extra.end());
    return error_of([&] { run_train_program(args, *comm_); });
  }
  std::string dir_, config_file_;
  TrainConfig cfg_;
  std::unique_ptr<Communicator> comm_;
};

TEST_F(TrainProgram, BadConfigurationsStopBeforeTouchingTheWorkDir) {
  // An existing work dir with a file in it must stay exactly as it is.
  const std::string work = dir_ + "/work";
  fs::create_directories(work);
  std::ofstream(work + "/notes.txt") << "keep me\n";
  const auto before = snapshot(work);

  std::string e = train_error({"--lrr", "0.1"});
  EXPECT_NE(e.find("unknown key '--lrr' (closest known key: '--lr')"), std::string::npos) << e;
  e = train_error({"--lr", "fast"});
  EXPECT_NE(e.find("key 'lr' expects a number, got 'fast'"), std::string::npos) << e;
  e = train_error({"--batch_size", "10", "--batch_chunk", "4"});
  EXPECT_NE(e.find("batch_size: 10 is not divisible by ranks x batch_chunk = 1 x 4"), std::string::npos) << e;
  e = train_error({"--eval_tgt_len", "40"});
  EXPECT_NE(e.find("eval_tgt_len: 40 exceeds tgt_len + mem_len = 32"), std::string::npos) << e;
  e = train_error({"--data", dir_ + "/missing.h5"});
  EXPECT_NE(e.find("missing.h5: file not found"), std::string::npos) << e;
  e = train_error({"--config", "defualt"});
  EXPECT_NE(e.find("no preset 'defualt' (closest: 'default')"), std::string::npos) << e;
  e = train_error({"--restart", dir_ + "/nowhere"});
  EXPECT_NE(e.find("no such checkpoint file or directory"), std::string::npos) << e;
  // A typo in the YAML file itself names the file, the preset and the key.
  {
    std::ofstream(dir_ + "/typo.yaml") << "default:\n  train:\n    n_layers: 2\n";
    const std::string t = error_of([&] { run_train_program({dir_ + "/typo.yaml"}, *comm_); });
    EXPECT_NE(t.find("typo.yaml [default.train]: unknown key 'n_layers' (closest known key: 'n_layer')"),
              std::string::npos)
        << t;
  }
  EXPECT_EQ(snapshot(work), before);

  // As a program: one line on stderr, exit code 1, and a work dir that did not exist is
  // not created.
  std::string out;
  const std::string fresh = dir_ + "/never_created";
  EXPECT_EQ(test::run_binary("txl_train", {config_file_, "--work_dir", fresh, "--dropout", "1.5"}, &out), 1);
  EXPECT_EQ(out, "error: config: dropout: must be in [0, 1)\n");
  EXPECT_FALSE(fs::exists(fresh));
}

TEST_F(TrainProgram, RestartRefusesAnotherModelAndLeavesBothDirsAlone) {
  ASSERT_EQ(error_of([&] { run_train_program({config_file_, "--max_step", "4"}, *comm_); }), "");
  const std::string work = dir_ + "/work";
  const auto before = snapshot(work);
  const std::string other = dir_ + "/other";
  std::string e = train_error({"--work_dir", other, "--restart", work, "--d_model", "64"});
  EXPECT_NE(e.find("'d_model' is 32 in the file but 64 in this model"), std::string::npos) << e;
  e = train_error({"--work_dir", other, "--restart", work, "--batch_size", "16"});
  EXPECT_NE(e.find("batch_size is 8 in the checkpoint but 16 now"), std::string::npos) << e;
  e = train_error({"--work_dir", other, "--restart", work, "--optim", "adam"});
  EXPECT_NE(e.find("'lamb' optimizer state"), std::string::npos) << e;
  e = train_error({"--work_dir", other, "--restart", work, "--data", test::other_corpus()});
  EXPECT_NE(e.find("was trained on another corpus"), std::string::npos) << e;
  // A fresh run into a work dir with a checkpoint is refused.
  e = train_error({});
  EXPECT_NE(e.find("already holds checkpoint_last.h5"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(other));
  EXPECT_EQ(snapshot(work), before);
}

// SIGTERM: the trainer finishes its step, writes checkpoint_last.h5 and exits 0; the
// restarted job ends bit-identical to an uninterrupted one.
TEST_F(TrainProgram, SigtermThenRestartMatchesAnUninterruptedRun) {
  const std::string work = dir_ + "/work", ref = dir_ + "/ref";
  const std::vector<std::string> common{config_file_, "--max_step", "400", "--log_interval", "1",
                                        "--eval_interval", "1000"};
  std::vector<std::string> args = common;
  args.insert(args.end(), {"--work_dir", work});
  const pid_t pid = test::start_binary("txl_train", args, dir_ + "/sigterm.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (last_logged_step(work) < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  ASSERT_EQ(test::wait_binary(pid), 0) << test::read_lines(dir_ + "/sigterm.log").back();
  const int64_t k = TrainingCheckpoint::open(work + "/checkpoint_last.h5").state().step;
  ASSERT_GE(k, 3);
  ASSERT_LT(k, 400) << "the run ended before the signal arrived";
  const std::vector<std::string> lines = test::read_lines(work + "/train_log.jsonl");
  EXPECT_EQ(json::parse(lines.back())["type"], "stop");

  // Continue to k + 5 steps; the reference runs the same k + 5 steps without a stop.
  const std::string n = std::to_string(k + 5);
  std::string out;
  args = common;
  args.insert(args.end(), {"--work_dir", work, "--restart", work, "--max_step", n});
  ASSERT_EQ(test::run_binary("txl_train", args, &out), 0) << out;
  args = common;
  args.insert(args.end(), {"--work_dir", ref, "--max_step", n});
  ASSERT_EQ(test::run_binary("txl_train", args, &out), 0) << out;
  EXPECT_EQ(test::compare_checkpoint_tensors(work + "/checkpoint_last.h5", ref + "/checkpoint_last.h5"), "");
}

// kill -9 between checkpoints: the job restarts from the last checkpoint; nothing in the
// work dir is torn; the result equals an uninterrupted run.
TEST_F(TrainProgram, KillNineThenRestartMatchesAnUninterruptedRun) {
  const std::string work = dir_ + "/work", ref = dir_ + "/ref";
  const std::vector<std::string> common{config_file_, "--max_step", "60", "--log_interval", "1",
                                        "--eval_interval", "10", "--eval_max_steps", "2"};
  std::vector<std::string> args = common;
  args.insert(args.end(), {"--work_dir", work});
  const pid_t pid = test::start_binary("txl_train", args, dir_ + "/kill.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (last_logged_step(work) < 13 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_EQ(test::wait_binary(pid), 128 + SIGKILL) << "the run ended before it was killed";
  const int64_t saved = TrainingCheckpoint::open(work + "/checkpoint_last.h5").state().step;
  EXPECT_EQ(saved % 10, 0);
  EXPECT_GE(saved, 10);
  for (const std::string& line : test::read_lines(work + "/train_log.jsonl"))
    EXPECT_FALSE(json::parse(line, nullptr, false).is_discarded()) << "torn line: " << line;

  std::string out;
  args = common;
  args.insert(args.end(), {"--work_dir", work, "--restart", "auto"});
  ASSERT_EQ(test::run_binary("txl_train", args, &out), 0) << out;
  args = common;
  args.insert(args.end(), {"--work_dir", ref});
  ASSERT_EQ(test::run_binary("txl_train", args, &out), 0) << out;
  EXPECT_EQ(test::compare_checkpoint_tensors(work + "/checkpoint_last.h5", ref + "/checkpoint_last.h5"), "");
  // No temporaries; the metrics file has every logged step exactly once.
  for (const std::string& name : test::list_dir(work)) EXPECT_EQ(name.find(".tmp."), std::string::npos) << name;
  std::vector<int64_t> steps;
  for (const std::string& line : test::read_lines(work + "/train_log.jsonl")) {
    const json r = json::parse(line);
    if (r["type"] == "train") steps.push_back(r["step"]);
  }
  ASSERT_EQ(steps.size(), 60u);
  for (size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i], static_cast<int64_t>(i + 1));
}

// Benchmark mode: a missed target_perplexity or target_throughput makes the exit code 1
// (kExitTargetMissed, the recipe's code).
TEST_F(TrainProgram, MissedBenchmarkTargetsExitWithOne) {
  EXPECT_EQ(run_train_program({config_file_, "--max_step", "4", "--target_perplexity", "1.5"}, *comm_),
            kExitTargetMissed);
  const std::string work = dir_ + "/work";
  std::vector<json> summary;
  for (const std::string& line : test::read_lines(work + "/train_log.jsonl")) {
    const json r = json::parse(line);
    if (r["type"] == "summary") summary.push_back(r);
  }
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_FALSE(summary[0]["passed"].get<bool>());
  EXPECT_EQ(run_train_program({config_file_, "--work_dir", dir_ + "/w2", "--max_step", "4", "--target_throughput",
                               "1e12", "--target_perplexity", "1e9"},
                              *comm_),
            kExitTargetMissed);
  EXPECT_EQ(run_train_program({config_file_, "--work_dir", dir_ + "/w3", "--max_step", "4", "--target_perplexity",
                               "1e9", "--target_throughput", "1"},
                              *comm_),
            kExitOk);
  const std::string ckpt = work + "/checkpoint_best.h5";
  EXPECT_EQ(run_eval_program({"--model", ckpt, "--max_size", "2", "--target_perplexity", "1.5"}, *comm_),
            kExitTargetMissed);
  EXPECT_EQ(run_eval_program({"--model", ckpt, "--max_size", "2", "--target_perplexity", "1e9"}, *comm_), kExitOk);
}

// An attn_type 1 model (r_emb of tgt_len + mem_len = 32 rows): txl_eval refuses a
// clamp_len beyond the table at start-up, in one line, and evaluates with a key length
// beyond the table (the recipe repeats the table's first row for the farthest keys).
TEST_F(TrainProgram, AttnType1EvalChecksItsTableAtStartUp) {
  ASSERT_EQ(error_of([&] { run_train_program({config_file_, "--max_step", "2", "--attn_type", "1"}, *comm_); }), "");
  const std::string ckpt = dir_ + "/work/checkpoint_last.h5";
  const std::string e = error_of(
      [&] { run_eval_program({"--model", ckpt, "--clamp_len", "400", "--max_size", "2"}, *comm_); });
  EXPECT_NE(e.find("eval config: attn_type 1: clamp_len 400 exceeds the 32 rows of r_emb"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  EXPECT_EQ(run_eval_program({"--model", ckpt, "--clamp_len", "-1", "--tgt_len", "16", "--mem_len", "32",
                              "--max_size", "2", "--split", "valid"},
                             *comm_),
            kExitOk);
}

TEST_F(TrainProgram, EvalReportsLossPerplexityLatencyAndJson) {
  ASSERT_EQ(error_of([&] { run_train_program({config_file_, "--max_step", "4"}, *comm_); }), "");
  const std::string ckpt = dir_ + "/work/checkpoint_best.h5", json_path = dir_ + "/eval.json";
  std::string out;
  ASSERT_EQ(test::run_binary("txl_eval", {"--model", ckpt, "--split", "all", "--tgt_len", "16", "--mem_len", "32",
                                          "--clamp_len", "-1", "--same_length", "--batch_size", "8", "--max_size", "5", "--repeat",
                                          "2", "--percentiles", "50,90", "--json", json_path, "--save_data",
                                          dir_ + "/lat.txt"},
                             &out),
            0)
      << out;
  EXPECT_NE(out.find("Evaluating with: math fp32 type pytorch bsz 8 tgt_len 16 ext_len 0 mem_len 32 clamp_len -1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("| valid loss "), std::string::npos) << out;
  EXPECT_NE(out.find("| test loss "), std::string::npos) << out;
  EXPECT_NE(out.find("Throughput Avg:"), std::string::npos) << out;
  EXPECT_NE(out.find("Latency 90%:"), std::string::npos) << out;
  std::ifstream in(json_path);
  const json r = json::parse(in);
  const double loss = r["results"]["test"]["loss"];
  EXPECT_GT(loss, 0.0);
  EXPECT_DOUBLE_EQ(r["results"]["test"]["ppl"].get<double>(), std::exp(loss));
  EXPECT_GT(r["results"]["test"]["tokens"].get<int64_t>(), 0);
  // 5 counted batches per repetition plus the warm-up batches (32 / 16 = 2), twice, per split.
  EXPECT_EQ(test::read_lines(dir_ + "/lat.txt").size(), 1u + 2u * 2u * 7u);
  EXPECT_EQ(r["type"], "eager");
  EXPECT_EQ(r["results"]["test"]["graph_replays"].get<int64_t>(), 0);

  // --type graph: the decoder layers are recorded once the memory is full and replayed;
  // the loss is exactly the eager one (the same kernels on the same buffers).
  const std::string graph_json = dir_ + "/eval_graph.json";
  ASSERT_EQ(test::run_binary("txl_eval", {"--model", ckpt, "--split", "test", "--tgt_len", "16", "--mem_len", "32",
                                          "--clamp_len", "-1", "--same_length", "--batch_size", "8", "--max_size",
                                          "5", "--type", "graph", "--json", graph_json},
                             &out),
            0)
      << out;
  EXPECT_NE(out.find("Graph: decoder layers replayed in 4 of 7 batches"), std::string::npos) << out;
  std::ifstream in_graph(graph_json);
  const json g = json::parse(in_graph);
  EXPECT_EQ(g["type"], "graph");
  EXPECT_EQ(g["results"]["test"]["loss"].get<double>(), loss);
  EXPECT_EQ(g["results"]["test"]["graph_replays"].get<int64_t>(), 4);
  EXPECT_EQ(test::run_binary("txl_eval", {"--model", ckpt, "--type", "graf"}, &out), 1);
  EXPECT_NE(out.find("error: eval config: type: unknown value 'graf' (eager | graph, or the recipe's pytorch | "
                     "torchscript; closest: 'graph')"),
            std::string::npos)
      << out;

  // --manual: the text is tokenised as the recipe does (Moses, then WikiText's
  // conventions), the words may come as one argument or several.
  ASSERT_EQ(test::run_binary("txl_eval", {"--model", ckpt, "--manual", "The game was released in Japan in 2011.",
                                          "It's a well-known success.", "--tgt_len", "8", "--mem_len", "8", "--json",
                                          json_path},
                             &out),
            0)
      << out;
  EXPECT_NE(out.find("| manual text as tokens: The game was released in Japan in 2011 . It 's a well @-@ known "
                     "success .\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("| manual loss "), std::string::npos) << out;
  std::ifstream in2(json_path);
  EXPECT_GT(json::parse(in2)["results"]["manual"]["tokens"].get<int64_t>(), 10);

  // A corpus other than the one the model was trained on is refused.
  EXPECT_EQ(test::run_binary("txl_eval", {"--model", ckpt, "--data", test::other_corpus()}, &out), 1);
  EXPECT_NE(out.find("error: " + ckpt + ": the model was trained on another corpus"), std::string::npos) << out;
}

}  // namespace
}  // namespace txl

namespace txl {
namespace {

// A recipe user's eval.py command line (scripts/inference_benchmark.sh's shape: an empty
// word where the math flag is absent, a bare --save_data, space-separated percentiles)
// runs unchanged and writes eval.py's logs: eval_log.log with Python logging's prefix and
// eval.py's lines, eval_log.json in DLLogger's format, the latency data file.
TEST_F(TrainProgram, EvalTakesTheRecipesCommandLineAndWritesItsLogs) {
  ASSERT_EQ(error_of([&] { run_train_program({config_file_, "--max_step", "4"}, *comm_); }), "");
  const std::string ckpt = dir_ + "/work/checkpoint_best.h5", work = dir_ + "/eval_work";
  std::string out;
  ASSERT_EQ(test::run_binary("txl_eval", {"--work_dir", work, "--model", ckpt, "--type", "pytorch", "--batch_size", "8",
                                          "--tgt_len", "16", "--mem_len", "32", "--split", "test", "--dataset", "wt2",
                                          "--log_interval", "2", "--no_env", "", "--save_data", "--percentiles", "50",
                                          "90", "--max_size", "5", "--seed", "7", "--affinity", "socket"},
                             &out),
            0)
      << out;
  EXPECT_NE(out.find("| eval.py options accepted without effect in txl: seed 7, affinity socket, no_env"),
            std::string::npos)
      << out;
  const std::regex prefix(R"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} - INFO - (.*))");
  // eval.py's format strings: its progress line, the time line, the result (with its trailing space).
  const std::regex interval(
      R"(\| step [ \d]{8,} \| batches [ \d]{6,} / \d+ \| ms/batch [ \d]{2,}\.\d{2} \| tok/s [ \d]{7,} )"
      R"(\| loss [ \d]{2,}\.\d{2} \| ppl [ \d]{2,}\.\d{2})");
  const std::regex time(R"(Time : \d+\.\d{2}s, \d+\.\d{2}ms/segment)");
  const std::regex result(R"(\| test loss [ \d]{2,}\.\d{2} \| test ppl [ \d]{5,}\.\d{3} )");
  std::vector<std::string> steps;
  int n_time = 0, n_result = 0;
  for (const std::string& line : test::read_lines(work + "/eval_log.log")) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, prefix)) << line;
    const std::string message = m[1];
    if (message.rfind("| step", 0) == 0) {
      EXPECT_TRUE(std::regex_match(message, interval)) << message;
      steps.push_back(message.substr(0, 15));
    }
    if (message.rfind("Time :", 0) == 0) {
      EXPECT_TRUE(std::regex_match(message, time)) << message;
      ++n_time;
    }
    if (message.rfind("| test loss", 0) == 0) {
      EXPECT_TRUE(std::regex_match(message, result)) << message;
      ++n_result;
    }
  }
  // 7 batches: 5 counted after 32 / 16 = 2 warm-up batches; a line every 2.
  EXPECT_EQ(steps, (std::vector<std::string>{"| step        2", "| step        4", "| step        6"}));
  EXPECT_EQ(n_time, 1);
  EXPECT_EQ(n_result, 1);

  std::vector<json> records;
  for (const std::string& line : test::read_lines(work + "/eval_log.json")) {
    ASSERT_EQ(line.rfind("DLLL ", 0), 0u) << line;
    records.push_back(json::parse(line.substr(5)));
  }
  ASSERT_GT(records.size(), 3u);
  EXPECT_EQ(records[0]["step"], "PARAMETER");
  EXPECT_EQ(records[0]["data"]["batch_size"], 8);
  std::vector<std::string> metadata;
  std::vector<int64_t> log_steps;
  for (const json& r : records) {
    if (r["type"] == "METADATA") metadata.push_back(r["metric"]);
    if (r["type"] == "LOG" && r["step"].is_number_integer()) {
      log_steps.push_back(r["step"]);
      for (const char* key : {"eval_latency", "eval_throughput", "eval_loss", "eval_perplexity"})
        EXPECT_TRUE(r["data"].contains(key)) << r;
    }
  }
  EXPECT_EQ(metadata, (std::vector<std::string>{"eval_throughput", "eval_loss", "eval_perplexity", "eval_latency",
                                                "eval_avg_latency", "eval_50%_latency", "eval_90%_latency"}));
  EXPECT_EQ(log_steps, (std::vector<int64_t>{2, 4, 6}));
  const json& summary = records.back();
  EXPECT_EQ(summary["step"], json::array());
  for (const char* key : {"eval_loss", "eval_ppl", "eval_throughput", "eval_avg_latency", "eval_50%_latency",
                          "eval_90%_latency"})
    EXPECT_TRUE(summary["data"].contains(key)) << summary;
  EXPECT_DOUBLE_EQ(summary["data"]["eval_ppl"].get<double>(), std::exp(summary["data"]["eval_loss"].get<double>()));
  // The bare --save_data: eval.py's file name in work_dir, one latency per batch.
  EXPECT_EQ(test::read_lines(work + "/eval_data_8_fp32_pytorch").size(), 1u + 7u);

  // --type torchscript is txl's graph path; --debug writes no log files.
  const std::string json_path = dir_ + "/ts.json", quiet = dir_ + "/quiet";
  ASSERT_EQ(test::run_binary("txl_eval", {"--work_dir", quiet, "--debug", "--model", ckpt, "--type", "torchscript",
                                          "--tgt_len", "16", "--mem_len", "32", "--batch_size", "8", "--max_size", "5",
                                          "--json", json_path},
                             &out),
            0)
      << out;
  std::ifstream in(json_path);
  EXPECT_EQ(json::parse(in)["type"], "graph");
  EXPECT_FALSE(fs::exists(quiet + "/eval_log.log"));
  EXPECT_FALSE(fs::exists(quiet + "/eval_log.json"));

  // What txl cannot do is refused in one line.
  EXPECT_EQ(test::run_binary("txl_eval", {"--model", ckpt, "--save_torchscript", "m.pt"}, &out), 1);
  EXPECT_NE(out.find("error: eval config: save_torchscript: txl has no TorchScript model to save; --type torchscript "
                     "replays the decoder layers from a CUDA graph\n"),
            std::string::npos)
      << out;
  // eval.py's --data DIR: the corpus file txl_train --data DIR prepared there.
  const std::string corpus_dir = dir_ + "/wikitext-2";
  fs::create_directories(corpus_dir);
  EXPECT_EQ(test::run_binary("txl_eval", {"--model", ckpt, "--data", corpus_dir, "--max_size", "1"}, &out), 1);
  EXPECT_NE(out.find("error: eval config: data: " + corpus_dir + " is a directory without " + corpus_dir +
                     "/txl_wt2.h5"),
            std::string::npos)
      << out;
  fs::create_symlink(test::wt2_corpus(), corpus_dir + "/txl_wt2.h5");
  EXPECT_EQ(test::run_binary("txl_eval", {"--model", ckpt, "--data", corpus_dir, "--max_size", "1", "--tgt_len", "16",
                                          "--mem_len", "16"},
                             &out),
            0)
      << out;
  EXPECT_EQ(test::run_binary("txl_eval", {"--model", ckpt, "--dataset", "enwik8"}, &out), 1);
  EXPECT_NE(out.find("error: eval config: dataset: 'enwik8' but "), std::string::npos) << out;
}

}  // namespace
}  // namespace txl
