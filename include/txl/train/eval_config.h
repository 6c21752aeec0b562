// Everything `txl_eval` can be told (docs/training.md lists every key). Sources, later
// wins: built-in defaults (the recipe's WikiText-103 base evaluation: tgt_len 64,
// mem_len 640, clamp_len 400, same_length) < the `eval:` section stored in the
// checkpoint < the `eval:` section of a preset in CONFIG.yaml < `--key value`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "txl/train/config_schema.h"

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
  std::string type = "eager";  // eager | graph (EvalStep with a StepGraph)
  double target_perplexity = 0.0;  // > 0: exit 1 when the ppl (bpc) is higher
  double target_throughput = 0.0;  // > 0: exit 1 when tok/s is lower

  // Resolves fp16 and checks every key; throws naming the key.
  void finalize(int world);
  std::vector<std::string> splits() const;  // "all" -> {"valid", "test"}
};

const std::vector<ConfigKey<EvalConfig>>& eval_config_keys();

}  // namespace txl
