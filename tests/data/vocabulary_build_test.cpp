// Vocabularies built by txl_prep, checked against direct computations written here.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "data_test_util.h"
#include "txl/data/corpus.h"
#include "txl/data/prep/corpus_writer.h"

namespace txl::data {
namespace {
using namespace txl::data::testing;

// The recipe's word vocabulary, computed the plain way: count whitespace-separated words
// of every line, order by descending count with ties in first-seen order, `<eos>` first.
std::vector<std::string> reference_vocabulary(const std::string& text, bool lower) {
  std::map<std::string, std::pair<int64_t, int64_t>> stats;  // word -> (count, first index)
  int64_t index = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (lower) std::transform(line.begin(), line.end(), line.begin(), [](unsigned char c) { return std::tolower(c); });
    std::istringstream words(line);
    std::string w;
    while (words >> w) {
      auto [it, fresh] = stats.emplace(w, std::make_pair(int64_t{0}, index));
      ++it->second.first;
      ++index;
    }
  }
  std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> v(stats.begin(), stats.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.second.first != b.second.first ? a.second.first > b.second.first : a.second.second < b.second.second;
  });
  std::vector<std::string> out = {"<eos>"};
  for (auto& [w, s] : v) out.push_back(w);
  return out;
}

// Token ids of a file per the recipe: words + <eos> per line, unknown words -> <unk>.
std::vector<int32_t> reference_tokens(const std::string& text, const Vocabulary& vocab) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string w;
    while (words >> w) ids.push_back(vocab.find(w) >= 0 ? vocab.find(w) : vocab.id("<unk>"));
    ids.push_back(0);
  }
  return ids;
}

