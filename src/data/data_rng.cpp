#include "txl/data/data_rng.h"

#include <cmath>
#include <numbers>

#include "txl/core/error.h"

namespace txl::data {

uint64_t DataRng::uniform_below(uint64_t n) {
  TXL_CHECK(n > 0, "DataRng::uniform_below: empty range");
  // Accept draws below the largest multiple of n that fits in 64 bits.
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % n + 1) % n;
  uint64_t x;
  do {
    x = engine_();
  } while (x > limit);
  return x % n;
}

double DataRng::normal(double mean, double std) {
  const double u1 = 1.0 - uniform01();  // (0, 1]: log is finite
  const double u2 = uniform01();
  return mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9E3779B97F4A7C15ull * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::vector<int64_t> stream_roll_offsets(uint64_t seed, int64_t epoch, int64_t n_streams, int64_t stream_len) {
  TXL_CHECK(n_streams >= 0 && stream_len > 0, "roll offsets: {} streams of length {}", n_streams, stream_len);
  DataRng rng(seed + static_cast<uint64_t>(epoch));
  std::vector<int64_t> offsets(static_cast<size_t>(n_streams));
  for (auto& o : offsets) o = static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(stream_len)));
  return offsets;
}

}  // namespace txl::data
