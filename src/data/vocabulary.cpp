#include "txl/data/vocabulary.h"

#include <charconv>

#include "txl/core/error.h"

namespace txl::data {

Vocabulary::Vocabulary(std::vector<std::string> symbols, std::vector<int64_t> counts, TokenizationRules rules)
    : symbols_(std::move(symbols)), counts_(std::move(counts)), rules_(std::move(rules)) {
  TXL_CHECK(counts_.size() == symbols_.size(), "vocabulary: {} symbols but {} counts", symbols_.size(), counts_.size());
  TXL_CHECK(symbols_.size() < (1ull << 31), "vocabulary: {} symbols do not fit 32-bit ids", symbols_.size());
  index_.reserve(symbols_.size());
  for (size_t i = 0; i < symbols_.size(); ++i) {
    const bool inserted = index_.emplace(symbols_[i], static_cast<int32_t>(i)).second;
    TXL_CHECK(inserted, "vocabulary: symbol '{}' appears twice (ids {} and {})", symbols_[i], find(symbols_[i]), i);
  }
  for (const std::string* s : {&rules_.line_end, &rules_.sentence_begin, &rules_.sentence_end, &rules_.unk}) {
    TXL_CHECK(s->empty() || find(*s) >= 0, "vocabulary: special symbol '{}' is missing", *s);
  }
  unk_id_ = rules_.unk.empty() ? -1 : find(rules_.unk);
  byte_ids_.fill(-1);
  if (rules_.unit == SymbolUnit::kByte) {
    for (int b = 0; b < 256; ++b) byte_ids_[static_cast<size_t>(b)] = find(std::to_string(b));
  }
}

const std::string& Vocabulary::symbol(int64_t id) const {
  if (id < 0 || id >= size()) failf("token id {} is outside the vocabulary [0, {})", id, size());
  return symbols_[static_cast<size_t>(id)];
}

int32_t Vocabulary::find(std::string_view symbol) const {
  const auto it = index_.find(symbol);
  return it == index_.end() ? -1 : it->second;
}

int32_t Vocabulary::id(std::string_view symbol) const {
  const int32_t i = find(symbol);
  if (i < 0) failf("symbol '{}' is not in the vocabulary", symbol);
  return i;
}

int32_t Vocabulary::encode_symbol(std::string_view symbol) const {
  const int32_t i = find(symbol);
  if (i >= 0) return i;
  if (unk_id_ >= 0) return unk_id_;
  failf("'{}' is not in the vocabulary and the corpus has no unknown-word symbol", symbol);
}

std::vector<int32_t> Vocabulary::encode(std::string_view text) const {
  if (bpe_) return bpe_->encode(universal_newlines(text));  // as the recipe's tokenize(line)
  std::vector<int32_t> ids;
  if (rules_.unit == SymbolUnit::kByte) {
    // Byte level (enwik8): every byte is a symbol; newline bytes end lines and carry no token.
    for (const char ch : text) {
      if (ch == '\n') continue;
      const auto b = static_cast<unsigned char>(ch);
      const int32_t i = byte_ids_[b] >= 0 ? byte_ids_[b] : unk_id_;
      if (i < 0) failf("byte {} is not in the vocabulary", static_cast<int>(b));
      ids.push_back(i);
    }
    return ids;
  }
  const size_t bad = find_invalid_utf8(text);
  if (bad != kNoInvalidByte) failf("text is not valid UTF-8 (byte offset {})", bad);
  std::string scratch;
  const int32_t begin = rules_.sentence_begin.empty() ? -1 : find(rules_.sentence_begin);
  const int32_t end = rules_.sentence_end.empty() ? -1 : find(rules_.sentence_end);
  const int32_t line_end = rules_.line_end.empty() ? -1 : find(rules_.line_end);
  for_each_line(text, [&](std::string_view line) {
    if (begin >= 0) ids.push_back(begin);
    tokenize_line(rules_, line, scratch, [&](std::string_view s) { ids.push_back(encode_symbol(s)); });
    if (end >= 0) ids.push_back(end);
    if (line_end >= 0) ids.push_back(line_end);
  });
  return ids;
}

std::string Vocabulary::decode(const std::vector<int32_t>& ids) const {
  if (bpe_) return bpe_->decode(ids);
  std::string out;
  const int32_t line_end = rules_.line_end.empty() ? -1 : find(rules_.line_end);
  bool line_start = true;
  for (const int32_t i : ids) {
    if (i == line_end) {
      out.push_back('\n');
      line_start = true;
      continue;
    }
    const std::string& s = symbol(i);
    if (rules_.unit == SymbolUnit::kByte) {
      int value = 0;
      const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
      if (ec == std::errc() && p == s.data() + s.size() && value >= 0 && value < 256) {
        out.push_back(static_cast<char>(value));
      } else {
        out += s;
      }
    } else {
      if (rules_.unit == SymbolUnit::kWord && !line_start) out.push_back(' ');
      out += s;
    }
    line_start = false;
  }
  return out;
}

}  // namespace txl::data
