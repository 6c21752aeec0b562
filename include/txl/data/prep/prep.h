// txl_prep: text corpora -> one HDF5 corpus file (docs/data.md). The whole job is
// prepare_corpus(); prep_main() is the command line around it.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "txl/data/prep/progress.h"

namespace txl::data::prep {

struct PrepOptions {
  std::string dataset;  // wt103 | wt2 | ptb | enwik8 | text8 | lm1b | generic
  std::string data;     // directory with the splits (or the enwik8/text8 file itself)
  std::string out;      // corpus file to write (atomically: temporary name, then rename)
  // generic only
  std::string level = "word";  // word | char
  bool lower_case = false;
  bool eos = false;              // append <eos> at every line end
  int64_t min_freq = 0;          // drop symbols counted fewer times (they become <unk>)
  int64_t max_size = -1;         // keep at most this many non-special symbols (-1: all)
  std::string vocab_file;        // fixed vocabulary, one symbol per line (first field)
  std::string vocab_splits;      // splits counted for the vocabulary: train | all ("": train)
  std::vector<int64_t> cutoffs;  // recommended adaptive cutoffs to record (overrides defaults)
  // wt103, wt2, ptb, generic: "word" (symbols from the rules above) or "bpe" (GPT-2's
  // byte-level BPE from the user's vocab.json and merges.txt; bpe_corpus.cpp)
  std::string vocab = "word";
  std::string bpe_vocab, bpe_merges;
  bool cutoffs_given = false;
  // enwik8 / text8
  int64_t holdout = 5000000;  // units in each of valid and test
  // execution
  int threads = 0;                 // 0: all hardware threads
  int64_t block_bytes = 32 << 20;  // text read per parallel step
  ProgressSettings progress;
};

struct PrepSummary {
  int64_t n_token = 0;
  std::map<std::string, int64_t> split_tokens;  // tokens per split
  std::map<std::string, int64_t> split_oov;     // tokens mapped to the unknown symbol
  std::string checksum;
};

// Builds the corpus file; throws txl::Error (no output file is left behind on failure).
PrepSummary prepare_corpus(const PrepOptions& options);

// Command line: parses argv, runs prepare_corpus, prints a summary to stdout. On error
// prints "error: <message>" to stderr and returns 1.
int prep_main(int argc, char** argv);

// ---- the builders behind prepare_corpus (one per kind of source) -------------------------
PrepSummary prepare_line_corpus(const PrepOptions& options, const std::string& tmp_path);  // wt103 wt2 ptb generic
PrepSummary prepare_lm1b_corpus(const PrepOptions& options, const std::string& tmp_path);  // lm1b
PrepSummary prepare_bpe_corpus(const PrepOptions& options, const std::string& tmp_path);  // --vocab bpe
PrepSummary prepare_char_split_corpus(const PrepOptions& options, const std::string& tmp_path);  // enwik8 text8

}  // namespace txl::data::prep
