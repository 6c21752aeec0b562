// txl_prep --vocab bpe: the recipe's BPE corpus layout (each split encoded whole after
// universal newlines, then <|endoftext|>; the vocabulary padded to a multiple of 8), the
// merges stored in the corpus so that Vocabulary::encode (txl_eval --manual) tokenises the
// same way, the corpus checksums, and bad option combinations.
#include <gtest/gtest.h>

#include "data_test_util.h"
#include "txl/data/byte_level_bpe.h"
#include "txl/data/corpus.h"
#include "txl/data/prep/corpus_writer.h"

namespace txl::data::testing {
namespace {

std::string fixture(const std::string& name) { return std::string(TXL_SOURCE_DIR) + "/tests/fixtures/bpe/" + name; }

TEST(BpeCorpus, SplitsVocabularyAndManualTextEncodeLikeTheTokenizer) {
  ScratchDir dir;
  const std::string train = read_file(fixture("train.txt"));
  const std::string valid = read_file(fixture("sample.txt"));  // holds a "\r\n"
  ASSERT_NE(valid.find("\r\n"), std::string::npos);
  write_file(dir / "data/train.txt", train);
  write_file(dir / "data/valid.txt", valid);
  write_file(dir / "data/test.txt", "Short test\rwith a lone carriage return.");
  const PrepRun r = run_prep({"--dataset", "generic", "--vocab", "bpe", "--bpe_vocab", fixture("vocab.json"),
                              "--bpe_merges", fixture("merges.txt"), "--data", dir / "data", "--out", dir / "c.h5"});
  ASSERT_EQ(r.rc, 0) << r.err;

  const ByteLevelBpe bpe = ByteLevelBpe::from_files(fixture("vocab.json"), fixture("merges.txt"));
  const int32_t eot = bpe.id("<|endoftext|>");
  auto expected = [&](const std::string& text) {
    std::vector<int32_t> ids = bpe.encode(universal_newlines(text));
    ids.push_back(eot);
    return ids;
  };
  const CorpusFile c = CorpusFile::open(dir / "c.h5");
  EXPECT_EQ(c.vocab_kind(), "bpe");
  EXPECT_FALSE(c.char_level());
  const Vocabulary& v = c.vocabulary();
  ASSERT_EQ(v.size(), 384);  // 377 tokens padded to a multiple of 8
  EXPECT_EQ(v.symbol(376), "<|endoftext|>");
  EXPECT_EQ(v.symbol(377), "madeupword000000000");
  EXPECT_EQ(v.symbol(383), "madeupword000000006");
  EXPECT_EQ(c.read_tokens("train", 0, c.split("train").n_tokens), expected(train));
  const std::vector<int32_t> valid_ids = c.read_tokens("valid", 0, c.split("valid").n_tokens);
  EXPECT_EQ(valid_ids, expected(valid));
  EXPECT_EQ(std::count(valid_ids.begin(), valid_ids.end(), bpe.id("\r")), 0);  // "\r\n" read as "\n"
  EXPECT_EQ(c.read_tokens("test", 0, c.split("test").n_tokens), expected("Short test\nwith a lone carriage return."));
  int64_t eot_count = v.counts()[static_cast<size_t>(eot)];
  EXPECT_EQ(eot_count, 1);

  // txl_eval --manual: the corpus' vocabulary encodes raw text with the stored merges.
  const std::string manual = "It's a caf\u00e9 test,\r\n  they'll see 2019!";
  EXPECT_EQ(v.encode(manual), bpe.encode(universal_newlines(manual)));
  EXPECT_EQ(v.decode(v.encode(manual)), universal_newlines(manual));
  EXPECT_NO_THROW(prep::verify_corpus_file(dir / "c.h5"));
}

TEST(BpeCorpus, BadOptionsFailWithOneLine) {
  ScratchDir dir;
  write_file(dir / "data/train.txt", "a b\n");
  write_file(dir / "data/valid.txt", "a\n");
  write_file(dir / "data/test.txt", "b\n");
  const std::string v = fixture("vocab.json"), m = fixture("merges.txt"), d = dir / "data", out = dir / "c.h5";
  auto one_line_error = [](const PrepRun& r, const std::string& part) {
    EXPECT_EQ(r.rc, 1);
    EXPECT_NE(r.err.find(part), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  };
  one_line_error(run_prep({"--dataset", "generic", "--vocab", "bpe", "--data", d, "--out", out}), "--bpe_vocab");
  one_line_error(run_prep({"--dataset", "enwik8", "--vocab", "bpe", "--bpe_vocab", v, "--bpe_merges", m, "--data", d,
                           "--out", out}),
                 "--vocab bpe applies");
  one_line_error(run_prep({"--dataset", "generic", "--vocab", "bpe", "--bpe_vocab", v, "--bpe_merges", m, "--eos",
                           "--data", d, "--out", out}),
                 "fixes the tokenisation");
  one_line_error(run_prep({"--dataset", "generic", "--bpe_vocab", v, "--data", d, "--out", out}), "apply to --vocab bpe");
  one_line_error(run_prep({"--dataset", "generic", "--vocab", "bpes", "--data", d, "--out", out}), "--vocab 'bpes'");
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace txl::data::testing
