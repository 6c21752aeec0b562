#include "txl/data/prep/line_pipeline.h"

#include <algorithm>

#include "txl/core/error.h"
#include "txl/data/prep/flat_symbol_table.h"
#include "txl/data/prep/line_blocks.h"
#include "txl/data/prep/sha256.h"

namespace txl::data::prep {

namespace {

// Position of symbol `s` inside the processed line (the line itself or its lower-cased
// copy in `scratch`).
int64_t position_in_line(std::string_view s, std::string_view line, const std::string& scratch) {
  const char* base = (!scratch.empty() && s.data() >= scratch.data() && s.data() < scratch.data() + scratch.size())
                         ? scratch.data()
                         : line.data();
  return s.data() - base;
}

[[noreturn]] void fail_utf8(const std::string& path, std::string_view block, size_t bad, int64_t lines_before,
                            int64_t block_offset) {
  failf("{}: invalid UTF-8 at line {} (byte offset {}); word and character corpora must be UTF-8 text", path,
        lines_before + line_number_at(block, bad), block_offset + static_cast<int64_t>(bad));
}

struct PartScan {
  int64_t lines = 0, symbols = 0, oov = 0;
  size_t bad = kNoInvalidByte;  // offset in the block of invalid UTF-8
  std::string first_oov;
};

}  // namespace

ScanResult scan_text_file(const std::string& path, const TokenizationRules& rules, bool count_symbols,
                          const SymbolMap<int32_t>* known, const PipelineSettings& settings) {
  FileSource source(path);
  LineBlockReader reader(source, settings.block_bytes);
  Sha256 hash;
  Progress progress(settings.progress, "reading " + path, source.size());
  const int threads = std::max(1, settings.threads);
  std::vector<FlatSymbolTable<SymbolStats>> maps(static_cast<size_t>(threads));
  FlatSymbolTable<int32_t> known_table(known ? known->size() : 16);
  if (known)
    for (const auto& [symbol, id] : *known) known_table.insert(symbol, known_table.hash(symbol), id);
  ScanResult result;
  std::string_view block;
  int64_t offset;
  while (reader.next(block, offset)) {
    hash.update(block.data(), block.size());
    const std::vector<std::string_view> parts = split_at_lines(block, threads);
    std::vector<PartScan> scans(parts.size());
    run_parallel(static_cast<int>(parts.size()), [&](int t) {
      PartScan& r = scans[static_cast<size_t>(t)];
      const std::string_view part = parts[static_cast<size_t>(t)];
      const size_t base = static_cast<size_t>(part.data() - block.data());
      const size_t bad = find_invalid_utf8(part);
      if (bad != kNoInvalidByte) {
        r.bad = base + bad;
        return;
      }
      FlatSymbolTable<SymbolStats>& counts = maps[static_cast<size_t>(t)];
      std::string scratch;
      for_each_line(part, [&](std::string_view line) {
        ++r.lines;
        scratch.clear();
        const int64_t line_offset = offset + (line.data() - block.data());
        tokenize_line(rules, line, scratch, [&](std::string_view s) {
          ++r.symbols;
          if (count_symbols) {
            const uint64_t h = counts.hash(s);
            if (SymbolStats* st = counts.find(s, h)) {
              ++st->count;
            } else {
              counts.insert(s, h, SymbolStats{1, line_offset, position_in_line(s, line, scratch)});
            }
          }
          if (known && !known_table.find(s) && r.oov++ == 0) r.first_oov = std::string(s);
        });
      });
    });
    const int64_t lines_before = result.lines;
    for (const PartScan& r : scans) {
      if (r.bad != kNoInvalidByte) fail_utf8(path, block, r.bad, lines_before, offset);
      result.lines += r.lines;
      result.symbols += r.symbols;
      if (r.oov > 0 && result.oov == 0) result.first_oov = r.first_oov;
      result.oov += r.oov;
    }
    progress.update(reader.bytes_read());
  }
  progress.finish(reader.bytes_read());
  // Merge the per-thread counts: add counts, keep the earliest first-seen position.
  for (size_t t = 1; t < maps.size(); ++t) {
    maps[t].for_each([&](std::string_view symbol, const SymbolStats& b) {
      const uint64_t h = maps[0].hash(symbol);
      SymbolStats* a = maps[0].find(symbol, h);
      if (!a) {
        maps[0].insert(symbol, h, b);
        return;
      }
      a->count += b.count;
      if (std::tie(b.first_line, b.first_pos) < std::tie(a->first_line, a->first_pos)) {
        a->first_line = b.first_line;
        a->first_pos = b.first_pos;
      }
    });
  }
  if (count_symbols) {
    result.counts.reserve(maps[0].size());
    maps[0].for_each([&](std::string_view symbol, const SymbolStats& st) { result.counts.emplace(symbol, st); });
  }
  result.sha256 = hash.hex_digest();
  result.bytes = reader.bytes_read();
  return result;
}

void add_later_counts(SymbolMap<SymbolStats>& into, SymbolMap<SymbolStats> later, int64_t offset_shift) {
  into.reserve(into.size() + later.size());
  for (auto it = later.begin(); it != later.end();) {
    auto node = later.extract(it++);
    SymbolStats st = node.mapped();
    const auto found = into.find(node.key());
    if (found != into.end()) {
      found->second.count += st.count;  // first seen in an earlier file: its position stays
    } else {
      st.first_line += offset_shift;
      into.emplace(std::move(node.key()), st);
    }
  }
}

namespace {
struct PartEncode {
  std::vector<int32_t> ids;
  std::vector<int64_t> lengths;
  std::vector<int64_t> counts;
  int64_t lines = 0, oov = 0;
  size_t bad = kNoInvalidByte;
  size_t missing_at = kNoInvalidByte;  // offset in the block of a line with an unknown symbol
  std::string missing;
};
}  // namespace

EncodeResult encode_text_file(const std::string& path, const TokenizationRules& rules, const EncodeTarget& target,
                              CorpusWriter& writer, const PipelineSettings& settings) {
  FileSource source(path);
  LineBlockReader reader(source, settings.block_bytes);
  Sha256 hash;
  Progress progress(settings.progress, "encoding " + path, source.size());
  const int threads = std::max(1, settings.threads);
  const size_t n_ids = target.counts ? target.counts->size() : 0;
  std::vector<PartEncode> encs(static_cast<size_t>(threads));
  FlatSymbolTable<int32_t> ids(target.ids->size());
  for (const auto& [symbol, id] : *target.ids) ids.insert(symbol, ids.hash(symbol), id);
  EncodeResult result;
  std::string_view block;
  int64_t offset;
  while (reader.next(block, offset)) {
    hash.update(block.data(), block.size());
    const std::vector<std::string_view> parts = split_at_lines(block, threads);
    run_parallel(static_cast<int>(parts.size()), [&](int t) {
      PartEncode& r = encs[static_cast<size_t>(t)];
      r.ids.clear();
      r.lengths.clear();
      r.lines = r.oov = 0;
      r.bad = r.missing_at = kNoInvalidByte;
      if (n_ids && r.counts.size() != n_ids) r.counts.assign(n_ids, 0);
      const std::string_view part = parts[static_cast<size_t>(t)];
      const size_t base = static_cast<size_t>(part.data() - block.data());
      const size_t bad = find_invalid_utf8(part);
      if (bad != kNoInvalidByte) {
        r.bad = base + bad;
        return;
      }
      std::string scratch;
      for_each_line(part, [&](std::string_view line) {
        ++r.lines;
        scratch.clear();
        const size_t before = r.ids.size();
        tokenize_line(rules, line, scratch, [&](std::string_view s) {
          const int32_t* found = ids.find(s);
          int32_t id;
          if (found) {
            id = *found;
          } else {
            ++r.oov;
            id = target.unk;
            if (id < 0 && r.missing_at == kNoInvalidByte) {
              r.missing_at = static_cast<size_t>(line.data() - block.data());
              r.missing = std::string(s);
            }
          }
          r.ids.push_back(id);
        });
        if (target.sentences) r.lengths.push_back(static_cast<int64_t>(r.ids.size() - before));
        if (target.line_end >= 0) r.ids.push_back(target.line_end);
      });
      if (n_ids)
        for (const int32_t id : r.ids)
          if (id >= 0) ++r.counts[static_cast<size_t>(id)];
    });
    const int64_t lines_before = result.lines;
    for (size_t t = 0; t < parts.size(); ++t) {
      const PartEncode& r = encs[t];
      if (r.bad != kNoInvalidByte) fail_utf8(path, block, r.bad, lines_before, offset);
      if (r.missing_at != kNoInvalidByte)
        failf("{}: line {}: '{}' is not in the vocabulary, which has no unknown-word symbol", path,
              lines_before + line_number_at(block, r.missing_at), r.missing);
      writer.append_tokens(r.ids.data(), r.ids.size());
      if (target.sentences) writer.append_sentences(r.lengths.data(), r.lengths.size());
      result.lines += r.lines;
      result.tokens += static_cast<int64_t>(r.ids.size());
      result.oov += r.oov;
    }
    progress.update(reader.bytes_read());
  }
  progress.finish(reader.bytes_read());
  if (target.counts)
    for (PartEncode& r : encs)
      for (size_t i = 0; i < r.counts.size(); ++i) (*target.counts)[i] += r.counts[i];
  result.sha256 = hash.hex_digest();
  return result;
}

std::vector<std::pair<std::string, int64_t>> order_by_count(SymbolMap<SymbolStats> counts) {
  struct Entry {
    std::string symbol;
    SymbolStats stats;
  };
  std::vector<Entry> entries;
  entries.reserve(counts.size());
  for (auto it = counts.begin(); it != counts.end();) {
    auto node = counts.extract(it++);
    entries.push_back({std::move(node.key()), node.mapped()});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.stats.count != b.stats.count) return a.stats.count > b.stats.count;
    return std::tie(a.stats.first_line, a.stats.first_pos) < std::tie(b.stats.first_line, b.stats.first_pos);
  });
  std::vector<std::pair<std::string, int64_t>> out;
  out.reserve(entries.size());
  for (Entry& e : entries) out.emplace_back(std::move(e.symbol), e.stats.count);
  return out;
}

}  // namespace txl::data::prep
