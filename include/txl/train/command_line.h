// The open-ended command line of txl_train / txl_eval:
//   PROGRAM [CONFIG.yaml] [--config PRESET] [--key value | --key=value | --flag] ...
// Parsed by hand rather than with CLI11: every configuration key is an option, their
// values are checked by the key table (config_schema.h) with the same messages as YAML
// values, and a boolean key may appear alone as a flag (`--same_length`).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "txl/train/config_schema.h"

namespace txl {

struct CommandLine {
  std::string config_file;        // the positional argument; may be empty
  std::string preset = "default";
  bool preset_given = false;
  bool help = false;
  std::vector<std::pair<std::string, std::string>> overrides;  // (key, text), in order
};

// `options` are the accepted keys with their types ("config" and "help" are implicit).
// Unknown options throw naming the closest known one.
CommandLine parse_command_line(const std::vector<std::string>& args,
                               const std::vector<std::pair<std::string, KeyType>>& options);

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
