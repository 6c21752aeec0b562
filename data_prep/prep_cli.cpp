#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <set>

#include "txl/core/error.h"
#include "txl/data/corpus.h"
#include "txl/data/prep/corpus_writer.h"
#include "txl/data/prep/prep.h"

namespace txl::data::prep {

namespace {
const std::set<std::string> kDatasets = {"wt103", "wt2", "ptb", "enwik8", "text8", "lm1b", "generic"};

void check_options(const PrepOptions& o) {
  if (o.dataset.empty()) fail("--dataset is required (wt103, wt2, ptb, enwik8, text8, lm1b or generic); see --help");
  if (!kDatasets.count(o.dataset))
    failf("--dataset '{}' is unknown (expected wt103, wt2, ptb, enwik8, text8, lm1b or generic)", o.dataset);
  if (o.out.empty()) fail("--out is required");
  if (o.data.empty()) fail("--data is required");
  std::error_code ec;
  if (!std::filesystem::exists(o.data, ec)) failf("{}: --data directory not found", o.data);
  if (o.dataset != "generic") {
    // Named datasets fix their tokenisation so that results compare with the literature.
    if (o.level != "word" || o.lower_case || o.eos || o.min_freq > 0 || o.max_size >= 0)
      failf("--level, --lower_case, --eos, --min_freq and --max_size apply to --dataset generic; '{}' fixes them",
            o.dataset);
    if (!o.vocab_file.empty() && o.dataset != "lm1b")
      failf("--vocab_file applies to --dataset generic and lm1b, not '{}'", o.dataset);
    if (!o.vocab_splits.empty())
      failf("--vocab_splits applies to --dataset generic; '{}' fixes it (the recipe's choice)", o.dataset);
  }
  if (!o.vocab_splits.empty() && o.vocab_splits != "train" && o.vocab_splits != "all")
    failf("--vocab_splits '{}' is unknown (expected train or all)", o.vocab_splits);
  if (o.vocab_splits == "all" && !o.vocab_file.empty())
    fail("--vocab_splits all counts the vocabulary, --vocab_file fixes it: give one of them");
  if (o.vocab != "word" && o.vocab != "bpe") failf("--vocab '{}' is unknown (expected word or bpe)", o.vocab);
  if (o.vocab == "bpe") {
    if (o.dataset != "wt103" && o.dataset != "wt2" && o.dataset != "ptb" && o.dataset != "generic")
      failf("--vocab bpe applies to --dataset wt103, wt2, ptb and generic, not '{}'", o.dataset);
    if (o.bpe_vocab.empty() || o.bpe_merges.empty())
      fail("--vocab bpe needs --bpe_vocab vocab.json and --bpe_merges merges.txt (GPT-2's files; nothing is downloaded)");
    if (o.level != "word" || o.lower_case || o.eos || o.min_freq > 0 || o.max_size >= 0 || !o.vocab_file.empty() ||
        !o.vocab_splits.empty())
      fail("--vocab bpe fixes the tokenisation: --level, --lower_case, --eos, --min_freq, --max_size, --vocab_file and "
           "--vocab_splits do not apply");
  } else if (!o.bpe_vocab.empty() || !o.bpe_merges.empty()) {
    fail("--bpe_vocab and --bpe_merges apply to --vocab bpe");
  }
  if (o.level != "word" && o.level != "char") failf("--level '{}' is unknown (expected word or char)", o.level);
  if (o.level == "char" && (o.min_freq > 0 || o.max_size >= 0 || !o.vocab_file.empty()))
    fail("--min_freq, --max_size and --vocab_file apply to --level word");
}
}  // namespace

PrepSummary prepare_corpus(const PrepOptions& options) {
  check_options(options);
  PrepSummary summary;
  h5::write_atomically(options.out, [&](const std::string& tmp) {
    if (options.dataset == "enwik8" || options.dataset == "text8") {
      summary = prepare_char_split_corpus(options, tmp);
    } else if (options.vocab == "bpe") {
      summary = prepare_bpe_corpus(options, tmp);
    } else if (options.dataset == "lm1b") {
      summary = prepare_lm1b_corpus(options, tmp);
    } else {
      summary = prepare_line_corpus(options, tmp);
    }
    // Re-open what was written with the reader's own validation before it is renamed.
    summary.checksum = CorpusFile::open(tmp).checksum();
  });
  return summary;
}

int prep_main(int argc, char** argv) {
  PrepOptions o;
  std::string verify;
  bool quiet = false;
  CLI::App app{"txl_prep: text corpus (train/valid/test) -> one HDF5 corpus file for txl_train and txl_eval"};
  app.add_option("--dataset", o.dataset, "wt103, wt2, ptb, enwik8, text8, lm1b or generic");
  app.add_option("--data", o.data, "directory with the downloaded corpus (enwik8/text8: or the file itself)");
  app.add_option("--out", o.out, "corpus file to write (e.g. corpus.h5)");
  app.add_option("--level", o.level, "generic: word or char")->capture_default_str();
  app.add_flag("--lower_case", o.lower_case, "generic: lower-case the text");
  app.add_flag("--eos", o.eos, "generic: add <eos> at the end of every line");
  app.add_option("--min_freq", o.min_freq,
                 "generic: drop words counted fewer times (in the --vocab_splits; they become <unk>)");
  app.add_option("--max_size", o.max_size, "generic: keep at most this many words (the rest become <unk>)");
  app.add_option("--vocab_file", o.vocab_file, "generic, lm1b: vocabulary file, one symbol per line (first field)");
  app.add_option("--vocab_splits", o.vocab_splits,
                 "generic: count the vocabulary over train only (default) or all of train, valid, test");
  app.add_option("--vocab", o.vocab, "wt103, wt2, ptb, generic: word, or bpe (GPT-2 byte-level BPE)")
      ->capture_default_str();
  app.add_option("--bpe_vocab", o.bpe_vocab, "--vocab bpe: GPT-2's vocab.json (token -> id)");
  app.add_option("--bpe_merges", o.bpe_merges, "--vocab bpe: GPT-2's merges.txt (one merge per line, rank order)");
  app.add_option("--cutoffs", o.cutoffs, "recommended adaptive-softmax cutoffs to record (e.g. 20000,40000)")
      ->delimiter(',');
  app.add_option("--holdout", o.holdout, "enwik8/text8: bytes/characters in each of valid and test")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "worker threads (0: all cores)")->capture_default_str();
  app.add_option("--progress_interval", o.progress.interval_s, "seconds between progress lines")->capture_default_str();
  app.add_flag("--quiet", quiet, "no progress lines");
  app.add_option("--verify", verify, "check the checksums of an existing corpus file and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  o.cutoffs_given = app.count("--cutoffs") > 0;
  o.progress.enabled = !quiet;
  try {
    if (!verify.empty()) {
      verify_corpus_file(verify);
      fmt::print("{}: OK ({})\n", verify, CorpusFile::open(verify).checksum());
      return 0;
    }
    const auto start = std::chrono::steady_clock::now();
    const PrepSummary s = prepare_corpus(o);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print("{}: {} corpus, n_token {}", o.out, o.dataset, s.n_token);
    for (const char* split : {"train", "valid", "test"}) {
      if (!s.split_tokens.count(split)) continue;
      fmt::print(", {} {} tokens", split, s.split_tokens.at(split));
      if (s.split_oov.count(split) && s.split_oov.at(split) > 0)
        fmt::print(" ({} mapped to unk)", s.split_oov.at(split));
    }
    fmt::print(", {:.1f} s\n{}: checksum {}\n", secs, o.out, s.checksum);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}

}  // namespace txl::data::prep
