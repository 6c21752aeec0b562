// Names in the HDF5 corpus file (format "txl-corpus", version 2), shared by the writer
// (txl_prep) and the reader (CorpusFile). docs/data.md describes the layout for users.
//
//   /                       attributes: format, format_version, dataset, vocab_kind, char_unit,
//                           n_token, cutoffs, layout, tokenisation rules, checksum,
//                           source_checksums, created_by
//   /vocab/symbols          strings [n_token]  symbol of each id (UTF-8)
//   /vocab/counts           int64  [n_token]   count of each id in the training split
//   /vocab/bpe_merges       strings [M]        vocab_kind "bpe": the BPE merges "left right"
//                                              in rank order (byte_level_bpe.h)
//   "strings" is a string list as h5::File::write_strings stores it (a group with uint8
//   `bytes` and uint64 `offsets`); version 1 stored these two as variable-length HDF5
//   strings, which CorpusFile still reads.
//   /<split>/tokens         int32  [N]         token ids, chunked (one hyperslab per rank)
//   /<split>/sentence_offsets  int64 [S+1]     layout "sentences" (lm1b): sentence s is
//                                              tokens [off[s], off[s+1]) without markers
//   /<split>/shard_offsets  int64  [K+1]       layout "sentences": shard k (one source file)
//                                              is sentences [sh[k], sh[k+1])
//   split groups: train, valid, test; attributes n_tokens, n_lines, n_oov, source, sha256
#pragma once
#include <cstdint>
#include <string>

namespace txl::data::corpus_format {

inline constexpr const char* kFormat = "txl-corpus";
inline constexpr int64_t kVersion = 2;
// The last version whose string lists were variable-length HDF5 strings.
inline constexpr int64_t kLastVlenVersion = 1;
inline constexpr int64_t kTokenChunk = 1 << 20;   // tokens per HDF5 chunk (4 MiB)
inline constexpr int64_t kOffsetChunk = 1 << 16;  // sentence offsets per chunk

inline constexpr const char* kLayoutStream = "stream";
inline constexpr const char* kLayoutSentences = "sentences";

inline constexpr const char* kSymbols = "/vocab/symbols";
inline constexpr const char* kCounts = "/vocab/counts";
inline constexpr const char* kBpeMerges = "/vocab/bpe_merges";

inline std::string split_group(const std::string& split) { return "/" + split; }
inline std::string tokens_path(const std::string& split) { return "/" + split + "/tokens"; }
inline std::string sentence_offsets_path(const std::string& split) { return "/" + split + "/sentence_offsets"; }
inline std::string shard_offsets_path(const std::string& split) { return "/" + split + "/shard_offsets"; }

}  // namespace txl::data::corpus_format
