// Fuzz target: a YAML configuration file (txl/config/preset_file.h) resolved into train and
// eval configurations. Bad input must end in one txl::Error, never a crash or another
// exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "txl/core/error.h"
#include "txl/config/eval_config.h"
#include "txl/config/preset_file.h"
#include "txl/config/train_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const txl::PresetFile file = txl::PresetFile::parse(text, "fuzz.yaml");
    for (const std::string& preset : file.presets()) {
      try {
        txl::TrainConfig train;
        txl::apply_section(train, txl::train_config_keys(), file.section(preset, "train"), file.where(preset, "train"));
        txl::EvalConfig eval;
        txl::apply_section(eval, txl::eval_config_keys(), file.section(preset, "eval"), file.where(preset, "eval"));
        train.finalize(1);
      } catch (const txl::Error&) {
      }
    }
  } catch (const txl::Error&) {
  }
  return 0;
}
