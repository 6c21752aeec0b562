#include "txl/train/train_config.h"

#include <algorithm>

namespace txl {

const std::vector<ConfigKey<TrainConfig>>& train_config_keys() {
  using C = TrainConfig;
  static const std::vector<ConfigKey<C>> keys = {
      // model
      {"n_layer", &C::n_layer, "number of decoder layers"},
      {"n_head", &C::n_head, "attention heads"},
      {"d_head", &C::d_head, "width of one head"},
      {"d_model", &C::d_model, "model width"},
      {"d_inner", &C::d_inner, "feed-forward inner width"},
      {"d_embed", &C::d_embed, "embedding width (-1: d_model)"},
      {"div_val", &C::div_val, "adaptive embedding width divisor per cluster"},
      {"adaptive", &C::adaptive, "adaptive input and softmax with `cutoffs`"},
      {"cutoffs", &C::cutoffs, "cluster boundaries (empty: the corpus's recommendation)"},
      {"tie_weight", &C::tie_weight, "share embedding tables with the softmax"},
      {"tie_projs", &C::tie_projs, "share projections per cluster (empty: wt103 [false, true, ...], else all false)"},
      {"pre_lnorm", &C::pre_lnorm, "LayerNorm before attention / feed-forward"},
      {"dropout", &C::dropout, "dropout rate"},
      {"dropatt", &C::dropatt, "attention-probability dropout rate"},
      {"attn_type", &C::attn_type, "attention type (0: relative, Transformer-XL)"},
      {"sample_softmax", &C::sample_softmax, "> 0: train with a sampled softmax over this many samples (-1: off)"},
      {"clamp_len", &C::clamp_len, "clamp relative positions (-1: no clamping)"},
      {"same_length", &C::same_length, "every query attends to the same number of keys"},
      {"init", &C::init, "normal | uniform"},
      {"init_std", &C::init_std, "std of normal initialisation"},
      {"proj_init_std", &C::proj_init_std, "std of projection initialisation"},
      {"init_range", &C::init_range, "range of uniform initialisation"},
      // data
      {"data", &C::data, "corpus file (txl_prep output)"},
      {"dataset", &C::dataset, "expected corpus kind (wt103, wt2, ptb, enwik8, text8, lm1b); empty: any"},
      {"tgt_len", &C::tgt_len, "tokens per training segment"},
      {"eval_tgt_len", &C::eval_tgt_len, "tokens per validation segment (-1: tgt_len)"},
      {"ext_len", &C::ext_len, "extended context length"},
      {"mem_len", &C::mem_len, "memory length"},
      {"batch_size", &C::batch_size, "global batch size (streams, all ranks)"},
      {"local_batch_size", &C::local_batch_size, "> 0: per-rank batch; batch_size = local_batch_size * ranks"},
      {"eval_batch_size", &C::eval_batch_size, "global batch size of validation"},
      {"batch_chunk", &C::batch_chunk, "split each rank's batch into this many chunks (gradient accumulation)"},
      {"varlen", &C::varlen, "variable segment lengths in training"},
      {"roll", &C::roll, "rotate each stream by a random offset at each epoch"},
      // optimisation
      {"optim", &C::optim, "lamb | jitlamb | adam | sgd | adagrad"},
      {"lr", &C::lr, "base learning rate"},
      {"mom", &C::mom, "SGD momentum"},
      {"weight_decay", &C::weight_decay, "weight decay (LAMB: decoupled; Adam/SGD/Adagrad: L2)"},
      {"scheduler", &C::scheduler, "cosine | inv_sqrt | dev_perf | constant"},
      {"max_step", &C::max_step, "optimizer steps to train"},
      {"max_step_scheduler", &C::max_step_scheduler, "cosine period end (0: max_step)"},
      {"warmup_step", &C::warmup_step, "linear warm-up steps"},
      {"decay_rate", &C::decay_rate, "dev_perf: factor applied on a plateau"},
      {"lr_min", &C::lr_min, "dev_perf: lowest learning rate"},
      {"eta_min", &C::eta_min, "cosine: final learning rate"},
      {"patience", &C::patience, "dev_perf: evaluations without improvement tolerated"},
      {"clip", &C::clip, "clip the global gradient L2 norm to this (0: no clipping)"},
      // run
      {"seed", &C::seed, "random seed (initialisation, dropout, roll)"},
      {"work_dir", &C::work_dir, "directory for logs and checkpoints"},
      {"restart", &C::restart, "checkpoint file or work dir to continue from ('auto': work_dir if it holds one)"},
      {"log_interval", &C::log_interval, "steps between log lines"},
      {"eval_interval", &C::eval_interval, "steps between validations and checkpoints (0: only at the end)"},
      {"eval_max_steps", &C::eval_max_steps, "validation batches per evaluation (-1: all)"},
      {"save_all", &C::save_all, "also keep checkpoint_<step>.h5 at every evaluation"},
      {"device", &C::device, "cpu | cuda"},
      {"precision", &C::precision, "fp32 | tf32 | fp16 | bf16 (GPU only except fp32)"},
      {"fp16", &C::fp16, "same as precision: fp16"},
      {"bucket_mb", &C::bucket_mb, "gradient all-reduce bucket size in MiB (<= 0: one bucket after backward)"},
      {"log_all_ranks", &C::log_all_ranks, "every rank writes its own log file"},
      {"target_throughput", &C::target_throughput, "benchmark: exit 2 if tok/s is lower (0: off)"},
      {"target_perplexity", &C::target_perplexity, "benchmark: exit 2 if the final ppl/bpc is higher (0: off)"},
      {"peak_tflops", &C::peak_tflops, "peak TFLOP/s of one device; enables MFU in the logs (0: unknown)"},
  };
  return keys;
}

namespace {

void require(bool ok, const std::string& key, const std::string& message) {
  if (!ok) failf("config: {}: {}", key, message);
}

void require_one_of(const std::string& value, const std::string& key, std::initializer_list<const char*> allowed) {
  std::vector<std::string> names(allowed.begin(), allowed.end());
  if (std::find(names.begin(), names.end(), value) != names.end()) return;
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : " | ") + n;
  failf("config: {}: unknown value '{}' (expected {}; closest: '{}')", key, value, list, closest_name(value, names));
}

}  // namespace

