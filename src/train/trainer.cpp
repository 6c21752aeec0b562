#include "txl/train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "txl/convert/checkpoint_vocabulary.h"
#include "txl/core/fault_point.h"
#include "txl/dist/world.h"
#if defined(TXL_WITH_CUDA)
#include "txl/cuda/nccl_communicator.h"
#endif
#include "txl/train/backend.h"
#include "txl/train/stop_signal.h"

namespace txl {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

const std::string kRule(100, '-');
const std::string kDoubleRule(100, '=');

// The keys a resumed job must share with the checkpoint for its data order and dropout
// masks to continue exactly.
void check_same_data_order(const TrainConfig& now, const TrainConfig& saved, const std::string& path) {
  auto same = [&](const char* key, auto a, auto b) {
    if (a != b)
      failf("restart: {}: {} is {} in the checkpoint but {} now (the run could not continue where it stopped)", path,
            key, b, a);
  };
  same("batch_size", now.batch_size, saved.batch_size);
  same("tgt_len", now.model.tgt_len, saved.model.tgt_len);
  same("ext_len", now.model.ext_len, saved.model.ext_len);
  same("roll", now.roll, saved.roll);
  same("varlen", now.varlen, saved.varlen);
  same("seed", now.seed, saved.seed);
}

// The memory of validation and the final test: the recipe keeps the training attention
// span (mem_len + tgt_len - eval_tgt_len), except for a model trained without memory,
// which it evaluates without memory too (it lengthens ext_len instead, which without
// memory changes nothing).
int64_t validation_mem_len(const TrainConfig& c) {
  return c.model.mem_len == 0 ? 0 : c.model.mem_len + c.model.tgt_len - c.eval_tgt_len;
}

}  // namespace

