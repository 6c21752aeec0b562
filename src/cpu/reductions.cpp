// Reductions to the host, accumulated in double in fixed blocks (the result does not
// depend on the number of threads).
#include <vector>

#include "txl/core/error.h"
#include "cpu_kernels.h"
#include "parallel.h"

namespace txl::cpu {

template <typename T>
double sum(const T* x, int64_t n) {
  return parallel_sum(n, [x](int64_t i) { return static_cast<double>(x[i]); });
}

template <typename T>
double sum_squares(const T* x, int64_t n) {
  return parallel_sum(n, [x](int64_t i) {
    const double v = x[i];
    return v * v;
  });
}

// All (slice, block) pieces are summed in one parallel loop, so many small slices and
// a few huge ones both keep every thread busy.
template <typename T>
std::vector<double> sum_squares_slices(const T* x, const std::vector<FlatSlice>& slices) {
  struct Piece {
    size_t slice;
    int64_t begin, end;
  };
  std::vector<Piece> pieces;
  for (size_t s = 0; s < slices.size(); ++s) {
    check_flat_slice("sum_squares_slices", s, slices[s]);
    for (int64_t b = 0; b < slices[s].numel; b += kReduceBlock)
      pieces.push_back({s, slices[s].offset + b, slices[s].offset + std::min(slices[s].numel, b + kReduceBlock)});
  }
  std::vector<double> partial(pieces.size());
  const int64_t count = static_cast<int64_t>(pieces.size());
#pragma omp parallel for schedule(dynamic, 4) if (count > 1)
  for (int64_t p = 0; p < count; ++p) {
    const Piece& piece = pieces[static_cast<size_t>(p)];
    partial[static_cast<size_t>(p)] = block_sum(piece.begin, piece.end, [x](int64_t i) {
      const double v = x[i];
      return v * v;
    });
  }
  std::vector<double> result(slices.size(), 0.0);
  for (size_t p = 0; p < pieces.size(); ++p) result[pieces[p].slice] += partial[p];
  return result;
}

#define TXL_INSTANTIATE(T)                                          \
  template double sum<T>(const T*, int64_t);                        \
  template double sum_squares<T>(const T*, int64_t);                \
  template std::vector<double> sum_squares_slices<T>(const T*, const std::vector<FlatSlice>&);
TXL_INSTANTIATE(float)
TXL_INSTANTIATE(double)
#undef TXL_INSTANTIATE

}  // namespace txl::cpu