void TrainConfig::finalize(int world) {
  TXL_CHECK(world >= 1, "world size must be >= 1 (got {})", world);
  if (fp16) {
    require(precision == "fp32" || precision == "fp16", "fp16",
            fmt::format("fp16: true contradicts precision: {}", precision));
    precision = "fp16";
    fp16 = false;  // resolved into `precision`
  }
  require_one_of(device, "device", {"cpu", "cuda"});
  require_one_of(precision, "precision", {"fp32", "tf32", "fp16", "bf16"});
  require(device == "cuda" || precision == "fp32", "precision",
          fmt::format("{} needs device: cuda (the CPU backend computes in fp32 only)", precision));
  require_one_of(optim, "optim", {"lamb", "jitlamb", "adam", "sgd", "adagrad"});
  require_one_of(scheduler, "scheduler", {"cosine", "inv_sqrt", "dev_perf", "constant"});
  require_one_of(init, "init", {"normal", "uniform"});

  require(n_layer > 0, "n_layer", "must be positive");
  require(n_head > 0, "n_head", "must be positive");
  require(d_head > 0, "d_head", "must be positive");
  require(d_model > 0 && d_model % 2 == 0, "d_model", "must be positive and even");
  require(d_inner > 0, "d_inner", "must be positive");
  require(d_embed == -1 || d_embed > 0, "d_embed", "must be positive or -1 (d_model)");
  require(div_val >= 1, "div_val", "must be >= 1");
  require(dropout >= 0 && dropout < 1, "dropout", "must be in [0, 1)");
  require(dropatt >= 0 && dropatt < 1, "dropatt", "must be in [0, 1)");
  require(attn_type == 0, "attn_type", "only 0 (relative positions, Transformer-XL) is implemented");
  require(sample_softmax <= 0 || tie_weight, "sample_softmax",
          "needs tie_weight: true (the sampled softmax scores with the input embedding, as the recipe asserts)");
  require(init_std > 0 && proj_init_std > 0 && init_range > 0, "init_std",
          "init_std, proj_init_std and init_range must be positive");

  require(!data.empty(), "data", "no corpus given (set data: PATH or --data PATH)");
  require(tgt_len > 0, "tgt_len", "must be positive");
  require(mem_len >= 0, "mem_len", "must be >= 0");
  require(ext_len == 0, "ext_len", "extended context (ext_len > 0) is not supported; use mem_len");
  if (eval_tgt_len < 0) eval_tgt_len = tgt_len;
  require(eval_tgt_len > 0, "eval_tgt_len", "must be positive");
  require(eval_tgt_len <= tgt_len + mem_len, "eval_tgt_len",
          fmt::format("{} exceeds tgt_len + mem_len = {} (validation keeps the attention span, so its memory "
                      "length tgt_len + mem_len - eval_tgt_len would be negative)",
                      eval_tgt_len, tgt_len + mem_len));
  if (local_batch_size > 0) batch_size = local_batch_size * world;
  require(local_batch_size >= 0, "local_batch_size", "must be >= 0");
  require(batch_size > 0, "batch_size", "must be positive");
  require(batch_chunk >= 1, "batch_chunk", "must be >= 1");
  require(batch_size % (static_cast<int64_t>(world) * batch_chunk) == 0, "batch_size",
          fmt::format("{} is not divisible by ranks x batch_chunk = {} x {}", batch_size, world, batch_chunk));
  require(eval_batch_size > 0, "eval_batch_size", "must be positive");
  require(eval_batch_size % world == 0, "eval_batch_size",
          fmt::format("{} is not divisible by the {} ranks", eval_batch_size, world));

  require(lr > 0, "lr", "must be positive");
  require(mom >= 0 && mom < 1, "mom", "must be in [0, 1)");
  require(weight_decay >= 0, "weight_decay", "must be >= 0");
  require(max_step > 0, "max_step", "must be positive");
  require(max_step_scheduler >= 0, "max_step_scheduler", "must be >= 0");
  require(warmup_step >= 0, "warmup_step", "must be >= 0");
  if (scheduler == "cosine")
    require(scheduler_max_step() > warmup_step, "warmup_step",
            fmt::format("{} must be below the cosine period end max_step_scheduler/max_step = {}", warmup_step,
                        scheduler_max_step()));
  require(decay_rate > 0 && decay_rate <= 1, "decay_rate", "must be in (0, 1]");
  require(lr_min >= 0, "lr_min", "must be >= 0");
  require(eta_min >= 0, "eta_min", "must be >= 0");
  require(patience >= 0, "patience", "must be >= 0");
  require(clip >= 0, "clip", "must be >= 0");

  require(!work_dir.empty(), "work_dir", "must not be empty");
  require(log_interval > 0, "log_interval", "must be positive");
  require(eval_interval >= 0, "eval_interval", "must be >= 0");
  require(eval_max_steps == -1 || eval_max_steps > 0, "eval_max_steps", "must be positive or -1 (all)");
  require(target_throughput >= 0, "target_throughput", "must be >= 0");
  require(target_perplexity >= 0, "target_perplexity", "must be >= 0");
  require(peak_tflops >= 0, "peak_tflops", "must be >= 0");
  require(seed >= 0, "seed", "must be >= 0");
}

