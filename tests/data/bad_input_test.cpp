// Bad input gives one clear error naming the file and the problem; txl_prep exits 1 and
// leaves no partial output (an existing output file is left untouched).
#include <gtest/gtest.h>

#include <filesystem>

#include "data_test_util.h"
#include "txl/core/error.h"
#include "txl/data/corpus.h"
#include "txl/data/ordered_iterator.h"
#include "txl/data/prep/corpus_writer.h"

namespace txl::data {
namespace {
using namespace txl::data::testing;

void write_splits(const ScratchDir& dir, const std::string& sub, const std::string& train, const std::string& valid,
                  const std::string& test) {
  write_file(dir / (sub + "/train.txt"), train);
  write_file(dir / (sub + "/valid.txt"), valid);
  write_file(dir / (sub + "/test.txt"), test);
}

// Runs a failing txl_prep and checks the message, the exit code and that `out` holds
// exactly what it held before (nothing, or the old content), with no temporary files.
void expect_prep_error(const ScratchDir& dir, std::vector<std::string> args,
                       const std::vector<std::string>& fragments) {
  const std::string out = dir / "out/corpus.h5";
  std::filesystem::create_directories(dir / "out");
  const bool had = std::filesystem::exists(out);
  const std::string before = had ? read_file(out) : "";
  args.push_back("--out");
  args.push_back(out);
  const PrepRun r = run_prep(args);
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  for (const std::string& f : fragments) EXPECT_NE(r.err.find(f), std::string::npos) << "'" << f << "' in: " << r.err;
  EXPECT_EQ(std::filesystem::exists(out), had);
  if (had) {
    EXPECT_EQ(read_file(out), before);
  }
  for (const auto& e : std::filesystem::directory_iterator(dir / "out"))
    EXPECT_EQ(e.path().string(), out) << "left behind: " << e.path();
}

TEST(BadInput, MissingSplitFile) {
  ScratchDir dir;
  write_file(dir / "d/train.txt", "a b\n");
  write_file(dir / "d/test.txt", "a\n");
  expect_prep_error(dir, {"--dataset", "wt103", "--data", dir / "d"}, {dir / "d/valid.txt", "file not found"});
  expect_prep_error(dir, {"--dataset", "lm1b", "--data", dir / "d"}, {"1b_word_vocab.txt", "file not found"});
  expect_prep_error(dir, {"--dataset", "enwik8", "--data", dir / "d"}, {"enwik8", "found"});
  expect_prep_error(dir, {"--dataset", "wt2", "--data", dir / "nowhere"}, {dir / "nowhere", "not found"});
}

TEST(BadInput, EmptySplit) {
  ScratchDir dir;
  write_splits(dir, "d", "a b\n", "", "a\n");
  expect_prep_error(dir, {"--dataset", "wt2", "--data", dir / "d"}, {dir / "d/valid.txt", "split 'valid' is empty"});
  write_splits(dir, "g", "a b\n", "a\n", " \n\t\n");  // white space only, no --eos: no tokens
  expect_prep_error(dir, {"--dataset", "generic", "--data", dir / "g"}, {dir / "g/test.txt", "empty"});
  write_file(dir / "t/text8", "abcdefg   xyz");  // holdout 3: valid is white space only, stripped away
  expect_prep_error(dir, {"--dataset", "text8", "--holdout", "3", "--data", dir / "t"},
                    {dir / "t/text8", "split 'valid' is empty"});
}

TEST(BadInput, NonUtf8WordCorpus) {
  ScratchDir dir;
  write_splits(dir, "d", "fine line\nanother\nbad \xff byte here\n", "a\n", "a\n");
  // An existing output survives the failed run.
  write_file(dir / "out/corpus.h5", "previous content");
  expect_prep_error(dir, {"--dataset", "wt103", "--data", dir / "d", "--threads", "2"},
                    {dir / "d/train.txt", "invalid UTF-8 at line 3"});
  write_splits(dir, "e", "a\n", "a\n", "a\n\xc3(\n");
  expect_prep_error(dir, {"--dataset", "generic", "--level", "char", "--data", dir / "e"},
                    {dir / "e/test.txt", "invalid UTF-8 at line 2"});
}

TEST(BadInput, UnknownWordsWithoutUnk) {
  ScratchDir dir;
  write_splits(dir, "d", "a b\n", "a zebra\n", "b\n");
  expect_prep_error(dir, {"--dataset", "wt103", "--data", dir / "d"}, {dir / "d/valid.txt", "'zebra'", "<unk>"});
}

TEST(BadInput, BadOptions) {
  ScratchDir dir;
  write_splits(dir, "d", "a b\n", "a\n", "b\n");
  expect_prep_error(dir, {"--dataset", "wt99", "--data", dir / "d"}, {"wt99"});
  expect_prep_error(dir, {"--dataset", "wt103", "--lower_case", "--data", dir / "d"}, {"--dataset generic"});
  expect_prep_error(dir, {"--dataset", "generic", "--cutoffs", "5", "--data", dir / "d"}, {"--cutoffs"});
  expect_prep_error(dir, {"--dataset", "generic", "--vocab_splits", "valid", "--data", dir / "d"},
                    {"--vocab_splits 'valid'", "train or all"});
  expect_prep_error(dir, {"--dataset", "wt103", "--vocab_splits", "all", "--data", dir / "d"},
                    {"--vocab_splits", "wt103"});
  write_file(dir / "v.txt", "a\nb\n");
  expect_prep_error(
      dir, {"--dataset", "generic", "--vocab_splits", "all", "--vocab_file", dir / "v.txt", "--data", dir / "d"},
      {"--vocab_splits all", "--vocab_file"});
}

std::string good_corpus(const ScratchDir& dir) {
  const std::string path = dir / "good.h5";
  write_splits(dir, "d", "a b c a\nb a\n", "a b\n", "c\n");
  const PrepRun r = run_prep({"--dataset", "wt2", "--data", dir / "d", "--out", path});
  EXPECT_EQ(r.rc, 0) << r.err;
  return path;
}

TEST(BadInput, IdOutOfRange) {
  ScratchDir dir;
  prep::CorpusDescription d;
  d.dataset = "generic";
  // Token 7 in a vocabulary of 3 (as a corrupt or hand-made file could hold).
  prep::write_corpus_file(dir / "bad.h5", d, {"x", "y", "z"}, {1, 1, 1},
                          {{"train", {0, 1, 2, 1, 0, 7, 2, 2}, {}, {}}, {"valid", {0, 1}, {}, {}}});
  const CorpusFile c = CorpusFile::open(dir / "bad.h5");
  try {
    OrderedIterator it(c, "train", 2, 1, 0, 2);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(dir / "bad.h5"), std::string::npos) << m;
    EXPECT_NE(m.find("/train/tokens[5] = 7"), std::string::npos) << m;
    EXPECT_NE(m.find("outside the vocabulary"), std::string::npos) << m;
  }
  // Each rank reads only its range: rank 0 of 2 never sees the bad token.
  EXPECT_NO_THROW(OrderedIterator(c, "train", 2, 2, 0, 2));
  EXPECT_THROW(OrderedIterator(c, "train", 2, 2, 1, 2), Error);
}

void expect_open_error(const std::string& path, const std::string& fragment) {
  try {
    CorpusFile::open(path);
    FAIL() << "no error for " << path;
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind(path, 0), 0u) << m;
    EXPECT_NE(m.find(fragment), std::string::npos) << m;
  }
}

