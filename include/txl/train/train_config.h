// Everything `txl_train` can be told, by the recipe's option names (docs/training.md
// lists every key). Sources, later wins: built-in defaults < the `train:` section of a
// preset in CONFIG.yaml (or, on --restart without a file, the configuration stored in
// the checkpoint) < `--key value` on the command line.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "txl/model/model_config.h"
#include "txl/train/config_schema.h"

namespace txl {

struct TrainConfig {
  // ---- model (SPEC §3) ----
  int64_t n_layer = 16;
  int64_t n_head = 8;
  int64_t d_head = 64;
  int64_t d_model = 512;
  int64_t d_inner = 2048;
  int64_t d_embed = -1;  // -1: d_model
  int64_t div_val = 1;
  bool adaptive = false;             // adaptive input/softmax with `cutoffs`
  std::vector<int64_t> cutoffs;      // empty: the corpus's recommendation
  bool tie_weight = true;
  std::vector<bool> tie_projs;       // empty: the recipe's rule (wt103: [F, T, ...], else all F)
  bool pre_lnorm = false;
  double dropout = 0.1;
  double dropatt = 0.0;
  int64_t attn_type = 0;
  int64_t sample_softmax = -1;       // > 0: sampled softmax in training (sampled_softmax.h)
  int64_t clamp_len = -1;
  bool same_length = false;
  std::string init = "normal";
  double init_std = 0.02;
  double proj_init_std = 0.01;
  double init_range = 0.1;

  // ---- data (SPEC §6) ----
  std::string data;          // corpus file written by txl_prep
  std::string dataset;       // optional: must match the corpus kind (wt103, wt2, enwik8, ...)
  int64_t tgt_len = 192;
  int64_t eval_tgt_len = -1;  // -1: tgt_len
  int64_t ext_len = 0;
  int64_t mem_len = 192;
  int64_t batch_size = 60;        // global, all ranks
  int64_t local_batch_size = 0;   // > 0: batch_size = local_batch_size * ranks
  int64_t eval_batch_size = 16;   // global, for validation during training
  int64_t batch_chunk = 1;
  bool varlen = false;
  bool roll = false;

  // ---- optimisation (SPEC §5) ----
  std::string optim = "lamb";  // lamb | jitlamb | adam | sgd | adagrad
  double lr = 0.01;
  double mom = 0.0;
  double weight_decay = 0.0;
  std::string scheduler = "cosine";  // cosine | inv_sqrt | dev_perf | constant
  int64_t max_step = 40000;
  int64_t max_step_scheduler = 0;  // 0: max_step
  int64_t warmup_step = 1000;
  double decay_rate = 0.5;
  double lr_min = 0.0;
  double eta_min = 0.001;
  int64_t patience = 0;
  double clip = 0.25;

  // ---- run ----
  int64_t seed = 1111;
  std::string work_dir = "LM-TFM";
  std::string restart;  // checkpoint file or work dir to continue from; "auto": work_dir if it has one
  int64_t log_interval = 10;
  int64_t eval_interval = 5000;  // 0: evaluate only at the end
  int64_t eval_max_steps = -1;   // -1: the whole validation split
  bool save_all = false;
  std::string device = "cpu";      // cpu | cuda
  std::string precision = "fp32";  // fp32 | tf32 | fp16 | bf16
  bool fp16 = false;               // the recipe's switch: same as precision fp16
  double bucket_mb = 25.0;
  bool log_all_ranks = false;
  double target_throughput = 0.0;  // > 0: exit 2 when the run's tok/s is lower
  double target_perplexity = 0.0;  // > 0: exit 2 when the final ppl (bpc for characters) is higher
  double peak_tflops = 0.0;        // per device; > 0 enables MFU in the logs

  // Resolves derived values (fp16 -> precision, local_batch_size, eval_tgt_len) and
  // checks every key and their combinations for `world` ranks. Throws naming the key.
  void finalize(int world);

  int64_t local_batch(int world) const { return batch_size / world; }
  int64_t chunk_batch(int world) const { return batch_size / world / batch_chunk; }
  int64_t scheduler_max_step() const { return max_step_scheduler > 0 ? max_step_scheduler : max_step; }

  // The model hyper-parameters (n_token, cutoffs and tie_projs from the corpus).
  ModelConfig model_config(int64_t n_token, const std::vector<int64_t>& recommended_cutoffs,
                           const std::string& corpus_kind) const;
};

const std::vector<ConfigKey<TrainConfig>>& train_config_keys();

}  // namespace txl
