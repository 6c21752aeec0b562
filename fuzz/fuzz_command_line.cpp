// Fuzz target: a txl_train command line (one argument per input line) parsed and applied
// to the configuration (txl/config/command_line.h). Bad input is one txl::Error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "txl/core/error.h"
#include "txl/config/command_line.h"
#include "txl/config/train_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args;
  std::string current;
  for (size_t i = 0; i < size; ++i) {
    const char c = static_cast<char>(data[i]);
    if (c == '\n') {
      args.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) args.push_back(current);
  try {
    const txl::CommandLine cl = txl::parse_command_line(args, txl::option_types(txl::train_config_keys()));
    txl::TrainConfig cfg;
    txl::apply_overrides(cfg, txl::train_config_keys(), cl);
    cfg.finalize(1);
  } catch (const txl::Error&) {
  }
  return 0;
}
