// The Unicode classes of the GPT-2 pre-tokenisation pattern, from tables generated out of
// the Python `regex` module (data_prep/make_unicode_classes.py), which the published
// GPT-2 encoder runs that pattern with.
#pragma once

namespace txl::data {

bool is_unicode_letter(char32_t c);  // \p{L}
bool is_unicode_number(char32_t c);  // \p{N}
bool is_unicode_space(char32_t c);   // \s (the White_Space property)

}  // namespace txl::data
