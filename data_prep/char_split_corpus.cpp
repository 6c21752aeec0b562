// enwik8 and text8: one raw file (or its .zip) split into train / the `holdout` units
// before the last `holdout` (valid) / the last `holdout` (test), as the recipe's
// preparation scripts do (holdout = 5,000,000). Units are bytes for enwik8 and Unicode
// characters for text8.
//  - enwik8: every byte is a token except newline bytes (they end the recipe's lines and
//    carry no token).
//  - text8: each part is stripped of white space at both ends (Python's str.strip() on
//    the part), spaces inside are symbols; line breaks (none in the real file) are dropped.
// Vocabulary: symbols of all three parts by descending count, ties in first-seen order
// (the recipe counts train, valid and test for both); enwik8 symbols are the byte
// values in decimal ("32"), as in the recipe's files.
#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "txl/core/error.h"
#include "txl/data/prep/builder_common.h"
#include "txl/data/prep/byte_source.h"
#include "txl/data/prep/corpus_writer.h"
#include "txl/data/prep/prep.h"
#include "txl/data/prep/progress.h"
#include "txl/data/prep/sha256.h"

namespace txl::data::prep {

namespace fs = std::filesystem;

namespace {

const char* const kSplits[] = {"train", "valid", "test"};

// Reads a source as units: bytes, or code points of validated UTF-8.
class UnitReader {
 public:
  UnitReader(ByteSource& source, SymbolUnit unit) : source_(source), unit_(unit), buf_(1 << 22) {}
  // Next units into `out` (replaced); false at the end.
  bool next(std::vector<char32_t>& out) {
    out.clear();
    const size_t got = source_.read(buf_.data() + carry_, buf_.size() - carry_);
    const size_t have = carry_ + got;
    if (have == 0) return false;
    size_t usable = have;
    if (unit_ == SymbolUnit::kCodepoint && got > 0) {
      // Keep an incomplete sequence at the end for the next call.
      size_t lead = have;
      for (size_t k = 1; k <= 3 && k <= have; ++k) {
        const auto b = static_cast<unsigned char>(buf_[have - k]);
        if ((b & 0xC0) != 0x80) {
          lead = have - k;
          break;
        }
      }
      if (lead < have) {
        const auto b = static_cast<unsigned char>(buf_[lead]);
        const size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
        if (lead + need > have) usable = lead;
      }
    }
    if (unit_ == SymbolUnit::kByte) {
      out.reserve(usable);
      for (size_t i = 0; i < usable; ++i) out.push_back(static_cast<unsigned char>(buf_[i]));
    } else {
      const std::string_view text(buf_.data(), usable);
      const size_t bad = find_invalid_utf8(text);
      if (bad != kNoInvalidByte)
        failf("{}: invalid UTF-8 at byte offset {}", source_.name(), consumed_ + static_cast<int64_t>(bad));
      const char* p = text.data();
      const char* const end = p + text.size();
      while (p < end) out.push_back(decode_utf8(p));
    }
    consumed_ += static_cast<int64_t>(usable);
    carry_ = have - usable;
    std::memmove(buf_.data(), buf_.data() + usable, carry_);
    if (got == 0 && carry_ > 0 && usable == 0)
      failf("{}: invalid UTF-8 at byte offset {} (truncated sequence at the end)", source_.name(), consumed_);
    return true;
  }
  int64_t bytes_read() const { return consumed_; }

