// Raw English text -> the space-separated token text of WikiText-103, as the recipe's
// `eval.py --manual` prepares it: the Moses English tokenizer (the rules of sacremoses'
// MosesTokenizer('en').tokenize(text, return_str=True), with its English non-breaking
// prefixes and XML escaping), then WikiText's conventions: `&quot;` -> `"`, `&apos;` -> `'`,
// `1.5` -> `1 @.@ 5`, `1,5` -> `1 @,@ 5`, `a-b` -> `a @-@ b`.
//
// Character classes: ASCII exactly as sacremoses; other code points through the C
// library's Unicode tables (C.UTF-8) without the CJK ideographs and Hangul syllables, which
// sacremoses' tables leave out. Across the BMP that leaves a few hundred code points where
// the two disagree (rare scripts, some numbers outside the ranges is_number lists).
#pragma once
#include <string>
#include <string_view>

namespace txl::data {

// The Moses English tokenizer (aggressive dash splits off, XML escaping on). `text` must
// be valid UTF-8. The result keeps sacremoses' spacing exactly (a trailing " . ' " keeps
// its last space).
std::string moses_tokenize_english(std::string_view text);

// The recipe's rewrite of Moses output into WikiText-103's token conventions.
std::string wikitext_conventions(std::string_view moses_text);

// moses_tokenize_english followed by wikitext_conventions.
std::string tokenize_like_wikitext(std::string_view text);

}  // namespace txl::data
