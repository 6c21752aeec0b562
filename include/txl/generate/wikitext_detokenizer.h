// Token symbols of a WikiText-style word vocabulary -> readable text, one token at a time
// (so generation can print as it goes). Undoes what text_tokenizer / moses_tokenizer do to
// raw text (docs/generate.md):
//  - `@-@`, `@,@`, `@.@` join their neighbours with `-`, `,`, `.` (`1 @,@ 000` -> `1,000`);
//  - no space before , . ; : ! ? % ) ] } and the clitics 's 're 've 'll 'd 'm n't ', none
//    after ( [ { ;
//  - double quotes alternate opening (space before, none after) and closing (none before);
//  - Moses' XML escapes (&amp; &lt; &gt; &quot; &apos; &#91; &#93; &#124;) become the
//    characters again;
//  - the line-end symbol (`<eos>`) is a line break; a line starts without a space.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace txl::generate {

class WikiTextDetokenizer {
 public:
  explicit WikiTextDetokenizer(std::string line_end = "<eos>") : line_end_(std::move(line_end)) {}
  // The text to print for the next token (its leading space, if any, included).
  std::string push(std::string_view token);
  // As if the output so far ended a line (e.g. after printing a prompt that did).
  void start_line() { at_line_start_ = true; glue_next_ = false; }

 private:
  std::string line_end_;
  bool at_line_start_ = true;
  bool glue_next_ = false;     // the previous token wants no space after it
  bool quote_open_ = false;    // an opening " is waiting for its closing one
};

// All tokens at once (the same rules).
std::string detokenize_wikitext(const std::vector<std::string>& tokens, const std::string& line_end = "<eos>");

}  // namespace txl::generate