Trainer::Trainer(const TrainConfig& cfg, const std::string& eval_config_yaml, const std::string& restart_path,
                 Communicator& comm)
    : cfg_(cfg), comm_(&comm), scaler_([&] {
        LossScalerOptions o;
        o.enabled = cfg.precision == "fp16";
        return o;
      }()) {
  const int world = comm.size(), rank = comm.rank();
  TXL_CHECK(cfg_.batch_size % (static_cast<int64_t>(world) * cfg_.batch_chunk) == 0,
            "config: batch_size {} is not divisible by ranks x batch_chunk = {} x {}", cfg_.batch_size, world,
            cfg_.batch_chunk);
  ops_ = make_backend(cfg_.device, cfg_.precision, comm.local_rank());
#if defined(TXL_WITH_CUDA)
  // GPU ranks all-reduce device buffers with NCCL (host buffers still go through MPI).
  if (cfg_.device == "cuda" && comm.size() > 1) {
    device_comm_ = make_nccl_communicator(comm, *ops_);
    comm_ = device_comm_.get();
  }
#endif
  corpus_.emplace(data::CorpusFile::open(cfg_.data));
  if (!cfg_.dataset.empty() && cfg_.dataset != corpus_->dataset())
    failf("config: dataset: '{}' but {} holds the '{}' corpus", cfg_.dataset, cfg_.data, corpus_->dataset());
  if (cfg_.vocab == "bpe" && corpus_->vocab_kind() != "bpe")
    failf("config: vocab: bpe but {} has a '{}' vocabulary (prepare it with txl_prep --vocab bpe)", cfg_.data,
          corpus_->vocab_kind());
  for (const char* split : {"train", "valid"})
    if (!corpus_->has_split(split)) failf("{}: the corpus has no '{}' split", cfg_.data, split);
  // The test split is read only after training: check it now, not after hours of work.
  if (corpus_->has_split("test")) corpus_->check_split("test");
  std::optional<TrainingCheckpoint> ckpt;
  if (!restart_path.empty()) {
    // The corpus first: a model of another corpus fails later checks less clearly.
    ckpt.emplace(TrainingCheckpoint::open(restart_path));
    const std::string saved_checksum = ckpt->info().corpus_checksum;
    // A converted recipe checkpoint names no corpus but carries its vocabulary.
    if (saved_checksum.empty() && has_checkpoint_vocabulary(ckpt->file()))
      check_same_symbols(read_checkpoint_vocabulary(ckpt->file()).vocabulary, corpus_->vocabulary(),
                         "restart: " + restart_path + " vocabulary", cfg_.data);
    else if (saved_checksum != corpus_->checksum())
      failf("restart: {} was trained on another corpus (checksum {}) than data: {} ({})", restart_path,
            saved_checksum, cfg_.data, corpus_->checksum());
  }

  model_cfg_ = cfg_.model_config(corpus_->n_token(), corpus_->cutoffs(), corpus_->dataset());
  model_ = std::make_unique<TransformerXL<float>>(model_cfg_, *ops_);
  step_scalars_ = std::make_unique<DeviceStepScalars>(*ops_);
  optimizer_ = make_optimizer<float>({cfg_.optim, cfg_.weight_decay, cfg_.mom}, model_->params(), *ops_);
  ScheduleSettings ss;
  ss.kind = cfg_.scheduler;
  ss.lr = cfg_.lr;
  ss.warmup_step = cfg_.warmup_step;
  ss.max_step = cfg_.scheduler_max_step();
  ss.eta_min = cfg_.eta_min;
  ss.decay_rate = cfg_.decay_rate;
  ss.lr_min = cfg_.lr_min;
  ss.patience = cfg_.patience;
  scheduler_ = std::make_unique<LrScheduler>(ss);

  const int64_t local = cfg_.local_batch(world);
  layout_ = MemoryLayout{cfg_.batch_size, rank * local, cfg_.chunk_batch(world)};
  TrainConfig stored = cfg_;
  stored.restart.clear();
  info_.config_yaml = yaml_to_text(config_to_yaml(stored, train_config_keys()));
  info_.eval_config_yaml = eval_config_yaml;
  info_.corpus_checksum = corpus_->checksum();
  info_.dataset = corpus_->dataset();
  info_.seed = cfg_.seed;

  if (ckpt) {
    const CheckpointInfo saved_info = ckpt->info();
    TrainConfig saved;
    apply_section(saved, train_config_keys(), YAML::Load(saved_info.config_yaml), restart_path + " [config]");
    check_same_data_order(cfg_, saved, restart_path);
    ckpt->load_model(*model_);
    ckpt->load_optimizer(*optimizer_);
    state_ = ckpt->state();
    scheduler_->set_plateau(state_.plateau);
    if (scaler_.enabled()) scaler_.load(state_.loss_scale);
    memories_ = ckpt->load_memories(layout_, cfg_.batch_chunk, *ops_);
    restarted_ = true;
    restart_path_ = restart_path;
    restart_not_carried_ = ckpt->not_carried_over();
  } else {
    model_->init_params(static_cast<uint64_t>(cfg_.seed));
    memories_.resize(static_cast<size_t>(cfg_.batch_chunk));
    state_.plateau = scheduler_->plateau();
  }
  model_->set_lengths(cfg_.model.tgt_len, cfg_.model.ext_len, cfg_.model.mem_len, cfg_.model.same_length,
                      cfg_.model.clamp_len);
  // swap_mem: on the GPU the memories wait for their next step in pinned host memory (on
  // the CPU they are host memory already: the option changes nothing there).
  if (cfg_.swap_mem && ops_->device() == Device::kCUDA)
    for (int64_t c = 0; c < cfg_.batch_chunk; ++c) memory_swaps_.emplace_back(*ops_);
  // Every replica starts from rank 0's parameters (fresh or restored) and reads the same
  // corpus file: a rank with another file would silently train on other data. (The host
  // communicator checks the text; comm_ may be NCCL, which moves device buffers.)
  require_same_on_all_ranks(comm, "corpus file (checksum)", corpus_->checksum());
  Tensor<float>& flat_params = model_->params().flat_params();
  comm_->broadcast(flat_params.data(), flat_params.bytes(), 0);
  reducer_ = make_grad_reducer(*comm_, model_->params(), cfg_.bucket_mb);

  data::IteratorOptions topt;
  topt.seed = static_cast<uint64_t>(cfg_.seed);
  topt.roll = cfg_.roll;
  topt.varlen = cfg_.varlen;
  topt.ext_len = cfg_.model.ext_len;
  topt.shuffle = true;
  train_iter_ = data::make_batch_iterator(*corpus_, "train", cfg_.batch_size, world, rank, cfg_.model.tgt_len, topt);
  if (restarted_) train_iter_->seek(state_.position);
  else train_iter_->start_epoch(0);
  state_.position = train_iter_->position();

  data::IteratorOptions vopt;
  vopt.warmup_mem_len = validation_mem_len(cfg_);
  vopt.ext_len = cfg_.model.ext_len;
  valid_iter_ = data::make_batch_iterator(*corpus_, "valid", cfg_.eval_batch_size, world, rank, cfg_.eval_tgt_len, vopt);
  flops_per_token_ = model_->flops_per_token_fwd(layout_.chunk_batch);
}

