// txl_prep --verify: recomputes the digest of every dataset of a corpus file.
#include <algorithm>

#include "txl/core/error.h"
#include "txl/data/corpus.h"
#include "txl/data/corpus_format.h"
#include "txl/data/prep/corpus_writer.h"
#include "txl/data/prep/sha256.h"

namespace txl::data::prep {
namespace cf = corpus_format;

namespace {
template <typename T>
std::string digest_rows(const h5::File& f, const std::string& path) {
  const int64_t n = f.shape(path).at(0);
  Sha256 h;
  std::vector<T> buf(static_cast<size_t>(std::min<int64_t>(n, cf::kTokenChunk)));
  for (int64_t at = 0; at < n; at += static_cast<int64_t>(buf.size())) {
    const int64_t count = std::min<int64_t>(static_cast<int64_t>(buf.size()), n - at);
    f.read_rows<T>(path, at, count, buf.data());
    h.update(buf.data(), static_cast<size_t>(count) * sizeof(T));
  }
  return h.hex_digest();
}
}  // namespace

void verify_corpus_file(const std::string& path) {
  const CorpusFile corpus = CorpusFile::open(path);
  const h5::File& f = corpus.file();
  std::map<std::string, std::string> digests;
  {
    Sha256 h;
    for (const std::string& s : corpus.vocabulary().symbols()) h.update(s.c_str(), s.size() + 1);
    digests[cf::kSymbols] = h.hex_digest();
    const std::vector<int64_t>& c = corpus.vocabulary().counts();
    digests[cf::kCounts] = sha256_hex(c.data(), c.size() * sizeof(int64_t));
    if (const ByteLevelBpe* bpe = corpus.vocabulary().bpe()) {
      Sha256 m;
      for (const auto& [a, b] : bpe->merges()) {
        const std::string line = a + " " + b;
        m.update(line.c_str(), line.size() + 1);
      }
      digests[cf::kBpeMerges] = m.hex_digest();
    }
  }
  for (const std::string& name : f.list("/")) {
    if (!corpus.has_split(name)) continue;
    digests[cf::tokens_path(name)] = digest_rows<int32_t>(f, cf::tokens_path(name));
    if (corpus.layout() == CorpusLayout::kSentences) {
      digests[cf::sentence_offsets_path(name)] = digest_rows<int64_t>(f, cf::sentence_offsets_path(name));
      digests[cf::shard_offsets_path(name)] = digest_rows<int64_t>(f, cf::shard_offsets_path(name));
    }
  }
  for (const auto& [dataset, digest] : digests) {
    const std::string stored = f.attr_string(dataset, "sha256");
    if (stored != digest) failf("{}: '{}' does not match its sha256 attribute (corrupt file)", path, dataset);
  }
  if (corpus_checksum(digests) != corpus.checksum())
    failf("{}: the root checksum does not match the datasets (corrupt file)", path);
}

}  // namespace txl::data::prep
