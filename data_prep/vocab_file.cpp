#include "txl/data/prep/vocab_file.h"

#include <fstream>
#include <sstream>

#include "txl/core/error.h"
#include "txl/data/prep/byte_source.h"
#include "txl/data/symbol_map.h"
#include "txl/data/text_tokenizer.h"

namespace txl::data::prep {

std::vector<std::string> read_vocab_file(const std::string& path) {
  FileSource source(path);  // clear "file not found"
  std::string text;
  std::vector<char> buf(1 << 20);
  size_t n;
  while ((n = source.read(buf.data(), buf.size())) > 0) text.append(buf.data(), n);
  const size_t bad = find_invalid_utf8(text);
  if (bad != kNoInvalidByte)
    failf("{}: invalid UTF-8 at line {} (byte offset {})", path, line_number_at(text, bad), bad);
  std::vector<std::string> symbols;
  SymbolMap<int64_t> seen;
  int64_t line_no = 0;
  for_each_line(text, [&](std::string_view line) {
    ++line_no;
    bool first = true;
    for_each_word(line, [&](std::string_view word) {
      if (!first) return;
      first = false;
      const auto [it, inserted] = seen.emplace(std::string(word), line_no);
      if (!inserted) failf("{}: line {}: symbol '{}' already listed at line {}", path, line_no, word, it->second);
      symbols.emplace_back(word);
    });
  });
  if (symbols.empty()) failf("{}: vocabulary file lists no symbols", path);
  return symbols;
}

}  // namespace txl::data::prep