Trainer::~Trainer() = default;

void Trainer::open_work_dir() {
  const bool writer = comm_->rank() == 0;
  if (cfg_.debug) {  // the recipe's debug mode: nothing on disk, the console log only
    if (writer) log_ = RunLog("", "", true);
    return;
  }
  const std::string text_log = (fs::path(cfg_.work_dir) / cfg_.txtlog_file).string();
  const std::string metrics = (fs::path(cfg_.work_dir) / "train_log.jsonl").string();
  const std::string dllog = (fs::path(cfg_.work_dir) / cfg_.dllog_file).string();
  if (writer) {
    std::error_code ec;
    fs::create_directories(cfg_.work_dir, ec);
    if (ec) failf("work_dir: cannot create {}: {}", cfg_.work_dir, ec.message());
    // Temporaries of checkpoints a killed job was writing (never a complete checkpoint).
    for (const auto& entry : fs::directory_iterator(cfg_.work_dir)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("checkpoint_", 0) == 0 && name.find(".h5.tmp.") != std::string::npos)
        h5::remove_quietly(entry.path().string());
    }
    if (restarted_) {
      truncate_metrics_after(metrics, state_.step);
      truncate_dllogger_after(dllog, state_.step);
    }
  }
  comm_->barrier();
  // As the recipe: with log_all_ranks every rank (0 too) writes train_log_rank_<r>.log.
  if (cfg_.log_all_ranks) {
    log_ = RunLog((fs::path(cfg_.work_dir) / fmt::format("train_log_rank_{}.log", comm_->rank())).string(),
                  writer ? metrics : "", true, comm_->rank());
  } else if (writer) {
    log_ = RunLog(text_log, metrics, true);
  }
  if (writer) dllog_ = DlLogger(dllog);
}

std::string Trainer::describe_start() const {
  int64_t n_params = model_->params().total_numel();
  return fmt::format("model: {} parameters, {} layers, d_model {} | corpus {} ({}, vocabulary {}) | backend {}",
                     n_params, model_cfg_.n_layer, model_cfg_.d_model, cfg_.data, corpus_->dataset(),
                     corpus_->n_token(), ops_->name());
}

TrainOutcome Trainer::run() {
  const std::string world_line = describe_world(*comm_);  // collective
  open_work_dir();
  install_stop_handlers();
  log_start(world_line);

  TrainOutcome outcome;
  const double train_start = now_seconds();
  interval_start_ = train_start;
  if (!train_until_max_step(outcome)) return outcome;  // a stop signal ended the run
  check_steps_finite();
  if (!cfg_.no_eval && state_.last_eval_step != state_.step) validate_and_checkpoint();
  const double train_elapsed = now_seconds() - train_start;
  log_.line(kRule);
  log_.line("End of training");
  outcome.steps = state_.step;
  outcome.best_val_loss = state_.best_val_loss;
  if (!cfg_.no_test && corpus_->has_split("test")) evaluate_test_split(outcome);
  report_summary(outcome, train_elapsed);
  return outcome;
}

// The resolved configuration, notes, the world and the start, as the log's header; the
// config record of the metrics file and DLLogger's parameter dump.
void Trainer::log_start(const std::string& world_line) {
  log_.line(kDoubleRule);
  log_.line("| txl_train: resolved configuration");
  for (const auto& key : train_config_keys())
    log_.line(fmt::format("|     {} : {}", key.name, yaml_inline(key.value(cfg_))));
  log_.line(kDoubleRule);
  for (const std::string& note : cfg_.notes) log_.line("| " + note);
  if (cfg_.debug) log_.line("| debug: no work_dir, log files or checkpoints are written");
  log_.line(fmt::format("| {} | {}", world_line, describe_start()));
  if (restarted_)
    log_.line(fmt::format("| resumed from {} at step {} (epoch {}, batch {})", restart_path_, state_.step,
                          state_.position.epoch + 1, state_.position.batch));
  for (const std::string& note : start_notes_) log_.line("| " + note);
  complete_interrupted_copies();
  for (const std::string& gap : restart_not_carried_) log_.line("| not carried over from the recipe: " + gap);
  json config_record = {{"type", "config"}, {"step", state_.step}, {"world", comm_->size()},
                        {"parameters", model_->params().total_numel()}, {"restart", restart_path_}};
  config_record["config_yaml"] = info_.config_yaml;
  log_.metrics(config_record);
  dllog_.log("PARAMETER", parameter_data(train_config_keys(), cfg_));
  for (const auto& [metric, unit] : std::vector<std::pair<const char*, const char*>>{
           {"train_throughput", "tokens/s"}, {"train_elapsed", "min"}, {"valid_elapsed", "min"},
           {"train_perplexity", ""}, {"valid_perplexity", ""}, {"train_loss", ""}, {"valid_loss", ""}})
    dllog_.metadata(metric, unit);
}

