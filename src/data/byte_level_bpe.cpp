#include "txl/data/byte_level_bpe.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <limits>
#include <sstream>

#include "txl/core/error.h"
#include "txl/data/text_tokenizer.h"
#include "txl/data/unicode_classes.h"

namespace txl::data {

char32_t gpt2_byte_symbol(unsigned char byte) {
  const auto printable = [](unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; };
  if (printable(byte)) return byte;
  char32_t k = 0;
  for (unsigned b = 0; b < byte; ++b)
    if (!printable(b)) ++k;
  return 0x100 + k;
}

namespace {

// A cursor over the code points of valid UTF-8.
struct Codepoints {
  std::string_view text;
  // Code point at byte offset i and its length in bytes (0 at the end).
  char32_t at(size_t i, size_t* len) const {
    if (i >= text.size()) {
      *len = 0;
      return 0;
    }
    const char* p = text.data() + i;
    const char* q = p;
    const char32_t c = decode_utf8(q);
    *len = static_cast<size_t>(q - p);
    return c;
  }
};

bool is_other(char32_t c) { return !is_unicode_space(c) && !is_unicode_letter(c) && !is_unicode_number(c); }

// Length in bytes of the longest run from i of code points with `pred` (0: none).
template <typename Pred>
size_t run(const Codepoints& cp, size_t i, Pred pred) {
  size_t end = i, len = 0;
  while (true) {
    const char32_t c = cp.at(end, &len);
    if (len == 0 || !pred(c)) break;
    end += len;
  }
  return end - i;
}

// Length of the piece the pattern matches at i (i < text.size()).
size_t match_piece(const Codepoints& cp, size_t i) {
  const std::string_view t = cp.text;
  // 's 't 're 've 'm 'll 'd
  if (t[i] == '\'') {
    for (const char* c : {"s", "t", "re", "ve", "m", "ll", "d"})
      if (t.substr(i + 1, std::char_traits<char>::length(c)) == c) return 1 + std::char_traits<char>::length(c);
  }
  // ' ?X+' for X = letters, numbers, others: an optional U+0020, then a run.
  const size_t lead = t[i] == ' ' ? 1 : 0;
  for (bool (*cls)(char32_t) : {&is_unicode_letter, &is_unicode_number, &is_other}) {
    if (const size_t n = run(cp, i + lead, cls); n > 0) return lead + n;
    if (lead == 1)  // the optional space not taken: the class must start at i itself
      if (const size_t n = run(cp, i, cls); n > 0) return n;
  }
  // \s+(?!\S): the whole run when it reaches the end or... its last code point is left
  // when a non-space follows, so the run ends just before a space; then \s+.
  const size_t n = run(cp, i, &is_unicode_space);
  if (n == 0) return 0;  // unreachable: every code point is in one class
  if (i + n == t.size()) return n;
  size_t last = i, len = 0;
  for (size_t p = i; p < i + n; p += len) {
    cp.at(p, &len);
    last = p;
  }
  return last > i ? last - i : n;
}

}  // namespace

std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  std::vector<std::string_view> pieces;
  const Codepoints cp{text};
  for (size_t i = 0; i < text.size();) {
    const size_t n = match_piece(cp, i);
    TXL_CHECK(n > 0, "gpt2_pretokenize: no piece matches at byte {}", i);
    pieces.push_back(text.substr(i, n));
    i += n;
  }
  return pieces;
}

ByteLevelBpe::ByteLevelBpe(std::vector<std::string> symbols, std::vector<std::pair<std::string, std::string>> merges)
    : symbols_(std::move(symbols)), merges_(std::move(merges)) {
  TXL_CHECK(symbols_.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()), "BPE: too many symbols");
  for (size_t i = 0; i < symbols_.size(); ++i) {
    const auto [it, fresh] = ids_.emplace(symbols_[i], static_cast<int32_t>(i));
    if (!fresh) failf("BPE vocabulary: token '{}' has ids {} and {}", symbols_[i], it->second, i);
  }
  for (int b = 0; b < 256; ++b) {
    append_utf8(byte_symbol_[b], gpt2_byte_symbol(static_cast<unsigned char>(b)));
    if (!ids_.count(byte_symbol_[b])) failf("BPE vocabulary: no token for byte 0x{:02X} ('{}')", b, byte_symbol_[b]);
  }
  for (size_t r = 0; r < merges_.size(); ++r) {
    const auto& [a, b] = merges_[r];
    if (!ids_.count(a + b)) failf("BPE merges: rank {} ('{} {}') makes '{}', which the vocabulary lacks", r, a, b, a + b);
    rank_.emplace(a + " " + b, static_cast<int32_t>(r));  // a repeated pair keeps its first rank
  }
}

