// The two streaming passes over line-based text (word or character level): counting
// symbols (with first-seen positions, for the recipe's tie order) and encoding to ids
// into a CorpusWriter. Both read one block at a time and split each block over threads
// at line boundaries; results are merged in text order, so the output does not depend on
// the number of threads.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "txl/data/prep/corpus_writer.h"
#include "txl/data/prep/progress.h"
#include "txl/data/symbol_map.h"
#include "txl/data/text_tokenizer.h"

namespace txl::data::prep {

struct PipelineSettings {
  int threads = 1;
  size_t block_bytes = 32 << 20;
  ProgressSettings progress;
};

// Count of a symbol and where it was first seen (byte offset of its line in the file,
// then position inside the processed line): the recipe orders ties by first appearance.
struct SymbolStats {
  int64_t count = 0;
  int64_t first_line = 0;
  int64_t first_pos = 0;
};

struct ScanResult {
  SymbolMap<SymbolStats> counts;  // filled when counting
  int64_t lines = 0;
  int64_t symbols = 0;    // symbols in the text (line ends not included)
  int64_t oov = 0;        // symbols absent from `known` (when given)
  std::string first_oov;  // the earliest of them
  std::string sha256;     // of the file's bytes
  int64_t bytes = 0;      // size of the file
};

// Pass 1: validates UTF-8 (an error names the file, line and byte offset), counts lines
// and symbols, optionally counts every symbol and the symbols missing from `known`.
ScanResult scan_text_file(const std::string& path, const TokenizationRules& rules, bool count_symbols,
                          const SymbolMap<int32_t>* known, const PipelineSettings& settings);

struct EncodeTarget {
  const SymbolMap<int32_t>* ids = nullptr;
  int32_t unk = -1;                        // id for out-of-vocabulary symbols; -1: an error
  int32_t line_end = -1;                   // id appended after each line; -1: none
  bool sentences = false;                  // record each line as a sentence (sentence layout)
  std::vector<int64_t>* counts = nullptr;  // when set, per-id counts are added here
};

struct EncodeResult {
  int64_t lines = 0;
  int64_t tokens = 0;
  int64_t oov = 0;
  std::string sha256;  // of the file's bytes
};

// Pass 2: appends the file's ids (and sentences) to the writer's open split.
EncodeResult encode_text_file(const std::string& path, const TokenizationRules& rules, const EncodeTarget& target,
                              CorpusWriter& writer, const PipelineSettings& settings);

// Adds the counts of a later file to those of the files before it (`into`): symbols new
// to `into` are placed after all of its symbols in first-seen order by shifting their
// first-seen line offsets by `offset_shift` (the byte size of the earlier files).
void add_later_counts(SymbolMap<SymbolStats>& into, SymbolMap<SymbolStats> later, int64_t offset_shift);

// Symbols by descending count, ties in first-seen order (the recipe's Counter.most_common).
std::vector<std::pair<std::string, int64_t>> order_by_count(SymbolMap<SymbolStats> counts);

}  // namespace txl::data::prep
