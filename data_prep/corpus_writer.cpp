#include "txl/data/prep/corpus_writer.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "txl/core/error.h"
#include "txl/data/corpus_format.h"
#include "txl/data/prep/sha256.h"

namespace txl::data::prep {
namespace cf = corpus_format;
static_assert(std::endian::native == std::endian::little, "digests hash the little-endian bytes of the data");

namespace {
const char* kCreatedBy = "txl_prep 0.1.0";

// Canonical position of a dataset in the checksum: vocabulary first, then splits.
std::pair<int, std::string> canonical_key(const std::string& path) {
  if (path == cf::kSymbols) return {0, ""};
  if (path == cf::kCounts) return {1, ""};
  if (path == cf::kBpeMerges) return {2, ""};
  const size_t slash = path.find('/', 1);
  const std::string split = path.substr(1, slash - 1);
  const std::string leaf = path.substr(slash + 1);
  const int split_rank = split == "train" ? 2 : split == "valid" ? 3 : split == "test" ? 4 : 5;
  const int leaf_rank = leaf == "tokens" ? 0 : leaf == "sentence_offsets" ? 1 : 2;
  return {split_rank * 10 + leaf_rank, split};
}
// An integer-list root attribute; an empty list gets a null dataspace (HDF5 has no
// zero-length simple dataspace for attributes), which h5py reads as an empty value.
void write_int_list_attr(const h5::File& f, const char* name, const std::vector<int64_t>& values) {
  const hsize_t dims[1] = {values.size()};
  h5::Handle space(values.empty() ? H5Screate(H5S_NULL) : H5Screate_simple(1, dims, nullptr), H5Sclose);
  h5::Handle attr(H5Acreate2(f.id(), name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attr.valid() || (!values.empty() && H5Awrite(attr.get(), H5T_NATIVE_INT64, values.data()) < 0))
    failf("{}: cannot write attribute '{}'", f.path(), name);
}
}  // namespace

// Extendible, chunked 1-D dataset filled by appending; hashes what it writes.
template <typename T>
class CorpusWriter::Appender {
 public:
  Appender(const h5::File& file, std::string path, int64_t chunk) : file_(file), path_(std::move(path)) {
    const hsize_t dims[1] = {0}, maxdims[1] = {H5S_UNLIMITED}, chunk_dims[1] = {static_cast<hsize_t>(chunk)};
    h5::Handle space(H5Screate_simple(1, dims, maxdims), H5Sclose);
    h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    H5Pset_chunk(dcpl.get(), 1, chunk_dims);
    H5Pset_fletcher32(dcpl.get());  // every chunk a rank reads is checked (src/io/h5file.cpp)
    const hid_t type = sizeof(T) == 4 ? H5T_STD_I32LE : H5T_STD_I64LE;
    dataset_ = h5::Handle(H5Dcreate2(file.id(), path_.c_str(), type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                          H5Dclose);
    if (!dataset_.valid()) failf("{}: cannot create dataset '{}'", file.path(), path_);
    buffer_.reserve(static_cast<size_t>(chunk));
  }
  void append(const T* values, size_t n) {
    hash_.update(values, n * sizeof(T));
    while (n > 0) {
      const size_t take = std::min(n, buffer_.capacity() - buffer_.size());
      buffer_.insert(buffer_.end(), values, values + take);
      values += take;
      n -= take;
      if (buffer_.size() == buffer_.capacity()) flush();
    }
  }
  void push(T value) { append(&value, 1); }
  void flush() {
    if (buffer_.empty()) return;
    const hsize_t start[1] = {static_cast<hsize_t>(size_)}, count[1] = {buffer_.size()};
    const hsize_t new_size[1] = {start[0] + count[0]};
    if (H5Dset_extent(dataset_.get(), new_size) < 0) failf("{}: cannot extend '{}'", file_.path(), path_);
    h5::Handle fspace(H5Dget_space(dataset_.get()), H5Sclose);
    H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
    h5::Handle mspace(H5Screate_simple(1, count, nullptr), H5Sclose);
    const hid_t mem_type = sizeof(T) == 4 ? H5T_NATIVE_INT32 : H5T_NATIVE_INT64;
    if (H5Dwrite(dataset_.get(), mem_type, mspace.get(), fspace.get(), H5P_DEFAULT, buffer_.data()) < 0)
      failf("{}: cannot write '{}' (disk full?)", file_.path(), path_);
    size_ += static_cast<int64_t>(buffer_.size());
    buffer_.clear();
  }
  // Flushes and returns the digest; the appender is finished.
  std::string close() {
    flush();
    dataset_.reset();
    return hash_.hex_digest();
  }
  int64_t size() const { return size_ + static_cast<int64_t>(buffer_.size()); }
  const std::string& path() const { return path_; }

 private:
  const h5::File& file_;
  std::string path_;
  h5::Handle dataset_;
  std::vector<T> buffer_;
  int64_t size_ = 0;
  Sha256 hash_;
};

CorpusWriter::CorpusWriter(const std::string& path, const CorpusDescription& d)
    : file_(h5::File::create(path)), description_(d) {
  const TokenizationRules& r = d.rules;
  file_.set_attr("/", "format", std::string(cf::kFormat));
  file_.set_attr("/", "format_version", cf::kVersion);
  file_.set_attr("/", "created_by", std::string(kCreatedBy));
  file_.set_attr("/", "dataset", d.dataset);
  file_.set_attr("/", "vocab_kind", d.vocab_kind);
  file_.set_attr("/", "char_unit", std::string(d.vocab_kind == "char" ? unit_name(r.unit) : ""));
  file_.set_attr("/", "layout", std::string(d.sentences ? cf::kLayoutSentences : cf::kLayoutStream));
  write_int_list_attr(file_, "cutoffs", d.cutoffs);
  file_.set_attr("/", "lower_case", int64_t{r.lower_case});
  file_.set_attr("/", "strip_lines", int64_t{r.strip_lines});
  file_.set_attr("/", "line_end_symbol", r.line_end);
  file_.set_attr("/", "sentence_begin_symbol", r.sentence_begin);
  file_.set_attr("/", "sentence_end_symbol", r.sentence_end);
  file_.set_attr("/", "unk_symbol", r.unk);
}

CorpusWriter::~CorpusWriter() = default;

void CorpusWriter::write_bpe_merges(const std::vector<std::string>& merges) {
  file_.write_strings(cf::kBpeMerges, merges);
  Sha256 h;
  for (const std::string& s : merges) h.update(s.c_str(), s.size() + 1);
  digests_[cf::kBpeMerges] = h.hex_digest();
}

void CorpusWriter::write_vocabulary(const std::vector<std::string>& symbols, const std::vector<int64_t>& counts) {
  TXL_CHECK(symbols.size() == counts.size(), "vocabulary: {} symbols, {} counts", symbols.size(), counts.size());
  file_.write_strings(cf::kSymbols, symbols);
  file_.write(cf::kCounts, counts);
  Sha256 h;
  for (const std::string& s : symbols) h.update(s.c_str(), s.size() + 1);  // with the terminating NUL
  digests_[cf::kSymbols] = h.hex_digest();
  digests_[cf::kCounts] = sha256_hex(counts.data(), counts.size() * sizeof(int64_t));
  n_token_ = static_cast<int64_t>(symbols.size());
  file_.set_attr("/", "n_token", n_token_);
}

void CorpusWriter::begin_split(const std::string& name, int64_t size_hint) {
  TXL_CHECK(split_.empty(), "corpus writer: split '{}' begun while '{}' is open", name, split_);
  split_ = name;
  if (file_.exists(cf::split_group(name))) failf("{}: split '{}' written twice", file_.path(), name);
  file_.create_group(cf::split_group(name));
  const int64_t chunk = size_hint > 0 ? std::clamp<int64_t>(size_hint, 4096, cf::kTokenChunk) : cf::kTokenChunk;
  tokens_ = std::make_unique<Appender<int32_t>>(file_, cf::tokens_path(name), chunk);
  sentences_ = 0;
  if (description_.sentences) {
    sentence_offsets_ = std::make_unique<Appender<int64_t>>(file_, cf::sentence_offsets_path(name), cf::kOffsetChunk);
    shard_offsets_ = std::make_unique<Appender<int64_t>>(file_, cf::shard_offsets_path(name), 1024);
    sentence_offsets_->push(0);
    shard_offsets_->push(0);
  }
}

void CorpusWriter::append_tokens(const int32_t* ids, size_t n) { tokens_->append(ids, n); }

int64_t CorpusWriter::split_tokens() const { return tokens_ ? tokens_->size() : 0; }

void CorpusWriter::append_sentences(const int64_t* lengths, size_t n) {
  TXL_CHECK(sentence_offsets_, "corpus writer: sentences appended to a stream corpus");
  // Offsets are cumulative; the appender holds the last one written.
  for (size_t i = 0; i < n; ++i) {
    sentence_end_ += lengths[i];
    sentence_offsets_->push(sentence_end_);
  }
  sentences_ += static_cast<int64_t>(n);
}

void CorpusWriter::end_shard() {
  TXL_CHECK(shard_offsets_, "corpus writer: shard ended in a stream corpus");
  shard_offsets_->push(sentences_);
}

void CorpusWriter::end_split(const SplitStats& stats) {
  const std::string group = cf::split_group(split_);
  const int64_t n_tokens = tokens_->size();
  if (n_tokens == 0 && (!description_.sentences || sentences_ == 0))
    failf("{}: split '{}' is empty (no tokens)", stats.source, split_);
  if (description_.sentences) {
    TXL_CHECK(sentence_end_ == n_tokens, "corpus writer: sentence lengths sum to {} but {} tokens were written",
              sentence_end_, n_tokens);
    digests_[sentence_offsets_->path()] = sentence_offsets_->close();
    digests_[shard_offsets_->path()] = shard_offsets_->close();
    sentence_offsets_.reset();
    shard_offsets_.reset();
    file_.set_attr(group, "n_sentences", sentences_);
    sentence_end_ = 0;
  }
  digests_[tokens_->path()] = tokens_->close();
  tokens_.reset();
  file_.set_attr(group, "n_tokens", n_tokens);
  file_.set_attr(group, "n_lines", stats.n_lines);
  file_.set_attr(group, "n_oov", stats.n_oov);
  file_.set_attr(group, "source", stats.source);
  split_.clear();
}

void CorpusWriter::finish() {
  TXL_CHECK(split_.empty(), "corpus writer: split '{}' not ended", split_);
  TXL_CHECK(n_token_ > 0, "corpus writer: no vocabulary written");
  file_.set_attr("/", "source_checksums", description_.source_checksums);
  for (const auto& [path, digest] : digests_) file_.set_attr(path, "sha256", digest);
  file_.set_attr("/", "checksum", corpus_checksum(digests_));
  file_.flush();
}

std::string corpus_checksum(const std::map<std::string, std::string>& digests) {
  std::vector<std::pair<std::pair<int, std::string>, std::string>> ordered;
  for (const auto& [path, digest] : digests) ordered.push_back({canonical_key(path), path + " " + digest + "\n"});
  std::sort(ordered.begin(), ordered.end());
  std::string text;
  for (const auto& [key, line] : ordered) text += line;
  return "sha256:" + sha256_hex(text.data(), text.size());
}

void write_corpus_file(const std::string& path, const CorpusDescription& description,
                       const std::vector<std::string>& symbols, const std::vector<int64_t>& counts,
                       const std::vector<SplitContent>& splits) {
  h5::write_atomically(path, [&](const std::string& tmp) {
    CorpusWriter w(tmp, description);
    w.write_vocabulary(symbols, counts);
    for (const SplitContent& s : splits) {
      w.begin_split(s.name, static_cast<int64_t>(s.tokens.size()));
      w.append_tokens(s.tokens.data(), s.tokens.size());
      if (description.sentences) {
        size_t next = 0;
        for (const int64_t count : s.shard_sentences) {
          w.append_sentences(s.sentence_lengths.data() + next, static_cast<size_t>(count));
          next += static_cast<size_t>(count);
          w.end_shard();
        }
        TXL_CHECK(next == s.sentence_lengths.size(), "split '{}': shards hold {} of {} sentences", s.name, next,
                  s.sentence_lengths.size());
      }
      w.end_split({0, 0, "memory:" + s.name});
    }
    w.finish();
  });
}

}  // namespace txl::data::prep
