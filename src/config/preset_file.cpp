#include "txl/config/preset_file.h"

#include <filesystem>

#include "txl/core/error.h"
#include "txl/config/closest_name.h"
#include "txl/config/yaml_merge.h"

namespace txl {

namespace {
// YAML text (the file's contents or a string) -> a preset file named `name`; every failure
// names it.
template <typename LoadYaml>
YAML::Node read_presets(const std::string& name, LoadYaml load_yaml) {
  YAML::Node raw;
  try {
    raw = load_yaml();
  } catch (const YAML::Exception& e) {
    failf("{}: invalid YAML at line {}: {}", name, e.mark.line + 1, e.msg);
  }
  if (!raw.IsMap()) failf("{}: expected a mapping of preset names to {{train: ..., eval: ...}}", name);
  try {
    return resolve_merge_keys(raw);
  } catch (const Error& e) {
    failf("{}: {}", name, e.what());
  }
}
}  // namespace

PresetFile PresetFile::load(const std::string& path) {
  if (!std::filesystem::exists(path)) failf("{}: configuration file not found", path);
  PresetFile f;
  f.path_ = path;
  f.root_ = read_presets(path, [&] { return YAML::LoadFile(path); });
  return f;
}

PresetFile PresetFile::parse(const std::string& text, const std::string& name) {
  PresetFile f;
  f.path_ = name;
  f.root_ = read_presets(name, [&] { return YAML::Load(text); });
  return f;
}

std::vector<std::string> PresetFile::presets() const {
  std::vector<std::string> names;
  for (const auto& kv : root_) names.push_back(kv.first.Scalar());
  return names;
}

YAML::Node PresetFile::section(const std::string& preset, const std::string& section) const {
  const YAML::Node& root = root_;
  const YAML::Node p = root[preset];
  if (!p) {
    const std::string closest = closest_name(preset, presets());
    failf("{}: no preset '{}'{}", path_, preset,
          closest.empty() ? std::string() : fmt::format(" (closest: '{}')", closest));
  }
  if (p.IsNull()) return YAML::Node();
  if (!p.IsMap()) failf("{}: preset '{}' must be a mapping with 'train' and/or 'eval'", path_, preset);
  for (const auto& kv : p) {
    const std::string name = kv.first.Scalar();
    if (name != "train" && name != "eval")
      failf("{}: preset '{}' has an unknown section '{}' (closest known: '{}')", path_, preset, name,
            closest_name(name, {"train", "eval"}));
  }
  return p[section];
}

std::string PresetFile::where(const std::string& preset, const std::string& section) const {
  return fmt::format("{} [{}.{}]", path_, preset, section);
}

}  // namespace txl
