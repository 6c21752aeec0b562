#include "txl/train/command_line.h"

namespace txl {
namespace {

bool is_bool_literal(const std::string& s) {
  for (const char* b : {"true", "false", "True", "False", "yes", "no", "on", "off", "1", "0"})
    if (s == b) return true;
  return false;
}

}  // namespace

CommandLine parse_command_line(const std::vector<std::string>& args,
                               const std::vector<std::pair<std::string, KeyType>>& options) {
  std::vector<std::string> known{"config", "help"};
  for (const auto& o : options) known.push_back(o.first);
  auto type_of = [&](const std::string& name) -> const KeyType* {
    for (const auto& o : options)
      if (o.first == name) return &o.second;
    return nullptr;
  };

  CommandLine cl;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      cl.help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      if (!cl.config_file.empty())
        failf("command line: unexpected argument '{}' (the configuration file is already '{}'; options start with --)",
              arg, cl.config_file);
      cl.config_file = arg;
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (name.empty()) failf("command line: empty option name in '{}'", arg);
    const KeyType* type = type_of(name);
    if (name != "config" && !type) fail(unknown_key_message("command line", "--" + name, [&] {
                                          std::vector<std::string> dashed;
                                          for (const auto& k : known) dashed.push_back("--" + k);
                                          return dashed;
                                        }()));
    if (!has_value) {
      const bool next_is_value = i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0;
      if (type && *type == KeyType::kBool) {
        // A boolean option alone is a flag; it takes the next word only if that is true/false.
        if (next_is_value && is_bool_literal(args[i + 1])) value = args[++i];
        else value = "true";
      } else {
        // Values may start with "-" (negative numbers) but not with "--".
        if (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0)
          failf("command line: option --{} needs a value", name);
        value = args[++i];
      }
    }
    if (name == "config") {
      cl.preset = value;
      cl.preset_given = true;
    } else {
      cl.overrides.emplace_back(name, value);
    }
  }
  return cl;
}

}  // namespace txl
