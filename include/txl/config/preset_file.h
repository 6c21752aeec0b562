// A configuration file: a YAML mapping of preset name -> {train: {...}, eval: {...}}
// (docs/training.md §1), anchors and merge keys allowed.
#pragma once
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace txl {

class PresetFile {
 public:
  // Reads and parses `path` (merge keys resolved). Missing file or bad YAML: txl::Error.
  static PresetFile load(const std::string& path);
  static PresetFile parse(const std::string& text, const std::string& name);

  const std::string& path() const { return path_; }
  std::vector<std::string> presets() const;
  // The `section` ("train" or "eval") of `preset`; a null node when the preset has no
  // such section. Unknown preset or section names throw naming the closest one.
  YAML::Node section(const std::string& preset, const std::string& section) const;
  // "configs/tiny.yaml [default.train]": the source named in error messages.
  std::string where(const std::string& preset, const std::string& section) const;

 private:
  std::string path_;
  YAML::Node root_;
};

}  // namespace txl
