// txl_prep on the character sets (enwik8, text8, raw and zipped) and on lm1b's layout,
// each checked against the recipe's split/token rules computed directly here.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <map>
#include <random>

#include "data_test_util.h"
#include "txl/data/corpus.h"

namespace txl::data {
namespace {
using namespace txl::data::testing;

void put16(std::string& s, uint32_t v) {
  s.push_back(static_cast<char>(v & 0xFF));
  s.push_back(static_cast<char>((v >> 8) & 0xFF));
}
void put32(std::string& s, uint32_t v) {
  put16(s, v & 0xFFFF);
  put16(s, v >> 16);
}

// A one-member zip archive (deflated or stored), written the way zip tools do.
std::string make_zip(const std::string& name, const std::string& content, bool deflated) {
  std::string data = content;
  if (deflated) {
    z_stream z{};
    deflateInit2(&z, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    data.resize(deflateBound(&z, content.size()));
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(content.data()));
    z.avail_in = static_cast<uInt>(content.size());
    z.next_out = reinterpret_cast<Bytef*>(data.data());
    z.avail_out = static_cast<uInt>(data.size());
    EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
    data.resize(z.total_out);
    deflateEnd(&z);
  }
  const auto crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(content.data()), static_cast<uInt>(content.size())));
  const uint32_t method = deflated ? 8 : 0;
  std::string zip;
  put32(zip, 0x04034b50);
  for (uint32_t v : {20u, 0u, method, 0u, 0u}) put16(zip, v);
  put32(zip, crc);
  put32(zip, static_cast<uint32_t>(data.size()));
  put32(zip, static_cast<uint32_t>(content.size()));
  put16(zip, static_cast<uint32_t>(name.size()));
  put16(zip, 0);
  zip += name + data;
  const auto cd_offset = static_cast<uint32_t>(zip.size());
  put32(zip, 0x02014b50);
  for (uint32_t v : {20u, 20u, 0u, method, 0u, 0u}) put16(zip, v);
  put32(zip, crc);
  put32(zip, static_cast<uint32_t>(data.size()));
  put32(zip, static_cast<uint32_t>(content.size()));
  for (uint32_t v : {static_cast<uint32_t>(name.size()), 0u, 0u, 0u, 0u}) put16(zip, v);
  put32(zip, 0);
  put32(zip, 0);
  zip += name;
  const auto cd_size = static_cast<uint32_t>(zip.size()) - cd_offset;
  put32(zip, 0x06054b50);
  for (uint32_t v : {0u, 0u, 1u, 1u}) put16(zip, v);
  put32(zip, cd_size);
  put32(zip, cd_offset);
  put16(zip, 0);
  return zip;
}

// Symbols of a unit sequence by descending count, ties in first-seen order.
template <typename Unit>
std::vector<Unit> order_units(const std::vector<Unit>& units) {
  std::map<Unit, std::pair<int64_t, int64_t>> st;
  for (size_t i = 0; i < units.size(); ++i) {
    auto [it, fresh] = st.emplace(units[i], std::make_pair(int64_t{0}, static_cast<int64_t>(i)));
    ++it->second.first;
  }
  std::vector<std::pair<Unit, std::pair<int64_t, int64_t>>> v(st.begin(), st.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.second.first != b.second.first ? a.second.first > b.second.first : a.second.second < b.second.second;
  });
  std::vector<Unit> out;
  for (auto& [u, s] : v) out.push_back(u);
  return out;
}

std::vector<int32_t> encode_units(const std::string& symbols_source, const CorpusFile& c, bool bytes) {
  std::vector<int32_t> ids;
  for (const char ch : symbols_source) {
    const std::string sym = bytes ? std::to_string(static_cast<unsigned char>(ch)) : std::string(1, ch);
    ids.push_back(c.vocabulary().id(sym));
  }
  return ids;
}

