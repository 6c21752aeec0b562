// Fuzz target: a training checkpoint (src/train/training_checkpoint.cpp,
// src/model/model_checkpoint.cpp) from arbitrary bytes: opened, attributes and model
// configuration read, every dataset verified, the vocabulary of a converted checkpoint read
// (src/convert/checkpoint_vocabulary.cpp), and the model loaded when it is small.
#include <cstddef>
#include <cstdint>

#include "fuzz_input_file.h"
#include "txl/convert/checkpoint_vocabulary.h"
#include "txl/core/error.h"
#include "txl/model/model_checkpoint.h"
#include "txl/train/backend.h"
#include "txl/train/training_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const txl::fuzz::InputFile input(data, size, ".ckpt.h5");
  try {
    const txl::TrainingCheckpoint ckpt = txl::TrainingCheckpoint::open(input.path());
    ckpt.info();
    ckpt.state();
    ckpt.file().verify_datasets();
    if (txl::has_checkpoint_vocabulary(ckpt.file())) txl::read_checkpoint_vocabulary(ckpt.file());
    const txl::ModelConfig cfg = txl::read_model_config(ckpt.file());
    // Small models only: a fuzzed configuration may ask for any size.
    const int64_t embed = cfg.n_token * cfg.d_embed, layers = cfg.n_layer * cfg.d_model * cfg.d_inner;
    if (cfg.n_token > 0 && cfg.n_token < 100000 && cfg.d_model > 0 && cfg.d_model <= 256 && cfg.n_layer > 0 &&
        cfg.n_layer <= 4 && embed < 4000000 && layers < 4000000) {
      auto ops = txl::make_backend("cpu", "fp32", 0);
      txl::TransformerXL<float> model(cfg, *ops);
      ckpt.load_model(model);
    }
  } catch (const txl::Error&) {
  }
  return 0;
}
