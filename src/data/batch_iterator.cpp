#include "txl/data/batch_iterator.h"

#include "txl/data/corpus.h"
#include "txl/data/ordered_iterator.h"
#include "txl/data/sentence_stream_iterator.h"

namespace txl::data {

std::unique_ptr<BatchIterator> make_batch_iterator(const CorpusFile& corpus, const std::string& split,
                                                   int64_t global_batch, int world, int rank, int64_t tgt_len,
                                                   const IteratorOptions& options) {
  if (corpus.layout() == CorpusLayout::kSentences) {
    // The evaluation warm-up prefixes an ordered stream with the tokens before it; a
    // sentence stream has none (its first sentence starts cold), so there is no warm-up.
    IteratorOptions sentence_options = options;
    sentence_options.warmup_mem_len = 0;
    return std::make_unique<SentenceStreamIterator>(corpus, split, global_batch, world, rank, tgt_len,
                                                    sentence_options);
  }
  return std::make_unique<OrderedIterator>(corpus, split, global_batch, world, rank, tgt_len, options);
}

}  // namespace txl::data
