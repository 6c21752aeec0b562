// GEMM throughput of a backend on given shapes, shared by cpu_gemm_rate and by the
// step benches (cpu_fwdbwd, cpu_eval), which report their step as a fraction of the
// machine's GEMM rate measured in the same run (issue 18's yardstick): the median rate of
// the Transformer-XL base layer shapes, on the threads the step used.
#pragma once
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "txl/core/ops.h"

namespace txl::bench {

struct GemmShape {
  std::string what;
  int64_t m, n, k;
  Trans ta, tb;
};

// The Transformer-XL base layer shapes (tgt_len 192).
inline const GemmShape kLayerShapes[] = {
    {"qkv  x.Wt (192x512 . 512x1536)", 192, 1536, 512, Trans::kNo, Trans::kYes},
    {"ff1  x.Wt (192x512 . 512x2048)", 192, 2048, 512, Trans::kNo, Trans::kYes},
    {"ff1  dW = dyt.x (2048x192 . 192x512)", 2048, 512, 192, Trans::kYes, Trans::kNo},
};
inline const GemmShape kSquareShape = {"square 1024^3", 1024, 1024, 1024, Trans::kNo, Trans::kNo};

struct GemmRate {
  double median, low, high;  // wall clock
  double per_cpu_second;     // median of flops / process CPU time
};

inline double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// beta 1 also reads C (an accumulated gradient), beta 0 only writes it.
inline GemmRate measure(Ops<float>& ops, const GemmShape& s, int samples, double min_sample_s, float beta = 0.0f) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> a(static_cast<size_t>(s.m * s.k)), b(static_cast<size_t>(s.k * s.n)),
      c(static_cast<size_t>(s.m * s.n));
  for (float& x : a) x = dist(rng);
  for (float& x : b) x = dist(rng);
  const int64_t lda = s.ta == Trans::kNo ? s.k : s.m;
  const int64_t ldb = s.tb == Trans::kNo ? s.n : s.k;
  auto call = [&] { ops.gemm(s.ta, s.tb, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, beta, c.data(), s.n); };
  using Clock = std::chrono::steady_clock;
  // Warm-up, and the number of calls that fills one sample.
  call();
  const auto t0 = Clock::now();
  call();
  const double one = std::chrono::duration<double>(Clock::now() - t0).count();
  const int calls = std::max(1, static_cast<int>(min_sample_s / std::max(one, 1e-9)));
  const double flops = 2.0 * static_cast<double>(s.m) * static_cast<double>(s.n) * static_cast<double>(s.k);
  std::vector<double> rates, cpu_rates;
  for (int i = 0; i < samples; ++i) {
    const double cpu_start = process_cpu_seconds();
    const auto start = Clock::now();
    for (int j = 0; j < calls; ++j) call();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu_seconds = process_cpu_seconds() - cpu_start;
    rates.push_back(flops * calls / seconds * 1e-9);
    cpu_rates.push_back(flops * calls / std::max(cpu_seconds, 1e-9) * 1e-9);
  }
  std::sort(rates.begin(), rates.end());
  std::sort(cpu_rates.begin(), cpu_rates.end());
  return {rates[rates.size() / 2], rates.front(), rates.back(), cpu_rates[cpu_rates.size() / 2]};
}

// The yardstick: the median over kLayerShapes of each shape's median rate.
inline double layer_gemm_rate(Ops<float>& ops, int samples = 5, double min_sample_s = 0.1) {
  std::vector<double> rates;
  for (const GemmShape& s : kLayerShapes) rates.push_back(measure(ops, s, samples, min_sample_s).median);
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

// The step benches' last line: this machine's GEMM rate measured now (a fresh CPU
// backend, the step's thread count) and the step's two rates as fractions of it.
inline void print_fraction_of_gemm_rate(double model_gflops, double all_gemm_gflops) {
  auto ops = make_cpu_ops<float>();
  const double rate = layer_gemm_rate(*ops);
  std::printf("GEMM rate of this machine now (median of the layer shapes, %d threads): %.1f GFLOP/s; the step "
              "reaches %.1f %% of it by model FLOPs, %.1f %% with all GEMM work\n",
              omp_get_max_threads(), rate, 100.0 * model_gflops / rate, 100.0 * all_gemm_gflops / rate);
}

}  // namespace txl::bench
