#include "txl/data/prep/builder_common.h"

#include <fmt/ranges.h>

#include <filesystem>
#include <thread>

#include "txl/core/error.h"

namespace txl::data::prep {

PipelineSettings pipeline_settings(const PrepOptions& o) {
  PipelineSettings s;
  s.threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  s.block_bytes = static_cast<size_t>(std::max<int64_t>(o.block_bytes, 4096));
  s.progress = o.progress;
  return s;
}

std::vector<int64_t> recommended_cutoffs(const PrepOptions& o, int64_t n_token) {
  if (o.cutoffs_given) {
    for (size_t i = 0; i < o.cutoffs.size(); ++i) {
      if (o.cutoffs[i] <= 0 || o.cutoffs[i] >= n_token || (i > 0 && o.cutoffs[i] <= o.cutoffs[i - 1]))
        failf("--cutoffs: {} is not an increasing list inside (0, n_token = {})", fmt::join(o.cutoffs, ","), n_token);
    }
    return o.cutoffs;
  }
  std::vector<int64_t> defaults;
  if (o.dataset == "wt103") defaults = {19997, 39997, 199997};
  if (o.dataset == "lm1b") defaults = {59997, 99997, 639997};
  if (!defaults.empty() && defaults.back() >= n_token) return {};
  return defaults;
}

bool vocabulary_counts_all_splits(const PrepOptions& o) {
  if (o.dataset == "generic") return o.vocab_splits == "all";
  return o.dataset == "ptb" || o.dataset == "wt2" || o.dataset == "enwik8" || o.dataset == "text8";
}

std::string checksum_line(const std::string& sha256, const std::string& name) { return sha256 + "  " + name + "\n"; }

SymbolMap<int32_t> index_symbols(const std::vector<std::string>& symbols) {
  SymbolMap<int32_t> index;
  index.reserve(symbols.size());
  for (size_t i = 0; i < symbols.size(); ++i) index.emplace(symbols[i], static_cast<int32_t>(i));
  return index;
}

std::string display_name(const std::string& path, const std::string& dir) {
  std::error_code ec;
  const auto rel = std::filesystem::relative(path, dir, ec);
  if (!ec && !rel.empty() && rel.native().rfind("..", 0) != 0) return rel.string();
  return std::filesystem::path(path).filename().string();
}

}  // namespace txl::data::prep
