// Checkpoints between the PyTorch recipe and txl (docs/recipe-users.md). Parameter names
// and shapes agree already (docs/model.md §8); what moves is the container:
//   recipe save_checkpoint dict (.pt)        txl training checkpoint (.h5, training_checkpoint.h)
//   model_state                         <->  /model/<name> (+ architecture attributes)
//   model_config (args as fallback)     <->  /model attributes, `config` YAML
//   memory [n_layer, mlen, bsz, d] per chunk <-> /memory/layer_<L> [mlen, batch_size, d]
//   vocab (utils.vocabulary.Vocab)      <->  /vocab (checkpoint_vocabulary.h)
//   optimizer_state (JITLamb/LAMB/Adam/SGD/Adagrad) -> /optim/<name>/<state>, steps
//   scheduler_state, epoch, batch, train_step, best_val_loss -> root attributes
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "txl/convert/torch_file.h"
#include "txl/io/h5file.h"

namespace txl {

struct ConversionReport {
  std::vector<std::string> carried;      // what was converted, one line each
  std::vector<std::string> not_carried;  // what could not be, and why
};

struct RecipeImportOptions {
  // A txl corpus file (txl_prep) of the data the recipe trained on: its vocabulary must
  // equal the checkpoint's; it makes the result a checkpoint txl_train --restart accepts.
  std::string corpus_path;
};

// Converts a recipe checkpoint into `out` (an empty, writable file).
ConversionReport import_recipe_checkpoint(const pt::TorchFile& src, const RecipeImportOptions& options,
                                          h5::File& out);
// The same into a new file, written atomically.
ConversionReport convert_recipe_checkpoint(const std::string& pt_path, const std::string& h5_path,
                                           const RecipeImportOptions& options);
// A recipe checkpoint converted into an HDF5 file that lives in memory only.
h5::File open_recipe_checkpoint_in_memory(const std::string& pt_path);

// A txl checkpoint as a .pt the recipe's eval.py loads (torch.load; model_config,
// model_state, vocab, args, memory, epoch / batch / train_step / best_val_loss).
// txl training checkpoints hold no vocabulary (it is in the corpus file): `corpus_path`
// supplies it (its checksum must be the checkpoint's).
struct RecipeExportOptions {
  std::string corpus_path;
};
std::vector<uint8_t> export_recipe_checkpoint(const h5::File& in, const RecipeExportOptions& options,
                                              ConversionReport& report);
ConversionReport convert_to_recipe_checkpoint(const std::string& h5_path, const std::string& pt_path,
                                              const RecipeExportOptions& options);

}  // namespace txl
