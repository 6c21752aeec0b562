#include "txl/data/unicode_classes.h"

#include <algorithm>
#include <iterator>

namespace txl::data {
namespace {

struct CodepointRange {
  char32_t first, last;
};

#include "unicode_classes_table.inc"

template <size_t N>
bool in_ranges(const CodepointRange (&ranges)[N], char32_t c) {
  const auto it = std::upper_bound(std::begin(ranges), std::end(ranges), c,
                                   [](char32_t v, const CodepointRange& r) { return v < r.first; });
  return it != std::begin(ranges) && c <= std::prev(it)->last;
}

}  // namespace

bool is_unicode_letter(char32_t c) { return c < 0x80 ? ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') : in_ranges(kLetterRanges, c); }
bool is_unicode_number(char32_t c) { return c < 0x80 ? (c >= '0' && c <= '9') : in_ranges(kNumberRanges, c); }
bool is_unicode_space(char32_t c) { return in_ranges(kSpaceRanges, c); }

}  // namespace txl::data