 private:
  ByteSource& source_;
  SymbolUnit unit_;
  std::vector<char> buf_;
  size_t carry_ = 0;
  int64_t consumed_ = 0;
};

// Turns raw units into the tokens of each part: part boundaries at raw unit positions,
// newline dropping, and (text8) stripping of each part.
class PartSplitter {
 public:
  PartSplitter(int64_t train_end, int64_t valid_end, bool strip, bool drop_cr)
      : ends_{train_end, valid_end, INT64_MAX}, strip_(strip), drop_cr_(drop_cr) {}
  // Calls emit(part, unit) for each token; a part change drops pending trailing white space.
  template <typename Emit>
  void feed(char32_t c, Emit&& emit) {
    while (pos_ >= ends_[static_cast<size_t>(part_)]) {
      ++part_;
      pending_.clear();
      leading_ = true;
    }
    ++pos_;
    const bool line_break = c == '\n' || (drop_cr_ && c == '\r');
    if (strip_ && is_python_space(c)) {
      if (!leading_) pending_.push_back(c);  // kept only if more text follows in this part
      return;
    }
    if (line_break) return;
    leading_ = false;
    for (const char32_t p : pending_)
      if (p != '\n' && !(drop_cr_ && p == '\r')) emit(part_, p);
    pending_.clear();
    emit(part_, c);
  }

