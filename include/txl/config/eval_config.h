// Everything `txl_eval` can be told (docs/training.md lists every key). Sources, later
// wins: built-in defaults (the recipe's WikiText-103 base evaluation: tgt_len 64,
// mem_len 640, clamp_len 400, same_length) < the `eval:` section stored in the
// checkpoint < the `eval:` section of a preset in CONFIG.yaml < `--key value`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "txl/config/config_schema.h"

namespace txl {

struct EvalConfig {
  std::string model;      // checkpoint file (empty: work_dir/checkpoint_best.h5)
  std::string work_dir;
  std::string data;       // corpus file (empty: the training run's `data`, stored in the checkpoint)
  std::string split = "test";  // valid | test | all
  int64_t tgt_len = 64;
  int64_t ext_len = 0;
  int64_t mem_len = 640;
  int64_t clamp_len = 400;
  bool same_length = true;
  int64_t batch_size = 16;
  std::string manual;     // raw text to evaluate instead of a split
  int64_t max_size = -1;  // batches to evaluate (-1: all)
  int64_t repeat = 1;     // evaluate this many times (latency statistics)
  std::string save_data;  // file for the per-batch latencies
  std::vector<double> percentiles = {90, 95, 99};
  std::string json;       // file for the results with full precision
  std::string device = "cpu";
  std::string precision = "fp32";
  bool fp16 = false;
  std::string type = "eager";  // eager | graph (EvalStep with a StepGraph); the recipe's pytorch | torchscript
  double target_perplexity = 0.0;  // > 0: exit 1 when the ppl (bpc) is higher
  double target_throughput = 0.0;  // > 0: exit 1 when tok/s is lower
  // eval.py's options (docs/recipe-users.md has what each does in txl).
  std::string dataset;    // wt103 | lm1b | enwik8 | text8; checked against the corpus (empty: any)
  int64_t seed = 1111;    // evaluation draws no random numbers; recorded only
  int64_t log_interval = 10;  // a progress line every this many batches (0: none)
  bool debug = false;     // no eval_log.log / eval_log.json
  bool cuda = false;      // same as device: cuda
  bool log_all_ranks = false;  // every rank writes eval_log_rank_<r>.log
  std::string dllog_file = "eval_log.json";  // DLLogger file in work_dir
  bool no_env = false;    // txl prints no environment report: accepted
  std::string affinity = "single_unique";  // CPU binding is the launcher's: recorded only
  int64_t local_rank = 0;  // the rank comes from MPI / SLURM: recorded only
  std::string manual_config;       // the checkpoint carries the model configuration: recorded only
  std::string manual_vocab = "word";  // word | bpe: the corpus file carries the vocabulary
  std::string save_torchscript;    // refused: no TorchScript in txl
  std::string load_torchscript;    // refused: no TorchScript in txl

  // Resolves fp16 and checks every key; throws naming the key.
  void finalize(int world);
  std::vector<std::string> splits() const;  // "all" -> {"valid", "test"}
  bool graphed() const { return type == "graph" || type == "torchscript"; }
  // save_data "auto" (a bare --save_data): the recipe's work_dir/eval_data_<bsz>_<precision>_<type>.
  std::string save_data_path() const;
};

const std::vector<ConfigKey<EvalConfig>>& eval_config_keys();

}  // namespace txl
