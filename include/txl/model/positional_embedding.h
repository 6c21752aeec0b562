// Sinusoid relative-position embedding (docs/model.md §3), computed on the host.
#pragma once
#include <cstdint>
#include <vector>

namespace txl {

// Position values for a key length: klen-1, klen-2, ..., 0, each clamped to clamp_len
// when clamp_len > 0.
std::vector<int64_t> relative_positions(int64_t klen, int64_t clamp_len);

// [klen, d_model] row-major: row r is [sin(p·inv_freq), cos(p·inv_freq)] (all sines, then
// all cosines) for p = relative_positions(klen, clamp_len)[r], inv_freq[k] =
// 1/10000^(2k/d_model) computed in float32 (the recipe's buffer is float32 in every
// precision). The products p·inv_freq are formed in T, as the recipe does in float32, so
// a float model sees the recipe's rounding.
template <typename T>
std::vector<T> position_embedding(int64_t klen, int64_t d_model, int64_t clamp_len);

}  // namespace txl
