#include "txl/data/moses_tokenizer.h"

#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <array>
#include <functional>

#include "txl/core/error.h"
#include "txl/data/text_tokenizer.h"

namespace txl::data {
namespace {

using U = std::u32string;

// Moses' English non-breaking prefixes (nonbreaking_prefix.en as shipped with sacremoses
// 0.2.0): a token "<prefix>." keeps its period. The numeric-only ones keep it only before
// a number ("No. 5").
constexpr std::u32string_view kNonBreaking[] = {
    U"A",    U"B",    U"C",     U"D",    U"E",    U"F",     U"G",    U"H",    U"I",    U"J",    U"K",    U"L",
    U"M",    U"N",    U"O",     U"P",    U"Q",    U"R",     U"S",    U"T",    U"U",    U"V",    U"W",    U"X",
    U"Y",    U"Z",    U"Adj",   U"Adm",  U"Adv",  U"Asst",  U"Bart", U"Bldg", U"Brig", U"Bros", U"Capt", U"Cmdr",
    U"Col",  U"Comdr", U"Con",  U"Corp", U"Cpl",  U"DR",    U"Dr",   U"Drs",  U"Ens",  U"Gen",  U"Gov",  U"Hon",
    U"Hr",   U"Hosp", U"Insp",  U"Lt",   U"MM",   U"MR",    U"MRS",  U"MS",   U"Maj",  U"Messrs", U"Mlle", U"Mme",
    U"Mr",   U"Mrs",  U"Ms",    U"Msgr", U"Op",   U"Ord",   U"Pfc",  U"Ph",   U"Prof", U"Pvt",  U"Rep",  U"Reps",
    U"Res",  U"Rev",  U"Rt",    U"Sen",  U"Sens", U"Sfc",   U"Sgt",  U"Sr",   U"St",   U"Supt", U"Surg", U"v",
    U"vs",   U"i.e",  U"rev",   U"e.g",  U"Rs",   U"Nos",   U"Nr",   U"Jan",  U"Feb",  U"Mar",  U"Apr",  U"Jun",
    U"Jul",  U"Aug",  U"Sep",   U"Oct",  U"Nov",  U"Dec"};
constexpr std::u32string_view kNumericOnly[] = {U"No", U"Art", U"pp"};

// ---- character classes ------------------------------------------------------------------
locale_t unicode_locale() {
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  return loc;
}
bool ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool ascii_letter(char32_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool c_library(int (*fn)(wint_t, locale_t), char32_t c) {
  const locale_t loc = unicode_locale();
  return loc && fn(static_cast<wint_t>(c), loc) != 0;
}
// Perl's \p{N} outside ASCII: superscripts and fractions of Latin-1, super/subscript
// digits, number forms, circled numbers, and the decimal digits of the common scripts.
bool is_number(char32_t c) {
  if (c < 0x80) return ascii_digit(c);
  static constexpr std::array<std::pair<char32_t, char32_t>, 12> ranges = {{{0xB2, 0xB3},
                                                                            {0xB9, 0xB9},
                                                                            {0xBC, 0xBE},
                                                                            {0x660, 0x669},
                                                                            {0x6F0, 0x6F9},
                                                                            {0x966, 0x96F},
                                                                            {0x2070, 0x2070},
                                                                            {0x2074, 0x2079},
                                                                            {0x2080, 0x2089},
                                                                            {0x2150, 0x2189},
                                                                            {0x2460, 0x249B},
                                                                            {0xFF10, 0xFF19}}};
  return std::any_of(ranges.begin(), ranges.end(), [c](const auto& r) { return c >= r.first && c <= r.second; });
}
// sacremoses' letter tables leave out the CJK ideographs, the Hangul syllables and the
// Cherokee small letters (its English tokenizer sets each of them apart); the C library
// counts them as letters.
bool outside_moses_letters(char32_t c) {
  return (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xAB70 && c <= 0xABBF) ||
         (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF);
}
bool is_alpha(char32_t c) {
  return c < 0x80 ? ascii_letter(c) : !outside_moses_letters(c) && c_library(iswalpha_l, c);
}
bool is_alnum(char32_t c) {
  return c < 0x80 ? ascii_letter(c) || ascii_digit(c) : !outside_moses_letters(c) && c_library(iswalnum_l, c);
}
bool is_lower(char32_t c) { return c < 0x80 ? (c >= 'a' && c <= 'z') : c_library(iswlower_l, c); }
// Python's \w and \d (str patterns).
bool is_word_char(char32_t c) {
  return c == '_' || (c < 0x80 ? ascii_letter(c) || ascii_digit(c) : c_library(iswalnum_l, c)) || is_number(c);
}
bool is_decimal(char32_t c) { return ascii_digit(c) || (c >= 0x660 && c <= 0x669) || (c >= 0x6F0 && c <= 0x6F9) ||
                                     (c >= 0x966 && c <= 0x96F) || (c >= 0xFF10 && c <= 0xFF19); }

// ---- text ---------------------------------------------------------------------------------
U decode(std::string_view text) {
  const size_t bad = find_invalid_utf8(text);
  if (bad != kNoInvalidByte) failf("text is not valid UTF-8 (byte offset {})", bad);
  U out;
  const char* p = text.data();
  const char* const end = p + text.size();
  while (p < end) out.push_back(decode_utf8(p));
  return out;
}
std::string encode(const U& text) {
  std::string out;
  for (const char32_t c : text) append_utf8(out, c);
  return out;
}

U collapse_space(const U& t) {
  U out;
  bool in_space = false;
  for (const char32_t c : t) {
    if (is_python_space(c)) {
      if (!in_space) out.push_back(' ');
      in_space = true;
    } else {
      out.push_back(c);
      in_space = false;
    }
  }
  return out;
}
U strip(const U& t) {
  size_t b = 0, e = t.size();
  while (b < e && is_python_space(t[b])) ++b;
  while (e > b && is_python_space(t[e - 1])) --e;
  return t.substr(b, e - b);
}

// One left-to-right pass replacing non-overlapping matches of a fixed-width pattern, as
// Python's re.sub does: `match(t, i)` tests position i, `emit` appends the replacement of
// the `width` characters at i.
U substitute(const U& t, size_t width, const std::function<bool(const U&, size_t)>& match,
             const std::function<void(const U&, size_t, U&)>& emit) {
  U out;
  size_t i = 0;
  while (i < t.size()) {
    if (i + width <= t.size() && match(t, i)) {
      emit(t, i, out);
      i += width;
    } else {
      out.push_back(t[i++]);
    }
  }
  return out;
}
// `a X b` -> `a` + middle + `b` where X is the character `x` and a, b satisfy the tests.
U around(const U& t, char32_t x, const std::function<bool(char32_t)>& left, const std::function<bool(char32_t)>& right,
         std::u32string_view middle) {
  return substitute(
      t, 3, [&](const U& s, size_t i) { return s[i + 1] == x && left(s[i]) && right(s[i + 2]); },
      [&](const U& s, size_t i, U& out) {
        out.push_back(s[i]);
        out += middle;
        out.push_back(s[i + 2]);
      });
}
U replace_all(const U& t, std::u32string_view from, std::u32string_view to) {
  U out;
  size_t i = 0;
  while (i < t.size()) {
    if (t.compare(i, from.size(), from) == 0) {
      out += to;
      i += from.size();
    } else {
      out.push_back(t[i++]);
    }
  }
  return out;
}

// Runs of two or more periods are set apart as one token and hidden from the later rules
// behind a marker of letters (its first and last characters are upper-case letters, as
// the rules see them); restore_dot_runs puts the periods back.
constexpr std::u32string_view kDotRunBegin = U"TXLDOTRUN";
constexpr char32_t kDotRunEnd = U'Q';
U hide_dot_runs(const U& t) {
  U out;
  size_t i = 0;
  while (i < t.size()) {
    size_t j = i;
    while (j < t.size() && t[j] == '.') ++j;
    if (j - i >= 2) {
      out.push_back(' ');
      out += kDotRunBegin;
      out.append(j - i, U'D');
      out.push_back(kDotRunEnd);
      if (j < t.size()) out.push_back(' ');
      i = j;
    } else {
      out.push_back(t[i++]);
    }
  }
  return out;
}
U restore_dot_runs(const U& t) {
  U out;
  size_t i = 0;
  while (i < t.size()) {
    if (t.compare(i, kDotRunBegin.size(), kDotRunBegin) == 0) {
      size_t j = i + kDotRunBegin.size();
      while (j < t.size() && t[j] == U'D') ++j;
      if (j < t.size() && t[j] == kDotRunEnd && j > i + kDotRunBegin.size()) {
        out.append(j - i - kDotRunBegin.size(), U'.');
        i = j + 1;
        continue;
      }
    }
    out.push_back(t[i++]);
  }
  return out;
}

std::vector<U> split_space(const U& t) {
  std::vector<U> words;
  U word;
  for (const char32_t c : t) {
    if (is_python_space(c)) {
      if (!word.empty()) words.push_back(word);
      word.clear();
    } else {
      word.push_back(c);
    }
  }
  if (!word.empty()) words.push_back(word);
  return words;
}

template <size_t N>
bool listed(const std::u32string_view (&list)[N], const U& word) {
  return std::find(std::begin(list), std::end(list), std::u32string_view(word)) != std::end(list);
}

// A token "<prefix>." is split into "<prefix> ." unless the period marks an abbreviation:
// the prefix has an inner period and a letter (U.S.), it is a non-breaking prefix, the
// next token starts lower-case, or it is a numeric-only prefix before a number.
U split_sentence_periods(const U& t) {
  std::vector<U> tokens = split_space(t);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const U& token = tokens[i];
    if (token.size() < 2 || token.back() != '.') continue;
    const U prefix = token.substr(0, token.size() - 1);
    const bool has_next = i + 1 < tokens.size();
    const bool abbreviation =
        (prefix.find('.') != U::npos && std::any_of(prefix.begin(), prefix.end(), is_alpha)) ||
        (listed(kNonBreaking, prefix) && !listed(kNumericOnly, prefix)) || (has_next && is_lower(tokens[i + 1][0]));
    if (abbreviation) continue;
    if (listed(kNumericOnly, prefix) && has_next && ascii_digit(tokens[i + 1][0])) continue;
    tokens[i] = prefix + U" .";
  }
  U out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i) out.push_back(' ');
    out += tokens[i];
  }
  return out;
}

