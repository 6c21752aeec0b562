// Fuzz target: the text tokenisers (src/data/text_tokenizer.cpp): valid UTF-8 split into
// lines and symbols under rules picked by the first byte, as txl_prep and txl_eval
// --manual do after their UTF-8 check; invalid text must be found by find_invalid_utf8.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "txl/data/text_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  txl::data::TokenizationRules rules;
  rules.unit = (data[0] & 1) ? txl::data::SymbolUnit::kCodepoint : txl::data::SymbolUnit::kWord;
  rules.lower_case = (data[0] & 2) != 0;
  rules.strip_lines = (data[0] & 4) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (txl::data::find_invalid_utf8(text) != txl::data::kNoInvalidByte) return 0;
  size_t bytes = 0;
  std::string scratch, lowered;
  txl::data::for_each_line(text, [&](std::string_view line) {
    txl::data::tokenize_line(rules, line, scratch, [&](std::string_view symbol) {
      bytes += symbol.size();
      if (symbol.empty()) __builtin_trap();  // a symbol is never empty
    });
  });
  txl::data::lower_case_utf8(text, lowered);
  if (txl::data::find_invalid_utf8(lowered) != txl::data::kNoInvalidByte) __builtin_trap();
  (void)txl::data::line_number_at(text, text.size() / 2);
  // Words are pieces of the (lower-cased) text; the lower-cased text of valid UTF-8 is
  // at most a few bytes per code point longer.
  if (bytes > 4 * text.size()) __builtin_trap();
  return 0;
}
