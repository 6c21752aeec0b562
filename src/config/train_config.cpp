#include "txl/config/train_config.h"

#include <algorithm>

#include "txl/config/device_precision.h"

namespace txl {

namespace {
// The keys whose field is declared in ModelConfig (cfg.model.x) or its InitSpec (cfg.model.init.x).
template <auto Member>
constexpr auto model = member_path<&TrainConfig::model, Member>;
template <auto Member>
constexpr auto model_init = member_path<&TrainConfig::model, &ModelConfig::init, Member>;
}  // namespace

const std::vector<ConfigKey<TrainConfig>>& train_config_keys() {
  using C = TrainConfig;
  using M = ModelConfig;
  static const std::vector<ConfigKey<C>> keys = {
      // model
      {"n_layer", model<&M::n_layer>, "number of decoder layers"},
      {"n_head", model<&M::n_head>, "attention heads"},
      {"d_head", model<&M::d_head>, "width of one head"},
      {"d_model", model<&M::d_model>, "model width"},
      {"d_inner", model<&M::d_inner>, "feed-forward inner width"},
      {"d_embed", model<&M::d_embed>, "embedding width (-1: d_model)"},
      {"div_val", model<&M::div_val>, "adaptive embedding width divisor per cluster"},
      {"adaptive", &C::adaptive, "adaptive input and softmax with `cutoffs`"},
      {"cutoffs", model<&M::cutoffs>, "cluster boundaries (empty: the corpus's recommendation)"},
      {"tie_weight", model<&M::tie_weight>, "share embedding tables with the softmax"},
      {"tie_projs", model<&M::tie_projs>,
       "share projections per cluster (empty: wt103 [false, true, ...], else all false)"},
      {"pre_lnorm", model<&M::pre_lnorm>, "LayerNorm before attention / feed-forward"},
      {"dropout", model<&M::dropout>, "dropout rate"},
      {"dropatt", model<&M::dropatt>, "attention-probability dropout rate"},
      {"attn_type", model<&M::attn_type>,
       "attention type: 0 relative (Transformer-XL), 1 learned relative (Shaw et al.), 2 absolute sinusoids "
       "(Vaswani et al.), 3 learned absolute per layer (Al-Rfou et al.)"},
      {"sample_softmax", model<&M::sample_softmax>,
       "> 0: train with a sampled softmax over this many samples (-1: off)"},
      {"clamp_len", model<&M::clamp_len>, "clamp relative positions (-1: no clamping)"},
      {"same_length", model<&M::same_length>, "every query attends to the same number of keys"},
      {"init", model_init<&InitSpec::init>, "normal | uniform"},
      {"init_std", model_init<&InitSpec::init_std>, "std of normal initialisation"},
      {"proj_init_std", model_init<&InitSpec::proj_init_std>, "std of projection initialisation"},
      {"init_range", model_init<&InitSpec::init_range>, "range of uniform initialisation"},
      // data
      {"data", &C::data, "corpus file (txl_prep output)"},
      {"dataset", &C::dataset, "expected corpus kind (wt103, wt2, ptb, enwik8, text8, lm1b); empty: any"},
      {"tgt_len", model<&M::tgt_len>, "tokens per training segment"},
      {"eval_tgt_len", &C::eval_tgt_len, "tokens per validation segment (-1: tgt_len)"},
      {"ext_len", model<&M::ext_len>, "extended context length"},
      {"mem_len", model<&M::mem_len>, "memory length"},
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
      {"txtlog_file", &C::txtlog_file, "file name of the text log inside work_dir"},
      {"dllog_file", &C::dllog_file, "file name of the DLLogger JSON log inside work_dir"},
      {"debug", &C::debug, "write nothing: no work_dir, log files or checkpoints (the console log only)"},
      {"no_eval", &C::no_eval, "skip validation, and so the checkpoints, during training"},
      {"no_test", &C::no_test, "skip the test-split evaluation after training"},
      {"append_dataset", &C::append_dataset, "append '-<dataset>' to work_dir"},
      {"append_time", &C::append_time, "append '/<start time YYYYmmdd-HHMMSS>' to work_dir"},
      {"affinity", &C::affinity,
       "bind each rank's threads to CPU cores: disabled | single | single_unique | socket | "
       "socket_unique_interleaved | socket_unique_continuous"},
      // the recipe's options, kept for its command lines and files (docs/recipe-users.md)
      {"vocab", &C::vocab, "vocabulary type: word | bpe (bpe: the corpus must be txl_prep --vocab bpe)"},
      {"amp", &C::amp, "with fp16: the recipe's mixed-precision implementation (apex | pytorch); txl has one fp16 mode"},
      {"apex_amp_opt_level", &C::apex_amp_opt_level, "with fp16 and amp apex: O0 means float32; O1/O2 txl's fp16; O3 refused"},
      {"multi_gpu", &C::multi_gpu, "ddp | dp: txl always runs data parallel over its MPI ranks"},
      {"gpu0_bsz", &C::gpu0_bsz, "dp's batch share of GPU 0: ignored (txl splits batch_size evenly over ranks)"},
      {"swap_mem", &C::swap_mem, "GPU: keep the memory in pinned host memory between steps (CPU: nothing to do; logged)"},
      {"local_rank", &C::local_rank, "ignored: MPI or SLURM give each rank its number"},
      {"no_env", &C::no_env, "accepted; txl logs no environment dump"},
      {"emb_init", &C::emb_init, "accepted, no effect (as in the recipe, whose initialisation never reads it)"},
      {"emb_init_range", &C::emb_init_range, "accepted, no effect (as emb_init)"},
      {"clip_nonemb", &C::clip_nonemb, "clip non-embedding gradients only: only false is implemented"},
  };
  return keys;
}

const std::vector<std::pair<std::string, KeyType>>& train_config_aliases() {
  static const std::vector<std::pair<std::string, KeyType>> aliases = {{"cuda", KeyType::kBool},
                                                                       {"not_tied", KeyType::kBool}};
  return aliases;
}

std::vector<std::pair<std::string, KeyType>> train_option_types() {
  std::vector<std::pair<std::string, KeyType>> out = option_types(train_config_keys());
  out.insert(out.end(), train_config_aliases().begin(), train_config_aliases().end());
  return out;
}

namespace {

// Sets `name` from `value` on `cfg`, through an alias when it is one.
void assign_train_key(TrainConfig& cfg, const std::string& name, const YAML::Node& value, const std::string& where) {
  if (name == "cuda" || name == "not_tied") {
    if (!value || value.IsNull()) return;
    const bool on = yaml_to_bool(value, name, where);
    if (name == "cuda") cfg.device = on ? "cuda" : "cpu";
    else cfg.model.tie_weight = !on;
    return;
  }
  const ConfigKey<TrainConfig>* key = find_key(train_config_keys(), name);
  if (!key) {
    std::vector<std::string> known = key_names(train_config_keys());
    for (const auto& a : train_config_aliases()) known.push_back(a.first);
    fail(unknown_key_message(where, name, known));
  }
  key->assign(cfg, value, where);
}

}  // namespace

void apply_train_section(TrainConfig& cfg, const YAML::Node& section, const std::string& where) {
  if (!section || section.IsNull()) return;
  if (!section.IsMap()) failf("{}: expected a mapping of key: value", where);
  for (const auto& kv : section) assign_train_key(cfg, kv.first.Scalar(), kv.second, where);
}

void apply_train_overrides(TrainConfig& cfg, const CommandLine& cl) {
  for (const auto& [name, text] : cl.overrides) {
    const auto* key = find_key(train_config_keys(), name);
    const KeyType type = key ? key->type() : KeyType::kBool;  // both aliases are booleans
    assign_train_key(cfg, name, command_line_value(type, text), "command line");
  }
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
  notes.clear();
  resolve_recipe_options();
  resolve_device_precision(device, precision, fp16, "config");
  require_one_of(optim, "optim", {"lamb", "jitlamb", "adam", "sgd", "adagrad"});
  require_one_of(scheduler, "scheduler", {"cosine", "inv_sqrt", "dev_perf", "constant"});
  require_one_of(model.init.init, "init", {"normal", "uniform"});

  require(model.n_layer > 0, "n_layer", "must be positive");
  require(model.n_head > 0, "n_head", "must be positive");
  require(model.d_head > 0, "d_head", "must be positive");
  require(model.d_model > 0 && model.d_model % 2 == 0, "d_model", "must be positive and even");
  require(model.d_inner > 0, "d_inner", "must be positive");
  require(model.d_embed == -1 || model.d_embed > 0, "d_embed", "must be positive or -1 (d_model)");
  require(model.div_val >= 1, "div_val", "must be >= 1");
  require(model.dropout >= 0 && model.dropout < 1, "dropout", "must be in [0, 1)");
  require(model.dropatt >= 0 && model.dropatt < 1, "dropatt", "must be in [0, 1)");
  require(model.attn_type >= 0 && model.attn_type <= 3, "attn_type",
          fmt::format("{} is not one of 0 (relative), 1 (learned relative), 2 (absolute sinusoids), 3 (learned "
                      "absolute)",
                      model.attn_type));
  require(model.sample_softmax <= 0 || model.tie_weight, "sample_softmax",
          "needs tie_weight: true (the sampled softmax scores with the input embedding, as the recipe asserts)");
  require(model.init.init_std > 0 && model.init.proj_init_std > 0 && model.init.init_range > 0, "init_std",
          "init_std, proj_init_std and init_range must be positive");

  require(!data.empty(), "data", "no corpus given (set data: PATH or --data PATH)");
  require(model.tgt_len > 0, "tgt_len", "must be positive");
  require(model.mem_len >= 0, "mem_len", "must be >= 0");
  require(model.ext_len >= 0, "ext_len", "must be >= 0");
  if (eval_tgt_len < 0) eval_tgt_len = model.tgt_len;
  require(eval_tgt_len > 0, "eval_tgt_len", "must be positive");
  require(eval_tgt_len <= model.tgt_len + model.mem_len, "eval_tgt_len",
          fmt::format("{} exceeds tgt_len + mem_len = {} (validation keeps the attention span, so its memory "
                      "length tgt_len + mem_len - eval_tgt_len would be negative)",
                      eval_tgt_len, model.tgt_len + model.mem_len));
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
  // A run that ends within the warm-up never reaches the cosine part (the recipe's
  // benchmark runs: a few steps of a preset with a long warm-up).
  if (scheduler == "cosine" && max_step >= warmup_step)
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
  require(!txtlog_file.empty() && txtlog_file.find('/') == std::string::npos, "txtlog_file",
          "must be a file name (it is written inside work_dir)");
  require(!dllog_file.empty() && dllog_file.find('/') == std::string::npos, "dllog_file",
          "must be a file name (it is written inside work_dir)");
  require_one_of(affinity, "affinity",
                 {"disabled", "single", "single_unique", "socket", "socket_unique_interleaved",
                  "socket_unique_continuous"});
}

void TrainConfig::resolve_recipe_options() {
  require_one_of(vocab, "vocab", {"word", "bpe"});
  require_one_of(amp, "amp", {"apex", "pytorch"});
  require_one_of(apex_amp_opt_level, "apex_amp_opt_level", {"O0", "O1", "O2", "O3"});
  if (fp16 && amp == "apex") {
    require(apex_amp_opt_level != "O3", "apex_amp_opt_level",
            "O3 (pure float16 without float32 master weights) is not available; txl's fp16 keeps float32 master "
            "weights like O1/O2: use --apex_amp_opt_level O2 or --amp pytorch");
    if (apex_amp_opt_level == "O0") {
      fp16 = false;  // apex's O0 trains in float32
      notes.push_back("fp16 with apex opt level O0 is float32 training (as in apex): precision fp32");
    } else {
      notes.push_back(fmt::format(
          "fp16 with apex {}: txl's fp16 mode (float16 GEMM operands, float32 master weights, dynamic loss scaling; "
          "docs/gpu.md)",
          apex_amp_opt_level));
    }
  } else if (fp16) {
    notes.push_back("fp16 with amp pytorch: txl's fp16 mode (float16 GEMM operands, float32 master weights, dynamic "
                    "loss scaling; docs/gpu.md)");
  }
  if (!multi_gpu.empty()) {
    require_one_of(multi_gpu, "multi_gpu", {"ddp", "dp"});
    if (multi_gpu == "ddp")
      notes.push_back("multi_gpu ddp: txl trains data parallel over its MPI ranks (start one rank per GPU with mpirun "
                      "or srun; docs/distributed.md)");
    else
      notes.push_back("multi_gpu dp: txl has no single-process multi-GPU mode; this run is data parallel over its MPI "
                      "ranks instead (same global batch and gradients); start one rank per GPU with mpirun or srun");
  }
  if (gpu0_bsz >= 0)
    notes.push_back(fmt::format("gpu0_bsz {} ignored: it sizes GPU 0's share in the recipe's dp mode; txl gives every "
                                "rank batch_size / ranks streams",
                                gpu0_bsz));
  if (swap_mem)
    notes.push_back(device == "cuda"
                        ? "swap_mem: between steps each layer's memory is kept in pinned host memory and copied to "
                          "the GPU when a step needs it (same results, less device memory)"
                        : "swap_mem: no effect on CPU runs (the memory is in host memory already)");
  if (local_rank != 0)
    notes.push_back(fmt::format("local_rank {} ignored: MPI or SLURM give each rank its number", local_rank));
  if (emb_init != "normal" || emb_init_range != 0.01)
    notes.push_back("emb_init / emb_init_range have no effect (the recipe's initialisation does not read them either)");
  require(!clip_nonemb, "clip_nonemb",
          "clipping only the non-embedding gradients is not implemented; txl clips the norm of all gradients "
          "(clip_nonemb: false)");
}

ModelConfig TrainConfig::model_config(int64_t n_token, const std::vector<int64_t>& recommended_cutoffs,
                                      const std::string& corpus_kind) const {
  ModelConfig m = model;
  m.n_token = n_token;
  if (!adaptive) m.cutoffs.clear();
  else if (m.cutoffs.empty()) m.cutoffs = recommended_cutoffs;
  if (m.tie_projs.empty()) {
    // The recipe ties the tail projections for WikiText-103 only.
    m.tie_projs.assign(m.cutoffs.size() + 1, false);
    if (corpus_kind == "wt103")
      for (size_t c = 1; c < m.tie_projs.size(); ++c) m.tie_projs[c] = true;
  }
  try {
    m.validate();
  } catch (const Error& e) {
    failf("config: {}", e.what());
  }
  return m;
}

}  // namespace txl
