// CorpusFile: a prepared corpus (HDF5, made by txl_prep) opened for reading. Opening
// validates the file and loads the vocabulary; token data is read on demand, one
// hyperslab at a time, so a rank touches only the chunks holding its part.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "txl/data/vocabulary.h"
#include "txl/io/h5file.h"

namespace txl::data {

enum class CorpusLayout {
  kStream,     // one ordered token stream per split (wt103, wt2, ptb, enwik8, text8, generic)
  kSentences,  // sentences stored back to back with offsets, grouped in shards (lm1b)
};

struct SplitInfo {
  std::string name;
  int64_t n_tokens = 0;     // tokens stored (sentence layout: without sentence markers)
  int64_t n_sentences = 0;  // sentence layout only
  int64_t n_shards = 0;     // sentence layout only
};

class CorpusFile {
 public:
  // Opens and validates a corpus file; every problem is a txl::Error naming the file.
  static CorpusFile open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const std::string& dataset() const { return dataset_; }        // wt103, wt2, ..., generic
  const std::string& vocab_kind() const { return vocab_kind_; }  // "word", "char" or "bpe"
  bool char_level() const { return vocab_kind_ == "char"; }      // report bpc, not ppl
  int64_t n_token() const { return vocabulary_.size(); }
  const std::vector<int64_t>& cutoffs() const { return cutoffs_; }  // recommended adaptive cutoffs
  const std::string& checksum() const { return checksum_; }         // "sha256:<hex>" of the contents
  int64_t format_version() const { return format_version_; }
  CorpusLayout layout() const { return layout_; }
  const Vocabulary& vocabulary() const { return vocabulary_; }

  bool has_split(const std::string& name) const { return splits_.count(name) > 0; }
  // Throws txl::Error naming the file and the split when it is absent.
  const SplitInfo& split(const std::string& name) const;

  // Reads tokens [offset, offset+count) of a split with one hyperslab and checks every id
  // against the vocabulary (an id out of range is an error naming the file and position).
  void read_tokens(const std::string& split, int64_t offset, int64_t count, int32_t* out) const;
  std::vector<int32_t> read_tokens(const std::string& split, int64_t offset, int64_t count) const;
  // Reads all of a split's tokens once (through their checksums and the vocabulary range
  // check) without keeping them; throws naming the file and dataset when they are corrupt.
  void check_split(const std::string& split) const;
  // Sentence layout: offsets of sentences [first, first+count] (count+1 values), checked
  // to be non-decreasing and within the split.
  std::vector<int64_t> read_sentence_offsets(const std::string& split, int64_t first, int64_t count) const;
  // Sentence layout: the shard boundaries in sentences (n_shards+1 values).
  std::vector<int64_t> read_shard_offsets(const std::string& split) const;

  const h5::File& file() const { return file_; }

 private:
  explicit CorpusFile(h5::File file) : file_(std::move(file)) {}
  h5::File file_;
  std::string dataset_, vocab_kind_, checksum_;
  int64_t format_version_ = 0;
  CorpusLayout layout_ = CorpusLayout::kStream;
  std::vector<int64_t> cutoffs_;
  Vocabulary vocabulary_;
  std::map<std::string, SplitInfo> splits_;
};

}  // namespace txl::data
