// WikiText token text -> readable text, with the expected strings written out.
#include <gtest/gtest.h>

#include <sstream>

#include "txl/generate/wikitext_detokenizer.h"

namespace txl::generate {
namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

TEST(WikiTextDetokenizer, UndoesTheCorpusConventions) {
  EXPECT_EQ(detokenize_wikitext(split("The game 's first @-@ person view , released in 1 @,@ 000 copies .")),
            "The game's first-person view, released in 1,000 copies.");
  EXPECT_EQ(detokenize_wikitext(split("It cost $ 2 @.@ 5 million ( about 40 % ) !")),
            "It cost $ 2.5 million (about 40%)!");
  EXPECT_EQ(detokenize_wikitext(split("He said \" we do n't know \" and left .")), "He said \"we don't know\" and left.");
  EXPECT_EQ(detokenize_wikitext(split("Tom &amp; Jerry &lt;3 &#91; 1 &#93;")), "Tom & Jerry <3 [1]");
  EXPECT_EQ(detokenize_wikitext(split("= Valkyria Chronicles = <eos> <eos> Senjō no Valkyria : Unrecorded")),
            "= Valkyria Chronicles =\n\nSenjō no Valkyria: Unrecorded");
}

TEST(WikiTextDetokenizer, StreamsTokenByToken) {
  WikiTextDetokenizer d;
  EXPECT_EQ(d.push("Hello"), "Hello");
  EXPECT_EQ(d.push(","), ",");
  EXPECT_EQ(d.push("world"), " world");
  EXPECT_EQ(d.push("<eos>"), "\n");
  EXPECT_EQ(d.push("Next"), "Next");
  EXPECT_EQ(d.push("@-@"), "-");
  EXPECT_EQ(d.push("line"), "line");
}

TEST(WikiTextDetokenizer, OtherLineEndSymbol) {
  EXPECT_EQ(detokenize_wikitext(split("a b </s> c"), "</s>"), "a b\nc");
}

}  // namespace
}  // namespace txl::generate
