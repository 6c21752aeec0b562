// A vocabulary carried inside a txl checkpoint (converted recipe checkpoints have one,
// so `txl_eval --manual` needs no corpus, as in the recipe):
//   /vocab/symbols  string [n_token]    /vocab/counts  int64 [n_token]
//   attributes of /vocab: vocab_kind (word | char), unit (word | codepoint | byte),
//   lower_case, strip_lines, line_end_symbol, sentence_begin_symbol,
//   sentence_end_symbol, unk_symbol (the corpus file's tokenisation rules, docs/data.md)
#pragma once
#include <string>

#include "txl/data/vocabulary.h"
#include "txl/io/h5file.h"

namespace txl {

struct CheckpointVocabulary {
  data::Vocabulary vocabulary;
  std::string vocab_kind = "word";  // "char": report bpc
};

void save_checkpoint_vocabulary(h5::File& file, const CheckpointVocabulary& v);
bool has_checkpoint_vocabulary(const h5::File& file);
CheckpointVocabulary read_checkpoint_vocabulary(const h5::File& file);

// Throws txl::Error naming the first id whose symbol differs (or the sizes) between the
// checkpoint's vocabulary and a corpus's.
void check_same_symbols(const data::Vocabulary& checkpoint, const data::Vocabulary& corpus,
                        const std::string& checkpoint_what, const std::string& corpus_what);

}  // namespace txl
