// Deterministic random numbers for the data order (roll offsets, variable batch lengths,
// lm1b shuffling). The engine is std::mt19937_64, whose output the C++ standard fixes;
// the distributions are written out here because the standard library's differ between
// implementations. The same seed therefore gives the same data order on every platform.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace txl::data {

class DataRng {
 public:
  explicit DataRng(uint64_t seed) : engine_(seed) {}
  uint64_t bits() { return engine_(); }
  // Uniform integer in [0, n), n > 0, without modulo bias (rejection sampling).
  uint64_t uniform_below(uint64_t n);
  // Uniform double in [0, 1) with 53 random bits.
  double uniform01() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  // Normal deviate by Box-Muller (two uniforms per call, the cosine branch).
  double normal(double mean, double std);

 private:
  std::mt19937_64 engine_;
};

// Combines two 64-bit values into a well-mixed seed (splitmix64 finaliser).
uint64_t mix_seed(uint64_t a, uint64_t b);

// Roll offsets of an epoch: stream b of n_streams is rotated left by offsets[b], drawn
// in stream order from DataRng(seed + epoch) as uniform_below(stream_len). Every rank
// draws all of them and keeps its own, so the order does not depend on the world size.
std::vector<int64_t> stream_roll_offsets(uint64_t seed, int64_t epoch, int64_t n_streams, int64_t stream_len);

}  // namespace txl::data
