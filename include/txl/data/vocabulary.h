// Vocabulary: symbol <-> id, the training-split count of each symbol, and the rules that
// turn raw text into symbols (so user text given to `txl_eval --manual` is encoded the way
// the corpus was).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "txl/data/byte_level_bpe.h"
#include "txl/data/symbol_map.h"
#include "txl/data/text_tokenizer.h"

namespace txl::data {

class Vocabulary {
 public:
  Vocabulary() = default;
  // Symbols in id order; counts[i] is the count of symbol i (same length). Symbols must
  // be distinct; the rules' line_end / sentence markers / unk must be present when set.
  Vocabulary(std::vector<std::string> symbols, std::vector<int64_t> counts, TokenizationRules rules);

  int64_t size() const { return static_cast<int64_t>(symbols_.size()); }
  const std::vector<std::string>& symbols() const { return symbols_; }
  const std::vector<int64_t>& counts() const { return counts_; }
  const TokenizationRules& rules() const { return rules_; }

  // Symbol of an id; throws txl::Error naming the id when it is out of range.
  const std::string& symbol(int64_t id) const;
  // Id of a symbol, or -1 when it is not in the vocabulary.
  int32_t find(std::string_view symbol) const;
  // Id of a symbol; throws txl::Error naming the symbol when absent.
  int32_t id(std::string_view symbol) const;
  // Id of the unknown-word symbol (rules().unk), or -1 when the corpus has none.
  int32_t unk_id() const { return unk_id_; }

  // A BPE corpus (vocab_kind "bpe"): encode and decode use GPT-2's byte-level BPE
  // instead of the rules (its symbols are this vocabulary's, in id order).
  void set_bpe(std::shared_ptr<const ByteLevelBpe> bpe) { bpe_ = std::move(bpe); }
  const ByteLevelBpe* bpe() const { return bpe_.get(); }

  // Encodes raw text with the corpus rules: lines, words or characters, lower-casing,
  // line-end symbols, sentence markers; out-of-vocabulary symbols become unk (or throw
  // when there is none).
  std::vector<int32_t> encode(std::string_view text) const;
  // Inverse of encode for display: words joined by spaces, line ends as newlines.
  std::string decode(const std::vector<int32_t>& ids) const;

 private:
  int32_t encode_symbol(std::string_view symbol) const;
  std::vector<std::string> symbols_;
  std::vector<int64_t> counts_;
  TokenizationRules rules_;
  SymbolMap<int32_t> index_;
  std::array<int32_t, 256> byte_ids_{};  // byte unit: id of each byte value (-1 absent)
  int32_t unk_id_ = -1;
  std::shared_ptr<const ByteLevelBpe> bpe_;
};

}  // namespace txl::data
