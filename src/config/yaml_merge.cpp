#include "txl/config/yaml_merge.h"

#include <cstdint>
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

// Configuration files nest a few levels and hold a few hundred values; more means an
// alias that contains itself (which would recurse forever) or aliases of aliases that
// expand exponentially (both found by fuzz/fuzz_config.cpp).
constexpr int kMaxDepth = 64;
constexpr int64_t kMaxNodes = 1'000'000;

YAML::Node resolve(const YAML::Node& node, int depth, int64_t& nodes) {
  if (depth > kMaxDepth)
    failf("YAML: nested more than {} levels deep (an alias that refers to itself?)", kMaxDepth);
  if (++nodes > kMaxNodes)
    failf("YAML: expands to more than {} values (aliases of aliases?)", kMaxNodes);
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      YAML::Node out(YAML::NodeType::Map);
      std::vector<YAML::Node> sources;
      for (const auto& kv : node) {
        if (is_merge_key(kv.first)) {
          if (kv.second.IsSequence()) {
            for (const auto& item : kv.second) sources.push_back(resolve(item, depth + 1, nodes));
          } else {
            sources.push_back(resolve(kv.second, depth + 1, nodes));
          }
        } else {
          if (!kv.first.IsScalar()) fail("YAML: mapping keys must be plain names, not lists or mappings");
          out[kv.first.Scalar()] = resolve(kv.second, depth + 1, nodes);
        }
      }
      // Explicit keys were set first, so merged keys only fill gaps; earlier sources
      // fill before later ones.
      for (const auto& source : sources) merge_into(out, source);
      return out;
    }
    case YAML::NodeType::Sequence: {
      YAML::Node out(YAML::NodeType::Sequence);
      for (const auto& item : node) out.push_back(resolve(item, depth + 1, nodes));
      return out;
    }
    default:
      return YAML::Clone(node);
  }
}

}  // namespace

YAML::Node resolve_merge_keys(const YAML::Node& node) {
  int64_t nodes = 0;
  return resolve(node, 0, nodes);
}

}  // namespace txl
