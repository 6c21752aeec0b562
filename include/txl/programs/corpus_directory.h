// `data: DIR`, as the recipe takes it: the downloaded corpus directory rather than a
// corpus file. txl_train prepares it with txl_prep's library once, into a corpus file
// inside the directory (like the recipe's cache.pt), and reads that file afterwards.
#pragma once
#include <string>

#include "txl/dist/communicator.h"

namespace txl {

// DIR/txl_<dataset>.h5: where the prepared corpus of `dataset` in `directory` lives.
std::string corpus_file_in_directory(const std::string& directory, const std::string& dataset);

// Prepares `directory` (a `dataset` download) into corpus_file_in_directory() unless
// that file exists. Rank 0 prepares under an exclusive lock on "<file>.lock", so
// concurrent jobs on the same directory prepare it once; the other ranks wait for it.
// Returns a log line ("prepared ..." or "using ..."). Failures throw txl::Error on
// every rank.
std::string prepare_corpus_directory(const std::string& directory, const std::string& dataset, Communicator& comm);

}  // namespace txl