U escape_xml(const U& t) {
  U out;
  for (const char32_t c : t) {
    switch (c) {
      case '&': out += U"&amp;"; break;
      case '|': out += U"&#124;"; break;
      case '<': out += U"&lt;"; break;
      case '>': out += U"&gt;"; break;
      case '\'': out += U"&apos;"; break;
      case '"': out += U"&quot;"; break;
      case '[': out += U"&#91;"; break;
      case ']': out += U"&#93;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

bool not_alpha(char32_t c) { return !is_alpha(c); }

}  // namespace

std::string moses_tokenize_english(std::string_view text) {
  U t = collapse_space(decode(text));
  t.erase(std::remove_if(t.begin(), t.end(), [](char32_t c) { return c < 0x20; }), t.end());
  t = strip(t);
  // Every character that is not alphanumeric, white space or one of . ' ` , - stands alone.
  {
    U padded;
    for (const char32_t c : t) {
      const bool keep = is_alnum(c) || is_python_space(c) || c == '.' || c == '\'' || c == '`' || c == ',' || c == '-';
      if (!keep) padded.push_back(' ');
      padded.push_back(c);
      if (!keep) padded.push_back(' ');
    }
    t = std::move(padded);
  }
  t = hide_dot_runs(t);
  // Commas stand alone except between digits (5,300).
  t = substitute(
      t, 2, [](const U& s, size_t i) { return s[i + 1] == ',' && !is_number(s[i]); },
      [](const U& s, size_t i, U& out) {
        out.push_back(s[i]);
        out += U" , ";
      });
  t = substitute(
      t, 2, [](const U& s, size_t i) { return s[i] == ',' && !is_number(s[i + 1]); },
      [](const U& s, size_t i, U& out) {
        out += U" , ";
        out.push_back(s[i + 1]);
      });
  if (t.size() >= 2 && t.back() == ',' && is_number(t[t.size() - 2])) {
    t.pop_back();
    t += U" , ";
  }
  // English apostrophes stand alone, except that between letters (and in "1990's") the
  // apostrophe starts the second part: "don't" -> "don 't", "1990's" -> "1990 's".
  t = around(t, '\'', not_alpha, not_alpha, U" ' ");
  t = around(
      t, '\'', [](char32_t c) { return !is_alpha(c) && !is_number(c); }, is_alpha, U" ' ");
  t = around(t, '\'', is_alpha, not_alpha, U" ' ");
  t = around(t, '\'', is_alpha, is_alpha, U" '");
  t = around(
      t, '\'', is_number, [](char32_t c) { return c == 's'; }, U" '");
  t = strip(collapse_space(split_sentence_periods(t)));
  if (t.size() >= 2 && t[t.size() - 2] == '.' && t.back() == '\'') {
    t.resize(t.size() - 2);
    t += U" . ' ";
  }
  t = restore_dot_runs(t);
  return encode(escape_xml(t));
}

std::string wikitext_conventions(std::string_view moses_text) {
  U t = decode(moses_text);
  t = replace_all(t, U"&quot;", U"\"");
  t = replace_all(t, U"&apos;", U"'");
  t = around(t, '.', is_decimal, is_decimal, U" @.@ ");
  t = around(t, ',', is_decimal, is_decimal, U" @,@ ");
  t = around(t, '-', is_word_char, is_word_char, U" @-@ ");
  return encode(t);
}

std::string tokenize_like_wikitext(std::string_view text) { return wikitext_conventions(moses_tokenize_english(text)); }

}  // namespace txl::data
