// lm1b (One Billion Word benchmark): the vocabulary comes from DIR/1b_word_vocab.txt, the
// training sentences from the benchmark's 100 shuffled shard files (each one shard of
// the corpus file), valid/test from DIR/valid.txt and DIR/test.txt. Sentences are stored
// without markers; the sentence iterator frames them with <S> ... </S>.
#include <algorithm>
#include <filesystem>

#include "txl/core/error.h"
#include "txl/data/prep/builder_common.h"
#include "txl/data/prep/corpus_writer.h"
#include "txl/data/prep/line_pipeline.h"
#include "txl/data/prep/prep.h"
#include "txl/data/prep/progress.h"
#include "txl/data/prep/sha256.h"
#include "txl/data/prep/vocab_file.h"

namespace txl::data::prep {

namespace fs = std::filesystem;

namespace {
const char* kTrainDir = "1-billion-word-language-modeling-benchmark-r13output/training-monolingual.tokenized.shuffled";

std::vector<std::string> training_shards(const std::string& dir) {
  const fs::path train_dir = fs::path(dir) / kTrainDir;
  std::error_code ec;
  if (!fs::is_directory(train_dir, ec))
    failf("{}: directory not found (--dataset lm1b expects the benchmark unpacked in --data)", train_dir.string());
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(train_dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && name.rfind("news.en-", 0) == 0) files.push_back(entry.path().string());
  }
  if (files.empty()) failf("{}: no training files news.en-*", train_dir.string());
  std::sort(files.begin(), files.end());
  return files;
}

std::string required_file(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) failf("{}: file not found (--dataset lm1b)", p.string());
  return p.string();
}
}  // namespace

PrepSummary prepare_lm1b_corpus(const PrepOptions& o, const std::string& tmp_path) {
  const std::string vocab_path =
      o.vocab_file.empty() ? required_file(fs::path(o.data) / "1b_word_vocab.txt") : o.vocab_file;
  const std::string valid_path = required_file(fs::path(o.data) / "valid.txt");
  const std::string test_path = required_file(fs::path(o.data) / "test.txt");
  const std::vector<std::string> train_paths = training_shards(o.data);

  CorpusDescription desc;
  desc.dataset = "lm1b";
  desc.sentences = true;
  TokenizationRules& rules = desc.rules;
  rules.sentence_begin = "<S>";
  rules.sentence_end = "</S>";
  rules.unk = "<UNK>";
  const std::vector<std::string> symbols = read_vocab_file(vocab_path);
  const SymbolMap<int32_t> ids = index_symbols(symbols);
  for (const std::string* s : {&rules.sentence_begin, &rules.sentence_end, &rules.unk})
    if (!ids.count(*s)) failf("{}: the lm1b vocabulary must list '{}'", vocab_path, *s);
  desc.cutoffs = recommended_cutoffs(o, static_cast<int64_t>(symbols.size()));

  const PipelineSettings ps = pipeline_settings(o);
  CorpusWriter writer(tmp_path, desc);
  std::vector<int64_t> counts(symbols.size(), 0);
  std::string checksums = checksum_line(sha256_file(vocab_path), display_name(vocab_path, o.data));
  EncodeTarget target;
  target.ids = &ids;
  target.unk = ids.at(rules.unk);
  target.sentences = true;

  PrepSummary summary;
  auto encode_split = [&](const std::string& split, const std::vector<std::string>& files) {
    target.counts = split == "train" ? &counts : nullptr;
    writer.begin_split(split);
    SplitStats stats;
    // Progress over the whole split (each of the 100 training files alone is short).
    int64_t total_bytes = 0, done_bytes = 0;
    for (const std::string& f : files) total_bytes += static_cast<int64_t>(fs::file_size(f));
    Progress progress(o.progress, fmt::format("lm1b {} ({} files)", split, files.size()), total_bytes);
    for (const std::string& f : files) {
      const EncodeResult r = encode_text_file(f, rules, target, writer, ps);
      done_bytes += static_cast<int64_t>(fs::file_size(f));
      progress.update(done_bytes);
      writer.end_shard();
      stats.n_lines += r.lines;
      stats.n_oov += r.oov;
      checksums += checksum_line(r.sha256, display_name(f, o.data));
    }
    stats.source = files.size() == 1
                       ? display_name(files[0], o.data)
                       : fmt::format("{} ({} files)", display_name(fs::path(files[0]).parent_path().string(), o.data),
                                     files.size());
    progress.finish(done_bytes);
    summary.split_tokens[split] = writer.split_tokens();
    summary.split_oov[split] = stats.n_oov;
    writer.end_split(stats);
    return stats.n_lines;
  };
  const int64_t train_sentences = encode_split("train", train_paths);
  encode_split("valid", {valid_path});
  encode_split("test", {test_path});
  // The markers occur once per training sentence.
  counts[static_cast<size_t>(ids.at(rules.sentence_begin))] += train_sentences;
  counts[static_cast<size_t>(ids.at(rules.sentence_end))] += train_sentences;
  writer.write_vocabulary(symbols, counts);
  writer.set_source_checksums(checksums);
  writer.finish();
  summary.n_token = static_cast<int64_t>(symbols.size());
  return summary;
}

}  // namespace txl::data::prep
