// GPT-2 byte-level BPE (byte_level_bpe.h) on the fixture of tests/fixtures/bpe/: the ids
// of sample.txt are those two references computed (make_fixture.py: a plain statement of
// the published algorithm and HuggingFace tokenizers, which agree); pre-tokenisation,
// the byte map and the Unicode classes on cases of their own; bad files.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "txl/core/error.h"
#include "txl/data/byte_level_bpe.h"
#include "txl/data/text_tokenizer.h"
#include "txl/data/unicode_classes.h"

namespace txl::data {
namespace {

std::string fixture(const std::string& name) { return std::string(TXL_SOURCE_DIR) + "/tests/fixtures/bpe/" + name; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ByteLevelBpe, SampleIdsMatchTheReferenceTokenizers) {
  const ByteLevelBpe bpe = ByteLevelBpe::from_files(fixture("vocab.json"), fixture("merges.txt"));
  EXPECT_EQ(bpe.symbols().size(), 377u);
  EXPECT_EQ(bpe.merges().size(), 120u);
  const std::vector<int32_t> expected = {72, 101, 108, 108, 111, 290, 111, 114, 108, 100, 33, 297, 116, 39, 115, 263, 257, 278, 116, 58, 283, 39, 259, 32, 256, 259, 44, 290, 101, 39, 260, 290, 111, 110, 44, 297, 39, 108, 108, 32, 103, 111, 44, 32, 121, 111, 117, 39, 100, 285, 101, 44, 297, 39, 109, 292, 110, 46, 10, 32, 32, 84, 119, 111, 291, 101, 97, 100, 105, 110, 103, 261, 112, 97, 99, 278, 44, 9, 116, 256, 110, 263, 257, 307, 59, 32, 265, 117, 98, 108, 101, 32, 261, 112, 97, 99, 278, 271, 257, 114, 97, 105, 108, 105, 110, 103, 362, 10, 10, 10, 66, 108, 97, 110, 107, 291, 105, 110, 278, 263, 98, 111, 260, 46, 32, 67, 97, 102, 270, 32, 110, 97, 305, 260, 32, 206, 343, 365, 32, 230, 330, 321, 158, 33, 13, 10, 68, 105, 103, 105, 116, 115, 32, 50, 48, 49, 57, 44, 32, 51, 46, 49, 52, 271, 32, 217, 163, 217, 164, 217, 165, 59, 363, 59, 32, 101, 109, 111, 106, 105, 32, 299, 299, 372, 364, 367, 113, 194, 187, 10, 78, 66, 83, 80, 194, 160, 256, 259, 44, 292, 100, 101, 111, 103, 114, 97, 112, 104, 276, 227, 128, 128, 115, 112, 97, 99, 101, 44, 32, 39, 306, 111, 116, 101, 100, 39, 271, 32, 39, 83, 32, 117, 112, 112, 101, 114, 32, 39, 83, 46, 32, 63, 33, 46, 46, 46, 32, 101, 264};
  const std::string sample = slurp(fixture("sample.txt"));
  EXPECT_EQ(bpe.encode(sample), expected);
  EXPECT_EQ(bpe.encode(sample), expected);  // again, from the piece cache
  EXPECT_EQ(gpt2_pretokenize(sample).size(), 97u);
  EXPECT_EQ(bpe.id("<|endoftext|>"), 376);
}

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view p : gpt2_pretokenize(text)) out.emplace_back(p);
  return out;
}

TEST(ByteLevelBpe, PretokenisationFollowsThePattern) {
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces("I'm here, they'll"), (V{"I", "'m", " here", ",", " they", "'ll"}));
  EXPECT_EQ(pieces("a  b"), (V{"a", " ", " b"}));        // \s+(?!\S) leaves the space before b
  EXPECT_EQ(pieces("a \n\n b"), (V{"a", " \n\n", " b"}));
  EXPECT_EQ(pieces("x  "), (V{"x", "  "}));              // trailing run: all of it
  EXPECT_EQ(pieces("x\ny"), (V{"x", "\n", "y"}));        // one space before a non-space: \s+
  EXPECT_EQ(pieces("ab12 34!? 'S"), (V{"ab", "12", " 34", "!?", " '", "S"}));
  EXPECT_EQ(pieces("caf\u00e9 \u0663\u0664"), (V{"caf\u00e9", " \u0663\u0664"}));
  EXPECT_EQ(pieces("\U0001F642\U0001F642 \u00a0x"), (V{"\U0001F642\U0001F642", " ", "\u00a0", "x"}));
  EXPECT_TRUE(pieces("").empty());
}

TEST(ByteLevelBpe, ByteMapAndUnicodeClasses) {
  EXPECT_EQ(gpt2_byte_symbol('A'), U'A');
  EXPECT_EQ(gpt2_byte_symbol(' '), U'\u0120');
  EXPECT_EQ(gpt2_byte_symbol('\n'), U'\u010A');
  EXPECT_EQ(gpt2_byte_symbol(0x00), U'\u0100');
  EXPECT_EQ(gpt2_byte_symbol(0x7F), U'\u0121');
  EXPECT_EQ(gpt2_byte_symbol(0xAD), U'\u0143');
  EXPECT_EQ(gpt2_byte_symbol(0xFF), U'\u00FF');
  EXPECT_TRUE(is_unicode_letter(U'\u00e9'));
  EXPECT_TRUE(is_unicode_letter(U'\u65e5'));
  EXPECT_FALSE(is_unicode_letter(U'1'));
  EXPECT_TRUE(is_unicode_number(U'\u0663'));
  EXPECT_TRUE(is_unicode_number(U'\u216b'));  // Roman numeral: Nl
  EXPECT_FALSE(is_unicode_number(U'x'));
  EXPECT_TRUE(is_unicode_space(U'\u3000'));
  EXPECT_TRUE(is_unicode_space(U'\u00a0'));
  EXPECT_FALSE(is_unicode_space(U'\u001c'));  // a Python str.isspace() character, but not \s
  EXPECT_FALSE(is_unicode_space(U'\u200b'));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ByteLevelBpe, BadFilesFailWithOneLine) {
  const std::string dir = std::string(TXL_BINARY_DIR) + "/";
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + name, std::ios::binary) << text;
    return dir + name;
  };
  const std::string merges = fixture("merges.txt"), vocab = fixture("vocab.json");
  EXPECT_NE(error_of([&] { ByteLevelBpe::from_files(write("bpe_bad.json", "{\"a\": 0,"), merges); }).find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ByteLevelBpe::from_files(write("bpe_small.json", "{\"a\": 0}"), merges); }).find("no token for byte"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ByteLevelBpe::from_files(vocab, write("bpe_bad_merges.txt", "#version: 0.2\nab\n")); })
                .find("line 2"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ByteLevelBpe::from_files(vocab, write("bpe_unknown_merge.txt", "\xc4\xa0 zq\n")); })
                .find("lacks"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ByteLevelBpe::from_files(dir + "no_such_vocab.json", merges); }).find("cannot open"),
            std::string::npos);
  const ByteLevelBpe bpe = ByteLevelBpe::from_files(vocab, merges);
  EXPECT_NE(error_of([&] { bpe.encode("ok \xff"); }).find("invalid UTF-8"), std::string::npos);
}

}  // namespace
}  // namespace txl::data
