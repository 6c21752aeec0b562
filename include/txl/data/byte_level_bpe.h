// GPT-2's byte-level BPE (Radford et al. 2019; the recipe's `--vocab bpe`), from a
// user's vocab.json (token -> id) and merges.txt (one "left right" pair per line, in
// rank order; a first line starting with "#version" is a header):
//  1. pre-tokenisation: the text is cut by the pattern
//       's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//     matched here by hand over code points (unicode_classes.h);
//  2. each piece's UTF-8 bytes become one symbol each through GPT-2's byte -> code point
//     map (printable Latin-1 bytes map to themselves, the other 68 to U+0100 + k in byte
//     order);
//  3. the adjacent pair with the lowest merge rank is merged (every occurrence, left to
//     right) until no adjacent pair has a rank; each final symbol's vocab.json id is
//     emitted.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace txl::data {

// GPT-2's byte -> code point map.
char32_t gpt2_byte_symbol(unsigned char byte);

// Step 1 on valid UTF-8 text: the pieces in order (views into `text`; they tile it).
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

// Python's universal newlines (how the recipe reads a text file before encoding it):
// "\r\n" and a lone "\r" become "\n".
std::string universal_newlines(std::string_view text);

class ByteLevelBpe {
 public:
  // symbols[id] = token (byte-mapped UTF-8, as vocab.json spells it); merges in rank
  // order. Every merge's result and every single-byte symbol must be in `symbols`.
  ByteLevelBpe(std::vector<std::string> symbols, std::vector<std::pair<std::string, std::string>> merges);
  // Reads the two files (one-line errors naming file and line); ids must be 0..n-1.
  static ByteLevelBpe from_files(const std::string& vocab_json, const std::string& merges_txt);

  // Valid UTF-8 text -> token ids. Not thread-safe (it caches the ids of every piece).
  std::vector<int32_t> encode(std::string_view text) const;
  void encode_append(std::string_view text, std::vector<int32_t>& out) const;

  // Ids -> text: the symbols' code points mapped back to bytes (code points outside the
  // byte map, e.g. of added tokens, stay as they are).
  std::string decode(const std::vector<int32_t>& ids) const;

  const std::vector<std::string>& symbols() const { return symbols_; }
  const std::vector<std::pair<std::string, std::string>>& merges() const { return merges_; }
  // The id of `token`, or -1.
  int32_t id(const std::string& token) const;

 private:
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

  std::vector<std::string> symbols_;
  std::vector<std::pair<std::string, std::string>> merges_;
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<std::string, int32_t> rank_;  // "left right" -> rank
  std::string byte_symbol_[256];                  // UTF-8 of gpt2_byte_symbol(b)
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace txl::data
