#include "txl/convert/checkpoint_vocabulary.h"

#include "txl/core/error.h"

namespace txl {
namespace {
constexpr const char* kGroup = "/vocab";
constexpr const char* kSymbols = "/vocab/symbols";
constexpr const char* kCounts = "/vocab/counts";
}  // namespace

void save_checkpoint_vocabulary(h5::File& file, const CheckpointVocabulary& v) {
  const data::Vocabulary& voc = v.vocabulary;
  const data::TokenizationRules& r = voc.rules();
  file.write_strings(kSymbols, voc.symbols());
  file.write(kCounts, voc.counts());
  file.set_attr(kGroup, "vocab_kind", v.vocab_kind);
  file.set_attr(kGroup, "unit", std::string(data::unit_name(r.unit)));
  file.set_attr(kGroup, "lower_case", int64_t{r.lower_case});
  file.set_attr(kGroup, "strip_lines", int64_t{r.strip_lines});
  file.set_attr(kGroup, "line_end_symbol", r.line_end);
  file.set_attr(kGroup, "sentence_begin_symbol", r.sentence_begin);
  file.set_attr(kGroup, "sentence_end_symbol", r.sentence_end);
  file.set_attr(kGroup, "unk_symbol", r.unk);
}

bool has_checkpoint_vocabulary(const h5::File& file) { return file.exists(kSymbols); }

CheckpointVocabulary read_checkpoint_vocabulary(const h5::File& file) {
  TXL_CHECK(has_checkpoint_vocabulary(file), "{}: the checkpoint holds no vocabulary ({} missing)", file.path(),
            kSymbols);
  CheckpointVocabulary v;
  v.vocab_kind = file.attr_string(kGroup, "vocab_kind");
  if (v.vocab_kind != "word" && v.vocab_kind != "char")
    failf("{}: {} attribute vocab_kind = '{}' (expected word or char)", file.path(), kGroup, v.vocab_kind);
  data::TokenizationRules r;
  r.unit = data::parse_unit(file.attr_string(kGroup, "unit"));
  r.lower_case = file.attr_int(kGroup, "lower_case") != 0;
  r.strip_lines = file.attr_int(kGroup, "strip_lines") != 0;
  r.line_end = file.attr_string(kGroup, "line_end_symbol");
  r.sentence_begin = file.attr_string(kGroup, "sentence_begin_symbol");
  r.sentence_end = file.attr_string(kGroup, "sentence_end_symbol");
  r.unk = file.attr_string(kGroup, "unk_symbol");
  std::vector<std::string> symbols = file.read_strings(kSymbols);
  std::vector<int64_t> counts = file.read<int64_t>(kCounts);
  try {
    v.vocabulary = data::Vocabulary(std::move(symbols), std::move(counts), r);
  } catch (const Error& e) {
    failf("{}: {}", file.path(), e.what());
  }
  return v;
}

void check_same_symbols(const data::Vocabulary& checkpoint, const data::Vocabulary& corpus,
                        const std::string& checkpoint_what, const std::string& corpus_what) {
  if (checkpoint.size() != corpus.size())
    failf("{} has {} symbols but the corpus {} has {}: not the corpus the model was trained on", checkpoint_what,
          checkpoint.size(), corpus_what, corpus.size());
  for (int64_t i = 0; i < checkpoint.size(); ++i)
    if (checkpoint.symbol(i) != corpus.symbol(i))
      failf("{}: id {} is '{}' but '{}' in the corpus {}: not the corpus the model was trained on", checkpoint_what,
            i, checkpoint.symbol(i), corpus.symbol(i), corpus_what);
}

}  // namespace txl
