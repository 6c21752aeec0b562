// The recipe's `--manual` tokenisation: Moses English rules, then WikiText's conventions.
// Expected strings produced by sacremoses 0.2.0 (MosesTokenizer('en').tokenize(text,
// return_str=True)) followed by the recipe's five rewrites (include/txl/data/moses_tokenizer.h).
#include <gtest/gtest.h>

#include "txl/core/error.h"
#include "txl/data/moses_tokenizer.h"

namespace txl::data {
namespace {

struct Case {
  const char* text;
  const char* moses;     // sacremoses output
  const char* wikitext;  // after the recipe's rewrites
};

const Case kCases[] = {
    {"Mr. Smith met Dr. Jones in the U.S. last year.",
     "Mr. Smith met Dr. Jones in the U.S. last year .",
     "Mr. Smith met Dr. Jones in the U.S. last year ."},
    {"The price rose 1.5 percent to $1,000.50 on Monday.",
     "The price rose 1.5 percent to $ 1,000.50 on Monday .",
     "The price rose 1 @.@ 5 percent to $ 1 @,@ 000 @.@ 50 on Monday ."},
    {"It's a well-known fact that we'll win 3-4 games.",
     "It &apos;s a well-known fact that we &apos;ll win 3-4 games .",
     "It 's a well @-@ known fact that we 'll win 3 @-@ 4 games ."},
    {"I don't think they're ready, e.g. for the test.",
     "I don &apos;t think they &apos;re ready , e.g. for the test .",
     "I don 't think they 're ready , e.g. for the test ."},
    {"He said \"hello\" and left (quickly) [twice].",
     "He said &quot; hello &quot; and left ( quickly ) &#91; twice &#93; .",
     "He said \" hello \" and left ( quickly ) &#91; twice &#93; ."},
    {"Wait... what?! Really?",
     "Wait ... what ? ! Really ?",
     "Wait ... what ? ! Really ?"},
    {"No. 5 is the answer, not No. five.",
     "No. 5 is the answer , not No. five .",
     "No. 5 is the answer , not No. five ."},
    {"See pp. 12-15 and Art. 3 of the treaty.",
     "See pp. 12-15 and Art. 3 of the treaty .",
     "See pp. 12 @-@ 15 and Art. 3 of the treaty ."},
    {"The 1990's were great; the 80's too.",
     "The 1990 &apos;s were great ; the 80 &apos;s too .",
     "The 1990 's were great ; the 80 's too ."},
    {"She earned 2,500,000 dollars in 2011.",
     "She earned 2,500,000 dollars in 2011 .",
     "She earned 2 @,@ 500 @,@ 000 dollars in 2011 ."},
    {"Prof. Brown & Sons Ltd. sold 10% more.",
     "Prof. Brown &amp; Sons Ltd. sold 10 % more .",
     "Prof. Brown &amp; Sons Ltd. sold 10 % more ."},
    {"'Tis the season, isn't it?",
     "&apos;Tis the season , isn &apos;t it ?",
     "'Tis the season , isn 't it ?"},
    {"A.B.C. and i.e. are abbreviations.",
     "A.B.C. and i.e. are abbreviations .",
     "A.B.C. and i.e. are abbreviations ."},
    {"Temperatures fell to -3.5 degrees at 5:30 a.m. today.",
     "Temperatures fell to -3.5 degrees at 5 : 30 a.m. today .",
     "Temperatures fell to -3 @.@ 5 degrees at 5 : 30 a.m. today ."},
    {"The cat sat on the mat. The dog didn't.",
     "The cat sat on the mat . The dog didn &apos;t .",
     "The cat sat on the mat . The dog didn 't ."},
    {"Use a|b and <tags> here.",
     "Use a &#124; b and &lt; tags &gt; here .",
     "Use a &#124; b and &lt; tags &gt; here ."},
    {"He went to St. Louis. Then he slept.",
     "He went to St. Louis . Then he slept .",
     "He went to St. Louis . Then he slept ."},
    {"rock 'n' roll, y'all!",
     "rock &apos; n &apos; roll , y &apos;all !",
     "rock ' n ' roll , y 'all !"},
    {"Email me at john@example.com or call 555-1234.",
     "Email me at john @ example.com or call 555-1234 .",
     "Email me at john @ example.com or call 555 @-@ 1234 ."},
    {"The end.'",
     "The end . &apos; ",
     "The end . ' "},
    {"Café naïve résumé — über.",
     "Café naïve résumé — über .",
     "Café naïve résumé — über ."},
    {"1.2.3 and 4,5,6 and a-b-c.",
     "1.2.3 and 4,5,6 and a-b-c .",
     "1 @.@ 2.3 and 4 @,@ 5,6 and a @-@ b-c ."},
    {"  tabs\tand\nnew  lines\x01"" here  ",
     "tabs and new lines here",
     "tabs and new lines here"},
    {"Hello,world and 5,",
     "Hello , world and 5 ,",
     "Hello , world and 5 ,"},
    {"etc... and so on...",
     "etc ... and so on ...",
     "etc ... and so on ..."},
    {"x's y' 'z",
     "x &apos;s y &apos; &apos; z",
     "x 's y ' ' z"},
    {"He paid 5,- and `quoted` text --- fine",
     "He paid 5 , - and `quoted` text --- fine",
     "He paid 5 , - and `quoted` text --- fine"},
    {"I.B.M. Corp. rose.",
     "I.B.M. Corp. rose .",
     "I.B.M. Corp. rose ."},
    // Beyond ASCII: letters with diacritics stay in words; CJK ideographs and Hangul
    // syllables stand alone, as sacremoses' tables have them.
    {"東京タワー is in 東京.",
     "東 京 タワー is in 東 京 .",
     "東 京 タワー is in 東 京 ."},
    {"Straße 5-6, Zürich.",
     "Straße 5-6 , Zürich .",
     "Straße 5 @-@ 6 , Zürich ."},
    {"한국어 text-文字.",
     "한 국 어 text- 文 字 .",
     "한 국 어 text- 文 字 ."},
    {"naïve-café über-größe",
     "naïve-café über-größe",
     "naïve @-@ café über @-@ größe"},
};

TEST(MosesTokenizer, MatchesSacremosesEnglish) {
  for (const Case& c : kCases) EXPECT_EQ(moses_tokenize_english(c.text), c.moses) << c.text;
}

TEST(MosesTokenizer, RewritesLikeTheRecipe) {
  for (const Case& c : kCases) {
    EXPECT_EQ(wikitext_conventions(c.moses), c.wikitext) << c.text;
    EXPECT_EQ(tokenize_like_wikitext(c.text), c.wikitext) << c.text;
  }
}

TEST(MosesTokenizer, RefusesInvalidUtf8) {
  try {
    moses_tokenize_english("ab\xff");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "text is not valid UTF-8 (byte offset 2)");
  }
}

}  // namespace
}  // namespace txl::data
