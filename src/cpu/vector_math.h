// Vectorised math on short host arrays via Eigen's SIMD kernels. Plain loops calling
// std::sqrt / std::exp are not vectorised by GCC (errno handling, no vector libm call
// without -ffast-math); these helpers are, and stay IEEE-exact for sqrt.
#pragma once
#include <cstdint>

#include "eigen_core.h"

namespace txl::cpu {

template <typename T>
using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <typename T>
using ConstArrayMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

// out[i] = sqrt(x[i]) (correctly rounded, like std::sqrt). out may equal x.
template <typename T>
inline void vector_sqrt(const T* x, int64_t n, T* out) {
  ArrayMap<T>(out, n) = ConstArrayMap<T>(x, n).sqrt();
}

// out[i] = exp(x[i] - shift). out may equal x.
template <typename T>
inline void vector_exp_shifted(const T* x, int64_t n, T shift, T* out) {
  ArrayMap<T>(out, n) = (ConstArrayMap<T>(x, n) - shift).exp();
}

}  // namespace txl::cpu