// Steps until max_step, with validations and checkpoints on the way. False when a stop
// signal ended the run (after saving, so --restart continues it).
bool Trainer::train_until_max_step(TrainOutcome& outcome) {
  int64_t batches_this_epoch = state_.position.batch;
  while (state_.step < cfg_.max_step) {
    data::Batch batch;
    if (!train_iter_->next(batch)) {
      if (batches_this_epoch == 0)
        failf("{}: the train split gives no batch of batch_size {} x tgt_len {}", cfg_.data, cfg_.batch_size,
              cfg_.model.tgt_len);
      // The memories carry over into the next epoch, as the recipe's do (it keeps one
      // memory per chunk for the whole run; tests/golden/golden_trajectory_test.cpp).
      train_iter_->start_epoch(train_iter_->position().epoch + 1);
      batches_this_epoch = 0;
      continue;
    }
    ++batches_this_epoch;
    train_step(batch);
    state_.position = train_iter_->position();
    if (state_.step % cfg_.log_interval == 0) log_interval_line();
    bool saved = false;
    if (!cfg_.no_eval && cfg_.eval_interval > 0 && state_.step % cfg_.eval_interval == 0) {
      validate_and_checkpoint();
      saved = true;
    }
    if (after_step_) after_step_(state_.step);
    if (stop_agreed()) {
      check_steps_finite();  // (save_last checks too; debug mode writes nothing)
      if (cfg_.debug) {
        log_.line(fmt::format("| stop signal: finished step {}; debug mode writes no checkpoint", state_.step));
      } else {
        if (!saved) save_last();
        log_.line(fmt::format("| stop signal: finished step {}, wrote {}; continue with --restart {}", state_.step,
                              (fs::path(cfg_.work_dir) / "checkpoint_last.h5").string(), cfg_.work_dir));
      }
      log_.metrics({{"type", "stop"}, {"step", state_.step}});
      outcome.stopped_by_signal = true;
      outcome.steps = state_.step;
      outcome.best_val_loss = state_.best_val_loss;
      return false;
    }
  }
  return true;
}

// The test split with the best checkpoint (rank 0 reads it and broadcasts); without one
// (no_eval, debug) with the model as trained.
void Trainer::evaluate_test_split(TrainOutcome& outcome) {
  const bool char_level = corpus_->char_level();
  const std::string best = (fs::path(cfg_.work_dir) / "checkpoint_best.h5").string();
  double have_best = 0.0;
  if (comm_->rank() == 0 && !cfg_.debug && !cfg_.no_eval && fs::exists(best)) {
    TrainingCheckpoint::open(best).load_model(*model_);
    have_best = 1.0;
  }
  comm_->broadcast(&have_best, sizeof(have_best), 0);
  if (have_best > 0 && comm_->size() > 1) {
    Tensor<float>& flat = model_->params().flat_params();
    comm_->broadcast(flat.data(), flat.bytes(), 0);
  }
  data::IteratorOptions vopt;
  vopt.warmup_mem_len = validation_mem_len(cfg_);
  vopt.ext_len = cfg_.model.ext_len;
  auto test_iter = data::make_batch_iterator(*corpus_, "test", cfg_.eval_batch_size, comm_->size(), comm_->rank(),
                                             cfg_.eval_tgt_len, vopt);
  const EvalResult r = run_validation(*test_iter, -1);
  outcome.test_loss = r.loss();
  outcome.test_seconds = r.seconds;
  log_.line(kDoubleRule);
  log_.line(format_end_line(r.seconds, r.loss(), char_level));
  log_.line(kDoubleRule);
  json rec = {{"type", "test"}, {"step", state_.step}, {"loss", r.loss()}, {"tokens", r.tokens},
              {"time", r.seconds}, {"checkpoint", have_best > 0 ? best : std::string("last model")}};
  const LossMetric metric = loss_metric(r.loss(), char_level);
  rec[metric.name] = metric.value;
  log_.metrics(rec);
}

