// Small pieces shared by the txl_prep builders.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "txl/data/prep/line_pipeline.h"
#include "txl/data/prep/prep.h"
#include "txl/data/symbol_map.h"

namespace txl::data::prep {

PipelineSettings pipeline_settings(const PrepOptions& options);
// The cutoffs to record: --cutoffs when given (each must be < n_token), else the recipe's
// defaults for wt103 / lm1b when they fit the vocabulary, else none.
std::vector<int64_t> recommended_cutoffs(const PrepOptions& options, int64_t n_token);
// Whether the vocabulary counts the symbols of train, valid and test (in that order) rather
// than of train alone. The recipe counts all three for ptb, wt2, enwik8 and text8 and
// train alone for wt103; generic follows --vocab_splits (default train).
bool vocabulary_counts_all_splits(const PrepOptions& options);
// A line of the source_checksums attribute, as sha256sum prints it.
std::string checksum_line(const std::string& sha256, const std::string& name);
// Symbol -> id for a vocabulary in id order.
SymbolMap<int32_t> index_symbols(const std::vector<std::string>& symbols);
// Path relative to `dir` when inside it, else the file name.
std::string display_name(const std::string& path, const std::string& dir);

}  // namespace txl::data::prep
