// The training loop of txl_train (docs/training.md §4): data-parallel over the Communicator's ranks
// (global batch B, B/W streams per rank, batch_chunk chunks per rank each with its own
// memory), gradient all-reduce through the GradReducer, global-norm clipping, the
// optimizer and schedule of the configuration, periodic validation and checkpoints,
// clean stop on SIGTERM/SIGUSR1, and a final test evaluation of the best checkpoint.
//
// Construction does every check and loads everything (corpus, model, restart checkpoint)
// WITHOUT writing a file, so a start-up error leaves the work dir untouched; run() then
// creates the work dir and writes logs and checkpoints (rank 0 only).
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "txl/core/loss_scaler.h"
#include "txl/data/batch_iterator.h"
#include "txl/data/corpus.h"
#include "txl/dist/grad_reducer.h"
#include "txl/model/memory_swap.h"
#include "txl/model/transformer_xl.h"
#include "txl/train/dllogger.h"
#include "txl/train/evaluator.h"
#include "txl/optim/lr_scheduler.h"
#include "txl/optim/optimizer.h"
#include "txl/optim/update_step.h"
#include "txl/config/train_config.h"
#include "txl/train/train_log.h"
#include "txl/train/training_checkpoint.h"

namespace txl {

// Exit codes of txl_train / txl_eval.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitTargetMissed = 1;  // benchmark: target_throughput / target_perplexity missed (the recipe's 1)

struct TrainOutcome {
  int exit_code = kExitOk;
  bool stopped_by_signal = false;
  int64_t steps = 0;
  double best_val_loss = 0.0;
  std::optional<double> test_loss;
  double test_seconds = 0.0;  // wall time of the test evaluation
  double throughput = 0.0;  // mean tok/s of the logged intervals after the first
};

class Trainer {
 public:
  // `cfg` must be finalized for comm.size() ranks. `restart_path`: a checkpoint file to
  // continue from, or empty. `eval_config_yaml`: the preset's eval section, stored in
  // checkpoints for txl_eval.
  Trainer(const TrainConfig& cfg, const std::string& eval_config_yaml, const std::string& restart_path,
          Communicator& comm);
  ~Trainer();

  TrainOutcome run();

  // A line for the start of the run's log (after the resume line).
  void add_start_note(std::string line) { start_notes_.push_back(std::move(line)); }

  // Called after every optimizer step (tests use it to stop at a given step).
  void set_after_step(std::function<void(int64_t step)> fn) { after_step_ = std::move(fn); }
  // Called in every step between the backward pass (gradients all-reduced) and the
  // update, with the step (tests use it to inject a fault into the gradients).
  void set_before_update(std::function<void(int64_t step)> fn) { before_update_ = std::move(fn); }

  TransformerXL<float>& model() { return *model_; }
  const TrainingState& state() const { return state_; }
  // The last step's training loss on this rank (the mean over its tokens; read from the
  // device, so it synchronises) and the learning rate its update used.
  double last_step_loss() const;
  double last_step_lr() const { return last_step_lr_; }

 private:
  // The phases of run().
  void log_start(const std::string& world_line);
  bool train_until_max_step(TrainOutcome& outcome);
  void evaluate_test_split(TrainOutcome& outcome);
  void report_summary(TrainOutcome& outcome, double train_elapsed);
  void train_step(const data::Batch& batch);
  EvalResult run_validation(data::BatchIterator& it, int64_t max_batches);
  void validate_and_checkpoint();
  void save_last();
  void complete_interrupted_copies();
  bool stop_agreed();
  void log_interval_line();
  // Reads the device step scalars and stops the run (txl::Error naming the step) when a
  // step's loss or gradient was not finite: at every log line, before a validation or
  // checkpoint, and at the end of training.
  StepScalarValues check_steps_finite();
  void open_work_dir();
  std::string describe_start() const;

  TrainConfig cfg_;
  std::unique_ptr<Ops<float>> ops_;           // declared before what uses it (destroyed after)
  Communicator* comm_;                        // the job's, or device_comm_ for GPU ranks
  std::unique_ptr<Communicator> device_comm_;  // NCCL over the job's MPI communicator
  std::optional<data::CorpusFile> corpus_;
  ModelConfig model_cfg_;
  std::unique_ptr<TransformerXL<float>> model_;
  std::unique_ptr<Optimizer<float>> optimizer_;
  std::unique_ptr<LrScheduler> scheduler_;
  DynamicLossScaler scaler_;
  std::unique_ptr<GradReducer> reducer_;
  std::unique_ptr<data::BatchIterator> train_iter_, valid_iter_;
  std::vector<Memory<float>> memories_;
  std::vector<MemorySwap<float>> memory_swaps_;  // swap_mem on the GPU: one per chunk; else empty
  MemoryLayout layout_;
  CheckpointInfo info_;
  TrainingState state_;
  bool restarted_ = false;
  std::string restart_path_;
  std::vector<std::string> start_notes_;
  std::vector<std::string> restart_not_carried_;  // a converted recipe checkpoint's gaps
  RunLog log_;
  DlLogger dllog_;  // train_log.json (rank 0)
  double last_interval_loss_ = 0.0;  // the recipe's summary train_loss
  std::function<void(int64_t)> after_step_, before_update_;

  // per-step buffers
  std::vector<int32_t> chunk_data_, chunk_target_;
  Tensor<float> dnll_;
  Tensor<double> chunk_loss_sums_;  // device: each chunk's sum of token losses
  // The step's loss, interval loss, gradient norm and factor, and the first non-finite
  // step, on the device: a step does not wait on the host (read when logging).
  std::unique_ptr<DeviceStepScalars> step_scalars_;
  // log interval accumulators (the interval's loss sum is on the device)
  int64_t interval_steps_ = 0, interval_tokens_ = 0;
  double interval_start_ = 0.0;
  double last_step_lr_ = 0.0;
  std::vector<double> throughputs_;
  double flops_per_token_ = 0.0;
};

}  // namespace txl
