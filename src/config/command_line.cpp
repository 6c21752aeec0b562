#include "txl/config/command_line.h"

#include <algorithm>

namespace txl {
namespace {

bool is_bool_literal(const std::string& s) {
  for (const char* b : {"true", "false", "True", "False", "yes", "no", "on", "off", "1", "0"})
    if (s == b) return true;
  return false;
}

bool is_option(const std::string& word) { return word.rfind("--", 0) == 0; }

// One YAML flow sequence of single-quoted items (a quote inside is doubled).
std::string flow_sequence(const std::vector<std::string>& words) {
  std::string out = "[";
  for (size_t i = 0; i < words.size(); ++i) {
    std::string item;
    for (char c : words[i]) item += c == '\'' ? std::string("''") : std::string(1, c);
    out += (i ? ", '" : "'") + item + "'";
  }
  return out + "]";
}

struct OptionTable {
  std::vector<std::pair<std::string, KeyType>> options;  // implicit ones included

  const KeyType* type_of(const std::string& name) const {
    for (const auto& o : options)
      if (o.first == name) return &o.second;
    return nullptr;
  }

  // The option `name` stands for: itself, or the one option it is a prefix of.
  std::string resolve(const std::string& name, const std::string& arg) const {
    if (type_of(name)) return name;
    std::vector<std::string> starting;
    for (const auto& o : options)
      if (o.first.rfind(name, 0) == 0) starting.push_back(o.first);
    if (starting.size() == 1) return starting.front();
    if (starting.size() > 1) {
      std::string list;
      for (const auto& s : starting) list += (list.empty() ? "--" : ", --") + s;
      failf("command line: option '{}' is ambiguous (it could be {})", arg, list);
    }
    std::vector<std::string> dashed;
    for (const auto& o : options) dashed.push_back("--" + o.first);
    fail(unknown_key_message("command line", "--" + name, dashed));
  }
};

}  // namespace

CommandLine parse_command_line(const std::vector<std::string>& args,
                               const std::vector<std::pair<std::string, KeyType>>& options,
                               const std::vector<std::pair<std::string, std::string>>& bare_values) {
  auto bare_value_of = [&](const std::string& name) -> const std::string* {
    for (const auto& b : bare_values)
      if (b.first == name) return &b.second;
    return nullptr;
  };
  OptionTable table;
  table.options = {{"config", KeyType::kString}, {"config_file", KeyType::kString}, {"help", KeyType::kBool}};
  table.options.insert(table.options.end(), options.begin(), options.end());

  CommandLine cl;
  std::string config_file_source;  // "positional" or "--config_file", for the error message
  auto set_config_file = [&](const std::string& path, const std::string& source) {
    if (!cl.config_file.empty())
      failf("command line: two configuration files: '{}' ({}) and '{}' ({}); give one", cl.config_file,
            config_file_source, path, source);
    cl.config_file = path;
    config_file_source = source;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h") {
      cl.help = true;
      continue;
    }
    if (!is_option(arg)) {
      if (!cl.config_file.empty())
        failf("command line: unexpected argument '{}' (the configuration file is already '{}'; options start with --)",
              arg, cl.config_file);
      set_config_file(arg, "positional argument");
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
    std::replace(name.begin(), name.end(), '-', '_');
    name = table.resolve(name, arg);
    const KeyType type = *table.type_of(name);
    if (!has_value) {
      const bool next_is_value = i + 1 < args.size() && !is_option(args[i + 1]);
      if (type == KeyType::kBool) {
        // A boolean option alone is a flag; it takes the next word only if that is true/false.
        if (next_is_value && is_bool_literal(args[i + 1])) value = args[++i];
        else value = "true";
      } else if (is_list_type(type)) {
        // Every following word up to the next option (values may start with one '-').
        std::vector<std::string> words;
        while (i + 1 < args.size() && !is_option(args[i + 1])) words.push_back(args[++i]);
        if (words.empty()) failf("command line: option --{} needs at least one value", name);
        value = words.size() == 1 ? words.front() : flow_sequence(words);
      } else if (const std::string* bare = bare_value_of(name); bare && !next_is_value) {
        value = *bare;
      } else {
        if (!next_is_value) failf("command line: option --{} needs a value", name);
        value = args[++i];
      }
    }
    if (name == "help") {
      cl.help = cl.help || value != "false";
    } else if (name == "config") {
      cl.preset = value;
      cl.preset_given = true;
    } else if (name == "config_file") {
      set_config_file(value, "--config_file");
    } else {
      cl.overrides.emplace_back(name, value);
    }
  }
  return cl;
}

}  // namespace txl
