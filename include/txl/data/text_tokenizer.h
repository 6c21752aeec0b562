// Raw text -> symbols, with the same rules as the Python recipe's reader, so that a corpus
// prepared here has exactly the recipe's token stream:
//  - lines end at "\n", "\r\n" or a lone "\r" (Python's universal newlines); a last line
//    without a terminator still counts;
//  - words are separated by Python's white space (str.split(): ASCII \t\n\v\f\r, 0x1c-0x1f,
//    space, and the Unicode spaces U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029,
//    U+202F, U+205F, U+3000);
//  - character level: each Unicode code point of the line is a symbol (the line stripped of
//    white space at both ends first, as str.strip() does);
//  - lower-casing maps each code point with the C library's Unicode tables (C.UTF-8), which
//    agrees with Python's str.lower() except for the few one-to-many mappings (U+0130).
// Text must be valid UTF-8 (checked by find_invalid_utf8 before tokenising).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace txl::data {

enum class SymbolUnit { kWord, kCodepoint, kByte };
const char* unit_name(SymbolUnit unit);          // "word", "codepoint", "byte"
SymbolUnit parse_unit(const std::string& name);  // throws txl::Error on an unknown name

// How raw text becomes symbols. Stored in the corpus file, so `txl_eval --manual` can
// tokenise user text exactly as txl_prep tokenised the corpus.
struct TokenizationRules {
  SymbolUnit unit = SymbolUnit::kWord;
  bool lower_case = false;
  bool strip_lines = false;    // codepoint unit: strip white space at both ends of each line
  std::string line_end;        // symbol appended after every line ("<eos>"); empty: none
  std::string sentence_begin;  // lm1b: "<S>" before every sentence (added by the iterator)
  std::string sentence_end;    // lm1b: "</S>" after every sentence (added by the iterator)
  std::string unk;             // replaces out-of-vocabulary symbols; empty: OOV is an error
};

// ---- UTF-8 -------------------------------------------------------------------------------
inline constexpr size_t kNoInvalidByte = static_cast<size_t>(-1);
// Offset of the first byte that does not begin a valid UTF-8 sequence (overlong forms,
// surrogates and code points above U+10FFFF are invalid, as in Python's codec), or
// kNoInvalidByte when all of `text` is valid.
size_t find_invalid_utf8(std::string_view text);
// Decodes one code point of VALID UTF-8 at p and advances p.
inline char32_t decode_utf8(const char*& p) {
  const auto b0 = static_cast<unsigned char>(*p);
  if (b0 < 0x80) {
    ++p;
    return b0;
  }
  const int n = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : 2;
  char32_t c = b0 & (0x7F >> n);
  for (int i = 1; i < n; ++i) c = (c << 6) | (static_cast<unsigned char>(p[i]) & 0x3F);
  p += n;
  return c;
}
void append_utf8(std::string& out, char32_t c);

// ---- white space and lines ------------------------------------------------------------------
bool is_python_space(char32_t c);
inline bool is_ascii_space(unsigned char b) { return b == ' ' || (b >= '\t' && b <= '\r') || (b >= 0x1C && b <= 0x1F); }
// Python's str.strip(): white space removed at both ends.
std::string_view strip_space(std::string_view line);
// 1-based line number (universal newlines) of the byte at `offset` of `text`.
int64_t line_number_at(std::string_view text, size_t offset);

// Calls fn(line) for every line of `text` (terminators removed).
template <typename Fn>
void for_each_line(std::string_view text, Fn&& fn) {
  const char* p = text.data();
  const char* const end = p + text.size();
  while (p < end) {
    const char* q = p;
    while (q < end && *q != '\n' && *q != '\r') ++q;
    fn(std::string_view(p, static_cast<size_t>(q - p)));
    if (q < end && *q == '\r' && q + 1 < end && q[1] == '\n') ++q;
    p = q + 1;
  }
}

// Calls fn(word) for every white-space separated word of one line.
template <typename Fn>
void for_each_word(std::string_view line, Fn&& fn) {
  const char* p = line.data();
  const char* const end = p + line.size();
  const char* word = nullptr;
  while (p < end) {
    const auto b = static_cast<unsigned char>(*p);
    const char* next = p + 1;
    bool space;
    if (b < 0x80) {
      space = is_ascii_space(b);
    } else {
      next = p;
      space = is_python_space(decode_utf8(next));
    }
    if (space) {
      if (word) fn(std::string_view(word, static_cast<size_t>(p - word)));
      word = nullptr;
    } else if (!word) {
      word = p;
    }
    p = next;
  }
  if (word) fn(std::string_view(word, static_cast<size_t>(end - word)));
}

// Calls fn(symbol) for every code point of one line (each as its UTF-8 bytes).
template <typename Fn>
void for_each_codepoint(std::string_view line, Fn&& fn) {
  const char* p = line.data();
  const char* const end = p + line.size();
  while (p < end) {
    const char* q = p;
    decode_utf8(q);
    fn(std::string_view(p, static_cast<size_t>(q - p)));
    p = q;
  }
}

// Lower-cases valid UTF-8 into `out` (replacing its contents).
void lower_case_utf8(std::string_view in, std::string& out);
// True when lower_case_utf8 would change nothing (fast path for ASCII lower-case text).
bool is_lower_case_ascii(std::string_view text);

// Splits one line (without terminator) into symbols per `rules` (word or codepoint unit;
// the byte unit has no lines and is handled by its callers). `scratch` holds the
// lower-cased line when needed; the views passed to fn point into `line` or `scratch`.
template <typename Fn>
void tokenize_line(const TokenizationRules& rules, std::string_view line, std::string& scratch, Fn&& fn) {
  if (rules.unit == SymbolUnit::kCodepoint && rules.strip_lines) line = strip_space(line);
  if (rules.lower_case && !is_lower_case_ascii(line)) {
    lower_case_utf8(line, scratch);
    line = scratch;
  }
  if (rules.unit == SymbolUnit::kWord) {
    for_each_word(line, fn);
  } else {
    for_each_codepoint(line, fn);
  }
}

}  // namespace txl::data
