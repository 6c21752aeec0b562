// Training checkpoints (docs/training.md §6), one HDF5 file holding everything a job needs to go on
// exactly where it stopped:
//   /model/<parameter>            model_checkpoint.h (with the architecture attributes)
//   /optim/<parameter>/<state>    optimizer.h (attributes kind, steps)
//   /memory/layer_<L>             each layer's memory [mlen, batch_size, d_model] over the
//                                 GLOBAL batch (every rank's and chunk's streams), so a job
//                                 may resume with another rank count or batch_chunk
//   attributes of "/"             format version, step, epoch / batch / offset of the data
//                                 iterator, best validation loss, evaluations done,
//                                 dev_perf state, loss scale, seed, corpus checksum and
//                                 dataset, and the resolved configuration as YAML text
//                                 (`config`: train section, `eval_config`: eval section)
// Random state: dropout masks are Philox keyed by (seed, step, site) and the data order
// by (seed, epoch), so (seed, step, data position) is the whole random state.
// Rank 0 writes a temporary file, verifies it (every dataset read back through its
// checksums), moves the checkpoint it replaces to checkpoint_prev.h5 and renames the new
// one into place: a crash (even kill -9) at any point leaves a verified checkpoint under
// checkpoint_last.h5 or checkpoint_prev.h5 (docs/training.md §6).
#pragma once
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "txl/core/loss_scaler.h"
#include "txl/data/batch_iterator.h"
#include "txl/dist/communicator.h"
#include "txl/model/transformer_xl.h"
#include "txl/optim/lr_scheduler.h"
#include "txl/optim/optimizer.h"

namespace txl {

inline constexpr int64_t kCheckpointFormatVersion = 1;

struct TrainingState {
  int64_t step = 0;               // optimizer steps done
  data::StreamPosition position;  // the next training batch
  double best_val_loss = std::numeric_limits<double>::infinity();
  int64_t eval_count = 0;
  int64_t last_eval_step = 0;     // step of the last validation (0: none)
  LrScheduler::PlateauState plateau;
  DynamicLossScaler::State loss_scale;
};

struct CheckpointInfo {
  std::string config_yaml;       // resolved train section
  std::string eval_config_yaml;  // eval section of the preset (may be empty)
  std::string corpus_checksum;
  std::string dataset;
  int64_t seed = 0;
};

// Where this rank's training memories sit in the global batch: chunk c holds global
// streams [first_stream + c*chunk_batch, first_stream + (c+1)*chunk_batch).
struct MemoryLayout {
  int64_t batch_global = 0;
  int64_t first_stream = 0;
  int64_t chunk_batch = 0;
};

// Collective: every rank calls it (the memories are gathered); rank 0 writes `path`.
void save_training_checkpoint(const std::string& path, TransformerXL<float>& model, const Optimizer<float>& optimizer,
                              const TrainingState& state, const std::vector<Memory<float>>& memories,
                              const MemoryLayout& layout, const CheckpointInfo& info, Communicator& comm);

// Rank 0 copies `from` to `to` atomically (checkpoint_best from checkpoint_last).
void copy_checkpoint(const std::string& from, const std::string& to, Communicator& comm);

// checkpoint_last.h5 -> checkpoint_prev.h5 (other names: X.h5 -> X_prev.h5).
std::string previous_checkpoint_path(const std::string& path);

// Opens a checkpoint and reads all of it (datasets through their checksums, attributes,
// the model configuration); returns its step. Throws one line naming what is wrong.
int64_t verify_training_checkpoint(const std::string& path);

// The checkpoint a run continues from in a work dir: checkpoint_last.h5 when it verifies,
// else checkpoint_prev.h5. `notes` says what was passed over and why; `corrupt` lists the
// checkpoints that failed verification. nullopt: the work dir holds neither. Throws when
// there are checkpoints but none verifies.
struct RestartChoice {
  std::string path;
  std::vector<std::string> notes;
  std::vector<std::string> corrupt;
};
std::optional<RestartChoice> choose_restart_checkpoint(const std::string& work_dir);
// Renames a checkpoint that failed verification to PATH.corrupt (kept for inspection, and
// out of the way of the next rotation).
void set_aside_corrupt_checkpoint(const std::string& path);

// "X.h5" -> X.h5; a directory -> DIR/checkpoint_last.h5 (or the recipe's
// DIR/checkpoint_last.pt). Throws when it does not exist.
std::string resolve_checkpoint_path(const std::string& file_or_dir);

// A checkpoint opened read-only.
class TrainingCheckpoint {
 public:
  // A txl checkpoint (.h5), or a recipe checkpoint (.pt) converted in memory.
  static TrainingCheckpoint open(const std::string& path);
  const std::string& path() const { return file_.path(); }
  const h5::File& file() const { return file_; }

  CheckpointInfo info() const;
  // A converted recipe checkpoint: what the conversion could not carry over (one line each).
  std::vector<std::string> not_carried_over() const;
  TrainingState state() const;
  // The model's architecture and parameters; a checkpoint of another model is refused
  // with a message naming the first differing hyper-parameter.
  void load_model(TransformerXL<float>& model) const;
  void load_optimizer(Optimizer<float>& optimizer) const { optimizer.load(file_); }
  // This rank's chunk memories (empty memories when the checkpoint has none).
  std::vector<Memory<float>> load_memories(const MemoryLayout& layout, int64_t n_chunks, Ops<float>& ops) const;

 private:
  explicit TrainingCheckpoint(h5::File f) : file_(std::move(f)) {}
  h5::File file_;
};

}  // namespace txl
