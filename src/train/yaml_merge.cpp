#include "txl/train/yaml_merge.h"

#include <vector>

#include "txl/core/error.h"

namespace txl {
namespace {

// A quoted "<<" is an ordinary key; yaml-cpp gives plain scalars the tag "?".
bool is_merge_key(const YAML::Node& key) {
  return key.IsScalar() && key.Scalar() == "<<" && key.Tag() == "?";
}

void merge_into(YAML::Node& out, const YAML::Node& source) {
  if (!source.IsMap()) fail("YAML: the value of a merge key '<<' must be a mapping (an alias like *base)");
  for (const auto& kv : source) {
    const YAML::Node& view = out;  // const lookup: does not insert the key
    if (!view[kv.first.Scalar()]) out[kv.first.Scalar()] = kv.second;
  }
}

}  // namespace

YAML::Node resolve_merge_keys(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      YAML::Node out(YAML::NodeType::Map);
      std::vector<YAML::Node> sources;
      for (const auto& kv : node) {
        if (is_merge_key(kv.first)) {
          if (kv.second.IsSequence()) {
            for (const auto& item : kv.second) sources.push_back(resolve_merge_keys(item));
          } else {
            sources.push_back(resolve_merge_keys(kv.second));
          }
        } else {
          if (!kv.first.IsScalar()) fail("YAML: mapping keys must be plain names, not lists or mappings");
          out[kv.first.Scalar()] = resolve_merge_keys(kv.second);
        }
      }
      // Explicit keys were set first, so merged keys only fill gaps; earlier sources
      // fill before later ones.
      for (const auto& source : sources) merge_into(out, source);
      return out;
    }
    case YAML::NodeType::Sequence: {
      YAML::Node out(YAML::NodeType::Sequence);
      for (const auto& item : node) out.push_back(resolve_merge_keys(item));
      return out;
    }
    default:
      return YAML::Clone(node);
  }
}

}  // namespace txl
