// OpenMP helpers shared by the CPU kernels (private to src/cpu).
#pragma once
#include <cstdint>
#include <vector>

#include <omp.h>

namespace txl::cpu {

// Element counts below this run on one thread: an OpenMP fork/join costs a few
// microseconds, more than a small elementwise loop.
inline constexpr int64_t kParallelGrain = int64_t{1} << 15;

// Fixed reduction block. Sums are formed per block and then added in block order, so a
// reduction gives the same bits whatever the thread count.
inline constexpr int64_t kReduceBlock = int64_t{1} << 14;

// Sum over i in [begin, end) of term(i), in double, vectorised within one block.
template <typename Term>
double block_sum(int64_t begin, int64_t end, const Term& term) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = begin; i < end; ++i) s += term(i);
  return s;
}

// Deterministic parallel sum of term(i) over [0, n).
template <typename Term>
double parallel_sum(int64_t n, const Term& term) {
  if (n <= 0) return 0.0;
  const int64_t blocks = (n + kReduceBlock - 1) / kReduceBlock;
  if (blocks == 1) return block_sum(0, n, term);
  std::vector<double> partial(static_cast<size_t>(blocks));
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kReduceBlock;
    const int64_t end = begin + kReduceBlock < n ? begin + kReduceBlock : n;
    partial[static_cast<size_t>(b)] = block_sum(begin, end, term);
  }
  double s = 0.0;
  for (double p : partial) s += p;
  return s;
}

}  // namespace txl::cpu
