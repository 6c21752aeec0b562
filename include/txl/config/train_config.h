// Everything `txl_train` can be told, by the recipe's option names (docs/training.md
// lists every key). Sources, later wins: built-in defaults < the `train:` section of a
// preset in CONFIG.yaml (or, on --restart without a file, the configuration stored in
// the checkpoint) < `--key value` on the command line.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "txl/model/model_config.h"
#include "txl/config/command_line.h"
#include "txl/config/config_schema.h"

namespace txl {

struct TrainConfig {
  // ---- model (docs/model.md) ----
  // The model keys as given, each declared once in ModelConfig with its default; so are the
  // length keys tgt_len, mem_len, ext_len (data), clamp_len and same_length. Not a model to
  // build: model_config() resolves n_token, cutoffs (with `adaptive`; empty: the corpus's
  // recommendation) and tie_projs (empty: the recipe's rule, wt103 [F, T, ...], else all F).
  ModelConfig model;
  bool adaptive = false;  // adaptive input/softmax with `cutoffs`

  // ---- data (docs/data.md, Data order) ----
  std::string data;          // corpus file written by txl_prep
  std::string dataset;       // optional: must match the corpus kind (wt103, wt2, enwik8, ...)
  int64_t eval_tgt_len = -1;  // -1: tgt_len
  int64_t batch_size = 256;       // global, all ranks (the recipe's default)
  int64_t local_batch_size = 0;   // > 0: batch_size = local_batch_size * ranks
  int64_t eval_batch_size = 16;   // global, for validation during training
  int64_t batch_chunk = 1;
  bool varlen = false;
  bool roll = false;

  // ---- optimisation (docs/training.md §4) ----
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
  double target_throughput = 0.0;  // > 0: exit 1 when the run's mean tok/s is lower
  double target_perplexity = 0.0;  // > 0: exit 1 when exp(best validation loss) is higher
  double peak_tflops = 0.0;        // per device; > 0 enables MFU in the logs
  std::string txtlog_file = "train_log.log";  // the text log's name in work_dir
  std::string dllog_file = "train_log.json";  // the DLLogger JSON stream's name in work_dir
  bool debug = false;              // no work dir, log files or checkpoints (console only)
  bool no_eval = false;            // no validation (hence no checkpoints) during training
  bool no_test = false;            // no test evaluation at the end
  bool append_dataset = false;     // work_dir += "-" + dataset
  bool append_time = false;        // work_dir += "/YYYYmmdd-HHMMSS" (rank 0's clock)
  std::string affinity = "disabled";  // CPU cores of each rank (cpu_affinity.h)

  // ---- the recipe's options txl accepts for compatibility (docs/recipe-users.md) ----
  std::string vocab = "word";      // word | bpe (bpe: the corpus must be a BPE corpus)
  std::string amp = "apex";        // apex | pytorch: how fp16 was done; txl has one fp16 mode
  std::string apex_amp_opt_level = "O2";
  std::string multi_gpu;           // "" | ddp | dp: txl is always MPI data parallel
  int64_t gpu0_bsz = -1;           // dp only: ignored
  bool swap_mem = false;
  int64_t local_rank = 0;          // ignored: MPI/SLURM give the rank
  bool no_env = false;
  std::string emb_init = "normal";  // unused by the recipe's initialisation too
  double emb_init_range = 0.01;
  bool clip_nonemb = false;        // only false

  // Not a key: what finalize() decided about the recipe's plumbing options, one line
  // each, for the training log.
  std::vector<std::string> notes;

  // Resolves derived values (fp16 -> precision, local_batch_size, eval_tgt_len) and
  // checks every key and their combinations for `world` ranks. Throws naming the key.
  void finalize(int world);
  // The recipe's options (vocab, amp, multi_gpu, swap_mem, ...): refusals, or `notes`.
  void resolve_recipe_options();

  int64_t local_batch(int world) const { return batch_size / world; }
  int64_t chunk_batch(int world) const { return batch_size / world / batch_chunk; }
  int64_t scheduler_max_step() const { return max_step_scheduler > 0 ? max_step_scheduler : max_step; }

  // The model hyper-parameters: `model` with n_token, cutoffs and tie_projs resolved from
  // the corpus; validated.
  ModelConfig model_config(int64_t n_token, const std::vector<int64_t>& recommended_cutoffs,
                           const std::string& corpus_kind) const;
};

const std::vector<ConfigKey<TrainConfig>>& train_config_keys();

// The recipe's spellings of txl keys, accepted in files and on the command line:
// `cuda: B` is `device: cuda` (B true) or `device: cpu`, `not_tied: B` is `tie_weight: !B`.
// Both apply where they appear, so a later `--device cpu` still wins over a file's `cuda: true`.
const std::vector<std::pair<std::string, KeyType>>& train_config_aliases();
// Every option of txl_train with its type: the keys and the aliases.
std::vector<std::pair<std::string, KeyType>> train_option_types();
// apply_section / apply_overrides with the aliases; unknown keys name the closest of both.
void apply_train_section(TrainConfig& cfg, const YAML::Node& section, const std::string& where);
void apply_train_overrides(TrainConfig& cfg, const CommandLine& cl);

}  // namespace txl