TEST(PrepSources, Enwik8RawAndZippedFollowTheRecipeSplit) {
  // Random bytes (all 256 values, many newlines) so every rule is exercised.
  std::mt19937 gen(7);
  std::string raw(3000, '\0');
  std::discrete_distribution<int> pick({6, 2, 1, 1});
  for (auto& ch : raw) {
    const int kind = pick(gen);
    ch = kind == 0   ? static_cast<char>('a' + gen() % 5)
         : kind == 1 ? '\n'
         : kind == 2 ? '\r'
                     : static_cast<char>(200 + gen() % 8);  // high bytes: not UTF-8
  }
  ScratchDir dir;
  write_file(dir / "raw/enwik8", raw);
  write_file(dir / "zip/enwik8.zip", make_zip("enwik8", raw, true));
  write_file(dir / "stored/enwik8.zip", make_zip("enwik8", raw, false));
  std::vector<std::string> checksums;
  for (const char* src : {"raw", "zip", "stored"}) {
    SCOPED_TRACE(src);
    const PrepRun r = run_prep({"--dataset", "enwik8", "--data", dir / src, "--out", dir / (std::string(src) + ".h5"),
                                "--holdout", "500", "--threads", "2"});
    ASSERT_EQ(r.rc, 0) << r.err;
    const CorpusFile c = CorpusFile::open(dir / (std::string(src) + ".h5"));
    EXPECT_TRUE(c.char_level());
    EXPECT_EQ(c.vocabulary().rules().unit, SymbolUnit::kByte);
    auto no_newlines = [](std::string s) {
      s.erase(std::remove(s.begin(), s.end(), '\n'), s.end());
      return s;
    };
    const std::string train = no_newlines(raw.substr(0, 2000)), valid = no_newlines(raw.substr(2000, 500)),
                      test = no_newlines(raw.substr(2500));
    // The recipe counts enwik8's symbols over train, valid and test in that order.
    const std::string all = train + valid + test;
    const std::vector<unsigned char> all_units(all.begin(), all.end());
    std::vector<std::string> want;
    for (unsigned char u : order_units(all_units)) want.push_back(std::to_string(u));
    EXPECT_EQ(c.vocabulary().symbols(), want);
    EXPECT_EQ(c.read_tokens("train", 0, c.split("train").n_tokens), encode_units(train, c, true));
    EXPECT_EQ(c.read_tokens("valid", 0, c.split("valid").n_tokens), encode_units(valid, c, true));
    EXPECT_EQ(c.read_tokens("test", 0, c.split("test").n_tokens), encode_units(test, c, true));
    checksums.push_back(c.checksum());
  }
  EXPECT_EQ(checksums[0], checksums[1]);
  EXPECT_EQ(checksums[0], checksums[2]);
}

