// Helpers for the CPU backend tests: random inputs, naive references, finite differences.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "txl/core/ops.h"

namespace txl::test {

// Uniform values in [lo, hi), never all zero, deterministic in `seed`.
template <typename T>
std::vector<T> random_vector(int64_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> v(static_cast<size_t>(n));
  for (T& x : v) x = static_cast<T>(dist(rng));
  return v;
}

inline std::vector<int32_t> random_indices(int64_t n, int32_t upper, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, upper - 1);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int32_t& x : v) x = dist(rng);
  return v;
}

template <typename T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

// |a - b| <= tol * max(1, |b|) elementwise, reporting the first few failures.
template <typename T, typename U>
void expect_close(const std::vector<T>& actual, const std::vector<U>& expected, double tol, const char* what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int failures = 0;
  for (size_t i = 0; i < actual.size() && failures < 5; ++i) {
    const double a = static_cast<double>(actual[i]), e = static_cast<double>(expected[i]);
    if (!(std::abs(a - e) <= tol * std::max(1.0, std::abs(e)))) {
      ADD_FAILURE() << what << "[" << i << "] = " << a << ", expected " << e;
      ++failures;
    }
  }
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Checks `grad` against central differences of `loss` at `x`, over the coordinates
// `coords` (all when empty): ||fd - grad|| / ||fd|| <= tol.
inline void expect_gradient(const std::function<double(const std::vector<double>&)>& loss, std::vector<double> x,
                            const std::vector<double>& grad, const char* what, double tol = 1e-6,
                            std::vector<int64_t> coords = {}) {
  ASSERT_EQ(x.size(), grad.size()) << what;
  if (coords.empty())
    for (size_t i = 0; i < x.size(); ++i) coords.push_back(static_cast<int64_t>(i));
  constexpr double h = 1e-5;
  double err_sq = 0.0, ref_sq = 0.0;
  for (int64_t c : coords) {
    const size_t i = static_cast<size_t>(c);
    const double saved = x[i];
    x[i] = saved + h;
    const double up = loss(x);
    x[i] = saved - h;
    const double down = loss(x);
    x[i] = saved;
    const double fd = (up - down) / (2 * h);
    err_sq += (fd - grad[i]) * (fd - grad[i]);
    ref_sq += fd * fd;
  }
  ASSERT_GT(ref_sq, 0.0) << what << ": gradient is identically zero; the check would be vacuous";
  EXPECT_LE(std::sqrt(err_sq / ref_sq), tol) << what;
}

}  // namespace txl::test