// The summary lines (training time, throughput, final metric), DLLogger's summary and
// the recipe's benchmark targets (which set the exit code).
void Trainer::report_summary(TrainOutcome& outcome, double train_elapsed) {
  const bool char_level = corpus_->char_level();
  if (throughputs_.size() > 1) {
    double s = 0;
    for (size_t i = 1; i < throughputs_.size(); ++i) s += throughputs_[i];
    outcome.throughput = s / static_cast<double>(throughputs_.size() - 1);
  } else if (!throughputs_.empty()) {
    outcome.throughput = throughputs_.front();
  }
  const double final_loss = outcome.test_loss.value_or(state_.best_val_loss);
  const LossMetric final_metric = loss_metric(final_loss, char_level);
  // A run resumed at its last step logs no training interval: no throughput to report.
  const std::string throughput_text =
      throughputs_.empty() ? "n/a (no steps run)" : fmt::format("{:.2f} tok/s", outcome.throughput);
  log_.line(format_training_time_line(train_elapsed));
  log_.line(fmt::format("Training throughput: {}", throughput_text));
  log_.line(fmt::format("| final {} {} {:.3f}", outcome.test_loss ? "test" : "valid", final_metric.name,
                        final_metric.value));
  nlohmann::ordered_json dl_summary = nlohmann::ordered_json::object();
  if (outcome.test_loss) {
    dl_summary["test_elapsed"] = outcome.test_seconds;
    dl_summary["test_loss"] = *outcome.test_loss;
    if (char_level) dl_summary["test_bits_per_character"] = bits_per_character(*outcome.test_loss);
    else dl_summary["test_perplexity"] = perplexity(*outcome.test_loss);
  }
  dl_summary["train_throughput"] = outcome.throughput;
  dl_summary["train_elapsed"] = train_elapsed / 60.0;
  dl_summary["train_loss"] = last_interval_loss_;
  dl_summary["valid_loss"] = state_.best_val_loss;
  dl_summary["valid_perplexity"] = perplexity(state_.best_val_loss);
  dllog_.log(nlohmann::ordered_json::array(), dl_summary);
  json summary = {{"type", "summary"}, {"step", state_.step}, {"throughput", outcome.throughput},
                  {"best_val_loss", state_.best_val_loss}, {"final_loss", final_loss}, {final_metric.name, final_metric.value}};
  // The recipe's benchmark: exp(best validation loss) against target_perplexity (for
  // characters too), the mean throughput against target_throughput; a target without
  // a measurement (no validation ran) is not checked.
  const bool validated = state_.eval_count > 0;
  if (cfg_.target_perplexity > 0 && validated) {
    const double best_ppl = perplexity(state_.best_val_loss);
    log_.line(fmt::format("Perplexity achieved: {:.2f} target: {:.2f}", best_ppl, cfg_.target_perplexity));
    const bool passed = best_ppl <= cfg_.target_perplexity;
    log_.line(passed ? "Perplexity test passed" : "Perplexity test failed");
    if (!passed) outcome.exit_code = kExitTargetMissed;
  } else if (cfg_.target_perplexity > 0) {
    log_.line("| benchmark: target_perplexity not checked: no validation ran (no_eval)");
  }
  if (cfg_.target_throughput > 0) {
    log_.line(fmt::format("Throughput achieved: {:.2f} target: {:.2f}", outcome.throughput, cfg_.target_throughput));
    const bool passed = outcome.throughput >= cfg_.target_throughput;
    log_.line(passed ? "Throughput test passed" : "Throughput test failed");
    if (!passed) outcome.exit_code = kExitTargetMissed;
  }
  summary["passed"] = outcome.exit_code == kExitOk;
  log_.metrics(summary);
}

