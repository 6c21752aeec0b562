#include "txl/data/text_tokenizer.h"

#include <gtest/gtest.h>

#include "txl/core/error.h"
#include "txl/data/vocabulary.h"

namespace txl::data {
namespace {

std::vector<std::string> words(std::string_view line) {
  std::vector<std::string> out;
  for_each_word(line, [&](std::string_view w) { out.emplace_back(w); });
  return out;
}

std::vector<std::string> lines(std::string_view text) {
  std::vector<std::string> out;
  for_each_line(text, [&](std::string_view l) { out.emplace_back(l); });
  return out;
}

TEST(TextTokenizer, SplitsOnPythonWhiteSpace) {
  // ASCII separators, NBSP (U+00A0), ideographic space (U+3000) and U+001F all separate
  // words in Python's str.split(); U+200B (zero-width space) does not.
  EXPECT_EQ(words("  a\tb\x0b"
                  "c\x1f"
                  "d"),
            (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(words("x\xc2\xa0y\xe3\x80\x80z"), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(words("p\xe2\x80\x8bq"), (std::vector<std::string>{"p\xe2\x80\x8bq"}));
  EXPECT_TRUE(words(" \t ").empty());
}

TEST(TextTokenizer, UniversalNewlines) {
  EXPECT_EQ(lines("a\nb\r\nc\rd"), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(lines("a\n\nb\n"), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(lines(""), std::vector<std::string>{});
  EXPECT_EQ(line_number_at("a\r\nb\rc\nd", 7), 4);
}

TEST(TextTokenizer, StripAndCodepoints) {
  EXPECT_EQ(strip_space("\xc2\xa0 h\xc3\xa9 \t"), "h\xc3\xa9");
  TokenizationRules r;
  r.unit = SymbolUnit::kCodepoint;
  r.strip_lines = true;
  std::vector<std::string> cps;
  std::string scratch;
  tokenize_line(r, "  h\xc3\xa9 x ", scratch, [&](std::string_view s) { cps.emplace_back(s); });
  EXPECT_EQ(cps, (std::vector<std::string>{"h", "\xc3\xa9", " ", "x"}));
}

TEST(TextTokenizer, LowerCasesUnicode) {
  std::string out;
  lower_case_utf8("ABC \xc3\x89t\xc3\x89 \xce\xa3", out);  // "ABC ÉtÉ Σ"
  EXPECT_EQ(out, "abc \xc3\xa9t\xc3\xa9 \xcf\x83");
  EXPECT_TRUE(is_lower_case_ascii("abc 1"));
  EXPECT_FALSE(is_lower_case_ascii("aBc"));
}

TEST(TextTokenizer, RejectsInvalidUtf8) {
  EXPECT_EQ(find_invalid_utf8("plain ascii text that is long enough"), kNoInvalidByte);
  EXPECT_EQ(find_invalid_utf8("ok \xc3\xa9 \xf0\x9f\x98\x80"), kNoInvalidByte);
  EXPECT_EQ(find_invalid_utf8("abc\xff"), 3u);              // never valid
  EXPECT_EQ(find_invalid_utf8("ab\xc0\xaf"), 2u);           // overlong '/'
  EXPECT_EQ(find_invalid_utf8("a\xed\xa0\x80"), 1u);        // UTF-16 surrogate
  EXPECT_EQ(find_invalid_utf8("abcdefghij\xe2\x82"), 10u);  // truncated sequence
  EXPECT_EQ(find_invalid_utf8("\x80"), 0u);                 // stray continuation byte
}

TEST(Vocabulary, EncodesWithCorpusRules) {
  TokenizationRules r;
  r.line_end = "<eos>";
  r.unk = "<unk>";
  r.lower_case = true;
  Vocabulary v({"<eos>", "<unk>", "the", "cat"}, {2, 1, 5, 3}, r);
  EXPECT_EQ(v.encode("The CAT\ndog"), (std::vector<int32_t>{2, 3, 0, 1, 0}));
  EXPECT_EQ(v.decode({2, 3, 0, 2}), "the cat\nthe");
  EXPECT_EQ(v.id("cat"), 3);
  EXPECT_EQ(v.find("dog"), -1);
  EXPECT_THROW(v.symbol(4), Error);
  EXPECT_THROW(Vocabulary({"a", "a"}, {1, 1}, {}), Error);

  TokenizationRules bytes;
  bytes.unit = SymbolUnit::kByte;
  Vocabulary b({"97", "98", "13"}, {1, 1, 1}, bytes);
  EXPECT_EQ(b.encode("ab\n\rb"), (std::vector<int32_t>{0, 1, 2, 1}));  // newline bytes carry no token
  EXPECT_EQ(b.decode({0, 1}), "ab");
  EXPECT_THROW(b.encode("c"), Error);

  TokenizationRules lm1b;
  lm1b.sentence_begin = "<S>";
  lm1b.sentence_end = "</S>";
  lm1b.unk = "<UNK>";
  Vocabulary s({"<S>", "</S>", "<UNK>", "hi"}, {0, 0, 0, 1}, lm1b);
  EXPECT_EQ(s.encode("hi there"), (std::vector<int32_t>{0, 3, 2, 1}));
}

}  // namespace
}  // namespace txl::data
