// Fuzz target: a corpus file (src/data/corpus.cpp) from arbitrary bytes: opened, and the
// start and end of every split read. Bad input is one txl::Error.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "fuzz_input_file.h"
#include "txl/core/error.h"
#include "txl/data/corpus.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const txl::fuzz::InputFile input(data, size, ".corpus.h5");
  try {
    const txl::data::CorpusFile corpus = txl::data::CorpusFile::open(input.path());
    for (const std::string name : {"train", "valid", "test"}) {
      if (!corpus.has_split(name)) continue;
      const txl::data::SplitInfo& s = corpus.split(name);
      const int64_t n = std::min<int64_t>(s.n_tokens, 4096);
      corpus.read_tokens(name, 0, n);
      corpus.read_tokens(name, s.n_tokens - n, n);
      if (corpus.layout() == txl::data::CorpusLayout::kSentences) {
        corpus.read_shard_offsets(name);
        corpus.read_sentence_offsets(name, 0, std::min<int64_t>(s.n_sentences, 1024));
      }
    }
  } catch (const txl::Error&) {
  }
  return 0;
}
