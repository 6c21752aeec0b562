// --vocab bpe: corpora tokenised with GPT-2's byte-level BPE (byte_level_bpe.h) from the
// user's vocab.json and merges.txt, laid out as the recipe's BPE corpora are: each split
// file is read whole with Python's universal newlines, encoded as one text, and followed
// by one "<|endoftext|>"; the vocabulary is vocab.json's tokens in id order, padded to a
// multiple of 8 with "madeupword000000000", "madeupword000000001", ... (the recipe pads
// GPT-2's 50257 tokens to 50264 that way). The corpus stores the merges, so txl_eval
// --manual encodes user text the same way without the files.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "txl/core/error.h"
#include "txl/data/byte_level_bpe.h"
#include "txl/data/prep/builder_common.h"
#include "txl/data/prep/corpus_writer.h"
#include "txl/data/prep/prep.h"
#include "txl/data/prep/sha256.h"
#include "txl/data/text_tokenizer.h"

namespace txl::data::prep {

namespace {

constexpr const char* kEndOfText = "<|endoftext|>";
const char* const kSplits[] = {"train", "valid", "test"};

std::string split_file(const PrepOptions& o, const std::string& split) {
  namespace fs = std::filesystem;
  std::vector<std::string> names = {split + ".txt"};
  if (o.dataset == "wt103" || o.dataset == "wt2") names.push_back("wiki." + split + ".tokens");
  if (o.dataset == "ptb") names.push_back("ptb." + split + ".txt");
  for (const std::string& n : names) {
    std::error_code ec;
    if (fs::is_regular_file(fs::path(o.data) / n, ec)) return (fs::path(o.data) / n).string();
  }
  failf("{}: file not found (--dataset {} reads train.txt, valid.txt and test.txt from --data)",
        (fs::path(o.data) / names[0]).string(), o.dataset);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) failf("{}: cannot open", path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

PrepSummary prepare_bpe_corpus(const PrepOptions& o, const std::string& tmp_path) {
  const ByteLevelBpe bpe = ByteLevelBpe::from_files(o.bpe_vocab, o.bpe_merges);
  const int32_t eot = bpe.id(kEndOfText);
  if (eot < 0) failf("{}: no '{}' token (GPT-2's end-of-text token ends every split)", o.bpe_vocab, kEndOfText);
  std::vector<std::string> symbols = bpe.symbols();
  for (int64_t i = 0; symbols.size() % 8 != 0; ++i) symbols.push_back(fmt::format("madeupword{:09d}", i));

  CorpusDescription desc;
  desc.dataset = o.dataset;
  desc.vocab_kind = "bpe";
  desc.cutoffs = recommended_cutoffs(o, static_cast<int64_t>(symbols.size()));
  std::vector<std::string> paths;
  std::vector<std::string> texts;
  for (const char* s : kSplits) {
    paths.push_back(split_file(o, s));
    std::string raw = read_file(paths.back());
    if (const size_t bad = find_invalid_utf8(raw); bad != kNoInvalidByte)
      failf("{}: invalid UTF-8 at line {} (byte offset {})", paths.back(), line_number_at(raw, bad), bad);
    desc.source_checksums += checksum_line(sha256_hex(raw.data(), raw.size()), display_name(paths.back(), o.data));
    texts.push_back(universal_newlines(raw));
  }

  PrepSummary summary;
  CorpusWriter writer(tmp_path, desc);
  std::vector<int64_t> counts(symbols.size(), 0);
  std::vector<int32_t> ids;
  for (int s = 0; s < 3; ++s) {
    const std::string& text = texts[static_cast<size_t>(s)];
    ids.clear();
    bpe.encode_append(text, ids);
    ids.push_back(eot);
    if (s == 0)
      for (const int32_t id : ids) ++counts[static_cast<size_t>(id)];
    int64_t lines = 0;
    for (const char c : text) lines += c == '\n';
    if (!text.empty() && text.back() != '\n') ++lines;
    writer.begin_split(kSplits[s], static_cast<int64_t>(ids.size()));
    writer.append_tokens(ids.data(), ids.size());
    writer.end_split({lines, 0, display_name(paths[static_cast<size_t>(s)], o.data)});
    summary.split_tokens[kSplits[s]] = static_cast<int64_t>(ids.size());
    summary.split_oov[kSplits[s]] = 0;
  }
  writer.write_vocabulary(symbols, counts);
  std::vector<std::string> merges;
  for (const auto& [a, b] : bpe.merges()) merges.push_back(a + " " + b);
  writer.write_bpe_merges(merges);
  writer.finish();
  summary.n_token = static_cast<int64_t>(symbols.size());
  return summary;
}

}  // namespace txl::data::prep
