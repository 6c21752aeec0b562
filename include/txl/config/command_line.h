// The open-ended command line of txl_train / txl_eval:
//   PROGRAM [CONFIG.yaml] [--config_file CONFIG.yaml] [--config PRESET] [--key value ...]
// Parsed by hand rather than with CLI11: every configuration key is an option, their
// values are checked by the key table (config_schema.h) with the same messages as YAML
// values. Accepts what the recipe's argparse accepts for its options:
//   --key value, --key=value, a boolean key alone as a flag (`--same_length`), a list key
//   followed by several words (`--percentiles 90 95 99`, like nargs='+'), '-' for '_' in
//   names (`--save-all`), and an unambiguous prefix of a name (`--eval_int 100`).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "txl/config/config_schema.h"

namespace txl {

struct CommandLine {
  std::string config_file;        // positional argument or --config_file; may be empty
  std::string preset = "default";
  bool preset_given = false;
  bool help = false;
  // (key, text), in order. Several words after a list key become one YAML flow
  // sequence text ("['90', '95']"), which command_line_value() reads back.
  std::vector<std::pair<std::string, std::string>> overrides;
};

// `options` are the accepted keys with their types ("config", "config_file" and "help"
// are implicit). Unknown or ambiguous options throw naming the closest known one(s).
// `bare_values`: (option, value) for options that may also appear without a value
// (argparse nargs='?' with a const), e.g. {"multi_gpu", "ddp"}.
CommandLine parse_command_line(const std::vector<std::string>& args,
                               const std::vector<std::pair<std::string, KeyType>>& options,
                               const std::vector<std::pair<std::string, std::string>>& bare_values = {});

template <typename Cfg>
std::vector<std::pair<std::string, KeyType>> option_types(const std::vector<ConfigKey<Cfg>>& keys) {
  std::vector<std::pair<std::string, KeyType>> out;
  for (const auto& k : keys) out.emplace_back(k.name, k.type());
  return out;
}

// Applies the command-line overrides to `cfg`.
template <typename Cfg>
void apply_overrides(Cfg& cfg, const std::vector<ConfigKey<Cfg>>& keys, const CommandLine& cl) {
  for (const auto& [name, text] : cl.overrides) {
    const ConfigKey<Cfg>& key = require_key(keys, name, "command line");
    key.assign(cfg, command_line_value(key.type(), text), "command line");
  }
}

}  // namespace txl
