#include "txl/model/positional_embedding.h"

#include <cmath>

#include "txl/core/error.h"

namespace txl {

std::vector<int64_t> relative_positions(int64_t klen, int64_t clamp_len) {
  std::vector<int64_t> pos(static_cast<size_t>(klen));
  for (int64_t r = 0; r < klen; ++r) {
    int64_t p = klen - 1 - r;
    if (clamp_len > 0 && p > clamp_len) p = clamp_len;
    pos[static_cast<size_t>(r)] = p;
  }
  return pos;
}

template <typename T>
std::vector<T> position_embedding(int64_t klen, int64_t d_model, int64_t clamp_len) {
  TXL_CHECK(d_model % 2 == 0, "position embedding needs an even d_model (got {})", d_model);
  const int64_t half = d_model / 2;
  // inv_freq is computed in float32 whatever T is: the recipe keeps it in a float32
  // buffer made before the model is converted to another precision, and its double-
  // precision numbers (tests/fixtures/golden) carry that rounding.
  std::vector<T> inv_freq(static_cast<size_t>(half));
  for (int64_t k = 0; k < half; ++k)
    inv_freq[static_cast<size_t>(k)] =
        static_cast<T>(1.0f / std::pow(10000.0f, static_cast<float>(2 * k) / static_cast<float>(d_model)));
  const std::vector<int64_t> pos = relative_positions(klen, clamp_len);
  std::vector<T> out(static_cast<size_t>(klen * d_model));
  for (int64_t r = 0; r < klen; ++r) {
    T* row = out.data() + r * d_model;
    const T p = static_cast<T>(pos[static_cast<size_t>(r)]);
    for (int64_t k = 0; k < half; ++k) {
      const T arg = p * inv_freq[static_cast<size_t>(k)];
      row[k] = static_cast<T>(std::sin(static_cast<double>(arg)));
      row[half + k] = static_cast<T>(std::cos(static_cast<double>(arg)));
    }
  }
  return out;
}

template std::vector<float> position_embedding<float>(int64_t, int64_t, int64_t);
template std::vector<double> position_embedding<double>(int64_t, int64_t, int64_t);

}  // namespace txl