void Trainer::train_step(const data::Batch& b) {
  // Data rows: b.ext rows of extended context, then the len rows whose targets count.
  const int64_t chunks = cfg_.batch_chunk, cb = layout_.chunk_batch, len = b.len, rows = b.ext + b.len;
  TXL_CHECK(b.n_streams == cb * chunks, "training: batch has {} streams, expected {} x {}", b.n_streams, chunks, cb);
  ++state_.step;
  Ops<float>& ops = *ops_;
  // No zero_grad: the gradients are zero here (ParamStore::allocate zeroes them, and the
  // previous step's optimizer cleared them as it consumed them).
  ensure(ops, dnll_, Shape{len, cb});
  ensure(ops, chunk_loss_sums_, Shape{chunks});
  const double loss_scale = scaler_.enabled() ? scaler_.scale() : 1.0;
  // d(loss)/d(nll): the step loss is the mean over the step's tokens, each chunk's mean
  // divided by batch_chunk (docs/training.md §4); the loss scale (fp16) multiplies it.
  ops.fill(dnll_.data(), dnll_.numel(), static_cast<float>(loss_scale / static_cast<double>(len * cb * chunks)));

  StepContext ctx;
  ctx.train = true;
  ctx.seed = static_cast<uint64_t>(cfg_.seed);
  ctx.step = static_cast<uint64_t>(state_.step);
  ctx.batch_global = cfg_.batch_size;
  ctx.ext_rows = b.ext;
  for (int64_t c = 0; c < chunks; ++c) {
    const int32_t* data = b.data.data();
    const int32_t* target = b.target.data();
    if (chunks > 1) {  // columns [c*cb, (c+1)*cb) of the time-major [len, local] batch
      chunk_data_.resize(static_cast<size_t>(rows * cb));
      chunk_target_.resize(static_cast<size_t>(len * cb));
      for (int64_t t = 0; t < rows; ++t)
        for (int64_t j = 0; j < cb; ++j)
          chunk_data_[static_cast<size_t>(t * cb + j)] = b.data[static_cast<size_t>(t * b.n_streams + c * cb + j)];
      for (int64_t t = 0; t < len; ++t)
        for (int64_t j = 0; j < cb; ++j)
          chunk_target_[static_cast<size_t>(t * cb + j)] = b.target[static_cast<size_t>(t * b.n_streams + c * cb + j)];
      data = chunk_data_.data();
      target = chunk_target_.data();
    }
    ctx.batch_offset = layout_.first_stream + c * cb;
    Memory<float>& mem = memories_[static_cast<size_t>(c)];
    if (!memory_swaps_.empty()) memory_swaps_[static_cast<size_t>(c)].to_device(mem);
    const Tensor<float>& nll = model_->forward(data, target, rows, cb, mem, ctx);
    // The forward pass wrote the new memory; the backward pass does not read it.
    if (!memory_swaps_.empty()) memory_swaps_[static_cast<size_t>(c)].to_host(mem);
    ops.sum_to_device(nll.data(), nll.numel(), chunk_loss_sums_.data() + c);
    reducer_->begin(c == chunks - 1);
    model_->backward(dnll_, [this](int id) { reducer_->on_grad_ready(id); });
  }
  reducer_->finish();

  // Gradients now hold the sum over ranks (of loss_scale x local mean gradients). The
  // step's loss, its interval sum and (without fp16 scaling) a non-finite loss are
  // recorded on the device; a recorded step is not applied by the optimizer, and the
  // host reports it at the next log line or checkpoint (check_steps_finite).
  StepLossArgs la;
  la.chunks = chunks;
  la.tokens_per_chunk = len * cb;
  la.step = state_.step;
  la.new_interval = interval_steps_ == 0;
  la.check_finite = !scaler_.enabled();
  ops.step_loss_update(chunk_loss_sums_.data(), la, step_scalars_->data());
  if (before_update_) before_update_(state_.step);
  last_step_lr_ = scheduler_->lr_for_step(state_.step);
  clip_and_step(ops, model_->params(), *optimizer_, scaler_, comm_->size(), cfg_.clip, last_step_lr_, state_.step,
                *step_scalars_);

  ++interval_steps_;
  interval_tokens_ += len * cfg_.batch_size;  // every rank steps through the same len
}

double Trainer::last_step_loss() const { return step_scalars_->read(*ops_).loss; }

StepScalarValues Trainer::check_steps_finite() {
  const StepScalarValues v = step_scalars_->read(*ops_);
  require_finite_steps(v);
  return v;
}

