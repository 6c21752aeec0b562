#include "txl/data/corpus.h"

#include "txl/core/error.h"
#include "txl/data/corpus_format.h"

namespace txl::data {
namespace fmt_ = corpus_format;

namespace {

// Checks that a dataset is one-dimensional with an integer element type.
int64_t integer_vector_length(const h5::File& f, const std::string& path) {
  const Shape s = f.shape(path);
  if (s.size() != 1) failf("{}: '{}' has shape {}, expected a 1-D vector", f.path(), path, shape_string(s));
  h5::Handle ds(H5Dopen2(f.id(), path.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.valid()) failf("{}: cannot open dataset '{}'", f.path(), path);
  h5::Handle type(H5Dget_type(ds.get()), H5Tclose);
  if (!type.valid() || H5Tget_class(type.get()) != H5T_INTEGER)
    failf("{}: dataset '{}' does not hold integers", f.path(), path);
  return s[0];
}

TokenizationRules read_rules(const h5::File& f, const std::string& vocab_kind) {
  TokenizationRules r;
  if (vocab_kind == "word" || vocab_kind == "bpe") {
    r.unit = SymbolUnit::kWord;
  } else {
    const std::string unit = f.attr_string("/", "char_unit");
    if (unit == "byte") {
      r.unit = SymbolUnit::kByte;
    } else if (unit == "codepoint") {
      r.unit = SymbolUnit::kCodepoint;
    } else {
      failf("{}: attribute char_unit = '{}' (expected byte or codepoint)", f.path(), unit);
    }
  }
  r.lower_case = f.attr_int("/", "lower_case") != 0;
  r.strip_lines = f.attr_int("/", "strip_lines") != 0;
  r.line_end = f.attr_string("/", "line_end_symbol");
  r.sentence_begin = f.attr_string("/", "sentence_begin_symbol");
  r.sentence_end = f.attr_string("/", "sentence_end_symbol");
  r.unk = f.attr_string("/", "unk_symbol");
  return r;
}

}  // namespace

CorpusFile CorpusFile::open(const std::string& path) {
  CorpusFile c(h5::File::open(path));
  const h5::File& f = c.file_;
  if (!f.has_attr("/", "format") || f.attr_string("/", "format") != fmt_::kFormat)
    failf("{}: not a txl corpus file (no root attribute format = \"{}\"; make one with txl_prep)", path, fmt_::kFormat);
  c.format_version_ = f.attr_int("/", "format_version");
  if (c.format_version_ < 1 || c.format_version_ > fmt_::kVersion)
    failf("{}: corpus format version {} is not supported (this txl reads version 1 to {})", path, c.format_version_,
          fmt_::kVersion);
  c.dataset_ = f.attr_string("/", "dataset");
  c.vocab_kind_ = f.attr_string("/", "vocab_kind");
  if (c.vocab_kind_ != "word" && c.vocab_kind_ != "char" && c.vocab_kind_ != "bpe")
    failf("{}: attribute vocab_kind = '{}' (expected word, char or bpe)", path, c.vocab_kind_);
  const std::string layout = f.attr_string("/", "layout");
  if (layout == fmt_::kLayoutStream) {
    c.layout_ = CorpusLayout::kStream;
  } else if (layout == fmt_::kLayoutSentences) {
    c.layout_ = CorpusLayout::kSentences;
  } else {
    failf("{}: attribute layout = '{}' (expected stream or sentences)", path, layout);
  }
  c.cutoffs_ = f.attr_ints("/", "cutoffs");
  c.checksum_ = f.attr_string("/", "checksum");
  const int64_t n_token = f.attr_int("/", "n_token");

  // From version 2 on a variable-length string dataset is damage, not an old file: never
  // hand it to libhdf5's global-heap reader.
  for (const char* list : {fmt_::kSymbols, fmt_::kBpeMerges})
    if (c.format_version_ > fmt_::kLastVlenVersion && f.exists(list) && !f.is_string_list(list))
      failf("{}: '{}' is not a string list (bytes and offsets) as format version {} stores it", path, list,
            c.format_version_);
  std::vector<std::string> symbols = f.read_strings(fmt_::kSymbols);
  const int64_t n_counts = integer_vector_length(f, fmt_::kCounts);
  if (static_cast<int64_t>(symbols.size()) != n_token || n_counts != n_token)
    failf("{}: vocabulary has {} symbols and {} counts but n_token = {}", path, symbols.size(), n_counts, n_token);
  std::vector<int64_t> counts = f.read<int64_t>(fmt_::kCounts);
  for (const int64_t cut : c.cutoffs_)
    if (cut <= 0 || cut >= n_token) failf("{}: recommended cutoff {} is outside (0, n_token = {})", path, cut, n_token);
  try {
    std::vector<std::pair<std::string, std::string>> merges;
    if (c.vocab_kind_ == "bpe") {
      if (!f.exists(fmt_::kBpeMerges)) failf("a BPE corpus without {}", fmt_::kBpeMerges);
      for (const std::string& m : f.read_strings(fmt_::kBpeMerges)) {
        const size_t sp = m.find(' ');
        if (sp == std::string::npos) failf("BPE merge '{}' is not 'left right'", m);
        merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
      }
    }
    std::shared_ptr<const ByteLevelBpe> bpe;
    if (c.vocab_kind_ == "bpe") bpe = std::make_shared<const ByteLevelBpe>(symbols, std::move(merges));
    c.vocabulary_ = Vocabulary(std::move(symbols), std::move(counts), read_rules(f, c.vocab_kind_));
    c.vocabulary_.set_bpe(std::move(bpe));
  } catch (const Error& e) {
    failf("{}: {}", path, e.what());
  }

  for (const std::string& name : f.list("/")) {
    if (name == "vocab" || !f.exists(fmt_::tokens_path(name))) continue;
    SplitInfo info;
    info.name = name;
    info.n_tokens = integer_vector_length(f, fmt_::tokens_path(name));
    if (f.has_attr(fmt_::split_group(name), "n_tokens") &&
        f.attr_int(fmt_::split_group(name), "n_tokens") != info.n_tokens)
      failf("{}: split '{}' holds {} tokens but its attribute n_tokens says {} (truncated file?)", path, name,
            info.n_tokens, f.attr_int(fmt_::split_group(name), "n_tokens"));
    if (c.layout_ == CorpusLayout::kSentences) {
      info.n_sentences = integer_vector_length(f, fmt_::sentence_offsets_path(name)) - 1;
      info.n_shards = integer_vector_length(f, fmt_::shard_offsets_path(name)) - 1;
      if (info.n_sentences < 0 || info.n_shards < 0)
        failf("{}: split '{}' has empty sentence or shard offset tables", path, name);
    }
    c.splits_.emplace(name, std::move(info));
  }
  if (c.splits_.empty()) failf("{}: corpus holds no token splits", path);
  return c;
}

const SplitInfo& CorpusFile::split(const std::string& name) const {
  const auto it = splits_.find(name);
  if (it == splits_.end()) {
    std::string have;
    for (const auto& [n, info] : splits_) have += (have.empty() ? "" : ", ") + n;
    failf("{}: no split '{}' (the file has: {})", path(), name, have);
  }
  return it->second;
}

void CorpusFile::read_tokens(const std::string& split_name, int64_t offset, int64_t count, int32_t* out) const {
  const SplitInfo& s = split(split_name);
  if (offset < 0 || count < 0 || offset + count > s.n_tokens)
    failf("{}: tokens [{}, {}) requested from split '{}' of {} tokens", path(), offset, offset + count, split_name,
          s.n_tokens);
  file_.read_rows<int32_t>(fmt_::tokens_path(split_name), offset, count, out);
  const int64_t n = n_token();
  for (int64_t i = 0; i < count; ++i) {
    if (out[i] < 0 || out[i] >= n)
      failf("{}: {}[{}] = {} is outside the vocabulary [0, {}) (corrupt file?)", path(), fmt_::tokens_path(split_name),
            offset + i, out[i], n);
  }
}

std::vector<int32_t> CorpusFile::read_tokens(const std::string& split_name, int64_t offset, int64_t count) const {
  std::vector<int32_t> out(static_cast<size_t>(std::max<int64_t>(count, 0)));
  read_tokens(split_name, offset, count, out.data());
  return out;
}

void CorpusFile::check_split(const std::string& split_name) const {
  const int64_t n = split(split_name).n_tokens;
  std::vector<int32_t> buffer(static_cast<size_t>(std::min<int64_t>(n, fmt_::kTokenChunk)));
  for (int64_t at = 0; at < n; at += fmt_::kTokenChunk) {
    const int64_t count = std::min<int64_t>(fmt_::kTokenChunk, n - at);
    read_tokens(split_name, at, count, buffer.data());
  }
}

std::vector<int64_t> CorpusFile::read_sentence_offsets(const std::string& split_name, int64_t first,
                                                       int64_t count) const {
  const SplitInfo& s = split(split_name);
  if (layout_ != CorpusLayout::kSentences) failf("{}: split '{}' has no sentence table", path(), split_name);
  if (first < 0 || count < 0 || first + count > s.n_sentences)
    failf("{}: sentences [{}, {}) requested from split '{}' of {} sentences", path(), first, first + count, split_name,
          s.n_sentences);
  std::vector<int64_t> off(static_cast<size_t>(count + 1));
  file_.read_rows<int64_t>(fmt_::sentence_offsets_path(split_name), first, count + 1, off.data());
  for (size_t i = 0; i < off.size(); ++i) {
    if (off[i] < 0 || off[i] > s.n_tokens || (i > 0 && off[i] < off[i - 1]))
      failf("{}: {}[{}] = {} is not a valid sentence offset (corrupt file?)", path(),
            fmt_::sentence_offsets_path(split_name), first + static_cast<int64_t>(i), off[i]);
  }
  return off;
}

std::vector<int64_t> CorpusFile::read_shard_offsets(const std::string& split_name) const {
  const SplitInfo& s = split(split_name);
  if (layout_ != CorpusLayout::kSentences) failf("{}: split '{}' has no shard table", path(), split_name);
  std::vector<int64_t> sh = file_.read<int64_t>(fmt_::shard_offsets_path(split_name));
  for (size_t i = 0; i < sh.size(); ++i) {
    const bool ends_ok = (i > 0 || sh[i] == 0) && (i + 1 < sh.size() || sh[i] == s.n_sentences);
    if (!ends_ok || sh[i] < 0 || sh[i] > s.n_sentences || (i > 0 && sh[i] < sh[i - 1]))
      failf("{}: {}[{}] = {} is not a valid shard offset (corrupt file?)", path(), fmt_::shard_offsets_path(split_name),
            i, sh[i]);
  }
  return sh;
}

}  // namespace txl::data