TEST(VocabularyBuild, Wt2SampleMatchesDirectComputation) {
  ScratchDir dir;
  const PrepRun r = run_prep({"--dataset", "wt2", "--data", sample_dir(), "--out", dir / "wt2.h5"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.find("mapped to unk"), std::string::npos) << r.out;
  const CorpusFile c = CorpusFile::open(dir / "wt2.h5");
  // The recipe counts wt2's vocabulary over train, valid and test, read in that order.
  const std::string train = read_file(sample_dir() + "/train.txt");
  const std::string valid = read_file(sample_dir() + "/valid.txt");
  const std::string test = read_file(sample_dir() + "/test.txt");
  const std::vector<std::string> expected = reference_vocabulary(train + valid + test, false);
  // The sample's valid and test hold words that train lacks, so this differs from train alone.
  ASSERT_GT(expected.size(), reference_vocabulary(train, false).size());
  EXPECT_EQ(c.vocabulary().symbol(0), "<eos>");
  EXPECT_EQ(c.n_token(), static_cast<int64_t>(expected.size()));
  EXPECT_EQ(c.vocabulary().symbols(), expected);
  EXPECT_EQ(c.dataset(), "wt2");
  EXPECT_EQ(c.vocab_kind(), "word");
  EXPECT_FALSE(c.char_level());
  EXPECT_TRUE(c.cutoffs().empty());
  EXPECT_EQ(c.vocabulary().rules().unk, "<unk>");
  EXPECT_EQ(c.checksum().rfind("sha256:", 0), 0u);
  // Stored counts are the training split's: <eos> counts the training lines.
  EXPECT_EQ(c.vocabulary().counts()[0], std::count(train.begin(), train.end(), '\n'));
  // Every split equals the direct encoding, and no token of any split is unknown.
  for (const char* split : {"train", "valid", "test"}) {
    const std::vector<int32_t> want = reference_tokens(read_file(sample_dir() + "/" + split + ".txt"), c.vocabulary());
    EXPECT_EQ(c.split(split).n_tokens, static_cast<int64_t>(want.size())) << split;
    EXPECT_EQ(c.read_tokens(split, 0, c.split(split).n_tokens), want) << split;
    EXPECT_EQ(c.file().attr_int("/" + std::string(split), "n_oov"), 0) << split;
  }
  EXPECT_NO_THROW(prep::verify_corpus_file(dir / "wt2.h5"));
}

TEST(VocabularyBuild, TiesKeepFirstSeenOrderWhateverTheThreadCount) {
  // Counts: b 3, a 3, c 2, e 2, d 1, f 1 -> b before a (seen first), c before e, d before f.
  const std::string text = "b a\nc b a\n\ne d c\nb a e f\n";
  const std::vector<std::string> want = {"<eos>", "b", "a", "c", "e", "d", "f"};
  ASSERT_EQ(reference_vocabulary(text, false), want);
  ScratchDir dir;
  for (const char* split : {"train", "valid", "test"}) write_file(dir / (std::string("d/") + split + ".txt"), text);
  std::vector<std::string> checksums;
  for (const char* threads : {"1", "3"}) {
    // Tiny blocks: the text is read in many blocks and split over threads.
    prep::PrepOptions o;
    o.dataset = "wt2";
    o.data = dir / "d";
    o.out = dir / (std::string("t") + threads + ".h5");
    o.threads = std::stoi(threads);
    o.block_bytes = 8;
    o.progress.enabled = false;
    prep::prepare_corpus(o);
    const CorpusFile c = CorpusFile::open(o.out);
    EXPECT_EQ(c.vocabulary().symbols(), want) << threads << " threads";
    checksums.push_back(c.checksum());
  }
  EXPECT_EQ(checksums[0], checksums[1]);
}

// Ties across splits: a symbol first seen in an earlier split comes first, whatever its
// byte offset inside its own file; counts add up over the splits (wt2, ptb) or not (wt103).
TEST(VocabularyBuild, TiesAcrossSplitsFollowTrainValidTestOrder) {
  // train starts with 40 spaces, so that valid's and test's words sit at smaller byte
  // offsets in their own files but must still come after train's.
  const std::string train = std::string(40, ' ') + "z y\nx\n";
  const std::string valid = "w v y\nu\n";
  const std::string test = "t z w\ns\n";
  // All splits: z 2, y 2, w 2 (z, y from train; w from valid), then x (train), v, u
  // (valid), t, s (test) with one each.
  const std::vector<std::string> all = {"<eos>", "z", "y", "w", "x", "v", "u", "t", "s"};
  ASSERT_EQ(reference_vocabulary(train + valid + test, false), all);
  ScratchDir dir;
  write_file(dir / "d/train.txt", train);
  write_file(dir / "d/valid.txt", valid);
  write_file(dir / "d/test.txt", test);
  for (const char* threads : {"1", "2"}) {
    SCOPED_TRACE(threads);
    const PrepRun r = run_prep({"--dataset", "wt2", "--data", dir / "d", "--out", dir / "a.h5", "--threads", threads});
    ASSERT_EQ(r.rc, 0) << r.err;
    const CorpusFile c = CorpusFile::open(dir / "a.h5");
    EXPECT_EQ(c.vocabulary().symbols(), all);
    // Training-split counts: <eos> 2, z 1, y 1, w 0, x 1, the rest 0.
    EXPECT_EQ(c.vocabulary().counts(), (std::vector<int64_t>{2, 1, 1, 0, 1, 0, 0, 0, 0}));
    EXPECT_EQ(c.read_tokens("test", 0, 6), (std::vector<int32_t>{7, 1, 3, 0, 8, 0}));
  }
  // generic --vocab_splits all: the same rule, no <unk> needed.
  PrepRun r =
      run_prep({"--dataset", "generic", "--eos", "--vocab_splits", "all", "--data", dir / "d", "--out", dir / "g.h5"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(CorpusFile::open(dir / "g.h5").vocabulary().symbols(), all);
  // generic (default train) and wt103 count train only; the rest becomes <unk> or an error.
  r = run_prep({"--dataset", "generic", "--eos", "--data", dir / "d", "--out", dir / "t.h5"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(CorpusFile::open(dir / "t.h5").vocabulary().symbols(),
            (std::vector<std::string>{"<eos>", "<unk>", "z", "y", "x"}));
  EXPECT_NE(r.out.find("valid 6 tokens (3 mapped to unk)"), std::string::npos) << r.out;
  r = run_prep({"--dataset", "wt103", "--data", dir / "d", "--out", dir / "w.h5"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("'w'"), std::string::npos) << r.err;
}

TEST(VocabularyBuild, Wt103CountsTrainOnly) {
  ScratchDir dir;
  write_file(dir / "d/train.txt", "b a <unk>\na\n");
  write_file(dir / "d/valid.txt", "c c c a\n");
  write_file(dir / "d/test.txt", "b d\n");
  const PrepRun r = run_prep({"--dataset", "wt103", "--data", dir / "d", "--out", dir / "w.h5"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("valid 5 tokens (3 mapped to unk)"), std::string::npos) << r.out;
  const CorpusFile c = CorpusFile::open(dir / "w.h5");
  // Train alone: <eos>, a 2, b 1, <unk> 1 (c, though the most frequent word overall, is absent).
  EXPECT_EQ(c.vocabulary().symbols(), (std::vector<std::string>{"<eos>", "a", "b", "<unk>"}));
  EXPECT_EQ(c.read_tokens("valid", 0, 5), (std::vector<int32_t>{3, 3, 3, 1, 0}));
  EXPECT_EQ(c.read_tokens("test", 0, 3), (std::vector<int32_t>{2, 3, 0}));
}

TEST(VocabularyBuild, PtbLowerCasesAndCountsAllSplits) {
  ScratchDir dir;
  write_file(dir / "p/train.txt", " The cat\n the DOG <unk>\n");
  write_file(dir / "p/valid.txt", " the Cat\n");
  write_file(dir / "p/test.txt", " a bird\n");
  const PrepRun r = run_prep({"--dataset", "ptb", "--data", dir / "p", "--out", dir / "p.h5"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const CorpusFile c = CorpusFile::open(dir / "p.h5");
  const std::string all =
      read_file(dir / "p/train.txt") + read_file(dir / "p/valid.txt") + read_file(dir / "p/test.txt");
  // <eos>, the 3, cat 2, dog, <unk>, a, bird.
  EXPECT_EQ(c.vocabulary().symbols(), reference_vocabulary(all, true));
  EXPECT_EQ(c.vocabulary().symbols(), (std::vector<std::string>{"<eos>", "the", "cat", "dog", "<unk>", "a", "bird"}));
  EXPECT_EQ(c.read_tokens("valid", 0, 3), (std::vector<int32_t>{1, 2, 0}));  // the cat <eos>
  EXPECT_EQ(c.read_tokens("test", 0, 3), (std::vector<int32_t>{5, 6, 0}));   // a bird <eos>
}

TEST(VocabularyBuild, GenericPruningAddsUnk) {
  ScratchDir dir;
  write_file(dir / "g/train.txt", "x y x z\ny x w\n");
  write_file(dir / "g/valid.txt", "x q\n");
  write_file(dir / "g/test.txt", "y\n");
  const PrepRun r = run_prep({"--dataset", "generic", "--data", dir / "g", "--out", dir / "g.h5", "--eos", "--min_freq",
                              "2", "--cutoffs", "3"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const CorpusFile c = CorpusFile::open(dir / "g.h5");
  // Specials first (<eos>, then <unk> because z and w fell under min_freq), then x 3, y 2.
  EXPECT_EQ(c.vocabulary().symbols(), (std::vector<std::string>{"<eos>", "<unk>", "x", "y"}));
  EXPECT_EQ(c.vocabulary().counts(), (std::vector<int64_t>{2, 2, 3, 2}));
  EXPECT_EQ(c.split("train").n_tokens, 9);
  EXPECT_EQ(c.read_tokens("train", 0, 9), (std::vector<int32_t>{2, 3, 2, 1, 0, 3, 2, 1, 0}));
  EXPECT_EQ(c.read_tokens("valid", 0, 3), (std::vector<int32_t>{2, 1, 0}));
  EXPECT_EQ(c.cutoffs(), std::vector<int64_t>{3});
}

TEST(VocabularyBuild, GenericCharacterLevel) {
  ScratchDir dir;
  write_file(dir / "c/train.txt", "  h\xc3\xa9 h\n\xc3\xa9h \n");
  write_file(dir / "c/valid.txt", "h\n");
  write_file(dir / "c/test.txt", "\xc3\xa9\n");
  const PrepRun r = run_prep({"--dataset", "generic", "--level", "char", "--data", dir / "c", "--out", dir / "c.h5"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const CorpusFile c = CorpusFile::open(dir / "c.h5");
  EXPECT_TRUE(c.char_level());
  // Lines stripped: "hé h", "éh" -> h 3, é 2, ' ' 1.
  EXPECT_EQ(c.vocabulary().symbols(), (std::vector<std::string>{"h", "\xc3\xa9", " "}));
  EXPECT_EQ(c.read_tokens("train", 0, 6), (std::vector<int32_t>{0, 1, 2, 0, 1, 0}));
  EXPECT_EQ(c.vocabulary().encode(" h\xc3\xa9 "), (std::vector<int32_t>{0, 1}));
}

}  // namespace
}  // namespace txl::data