ByteLevelBpe ByteLevelBpe::from_files(const std::string& vocab_json, const std::string& merges_txt) {
  auto slurp = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) failf("{}: cannot open", path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  };
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(slurp(vocab_json));
  } catch (const nlohmann::json::exception& e) {
    failf("{}: not valid JSON ({})", vocab_json, e.what());
  }
  if (!vocab.is_object() || vocab.empty()) failf("{}: expected a JSON object token -> id", vocab_json);
  std::vector<std::string> symbols(vocab.size());
  std::vector<bool> given(vocab.size(), false);
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer()) failf("{}: the id of '{}' is not an integer", vocab_json, token);
    const int64_t i = id.get<int64_t>();
    if (i < 0 || i >= static_cast<int64_t>(symbols.size()) || given[static_cast<size_t>(i)])
      failf("{}: id {} of '{}' is repeated or outside 0..{} (ids must be 0..n-1)", vocab_json, i, token,
            symbols.size() - 1);
    symbols[static_cast<size_t>(i)] = token;
    given[static_cast<size_t>(i)] = true;
  }
  const std::string text = slurp(merges_txt);
  if (find_invalid_utf8(text) != kNoInvalidByte) failf("{}: invalid UTF-8", merges_txt);
  std::vector<std::pair<std::string, std::string>> merges;
  std::istringstream lines(text);
  std::string line;
  for (int64_t no = 1; std::getline(lines, line); ++no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (no == 1 && line.rfind("#version", 0) == 0)) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos)
      failf("{}: line {}: expected two tokens separated by one space, got '{}'", merges_txt, no, line);
    merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
  return ByteLevelBpe(std::move(symbols), std::move(merges));
}

int32_t ByteLevelBpe::id(const std::string& token) const {
  const auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

void ByteLevelBpe::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  const std::string key(piece);
  if (const auto hit = cache_.find(key); hit != cache_.end()) {
    out.insert(out.end(), hit->second.begin(), hit->second.end());
    return;
  }
  std::vector<std::string> word;
  for (char b : piece) word.push_back(byte_symbol_[static_cast<unsigned char>(b)]);
  std::string pair;
  while (word.size() > 1) {
    int32_t best = std::numeric_limits<int32_t>::max();
    size_t at = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      pair.assign(word[i]).append(" ").append(word[i + 1]);
      const auto it = rank_.find(pair);
      if (it != rank_.end() && it->second < best) {
        best = it->second;
        at = i;
      }
    }
    if (best == std::numeric_limits<int32_t>::max()) break;
    const std::string left = word[at], right = word[at + 1];
    std::vector<std::string> merged;
    merged.reserve(word.size());
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == left && word[i + 1] == right) {
        merged.push_back(left + right);
        i += 2;
      } else {
        merged.push_back(std::move(word[i]));
        ++i;
      }
    }
    word = std::move(merged);
  }
  std::vector<int32_t>& ids = cache_[key];
  for (const std::string& s : word) ids.push_back(ids_.at(s));
  out.insert(out.end(), ids.begin(), ids.end());
}

void ByteLevelBpe::encode_append(std::string_view text, std::vector<int32_t>& out) const {
  if (const size_t bad = find_invalid_utf8(text); bad != kNoInvalidByte)
    failf("BPE: invalid UTF-8 at byte offset {}", bad);
  for (std::string_view piece : gpt2_pretokenize(text)) encode_piece(piece, out);
}

std::string ByteLevelBpe::decode(const std::vector<int32_t>& ids) const {
  std::unordered_map<char32_t, unsigned char> byte_of;
  for (int b = 0; b < 256; ++b) byte_of[gpt2_byte_symbol(static_cast<unsigned char>(b))] = static_cast<unsigned char>(b);
  std::string out;
  for (const int32_t id : ids) {
    TXL_CHECK(id >= 0 && static_cast<size_t>(id) < symbols_.size(), "BPE decode: id {} outside [0, {})", id,
              symbols_.size());
    const std::string& s = symbols_[static_cast<size_t>(id)];
    for (const char* p = s.data(); p < s.data() + s.size();) {
      const char32_t c = decode_utf8(p);
      const auto it = byte_of.find(c);
      if (it != byte_of.end()) {
        out.push_back(static_cast<char>(it->second));
      } else {
        append_utf8(out, c);
      }
    }
  }
  return out;
}

std::string universal_newlines(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\r') {
      out.push_back(text[i]);
    } else {
      out.push_back('\n');
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    }
  }
  return out;
}

std::vector<int32_t> ByteLevelBpe::encode(std::string_view text) const {
  std::vector<int32_t> out;
  encode_append(text, out);
  return out;
}

}  // namespace txl::data