ModelConfig TrainConfig::model_config(int64_t n_token, const std::vector<int64_t>& recommended_cutoffs,
                                      const std::string& corpus_kind) const {
  ModelConfig m;
  m.n_token = n_token;
  m.n_layer = n_layer;
  m.n_head = n_head;
  m.d_head = d_head;
  m.d_model = d_model;
  m.d_inner = d_inner;
  m.d_embed = d_embed;
  m.div_val = div_val;
  if (adaptive) m.cutoffs = cutoffs.empty() ? recommended_cutoffs : cutoffs;
  m.tie_weight = tie_weight;
  if (!tie_projs.empty()) {
    m.tie_projs = tie_projs;
  } else {
    // The recipe ties the tail projections for WikiText-103 only.
    m.tie_projs.assign(m.cutoffs.size() + 1, false);
    if (corpus_kind == "wt103")
      for (size_t c = 1; c < m.tie_projs.size(); ++c) m.tie_projs[c] = true;
  }
  m.pre_lnorm = pre_lnorm;
  m.dropout = dropout;
  m.dropatt = dropatt;
  m.tgt_len = tgt_len;
  m.mem_len = mem_len;
  m.ext_len = ext_len;
  m.same_length = same_length;
  m.clamp_len = clamp_len;
  m.attn_type = attn_type;
  m.sample_softmax = sample_softmax;
  m.init.init = init;
  m.init.init_std = init_std;
  m.init.proj_init_std = proj_init_std;
  m.init.init_range = init_range;
  try {
    m.validate();
  } catch (const Error& e) {
    failf("config: {}", e.what());
  }
  return m;
}

}  // namespace txl
