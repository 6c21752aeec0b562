#include "txl/data/text_tokenizer.h"

#include <locale.h>
#include <wctype.h>

#include <cstring>

#include "txl/core/error.h"

namespace txl::data {

const char* unit_name(SymbolUnit unit) {
  switch (unit) {
    case SymbolUnit::kWord:
      return "word";
    case SymbolUnit::kCodepoint:
      return "codepoint";
    case SymbolUnit::kByte:
      return "byte";
  }
  return "?";
}

SymbolUnit parse_unit(const std::string& name) {
  if (name == "word") return SymbolUnit::kWord;
  if (name == "codepoint") return SymbolUnit::kCodepoint;
  if (name == "byte") return SymbolUnit::kByte;
  failf("unknown symbol unit '{}' (expected word, codepoint or byte)", name);
}

size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // ASCII fast path, eight bytes at a time.
    if (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, s + i, 8);
      if ((w & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    const unsigned char b0 = s[i];
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    char32_t min_cp;
    char32_t cp;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2, min_cp = 0x80, cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3, min_cp = 0x800, cp = b0 & 0x0F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4, min_cp = 0x10000, cp = b0 & 0x07;
    } else {
      return i;  // continuation byte, overlong 2-byte lead (C0/C1) or F5..FF
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return kNoInvalidByte;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

bool is_python_space(char32_t c) {
  if (c < 0x80) return is_ascii_space(static_cast<unsigned char>(c));
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string_view strip_space(std::string_view line) {
  // Leading: walk forward code point by code point.
  const char* p = line.data();
  const char* end = p + line.size();
  while (p < end) {
    const char* q = p;
    if (!is_python_space(decode_utf8(q))) break;
    p = q;
  }
  // Trailing: find the start of each last code point by skipping continuation bytes.
  while (end > p) {
    const char* start = end - 1;
    while (start > p && (static_cast<unsigned char>(*start) & 0xC0) == 0x80) --start;
    const char* q = start;
    if (!is_python_space(decode_utf8(q))) break;
    end = start;
  }
  return std::string_view(p, static_cast<size_t>(end - p));
}

int64_t line_number_at(std::string_view text, size_t offset) {
  int64_t line = 1;
  const size_t stop = std::min(offset, text.size());
  for (size_t i = 0; i < stop; ++i) {
    if (text[i] == '\n') {
      ++line;
    } else if (text[i] == '\r') {
      if (i + 1 < text.size() && text[i + 1] == '\n') continue;  // "\r\n" counts once, at '\n'
      ++line;
    }
  }
  return line;
}

namespace {
// C.UTF-8 locale for towlower_l; null when the C library lacks it (then only ASCII folds).
locale_t unicode_locale() {
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  return loc;
}
}  // namespace

bool is_lower_case_ascii(std::string_view text) {
  for (const char ch : text) {
    const auto b = static_cast<unsigned char>(ch);
    if (b >= 0x80 || (b >= 'A' && b <= 'Z')) return false;
  }
  return true;
}

void lower_case_utf8(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  const locale_t loc = unicode_locale();
  const char* p = in.data();
  const char* const end = p + in.size();
  while (p < end) {
    const auto b = static_cast<unsigned char>(*p);
    if (b < 0x80) {
      out.push_back(static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b));
      ++p;
      continue;
    }
    char32_t c = decode_utf8(p);
    if (loc) c = static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), loc));
    append_utf8(out, c);
  }
}

}  // namespace txl::data
