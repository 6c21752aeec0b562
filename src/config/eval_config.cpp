#include "txl/config/eval_config.h"

#include <algorithm>

#include "txl/config/device_precision.h"

namespace txl {

const std::vector<ConfigKey<EvalConfig>>& eval_config_keys() {
  using C = EvalConfig;
  static const std::vector<ConfigKey<C>> keys = {
      {"model", &C::model, "checkpoint to evaluate (empty: work_dir/checkpoint_best.h5)"},
      {"work_dir", &C::work_dir, "training work dir (where the checkpoint is when `model` is not given)"},
      {"data", &C::data, "corpus file (empty: the one the model was trained on)"},
      {"split", &C::split, "valid | test | all"},
      {"tgt_len", &C::tgt_len, "tokens per evaluation segment"},
      {"ext_len", &C::ext_len, "extended context length"},
      {"mem_len", &C::mem_len, "memory length"},
      {"clamp_len", &C::clamp_len, "clamp relative positions (-1: no clamping)"},
      {"same_length", &C::same_length, "every query attends to the same number of keys"},
      {"batch_size", &C::batch_size, "streams evaluated in parallel (global)"},
      {"manual", &C::manual, "raw text to evaluate (tokenised with the corpus vocabulary) instead of a split"},
      {"max_size", &C::max_size, "batches to evaluate (-1: all)"},
      {"repeat", &C::repeat, "evaluate this many times (latency statistics)"},
      {"save_data", &C::save_data,
       "write per-batch latencies (ms) to this file (a bare --save_data: work_dir/eval_data_<bsz>_<precision>_<type>)"},
      {"percentiles", &C::percentiles, "latency percentiles to report"},
      {"json", &C::json, "write the results with full precision to this JSON file"},
      {"device", &C::device, "cpu | cuda"},
      {"precision", &C::precision, "fp32 | tf32 | fp16 | bf16 (GPU only except fp32)"},
      {"fp16", &C::fp16, "same as precision: fp16"},
      {"type", &C::type,
       "eager | graph (replay the decoder layers from a CUDA graph; recorded op calls on the CPU); the recipe's "
       "pytorch = eager, torchscript = graph"},
      {"target_perplexity", &C::target_perplexity, "benchmark: exit 1 if the ppl (bpc) is higher (0: off)"},
      {"target_throughput", &C::target_throughput, "benchmark: exit 1 if tok/s is lower (0: off)"},
      {"dataset", &C::dataset, "wt103 | lm1b | enwik8 | text8: must be the corpus's dataset (empty: any)"},
      {"seed", &C::seed, "accepted for eval.py; evaluation draws no random numbers"},
      {"log_interval", &C::log_interval, "a progress line every this many batches (0: none)"},
      {"debug", &C::debug, "write no eval_log.log / eval_log.json"},
      {"cuda", &C::cuda, "same as device: cuda"},
      {"log_all_ranks", &C::log_all_ranks, "every rank writes work_dir/eval_log_rank_<r>.log (instead of eval_log.log)"},
      {"dllog_file", &C::dllog_file, "DLLogger JSON file in work_dir"},
      {"no_env", &C::no_env, "accepted for eval.py; txl prints no environment report"},
      {"affinity", &C::affinity, "accepted for eval.py; CPU binding is the launcher's (docs/distributed.md)"},
      {"local_rank", &C::local_rank, "accepted for eval.py; the rank comes from MPI / SLURM"},
      {"manual_config", &C::manual_config, "accepted for eval.py; the checkpoint carries the model configuration"},
      {"manual_vocab", &C::manual_vocab, "word | bpe, accepted for eval.py; the corpus file carries the vocabulary"},
      {"save_torchscript", &C::save_torchscript, "refused: txl has no TorchScript (--type torchscript = graph)"},
      {"load_torchscript", &C::load_torchscript, "refused: txl has no TorchScript (--type torchscript = graph)"},
  };
  return keys;
}

namespace {
void require(bool ok, const std::string& key, const std::string& message) {
  if (!ok) failf("eval config: {}: {}", key, message);
}
}  // namespace

void EvalConfig::finalize(int world) {
  if (cuda) {
    require(device == "cpu" || device == "cuda", "cuda", fmt::format("cuda: true contradicts device: {}", device));
    device = "cuda";
    cuda = false;
  }
  require(save_torchscript.empty(), "save_torchscript",
          "txl has no TorchScript model to save; --type torchscript replays the decoder layers from a CUDA graph");
  require(load_torchscript.empty(), "load_torchscript",
          "txl cannot load TorchScript; evaluate a txl checkpoint with --model (--type torchscript = graph)");
  require(manual_vocab == "word" || manual_vocab == "bpe", "manual_vocab",
          fmt::format("unknown value '{}' (word | bpe)", manual_vocab));
  const std::vector<std::string> datasets{"wt103", "lm1b", "enwik8", "text8", "wt2"};
  require(dataset.empty() || std::find(datasets.begin(), datasets.end(), dataset) != datasets.end(), "dataset",
          fmt::format("unknown value '{}' (wt103 | lm1b | enwik8 | text8; closest: '{}')", dataset,
                      closest_name(dataset, datasets)));
  require(log_interval >= 0, "log_interval", "must be >= 0");
  resolve_device_precision(device, precision, fp16, "eval config");
  const std::vector<std::string> types{"eager", "graph", "pytorch", "torchscript"};
  require(std::find(types.begin(), types.end(), type) != types.end(), "type",
          fmt::format("unknown value '{}' (eager | graph, or the recipe's pytorch | torchscript; closest: '{}')", type,
                      closest_name(type, types)));
  require(split == "valid" || split == "test" || split == "all", "split",
          fmt::format("unknown value '{}' (valid | test | all; closest: '{}')", split,
                      closest_name(split, {"valid", "test", "all"})));
  require(!model.empty() || !work_dir.empty(), "model", "no checkpoint given (--model FILE or --work_dir DIR)");
  require(tgt_len > 0, "tgt_len", "must be positive");
  require(mem_len >= 0, "mem_len", "must be >= 0");
  require(ext_len >= 0, "ext_len", "must be >= 0");
  require(batch_size > 0, "batch_size", "must be positive");
  require(batch_size % world == 0, "batch_size", fmt::format("{} is not divisible by the {} ranks", batch_size, world));
  require(max_size == -1 || max_size > 0, "max_size", "must be positive or -1 (all)");
  require(repeat >= 1, "repeat", "must be >= 1");
  for (double p : percentiles) require(p >= 0 && p <= 100, "percentiles", fmt::format("{} is outside [0, 100]", p));
  require(target_perplexity >= 0, "target_perplexity", "must be >= 0");
  require(target_throughput >= 0, "target_throughput", "must be >= 0");
}

std::string EvalConfig::save_data_path() const {
  if (save_data != "auto" && save_data != "true") return save_data;
  const std::string name = fmt::format("eval_data_{}_{}_{}", batch_size, precision, graphed() ? "torchscript" : "pytorch");
  return work_dir.empty() ? name : work_dir + "/" + name;
}

std::vector<std::string> EvalConfig::splits() const {
  if (split == "all") return {"valid", "test"};
  return {split};
}

}  // namespace txl