TEST(PrepSources, Text8StripsEachPartAndKeepsSpaces) {
  // 60 characters, holdout 15: parts [0,30) [30,45) [45,60), each stripped at both ends.
  const std::string raw = std::string(" vapid thrill of the sea dark ") + "  the vivid jaw" + " tail of quiz  ";
  ASSERT_EQ(raw.size(), 60u);
  ScratchDir dir;
  write_file(dir / "t/text8.zip", make_zip("text8", raw, true));
  const PrepRun r = run_prep({"--dataset", "text8", "--data", dir / "t", "--out", dir / "t.h5", "--holdout", "15"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const CorpusFile c = CorpusFile::open(dir / "t.h5");
  auto strip = [](std::string s) {
    s.erase(0, s.find_first_not_of(' '));
    s.erase(s.find_last_not_of(' ') + 1);
    return s;
  };
  const std::string train = strip(raw.substr(0, 30)), valid = strip(raw.substr(30, 15)), test = strip(raw.substr(45));
  const std::string all = train + valid + test;  // counted in this order, as the recipe does
  const std::vector<char> units(all.begin(), all.end());
  std::vector<std::string> want;
  for (char u : order_units(units)) want.push_back(std::string(1, u));
  EXPECT_EQ(c.vocabulary().symbols(), want);
  EXPECT_EQ(c.vocabulary().symbol(0), " ");
  // j, w (valid) and q, u, z (test) are not in train, yet are symbols: nothing is unknown.
  for (const char* s : {"j", "w", "q", "u", "z"}) EXPECT_GE(c.vocabulary().find(s), 0) << s;
  EXPECT_EQ(c.read_tokens("train", 0, c.split("train").n_tokens), encode_units(train, c, false));
  EXPECT_EQ(c.read_tokens("valid", 0, c.split("valid").n_tokens), encode_units(valid, c, false));
  EXPECT_EQ(c.read_tokens("test", 0, c.split("test").n_tokens), encode_units(test, c, false));
  EXPECT_EQ(c.vocabulary().encode("a list"), encode_units("a list", c, false));
}

TEST(PrepSources, Enwik8BytesAbsentFromTrainAreCounted) {
  // Train uses bytes a, b; valid adds 0xC8 (twice), test adds 'z' and one more 0xC8.
  // All parts counted in order: a 4, b 3, 0xC8 3 (b first seen earlier), z 1.
  const std::string raw = std::string("abab\naab") + "\xc8\n\xc8" + "z\xc8\n";
  ASSERT_EQ(raw.size(), 14u);
  ScratchDir dir;
  write_file(dir / "e/enwik8", raw);
  const PrepRun r = run_prep({"--dataset", "enwik8", "--data", dir / "e", "--out", dir / "e.h5", "--holdout", "3"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.find("mapped to unk"), std::string::npos) << r.out;
  const CorpusFile c = CorpusFile::open(dir / "e.h5");
  EXPECT_EQ(c.vocabulary().symbols(), (std::vector<std::string>{"97", "98", "200", "122"}));
  // Stored counts are the training part's.
  EXPECT_EQ(c.vocabulary().counts(), (std::vector<int64_t>{4, 3, 0, 0}));
  EXPECT_EQ(c.read_tokens("train", 0, 7), (std::vector<int32_t>{0, 1, 0, 1, 0, 0, 1}));
  EXPECT_EQ(c.read_tokens("valid", 0, 2), (std::vector<int32_t>{2, 2}));
  EXPECT_EQ(c.read_tokens("test", 0, 2), (std::vector<int32_t>{3, 2}));
}

TEST(PrepSources, Lm1bLayoutSentencesAndShards) {
  ScratchDir dir;
  const std::string shards = dir /
                             "lm/1-billion-word-language-modeling-benchmark-r13output/"
                             "training-monolingual.tokenized.shuffled/";
  write_file(dir / "lm/1b_word_vocab.txt", "<S> 0\n</S> 10\n<UNK> 0\nthe 20\ncat 5\ndog 4\nsat 3\n");
  write_file(shards + "news.en-00002-of-00100", "the dog\nthe cat sat the\n");
  write_file(shards + "news.en-00001-of-00100", "the cat\ncat sat on the mat\n\nthe\n");
  write_file(dir / "lm/valid.txt", "the dog sat\n");
  write_file(dir / "lm/test.txt", "a cat\n");
  const PrepRun r = run_prep({"--dataset", "lm1b", "--data", dir / "lm", "--out", dir / "lm.h5"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const CorpusFile c = CorpusFile::open(dir / "lm.h5");
  EXPECT_EQ(c.layout(), CorpusLayout::kSentences);
  EXPECT_EQ(c.vocabulary().symbols(), (std::vector<std::string>{"<S>", "</S>", "<UNK>", "the", "cat", "dog", "sat"}));
  EXPECT_EQ(c.vocabulary().rules().sentence_begin, "<S>");
  EXPECT_EQ(c.vocabulary().rules().sentence_end, "</S>");
  // Shards in file-name order: 00001 (4 sentences, one empty), then 00002 (2 sentences).
  EXPECT_EQ(c.split("train").n_sentences, 6);
  EXPECT_EQ(c.read_shard_offsets("train"), (std::vector<int64_t>{0, 4, 6}));
  EXPECT_EQ(c.read_sentence_offsets("train", 0, 6), (std::vector<int64_t>{0, 2, 7, 7, 8, 10, 14}));
  const int U = 2;  // <UNK>: "on", "mat"
  EXPECT_EQ(c.read_tokens("train", 0, 14), (std::vector<int32_t>{3, 4, 4, 6, U, 3, U, 3, 3, 5, 3, 4, 6, 3}));
  EXPECT_EQ(c.read_tokens("test", 0, 2), (std::vector<int32_t>{U, 4}));
  // Counts: from the training text; the markers once per training sentence.
  EXPECT_EQ(c.vocabulary().counts(), (std::vector<int64_t>{6, 6, 2, 6, 3, 1, 2}));
}

}  // namespace
}  // namespace txl::data