TEST(BadInput, TruncatedForeignOrCorruptCorpusFile) {
  ScratchDir dir;
  const std::string good = good_corpus(dir);
  const std::string bytes = read_file(good);
  write_file(dir / "truncated.h5", bytes.substr(0, bytes.size() / 2));
  expect_open_error(dir / "truncated.h5", "");
  write_file(dir / "text.h5", "just some text, not HDF5\n");
  expect_open_error(dir / "text.h5", "not an HDF5 file");
  {
    h5::File f = h5::File::create(dir / "foreign.h5");
    f.write<float>("/model/w", std::vector<float>{1, 2, 3});
  }
  expect_open_error(dir / "foreign.h5", "not a txl corpus file");
  expect_open_error(dir / "missing.h5", "file not found");

  // txl_prep --verify finds a flipped token (same shape, wrong content).
  std::filesystem::copy_file(good, dir / "flipped.h5");
  {
    h5::File f = h5::File::open(dir / "flipped.h5", true);
    h5::Handle ds(H5Dopen2(f.id(), "/train/tokens", H5P_DEFAULT), H5Dclose);
    const int32_t value = 2;
    const hsize_t start[1] = {0}, count[1] = {1};
    h5::Handle fs(H5Dget_space(ds.get()), H5Sclose);
    H5Sselect_hyperslab(fs.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
    h5::Handle ms(H5Screate_simple(1, count, nullptr), H5Sclose);
    ASSERT_GE(H5Dwrite(ds.get(), H5T_NATIVE_INT32, ms.get(), fs.get(), H5P_DEFAULT, &value), 0);
  }
  PrepRun r = run_prep({"--verify", dir / "flipped.h5"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("/train/tokens' does not match"), std::string::npos) << r.err;
  r = run_prep({"--verify", good});
  EXPECT_EQ(r.rc, 0) << r.err;
  r = run_prep({"--verify", dir / "truncated.h5"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err.rfind("error: " + dir / "truncated.h5", 0), 0u) << r.err;
}

}  // namespace
}  // namespace txl::data
