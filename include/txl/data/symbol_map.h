// Hash map keyed by symbol text that can be searched with a std::string_view (no
// allocation per lookup), used when counting and encoding millions of tokens.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace txl::data {

struct SymbolHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <typename Value>
using SymbolMap = std::unordered_map<std::string, Value, SymbolHash, std::equal_to<>>;

}  // namespace txl::data
