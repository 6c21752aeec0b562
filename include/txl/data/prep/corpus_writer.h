// CorpusWriter: writes a corpus file (layout in txl/data/corpus_format.h) while the token
// streams are produced, so memory stays bounded: token datasets are extendible and
// chunked, appended block by block. Every dataset gets a "sha256" attribute with the
// digest of its contents, and the root attribute "checksum" digests those digests (see
// docs/data.md), so a checkpoint can name the exact corpus it was trained on.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "txl/data/text_tokenizer.h"
#include "txl/io/h5file.h"

namespace txl::data::prep {

struct CorpusDescription {
  std::string dataset;              // wt103, wt2, ptb, enwik8, text8, lm1b, generic
  std::string vocab_kind = "word";  // word | char | bpe
  TokenizationRules rules;          // unit decides char_unit (byte | codepoint)
  std::vector<int64_t> cutoffs;     // recommended adaptive-softmax cutoffs (may be empty)
  bool sentences = false;           // layout "sentences" (lm1b) instead of "stream"
  std::string source_checksums;     // "<sha256>  <file>\n" per source, as sha256sum prints
};

struct SplitStats {
  int64_t n_lines = 0;  // source lines read
  int64_t n_oov = 0;    // tokens replaced by the unknown-word symbol
  std::string source;   // where the split came from
};

class CorpusWriter {
 public:
  // Creates `path` (truncating it) and writes the descriptive root attributes.
  CorpusWriter(const std::string& path, const CorpusDescription& description);
  ~CorpusWriter();
  CorpusWriter(const CorpusWriter&) = delete;  // the dataset appenders refer to file_
  CorpusWriter& operator=(const CorpusWriter&) = delete;

  void write_vocabulary(const std::vector<std::string>& symbols, const std::vector<int64_t>& counts);
  // vocab_kind "bpe": the merges ("left right", rank order), digested like the symbols.
  void write_bpe_merges(const std::vector<std::string>& merges);
  // `size_hint` (expected tokens, when known) lets small splits use small chunks.
  void begin_split(const std::string& name, int64_t size_hint = -1);
  void append_tokens(const int32_t* ids, size_t n);
  // Sentence layout: lengths (tokens, without markers) of the next sentences.
  void append_sentences(const int64_t* lengths, size_t n);
  // Sentence layout: the sentences appended since the last call form one shard.
  void end_shard();
  // Writes the split's attributes; an empty split is an error naming `stats.source`.
  void end_split(const SplitStats& stats);
  // Source digests ("<sha256>  <file>\n" lines), when known only after reading them.
  void set_source_checksums(std::string text) { description_.source_checksums = std::move(text); }
  // Writes the checksums and closes the file.
  void finish();

  int64_t split_tokens() const;

 private:
  template <typename T>
  class Appender;
  h5::File file_;
  CorpusDescription description_;
  int64_t n_token_ = -1;
  std::string split_;
  std::unique_ptr<Appender<int32_t>> tokens_;
  std::unique_ptr<Appender<int64_t>> sentence_offsets_, shard_offsets_;
  int64_t sentences_ = 0, sentence_end_ = 0;
  std::map<std::string, std::string> digests_;  // dataset path -> sha256 hex
};

// Canonical corpus checksum from per-dataset digests (order: vocabulary, then the splits
// train, valid, test and any others by name; within a split tokens, sentence_offsets,
// shard_offsets): "sha256:" + SHA-256 of the lines "<path> <digest>\n".
std::string corpus_checksum(const std::map<std::string, std::string>& digests);

// Recomputes every dataset digest of a corpus file and compares with its attributes and
// the root checksum; throws txl::Error naming the first mismatch.
void verify_corpus_file(const std::string& path);

// A whole corpus held in memory (tests, small corpora), written atomically to `path`.
struct SplitContent {
  std::string name;
  std::vector<int32_t> tokens;
  std::vector<int64_t> sentence_lengths;  // sentence layout only
  std::vector<int64_t> shard_sentences;   // sentence layout only: sentences per shard
};
void write_corpus_file(const std::string& path, const CorpusDescription& description,
                       const std::vector<std::string>& symbols, const std::vector<int64_t>& counts,
                       const std::vector<SplitContent>& splits);

}  // namespace txl::data::prep
