// Vocabulary files (lm1b's 1b_word_vocab.txt, or --vocab_file for generic corpora): one
// symbol per line, the first white-space separated field; further fields (such as a
// count) are ignored. Ids follow the file order.
#pragma once
#include <string>
#include <vector>

namespace txl::data::prep {

// Throws txl::Error naming the file and line for a missing file, invalid UTF-8, or a
// symbol listed twice.
std::vector<std::string> read_vocab_file(const std::string& path);

}  // namespace txl::data::prep
