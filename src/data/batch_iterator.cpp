#include "txl/data/batch_iterator.h"

#include "txl/data/corpus.h"
#include "txl/data/ordered_iterator.h"
#include "txl/data/sentence_stream_iterator.h"

namespace txl::data {

std::unique_ptr<BatchIterator> make_batch_iterator(const CorpusFile& corpus, const std::string& split,
                                                   int64_t global_batch, int world, int rank, int64_t tgt_len,
                                                   const IteratorOptions& options) {
  if (corpus.layout() == CorpusLayout::kSentences)
    return std::make_unique<SentenceStreamIterator>(corpus, split, global_batch, world, rank, tgt_len, options);
  return std::make_unique<OrderedIterator>(corpus, split, global_batch, world, rank, tgt_len, options);
}

}  // namespace txl::data
