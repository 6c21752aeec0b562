#include "txl/generate/wikitext_detokenizer.h"

#include <array>
#include <utility>

namespace txl::generate {
namespace {

std::string unescape(std::string_view token) {
  static const std::array<std::pair<std::string_view, std::string_view>, 8> kEscapes{{{"&amp;", "&"},
                                                                                     {"&lt;", "<"},
                                                                                     {"&gt;", ">"},
                                                                                     {"&quot;", "\""},
                                                                                     {"&apos;", "'"},
                                                                                     {"&#91;", "["},
                                                                                     {"&#93;", "]"},
                                                                                     {"&#124;", "|"}}};
  std::string out;
  for (size_t i = 0; i < token.size();) {
    bool replaced = false;
    if (token[i] == '&')
      for (const auto& [from, to] : kEscapes)
        if (token.substr(i, from.size()) == from) {
          out += to;
          i += from.size();
          replaced = true;
          break;
        }
    if (!replaced) out += token[i++];
  }
  return out;
}

bool attaches_left(std::string_view t) {
  static const std::array<std::string_view, 19> kLeft{{",", ".", ";", ":", "!", "?", "%", ")", "]", "}", "'s", "'re",
                                                       "'ve", "'ll", "'d", "'m", "n't", "'", "..."}};
  for (std::string_view x : kLeft)
    if (t == x) return true;
  return false;
}
bool attaches_right(std::string_view t) { return t == "(" || t == "[" || t == "{"; }

}  // namespace

std::string WikiTextDetokenizer::push(std::string_view token) {
  if (token == line_end_) {
    at_line_start_ = true;
    glue_next_ = false;
    quote_open_ = false;
    return "\n";
  }
  // WikiText's joiners: `@-@` -> `-` with no space on either side.
  if (token.size() == 3 && token[0] == '@' && token[2] == '@' && (token[1] == '-' || token[1] == ',' || token[1] == '.')) {
    at_line_start_ = false;
    glue_next_ = true;
    return std::string(1, token[1]);
  }
  const std::string text = unescape(token);
  bool space = !at_line_start_ && !glue_next_;
  if (text == "\"") {
    if (quote_open_) {
      space = false;          // closing quote
      glue_next_ = false;
    } else {
      glue_next_ = true;      // opening quote: the next word follows it directly
    }
    quote_open_ = !quote_open_;
    at_line_start_ = false;
    return space ? " \"" : "\"";
  }
  if (attaches_left(text)) space = false;
  glue_next_ = attaches_right(text);
  at_line_start_ = false;
  return space ? " " + text : text;
}

std::string detokenize_wikitext(const std::vector<std::string>& tokens, const std::string& line_end) {
  WikiTextDetokenizer d(line_end);
  std::string out;
  for (const std::string& t : tokens) out += d.push(t);
  return out;
}

}  // namespace txl::generate