void Trainer::log_interval_line() {
  const StepScalarValues scalars = check_steps_finite();  // the interval's one host read
  const double elapsed = now_seconds() - interval_start_;
  double loss_sum = scalars.interval_loss;
  comm_->allreduce_sum(&loss_sum, 1);
  const double loss = loss_sum / static_cast<double>(comm_->size()) / static_cast<double>(interval_steps_);
  const double tok_per_s = static_cast<double>(interval_tokens_) / elapsed;
  throughputs_.push_back(tok_per_s);
  TrainLogLine l;
  l.epoch = state_.position.epoch + 1;
  l.step = state_.step;
  l.batch = state_.position.batch;
  l.n_batch = train_iter_->n_batch();
  l.lr = scheduler_->lr_for_step(state_.step + 1);  // as the recipe logs: the rate after this step's update
  l.ms_per_batch = 1000.0 * elapsed / static_cast<double>(interval_steps_);
  l.tok_per_s = tok_per_s;
  l.loss = loss;
  l.char_level = corpus_->char_level();
  const double mfu = cfg_.peak_tflops > 0 ? 3.0 * flops_per_token_ * tok_per_s /
                                                (cfg_.peak_tflops * 1e12 * static_cast<double>(comm_->size()))
                                          : -1.0;
  log_.line(format_train_line(l));
  if (mfu >= 0) log_.line(fmt::format("| MFU {:4.1f}% at step {} (peak_tflops {} per device)", 100.0 * mfu, l.step,
                                      cfg_.peak_tflops));
  last_interval_loss_ = loss;
  nlohmann::ordered_json dl = {{"epoch", l.epoch},
                               {"train_batch", l.batch},
                               {"lr", l.lr},
                               {"train_time/batch", l.ms_per_batch},
                               {"train_throughput", tok_per_s},
                               {"train_loss", loss}};
  if (l.char_level) dl["train_bits_per_character"] = bits_per_character(loss);
  else dl["train_perplexity"] = perplexity(loss);
  dllog_.log(nlohmann::ordered_json::array({l.step}), dl);
  json rec = {{"type", "train"},         {"step", l.step},         {"epoch", l.epoch},
              {"batch", l.batch},        {"n_batch", l.n_batch},   {"lr", l.lr},
              {"ms_per_batch", l.ms_per_batch}, {"tok_per_s", tok_per_s}, {"loss", loss},
              {"grad_norm", scalars.grad_norm}};
  const LossMetric metric = loss_metric(loss, l.char_level);
  rec[metric.name] = metric.value;
  if (mfu >= 0) rec["mfu"] = mfu;
  else rec["mfu"] = nullptr;
  if (scaler_.enabled()) rec["loss_scale"] = scaler_.scale();
  log_.metrics(rec);
  interval_steps_ = 0;
  interval_tokens_ = 0;
  interval_start_ = now_seconds();
}

EvalResult Trainer::run_validation(data::BatchIterator& it, int64_t max_batches) {
  EvalSettings s;
  s.tgt_len = cfg_.eval_tgt_len;
  s.ext_len = cfg_.model.ext_len;
  s.mem_len = validation_mem_len(cfg_);
  s.same_length = cfg_.model.same_length;
  s.clamp_len = cfg_.model.clamp_len;
  s.max_batches = max_batches;
  const EvalResult r = evaluate(*model_, it, s, cfg_.eval_batch_size, *comm_);
  model_->set_lengths(cfg_.model.tgt_len, cfg_.model.ext_len, cfg_.model.mem_len, cfg_.model.same_length,
                      cfg_.model.clamp_len);
  return r;
}