 private:
  std::array<int64_t, 3> ends_;
  bool strip_, drop_cr_;
  int part_ = 0;
  int64_t pos_ = 0;
  bool leading_ = true;
  std::vector<char32_t> pending_;
};

struct CharSource {
  std::string path, member, name;
  SymbolUnit unit;
};

CharSource locate_source(const PrepOptions& o) {
  CharSource s;
  s.member = o.dataset;
  s.unit = o.dataset == "enwik8" ? SymbolUnit::kByte : SymbolUnit::kCodepoint;
  std::error_code ec;
  if (fs::is_regular_file(o.data, ec)) {
    s.path = o.data;
  } else {
    for (const std::string& n : {o.dataset, o.dataset + ".zip"}) {
      const fs::path p = fs::path(o.data) / n;
      if (fs::is_regular_file(p, ec)) {
        s.path = p.string();
        break;
      }
    }
    if (s.path.empty())
      failf("{}: neither {} nor {}.zip found (--dataset {} takes the raw download)",
            (fs::path(o.data) / o.dataset).string(), o.dataset, o.dataset, o.dataset);
  }
  s.name = fs::path(s.path).filename().string();
  return s;
}

std::string symbol_name(char32_t c, SymbolUnit unit) {
  if (unit == SymbolUnit::kByte) return std::to_string(static_cast<unsigned>(c));
  std::string s;
  append_utf8(s, c);
  return s;
}

// Runs `fn(units)` over the whole source, with progress.
template <typename Fn>
void read_units(const CharSource& cs, const ProgressSettings& ps, const std::string& what, Fn&& fn) {
  std::unique_ptr<ByteSource> src = open_byte_source(cs.path, cs.member);
  UnitReader reader(*src, cs.unit);
  Progress progress(ps, what + " " + src->name(), src->size());
  std::vector<char32_t> units;
  while (reader.next(units)) {
    if (!fn(units)) break;
    progress.update(reader.bytes_read());
  }
  progress.finish(reader.bytes_read());
}

}  // namespace

PrepSummary prepare_char_split_corpus(const PrepOptions& o, const std::string& tmp_path) {
  const CharSource cs = locate_source(o);
  const bool text8 = o.dataset == "text8";
  TXL_CHECK(o.holdout > 0, "--holdout must be positive (got {})", o.holdout);

  // Pass 1: the total length in units (bytes are known from the file or zip header).
  int64_t total = -1;
  if (cs.unit == SymbolUnit::kByte) total = open_byte_source(cs.path, cs.member)->size();
  if (total < 0) {
    total = 0;
    read_units(cs, o.progress, "measuring", [&](const std::vector<char32_t>& u) {
      total += static_cast<int64_t>(u.size());
      return true;
    });
  }
  if (total <= 2 * o.holdout)
    failf("{}: {} {} is too short for {} each of validation and test (--holdout)", cs.path, total,
          text8 ? "characters" : "bytes", o.holdout);
  const int64_t train_end = total - 2 * o.holdout, valid_end = total - o.holdout;

  // Pass 2: count the symbols of all three parts, as the recipe does for enwik8 and text8
  // (first seen = token index over train, valid, test in that order), so no symbol of
  // valid or test is missing from the vocabulary. The stored counts are the training
  // part's own.
  struct Stat {
    int64_t count = 0, train_count = 0, first = 0;
  };
  std::unordered_map<char32_t, Stat> stats;
  std::array<int64_t, 3> part_tokens{};
  {
    PartSplitter splitter(train_end, valid_end, text8, text8);
    int64_t index = 0;
    read_units(cs, o.progress, "counting", [&](const std::vector<char32_t>& units) {
      for (const char32_t c : units) {
        splitter.feed(c, [&](int part, char32_t t) {
          Stat& s = stats[t];
          if (s.count++ == 0) s.first = index;
          if (part == 0) ++s.train_count;
          ++part_tokens[static_cast<size_t>(part)];
          ++index;
        });
      }
      return true;
    });
  }
  for (size_t p = 0; p < 3; ++p)
    if (part_tokens[p] == 0) failf("{}: split '{}' is empty (no tokens)", cs.path, kSplits[p]);
  std::vector<std::pair<char32_t, Stat>> ordered(stats.begin(), stats.end());
  std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    return a.second.count != b.second.count ? a.second.count > b.second.count : a.second.first < b.second.first;
  });
  std::vector<std::string> symbols;
  std::vector<int64_t> counts;
  std::unordered_map<char32_t, int32_t> ids;
  std::array<int32_t, 128> ascii_ids;
  ascii_ids.fill(-1);
  for (const auto& [c, s] : ordered) {
    const auto id = static_cast<int32_t>(symbols.size());
    ids[c] = id;
    if (c < 128) ascii_ids[c] = id;
    symbols.push_back(symbol_name(c, cs.unit));
    counts.push_back(s.train_count);
  }

  CorpusDescription desc;
  desc.dataset = o.dataset;
  desc.vocab_kind = "char";
  desc.rules.unit = cs.unit;
  desc.cutoffs = recommended_cutoffs(o, static_cast<int64_t>(symbols.size()));
  desc.source_checksums = checksum_line(sha256_file(cs.path), cs.name);

  // Pass 3: encode the three parts.
  PrepSummary summary;
  CorpusWriter writer(tmp_path, desc);
  PartSplitter splitter(train_end, valid_end, text8, text8);
  int current = -1;
  const int64_t bounds[] = {0, train_end, valid_end, total};
  std::vector<int32_t> out;
  out.reserve(1 << 20);
  auto flush = [&] {
    writer.append_tokens(out.data(), out.size());
    out.clear();
  };
  auto close_part = [&] {
    flush();
    const auto p = static_cast<size_t>(current);
    summary.split_tokens[kSplits[p]] = writer.split_tokens();
    summary.split_oov[kSplits[p]] = 0;
    writer.end_split(
        {0, 0, fmt::format("{} {} [{}, {})", cs.name, text8 ? "characters" : "bytes", bounds[p], bounds[p + 1])});
  };
  auto open_until = [&](int part) {
    while (current < part) {
      if (current >= 0) close_part();
      ++current;
      writer.begin_split(kSplits[current], bounds[current + 1] - bounds[current]);
    }
  };
  open_until(0);
  read_units(cs, o.progress, "encoding", [&](const std::vector<char32_t>& units) {
    for (const char32_t c : units) {
      splitter.feed(c, [&](int part, char32_t t) {
        if (part != current) {
          flush();
          open_until(part);
        }
        int32_t id = t < 128 ? ascii_ids[t] : -1;
        if (id < 0) {
          const auto it = ids.find(t);
          if (it == ids.end())
            failf("{}: symbol '{}' of the {} part was not seen when counting (file changed meanwhile?)", cs.path,
                  symbol_name(t, cs.unit), kSplits[part]);
          id = it->second;
        }
        out.push_back(id);
        if (out.size() == out.capacity()) flush();
      });
    }
    return true;
  });
  open_until(2);
  close_part();
  writer.write_vocabulary(symbols, counts);
  writer.finish();
  summary.n_token = static_cast<int64_t>(symbols.size());
  return summary;
}

}  // namespace txl::data::prep
