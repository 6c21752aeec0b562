#include "txl/train/training_checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "txl/core/fault_point.h"
#include "txl/convert/recipe_checkpoint.h"
#include "txl/model/model_checkpoint.h"

namespace txl {
namespace {

constexpr const char* kRoot = "/";

std::string layer_path(size_t layer) { return fmt::format("/memory/layer_{}", layer); }

// Makes a finished temporary checkpoint `tmp` the file `path`: flushes it, verifies it
// (so a write the disk garbled is never committed), then, when `keep_previous`, moves the
// checkpoint it replaces to previous_checkpoint_path(path) before renaming it into place.
// At every moment one verified checkpoint exists under the final names.
void verify_and_commit(const std::string& tmp, const std::string& path, bool keep_previous) {
  namespace fs = std::filesystem;
  fault_point("checkpoint:written");
  try {
    verify_training_checkpoint(tmp);
  } catch (const Error& e) {
    h5::remove_quietly(tmp);
    failf("checkpoint: the new {} did not verify, the previous one is kept: {}", path, e.what());
  }
  fault_point("checkpoint:verified");
  if (keep_previous && fs::exists(path)) {
    const std::string prev = previous_checkpoint_path(path);
    std::error_code ec;
    fs::rename(path, prev, ec);
    if (ec) {
      h5::remove_quietly(tmp);
      failf("checkpoint: cannot move {} to {}: {}", path, prev, ec.message());
    }
    fault_point("checkpoint:rotated");
  }
  h5::commit_temporary(tmp, path);
  fault_point("checkpoint:committed");
}

// Gathers layer `layer` of every rank's chunk memories into `global` [mlen, B, d] (every
// rank gets the whole tensor; zeros elsewhere make the sum a gather).
void gather_memory_layer(const std::vector<Memory<float>>& memories, size_t layer, const MemoryLayout& layout,
                         int64_t d_model, Tensor<float>& global, Ops<float>& ops, Communicator& comm) {
  const int64_t mlen = memories.front().mlen;
  ops.fill(global.data(), global.numel(), 0.0f);
  for (size_t c = 0; c < memories.size(); ++c) {
    const Tensor<float>& local = memories[c].layers.at(layer);
    const int64_t column = layout.first_stream + static_cast<int64_t>(c) * layout.chunk_batch;
    for (int64_t t = 0; t < mlen; ++t)
      ops.copy(global.data() + (t * layout.batch_global + column) * d_model,
               local.data() + t * layout.chunk_batch * d_model,
               static_cast<size_t>(layout.chunk_batch * d_model) * sizeof(float));
  }
  comm.allreduce_sum(global.data(), global.numel());
}

}  // namespace

void save_training_checkpoint(const std::string& path, TransformerXL<float>& model, const Optimizer<float>& optimizer,
                              const TrainingState& state, const std::vector<Memory<float>>& memories,
                              const MemoryLayout& layout, const CheckpointInfo& info, Communicator& comm) {
  Ops<float>& ops = model.ops();
  // Memories: every chunk has the same length and layer count (they step together).
  int64_t mlen = 0;
  size_t n_layers = 0;
  if (!memories.empty() && memories.front().mlen > 0) {
    mlen = memories.front().mlen;
    n_layers = memories.front().layers.size();
    for (const Memory<float>& m : memories)
      TXL_CHECK(m.mlen == mlen && m.layers.size() == n_layers && m.batch == layout.chunk_batch,
                "checkpoint: chunk memories differ in shape (mlen {} vs {})", m.mlen, mlen);
  }
  double mlen_all = static_cast<double>(mlen);  // every rank must agree (they run the same steps)
  comm.broadcast(&mlen_all, sizeof(mlen_all), 0);
  TXL_CHECK(static_cast<int64_t>(mlen_all) == mlen, "checkpoint: rank {} has memory length {}, rank 0 has {}",
            comm.rank(), mlen, static_cast<int64_t>(mlen_all));

  const bool writer = comm.rank() == 0;
  const std::string tmp = h5::temporary_path_for(path);
  try {
    std::optional<h5::File> file;
    if (writer) {
      file.emplace(h5::File::create(tmp));
      fault_point("checkpoint:created");
      save_model_params(*file, model.params(), model.config(), ops);
      fault_point("checkpoint:model");
      optimizer.save(*file);
    }
    if (mlen > 0) {
      const int64_t d_model = model.config().d_model;
      Tensor<float> global = ops.empty({mlen, layout.batch_global, d_model});
      std::vector<float> host;
      for (size_t l = 0; l < n_layers; ++l) {
        gather_memory_layer(memories, l, layout, d_model, global, ops, comm);
        if (writer) {
          host.resize(static_cast<size_t>(global.numel()));
          ops.download(host.data(), global.data(), global.bytes());
          file->write(layer_path(l), host.data(), global.shape());
        }
      }
    }
    if (writer) {
      h5::File& f = *file;
      f.set_attr(kRoot, "txl_checkpoint_format", kCheckpointFormatVersion);
      f.set_attr(kRoot, "step", state.step);
      f.set_attr(kRoot, "epoch", state.position.epoch);
      f.set_attr(kRoot, "batch", state.position.batch);
      f.set_attr(kRoot, "offset", state.position.offset);
      f.set_attr(kRoot, "best_val_loss", state.best_val_loss);
      f.set_attr(kRoot, "eval_count", state.eval_count);
      f.set_attr(kRoot, "last_eval_step", state.last_eval_step);
      f.set_attr(kRoot, "plateau_rate", state.plateau.rate);
      f.set_attr(kRoot, "plateau_best", state.plateau.best);
      f.set_attr(kRoot, "plateau_bad_evals", state.plateau.bad_evals);
      f.set_attr(kRoot, "loss_scale", state.loss_scale.scale);
      f.set_attr(kRoot, "loss_scale_clean_steps", state.loss_scale.clean_steps);
      f.set_attr(kRoot, "loss_scale_skipped_steps", state.loss_scale.skipped_steps);
      f.set_attr(kRoot, "memory_mlen", mlen);
      f.set_attr(kRoot, "memory_layers", static_cast<int64_t>(n_layers));
      f.set_attr(kRoot, "seed", info.seed);
      f.set_attr(kRoot, "rng", std::string("philox4x32-10 dropout keyed by (seed, step, site); data order by "
                                           "(seed, epoch) and the iterator position"));
      f.set_attr(kRoot, "corpus_checksum", info.corpus_checksum);
      f.set_attr(kRoot, "dataset", info.dataset);
      f.set_attr(kRoot, "config", info.config_yaml);
      f.set_attr(kRoot, "eval_config", info.eval_config_yaml);
      f.flush();
      file.reset();  // closed: verification reads it back
    }
  } catch (...) {
    if (writer) h5::remove_quietly(tmp);
    throw;
  }
  if (writer) verify_and_commit(tmp, path, true);
}

void copy_checkpoint(const std::string& from, const std::string& to, Communicator& comm) {
  if (comm.rank() != 0) return;
  const std::string tmp = h5::temporary_path_for(to);
  std::error_code ec;
  std::filesystem::copy_file(from, tmp, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) {
    h5::remove_quietly(tmp);
    failf("{}: cannot copy to {}: {}", from, to, ec.message());
  }
  fault_point("checkpoint:copied");
  verify_and_commit(tmp, to, false);
}

std::string previous_checkpoint_path(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  std::string stem = p.stem().string();
  const std::string last = "_last";
  if (stem.size() >= last.size() && stem.compare(stem.size() - last.size(), last.size(), last) == 0)
    stem.replace(stem.size() - last.size(), last.size(), "_prev");
  else
    stem += "_prev";
  return (p.parent_path() / (stem + p.extension().string())).string();
}

int64_t verify_training_checkpoint(const std::string& path) {
  const TrainingCheckpoint c = TrainingCheckpoint::open(path);
  c.file().verify_datasets();
  c.info();
  read_model_config(c.file());
  return c.state().step;
}

std::optional<RestartChoice> choose_restart_checkpoint(const std::string& work_dir) {
  namespace fs = std::filesystem;
  const std::string last = (fs::path(work_dir) / "checkpoint_last.h5").string();
  const std::string prev = previous_checkpoint_path(last);
  if (!fs::exists(last) && !fs::exists(prev)) return std::nullopt;
  RestartChoice choice;
  std::string problems;
  for (const std::string& candidate : {last, prev}) {
    if (!fs::exists(candidate)) {
      if (candidate == last) choice.notes.push_back(fmt::format("restart: {} is missing (a job died while "
                                                                "replacing it)", last));
      continue;
    }
    try {
      const int64_t step = verify_training_checkpoint(candidate);
      choice.path = candidate;
      if (candidate != last)
        choice.notes.push_back(fmt::format("restart: falling back to {} (step {}), the newest intact checkpoint",
                                           candidate, step));
      return choice;
    } catch (const Error& e) {
      choice.notes.push_back(fmt::format("restart: passing over {}: {}", candidate, e.what()));
      choice.corrupt.push_back(candidate);
      problems += fmt::format("{}{}", problems.empty() ? "" : "; ", e.what());
    }
  }
  failf("restart: {} holds no intact checkpoint ({}); restore one, or move them away to start afresh", work_dir,
        problems);
}

void set_aside_corrupt_checkpoint(const std::string& path) {
  std::error_code ec;
  std::filesystem::rename(path, path + ".corrupt", ec);
  if (ec) failf("restart: cannot rename the corrupt {} to {}.corrupt: {}", path, path, ec.message());
}

std::string resolve_checkpoint_path(const std::string& file_or_dir) {
  namespace fs = std::filesystem;
  if (fs::is_directory(file_or_dir)) {
    const std::string p = (fs::path(file_or_dir) / "checkpoint_last.h5").string();
    if (fs::exists(p)) return p;
    // A recipe work_dir (docs/recipe-users.md).
    const std::string recipe = (fs::path(file_or_dir) / "checkpoint_last.pt").string();
    if (fs::exists(recipe)) return recipe;
    failf("restart: {} holds no checkpoint_last.h5 (nor a recipe checkpoint_last.pt)", file_or_dir);
  }
  if (!fs::exists(file_or_dir)) failf("restart: {}: no such checkpoint file or directory", file_or_dir);
  return file_or_dir;
}

TrainingCheckpoint TrainingCheckpoint::open(const std::string& path) {
  // A recipe checkpoint (PyTorch zip) is converted in memory (docs/recipe-users.md).
  h5::File f = std::filesystem::exists(path) && pt::looks_like_torch_file(path) ? open_recipe_checkpoint_in_memory(path)
                                                                                  : h5::File::open(path);
  if (!f.has_attr(kRoot, "txl_checkpoint_format"))
    failf("{}: not a txl training checkpoint (attribute txl_checkpoint_format missing)", path);
  const int64_t version = f.attr_int(kRoot, "txl_checkpoint_format");
  if (version != kCheckpointFormatVersion)
    failf("{}: checkpoint format {} is not supported (this build reads format {})", path, version,
          kCheckpointFormatVersion);
  return TrainingCheckpoint(std::move(f));
}

CheckpointInfo TrainingCheckpoint::info() const {
  CheckpointInfo i;
  i.config_yaml = file_.attr_string(kRoot, "config");
  i.eval_config_yaml = file_.attr_string(kRoot, "eval_config");
  i.corpus_checksum = file_.attr_string(kRoot, "corpus_checksum");
  i.dataset = file_.attr_string(kRoot, "dataset");
  i.seed = file_.attr_int(kRoot, "seed");
  return i;
}

std::vector<std::string> TrainingCheckpoint::not_carried_over() const {
  std::vector<std::string> lines;
  if (!file_.has_attr(kRoot, "not_carried_over")) return lines;
  const std::string text = file_.attr_string(kRoot, "not_carried_over");
  for (size_t begin = 0; begin < text.size();) {
    const size_t end = std::min(text.find('\n', begin), text.size());
    if (end > begin) lines.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return lines;
}

TrainingState TrainingCheckpoint::state() const {
  TrainingState s;
  s.step = file_.attr_int(kRoot, "step");
  s.position.epoch = file_.attr_int(kRoot, "epoch");
  s.position.batch = file_.attr_int(kRoot, "batch");
  s.position.offset = file_.attr_int(kRoot, "offset");
  s.best_val_loss = file_.attr_double(kRoot, "best_val_loss");
  s.eval_count = file_.attr_int(kRoot, "eval_count");
  s.last_eval_step = file_.attr_int(kRoot, "last_eval_step");
  s.plateau.rate = file_.attr_double(kRoot, "plateau_rate");
  s.plateau.best = file_.attr_double(kRoot, "plateau_best");
  s.plateau.bad_evals = file_.attr_int(kRoot, "plateau_bad_evals");
  s.loss_scale.scale = file_.attr_double(kRoot, "loss_scale");
  s.loss_scale.clean_steps = file_.attr_int(kRoot, "loss_scale_clean_steps");
  s.loss_scale.skipped_steps = file_.attr_int(kRoot, "loss_scale_skipped_steps");
  return s;
}

void TrainingCheckpoint::load_model(TransformerXL<float>& model) const {
  check_model_config(file_, model.config());
  load_model_params(file_, model.params(), model.config(), model.ops());
}

std::vector<Memory<float>> TrainingCheckpoint::load_memories(const MemoryLayout& layout, int64_t n_chunks,
                                                             Ops<float>& ops) const {
  std::vector<Memory<float>> memories(static_cast<size_t>(n_chunks));
  const int64_t mlen = file_.attr_int(kRoot, "memory_mlen");
  if (mlen == 0) return memories;
  const int64_t n_layers = file_.attr_int(kRoot, "memory_layers");
  std::vector<float> host;
  for (int64_t l = 0; l < n_layers; ++l) {
    Shape shape;
    host = file_.read<float>(layer_path(static_cast<size_t>(l)), &shape);
    if (shape.size() != 3 || shape[0] != mlen || shape[1] != layout.batch_global)
      failf("{}: memory {} has shape {}, expected [{}, {}, d_model] (batch_size differs from the checkpoint's?)",
            file_.path(), layer_path(static_cast<size_t>(l)), shape_string(shape), mlen, layout.batch_global);
    const int64_t d = shape[2];
    for (int64_t c = 0; c < n_chunks; ++c) {
      Memory<float>& m = memories[static_cast<size_t>(c)];
      m.mlen = mlen;
      m.batch = layout.chunk_batch;
      Tensor<float> t = ops.empty({mlen, layout.chunk_batch, d});
      const int64_t column = layout.first_stream + c * layout.chunk_batch;
      for (int64_t r = 0; r < mlen; ++r)
        ops.upload(t.data() + r * layout.chunk_batch * d, host.data() + (r * layout.batch_global + column) * d,
                   static_cast<size_t>(layout.chunk_batch * d) * sizeof(float));
      m.layers.push_back(std::move(t));
    }
  }
  return memories;
}

}  // namespace txl