void Trainer::validate_and_checkpoint() {
  TXL_CHECK(!cfg_.no_eval, "validation requested with no_eval");
  check_steps_finite();
  const EvalResult r = run_validation(*valid_iter_, cfg_.eval_max_steps);
  const double val_loss = r.loss();
  ++state_.eval_count;
  state_.last_eval_step = state_.step;
  scheduler_->on_validation(val_loss);
  state_.plateau = scheduler_->plateau();
  const bool best = val_loss < state_.best_val_loss;
  if (best) state_.best_val_loss = val_loss;
  const bool char_level = corpus_->char_level();
  log_.line(kRule);
  log_.line(format_eval_line(state_.eval_count, state_.step, r.seconds, val_loss, char_level));
  log_.line(kRule);
  json rec = {{"type", "eval"}, {"step", state_.step}, {"eval", state_.eval_count}, {"loss", val_loss},
              {"tokens", r.tokens}, {"time", r.seconds}, {"best", best}};
  const LossMetric metric = loss_metric(val_loss, char_level);
  rec[metric.name] = metric.value;
  log_.metrics(rec);
  nlohmann::ordered_json dl = {{"valid_elapsed", r.seconds}, {"valid_loss", val_loss}};
  if (char_level) dl["valid_bits_per_character"] = bits_per_character(val_loss);
  else dl["valid_perplexity"] = perplexity(val_loss);
  dllog_.log(nlohmann::ordered_json::array({state_.step}), dl);

  if (cfg_.debug) {  // nothing is written in debug mode
    interval_start_ = now_seconds();
    return;
  }
  save_last();
  const std::string last = (fs::path(cfg_.work_dir) / "checkpoint_last.h5").string();
  if (best) fault_point("checkpoint:best_pending");
  if (best) copy_checkpoint(last, (fs::path(cfg_.work_dir) / "checkpoint_best.h5").string(), *comm_);
  if (cfg_.save_all)
    copy_checkpoint(last, (fs::path(cfg_.work_dir) / fmt::format("checkpoint_{}.h5", state_.step)).string(), *comm_);
  interval_start_ = now_seconds();  // evaluation time is not training throughput
}

void Trainer::save_last() {
  check_steps_finite();  // never a checkpoint of a run whose loss or gradient blew up
  for (size_t c = 0; c < memory_swaps_.size(); ++c) memory_swaps_[c].to_device(memories_[c]);  // the checkpoint holds them
  state_.loss_scale = scaler_.state();
  state_.plateau = scheduler_->plateau();
  save_training_checkpoint((fs::path(cfg_.work_dir) / "checkpoint_last.h5").string(), *model_, *optimizer_, state_,
                           memories_, layout_, info_, *comm_);
}

// A job killed after it committed checkpoint_last.h5 of a new best validation but before
// its copy to checkpoint_best.h5 was committed (or to checkpoint_<step>.h5 with save_all)
// left the copy undone; the restarted run makes it first, so the work dir ends as an
// uninterrupted run's. The checkpoint it resumed from is the one to copy: it was written
// right after that validation (last_eval_step = step), and checkpoint_best.h5 is older
// and records another best loss (a validation that did not improve copies nothing).
void Trainer::complete_interrupted_copies() {
  if (!restarted_ || cfg_.debug || cfg_.no_eval || comm_->rank() != 0) return;
  if (state_.eval_count == 0 || state_.last_eval_step != state_.step) return;
  // Only a checkpoint --restart auto chose in this work dir (not another job's, not a
  // recipe .pt file).
  const fs::path work(cfg_.work_dir);
  const std::string last = (work / "checkpoint_last.h5").string();
  const std::string name = fs::path(restart_path_).filename().string();
  std::error_code ec;
  if (!fs::equivalent(fs::path(restart_path_).parent_path(), work, ec) ||
      (name != "checkpoint_last.h5" && name != fs::path(previous_checkpoint_path(last)).filename().string()))
    return;
  const std::string best = (work / "checkpoint_best.h5").string();
  bool best_behind = !fs::exists(best);
  if (!best_behind) {
    try {
      const TrainingState b = TrainingCheckpoint::open(best).state();
      best_behind = b.step < state_.step && b.best_val_loss != state_.best_val_loss;
    } catch (const Error& e) {
      log_.line(fmt::format("| restart: {} is unreadable, left as it is: {}", best, e.what()));
    }
  }
  const std::string why = fmt::format("the job that wrote {} at step {} stopped before copying it", restart_path_,
                                      state_.step);
  if (best_behind && std::isfinite(state_.best_val_loss)) {
    copy_checkpoint(restart_path_, best, *comm_);
    log_.line(fmt::format("| restart: copied to {} ({})", best, why));
  }
  const std::string numbered = (work / fmt::format("checkpoint_{}.h5", state_.step)).string();
  if (cfg_.save_all && !fs::exists(numbered)) {
    copy_checkpoint(restart_path_, numbered, *comm_);
    log_.line(fmt::format("| restart: copied to {} ({})", numbered, why));
  }
}

bool Trainer::stop_agreed() {
  double flag = stop_requested() ? 1.0 : 0.0;
  comm_->allreduce_sum(&flag, 1);  // every rank stops after the same step
  return flag > 0;
}

}  // namespace txl
