// Word-level (wt103, wt2, ptb, generic --level word) and line-based character-level
// (generic --level char) corpora from DIR/{train,valid,test}.txt.
#include <filesystem>

#include "txl/core/error.h"
#include "txl/data/prep/builder_common.h"
#include "txl/data/prep/corpus_writer.h"
#include "txl/data/prep/line_pipeline.h"
#include "txl/data/prep/prep.h"
#include "txl/data/prep/vocab_file.h"

namespace txl::data::prep {

namespace {

const char* const kSplits[] = {"train", "valid", "test"};

// The split file, accepting the standard downloads' own names too.
std::string find_split_file(const PrepOptions& o, const std::string& split) {
  namespace fs = std::filesystem;
  std::vector<std::string> names = {split + ".txt"};
  if (o.dataset == "wt103" || o.dataset == "wt2") names.push_back("wiki." + split + ".tokens");
  if (o.dataset == "ptb") names.push_back("ptb." + split + ".txt");
  for (const std::string& n : names) {
    const fs::path p = fs::path(o.data) / n;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  failf("{}: file not found (--dataset {} reads train.txt, valid.txt and test.txt from --data)",
        (fs::path(o.data) / names[0]).string(), o.dataset);
}

TokenizationRules rules_for(const PrepOptions& o, std::string& vocab_kind) {
  TokenizationRules r;
  vocab_kind = "word";
  if (o.dataset == "wt103" || o.dataset == "wt2") {
    r.line_end = "<eos>";
  } else if (o.dataset == "ptb") {
    r.line_end = "<eos>";
    r.lower_case = true;
  } else {  // generic
    r.lower_case = o.lower_case;
    if (o.eos) r.line_end = "<eos>";
    if (o.level == "char") {
      r.unit = SymbolUnit::kCodepoint;
      r.strip_lines = true;
      vocab_kind = "char";
    }
  }
  return r;
}

}  // namespace

PrepSummary prepare_line_corpus(const PrepOptions& o, const std::string& tmp_path) {
  CorpusDescription desc;
  desc.dataset = o.dataset;
  desc.rules = rules_for(o, desc.vocab_kind);
  TokenizationRules& rules = desc.rules;
  const PipelineSettings ps = pipeline_settings(o);

  std::vector<std::string> paths;
  for (const char* s : kSplits) paths.push_back(find_split_file(o, s));

  // Pass 1: the vocabulary (specials first, then by descending count, ties in first-seen
  // order), counted over train or over train, valid and test read in that order (see
  // vocabulary_counts_all_splits), unless a vocabulary file fixes it.
  const bool count_all = vocabulary_counts_all_splits(o);
  std::vector<std::string> specials;
  if (!rules.line_end.empty()) specials.push_back(rules.line_end);
  std::vector<std::string> words;  // non-special symbols in id order
  int64_t pruned = 0;
  std::vector<ScanResult> scans(3);
  if (!o.vocab_file.empty()) {
    std::vector<std::string> listed = read_vocab_file(o.vocab_file);
    const SymbolMap<int32_t> index = index_symbols(listed);
    for (const std::string& s : specials)
      if (!index.count(s)) failf("{}: the vocabulary lacks '{}', which --eos needs", o.vocab_file, s);
    specials.clear();
    words = std::move(listed);
    scans[0] = scan_text_file(paths[0], rules, false, &index, ps);
  } else {
    scans[0] = scan_text_file(paths[0], rules, true, nullptr, ps);
    SymbolMap<SymbolStats> counted = std::move(scans[0].counts);
    if (count_all) {
      int64_t bytes_before = scans[0].bytes;
      for (size_t s = 1; s < 3; ++s) {
        scans[s] = scan_text_file(paths[s], rules, true, nullptr, ps);
        add_later_counts(counted, std::move(scans[s].counts), bytes_before);
        bytes_before += scans[s].bytes;
      }
    }
    std::vector<std::pair<std::string, int64_t>> ordered = order_by_count(std::move(counted));
    for (auto& [symbol, count] : ordered) {
      if (std::find(specials.begin(), specials.end(), symbol) != specials.end()) continue;  // merges into the special
      const bool keep = count >= o.min_freq && (o.max_size < 0 || static_cast<int64_t>(words.size()) < o.max_size);
      if (keep) {
        words.push_back(std::move(symbol));
      } else {
        ++pruned;
      }
    }
  }
  auto all_symbols = [&] {
    std::vector<std::string> v = specials;
    v.insert(v.end(), words.begin(), words.end());
    return v;
  };
  std::vector<std::string> symbols = all_symbols();
  SymbolMap<int32_t> ids = index_symbols(symbols);

  // Pass 1 over valid and test when the vocabulary did not count them: UTF-8, emptiness,
  // and symbols the vocabulary lacks.
  if (!count_all)
    for (size_t s = 1; s < 3; ++s) scans[s] = scan_text_file(paths[s], rules, false, &ids, ps);
  for (int s = 0; s < 3; ++s) {
    const ScanResult& sc = scans[static_cast<size_t>(s)];
    if (sc.symbols == 0 && (rules.line_end.empty() || sc.lines == 0))
      failf("{}: split '{}' is empty (no tokens)", paths[static_cast<size_t>(s)], kSplits[s]);
  }

  // The unknown-word symbol: the corpus' own "<unk>" (WikiText, PTB) when present;
  // generic corpora get one as a special when pruning or unseen symbols need it.
  const int64_t unseen = scans[0].oov + scans[1].oov + scans[2].oov;
  for (const char* candidate : {"<unk>", "<UNK>"}) {
    if (ids.count(candidate)) {
      rules.unk = candidate;
      break;
    }
  }
  if (rules.unk.empty() && (pruned > 0 || unseen > 0)) {
    if (o.dataset == "generic" && o.vocab_file.empty()) {
      rules.unk = "<unk>";
      specials.push_back(rules.unk);
      symbols = all_symbols();
      ids = index_symbols(symbols);
    } else {
      int s = scans[1].oov > 0 ? 1 : scans[2].oov > 0 ? 2 : 0;
      failf("{}: {} token(s) are not in the vocabulary (first: '{}') and it has no <unk> symbol to stand for them",
            paths[static_cast<size_t>(s)], scans[static_cast<size_t>(s)].oov, scans[static_cast<size_t>(s)].first_oov);
    }
  }

  desc.cutoffs = recommended_cutoffs(o, static_cast<int64_t>(symbols.size()));
  for (int s = 0; s < 3; ++s)
    desc.source_checksums +=
        checksum_line(scans[static_cast<size_t>(s)].sha256, display_name(paths[static_cast<size_t>(s)], o.data));

  // Pass 2: encode every split.
  PrepSummary summary;
  CorpusWriter writer(tmp_path, desc);
  std::vector<int64_t> counts(symbols.size(), 0);
  EncodeTarget target;
  target.ids = &ids;
  target.unk = rules.unk.empty() ? -1 : ids.at(rules.unk);
  target.line_end = rules.line_end.empty() ? -1 : ids.at(rules.line_end);
  for (int s = 0; s < 3; ++s) {
    target.counts = s == 0 ? &counts : nullptr;
    const ScanResult& sc = scans[static_cast<size_t>(s)];
    writer.begin_split(kSplits[s], sc.symbols + (rules.line_end.empty() ? 0 : sc.lines));
    const EncodeResult r = encode_text_file(paths[static_cast<size_t>(s)], rules, target, writer, ps);
    writer.end_split({r.lines, r.oov, display_name(paths[static_cast<size_t>(s)], o.data)});
    summary.split_tokens[kSplits[s]] = r.tokens;
    summary.split_oov[kSplits[s]] = r.oov;
  }
  writer.write_vocabulary(symbols, counts);
  writer.finish();
  summary.n_token = static_cast<int64_t>(symbols.size());
  return summary;
}

}  // namespace txl::data::prep
