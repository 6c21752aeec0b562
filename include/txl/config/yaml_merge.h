// YAML merge keys ("<<: *anchor"), which yaml-cpp 0.7 parses but does not apply: it
// returns a mapping with a literal "<<" key. Presets in configs/*.yaml rely on them.
#pragma once
#include <yaml-cpp/yaml.h>

namespace txl {

// A deep copy of `node` with every plain (unquoted) "<<" key of every mapping applied:
// its value, a mapping or a sequence of mappings, contributes the keys the mapping does
// not set itself; in a sequence, earlier mappings win over later ones (YAML 1.1 merge
// type). A "<<" whose value is not a mapping throws txl::Error.
YAML::Node resolve_merge_keys(const YAML::Node& node);

}  // namespace txl
