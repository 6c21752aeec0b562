// Shared pieces of the GPU tests: a fixture that holds the CPU reference backend and the
// backend under test, random data, device/host transfers and the relative-error check.
//
// Without a GPU every test that needs one reports "skipped: no GPU". Setting
// TXL_GPU_TESTS_ON_CPU=1 runs the comparison tests with a second CPU backend in place of
// the CUDA one: the results must then agree exactly, which checks the tests themselves
// (indexing, poisoning, tolerances) on a machine without a GPU. CUDA-only tests (arena
// statistics of the device, graphs, NCCL) still skip in that mode; the precision tests
// then run against a CPU backend that rounds GEMM operands (emulated_precision_ops.h).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "emulated_precision_ops.h"
#include "txl/core/ops.h"
#include "txl/cuda/cuda_ops.h"

namespace txl::gpu_test {

inline bool cpu_stand_in() {
  const char* v = std::getenv("TXL_GPU_TESTS_ON_CPU");
  return v != nullptr && std::string(v) == "1";
}

inline constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ||got - want|| / ||want|| over all elements (absolute norm when want is all zero);
// +inf when a size differs or any value is NaN/inf where the other is not equal.
template <typename T>
double rel_error(const std::vector<T>& got, const std::vector<T>& want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    if (!std::isfinite(g) || !std::isfinite(w)) {
      if (std::isnan(g) && std::isnan(w)) continue;  // both untouched NaN (padding) agree
      if (g == w) continue;
      return std::numeric_limits<double>::infinity();
    }
    num += (g - w) * (g - w);
    den += w * w;
  }
  return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}

class GpuTest : public ::testing::Test {
 protected:
  // Strict float32 GEMMs (tensor cores off): every op must match the CPU to 1e-5.
  static constexpr double kTol = 1e-5;

  void SetUp() override {
    cpu_ = make_cpu_ops<float>();
    if (cpu_stand_in()) {
      dut_ = make_cpu_ops<float>();
      return;
    }
    if (cuda_device_count() == 0) GTEST_SKIP() << "skipped: no GPU";
    CudaOptions options;
    options.precision = GemmPrecision::kFp32;
    dut_ = make_cuda_ops(options);
  }

  // Tests that need the CUDA backend itself (not only its results).
  bool require_cuda() {
    if (cpu_stand_in() || cuda_device_count() == 0) return false;
    return true;
  }

  // A second backend under test with GEMMs in precision `p` (in the CPU stand-in mode: a
  // CPU backend that rounds GEMM operands like the tensor cores).
  std::unique_ptr<Ops<float>> make_dut(GemmPrecision p) {
    if (cpu_stand_in()) {
      if (p == GemmPrecision::kFp32) return make_cpu_ops<float>();
      return std::make_unique<EmulatedPrecisionOps>(p);
    }
    CudaOptions options;
    options.precision = p;
    return make_cuda_ops(options);
  }

  Ops<float>& cpu() { return *cpu_; }
  Ops<float>& dut() { return *dut_; }  // device under test

  std::vector<float> randn(int64_t n, float scale = 1.0f) {
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = dist(rng_);
    return v;
  }
  std::vector<float> uniform(int64_t n, float lo, float hi) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = dist(rng_);
    return v;
  }
  std::vector<int32_t> randint(int64_t n, int32_t lo, int32_t hi) {  // [lo, hi)
    std::uniform_int_distribution<int32_t> dist(lo, hi - 1);
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (int32_t& x : v) x = dist(rng_);
    return v;
  }
  std::mt19937& rng() { return rng_; }

  template <typename T>
  static Tensor<T> on(Ops<float>& ops, const std::vector<T>& host) {
    Tensor<T> t(Shape{static_cast<int64_t>(host.size())}, ops.allocator());
    ops.upload(t.data(), host.data(), host.size() * sizeof(T));
    return t;
  }
  template <typename T>
  static std::vector<T> read(Ops<float>& ops, const Tensor<T>& t) {
    std::vector<T> host(static_cast<size_t>(t.numel()));
    ops.download(host.data(), t.data(), host.size() * sizeof(T));
    return host;
  }

  // The same host data on both backends.
  template <typename T>
  struct Pair {
    Tensor<T> c, d;  // cpu, device under test
  };
  template <typename T>
  Pair<T> both(const std::vector<T>& host) {
    return Pair<T>{on(cpu(), host), on(dut(), host)};
  }
  // An output buffer of n floats: NaN on both backends, so elements an op should write
  // but does not are caught.
  Pair<float> poisoned(int64_t n) { return both(std::vector<float>(static_cast<size_t>(n), kNaN)); }

  // Expects the two backends' copies of `p` to agree within `tol`.
  void expect_close(const Pair<float>& p, const std::string& what, double tol = kTol) {
    const std::vector<float> want = read(cpu(), p.c), got = read(dut(), p.d);
    EXPECT_LE(rel_error(got, want), tol) << what << " (" << dut().name() << " vs " << cpu().name() << ", "
                                         << want.size() << " elements)";
  }
  // Bit-for-bit equality.
  void expect_identical(const Pair<float>& p, const std::string& what) {
    const std::vector<float> want = read(cpu(), p.c), got = read(dut(), p.d);
    ASSERT_EQ(got.size(), want.size()) << what;
    int64_t mismatches = 0, first = -1;
    for (size_t i = 0; i < got.size(); ++i) {
      const bool same = (std::isnan(got[i]) && std::isnan(want[i])) || got[i] == want[i];
      if (!same) {
        if (first < 0) first = static_cast<int64_t>(i);
        ++mismatches;
      }
    }
    EXPECT_EQ(mismatches, 0) << what << ": first mismatch at " << first;
  }

 private:
  std::unique_ptr<Ops<float>> cpu_, dut_;
  std::mt19937 rng_{20240611u};
};

}  // namespace txl::gpu_test
