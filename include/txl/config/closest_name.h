// "Did you mean" support for configuration keys and command-line options.
#pragma once
#include <string>
#include <vector>

namespace txl {

// Levenshtein distance (insertions, deletions, substitutions; each costs 1).
int edit_distance(const std::string& a, const std::string& b);

// The candidate nearest to `name` by edit distance (first one on ties); "" when there
// are no candidates.
std::string closest_name(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace txl
