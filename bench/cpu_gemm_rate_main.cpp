// cpu_gemm_rate: float GEMM throughput of the CPU backend (make_cpu_ops<float>()) on a
// square shape and the Transformer-XL base layer shapes, on one thread and on all
// threads (OMP_NUM_THREADS). Each figure is the median over samples of a timed batch of
// calls, after a warm-up. Besides the wall-clock rate it prints the rate per CPU-second
// of the process (all threads): on a machine shared with other jobs the wall-clock rate
// drops with the share of the cores we get, the per-CPU-second rate much less.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <exception>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "txl/core/ops.h"

namespace {

struct Shape {
  std::string what;
  int64_t m, n, k;
  txl::Trans ta, tb;
};

const Shape kShapes[] = {
    {"square 1024^3", 1024, 1024, 1024, txl::Trans::kNo, txl::Trans::kNo},
    {"qkv  x.Wt (192x512 . 512x1536)", 192, 1536, 512, txl::Trans::kNo, txl::Trans::kYes},
    {"ff1  x.Wt (192x512 . 512x2048)", 192, 2048, 512, txl::Trans::kNo, txl::Trans::kYes},
    {"ff1  dW = dyt.x (2048x192 . 192x512)", 2048, 512, 192, txl::Trans::kYes, txl::Trans::kNo},
};

struct Rate {
  double median, low, high;  // wall clock
  double per_cpu_second;     // median of flops / process CPU time
};

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

Rate measure(txl::Ops<float>& ops, const Shape& s, int samples, double min_sample_s) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> a(static_cast<size_t>(s.m * s.k)), b(static_cast<size_t>(s.k * s.n)),
      c(static_cast<size_t>(s.m * s.n));
  for (float& x : a) x = dist(rng);
  for (float& x : b) x = dist(rng);
  const int64_t lda = s.ta == txl::Trans::kNo ? s.k : s.m;
  const int64_t ldb = s.tb == txl::Trans::kNo ? s.n : s.k;
  auto call = [&] { ops.gemm(s.ta, s.tb, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), s.n); };
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

// "NT 30x160000x512": transposes of A and B, then m x n x k (the profile's notation,
// bench/op_profile.h).
Shape parse_shape(const std::string& text) {
  Shape s{text, 0, 0, 0, txl::Trans::kNo, txl::Trans::kNo};
  char ta = 0, tb = 0;
  long long m = 0, n = 0, k = 0;
  if (std::sscanf(text.c_str(), " %c%c %lldx%lldx%lld", &ta, &tb, &m, &n, &k) != 5 || m <= 0 || n <= 0 || k <= 0 ||
      (ta != 'N' && ta != 'T') || (tb != 'N' && tb != 'T'))
    throw std::runtime_error("--shape '" + text + "': expected e.g. 'NT 30x160000x512'");
  s.ta = ta == 'T' ? txl::Trans::kYes : txl::Trans::kNo;
  s.tb = tb == 'T' ? txl::Trans::kYes : txl::Trans::kNo;
  s.m = m;
  s.n = n;
  s.k = k;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    CLI::App app{"Float GEMM GFLOP/s of the CPU backend (1 thread and OMP_NUM_THREADS threads)"};
    int samples = 7;
    double min_sample_ms = 100.0;
    app.add_option("--samples", samples, "timed samples per figure (median reported)")->check(CLI::PositiveNumber);
    app.add_option("--min-sample-ms", min_sample_ms, "minimum duration of one sample")->check(CLI::PositiveNumber);
    std::vector<std::string> extra;
    app.add_option("--shape", extra,
                   "measure these shapes instead of the default ones, e.g. 'NT 30x160000x512' (transposes, m x n x k)");
    CLI11_PARSE(app, argc, argv);
    std::vector<Shape> shapes(std::begin(kShapes), std::end(kShapes));
    if (!extra.empty()) {
      shapes.clear();
      for (const std::string& e : extra) shapes.push_back(parse_shape(e));
    }

    auto ops = txl::make_cpu_ops<float>();
    const int all_threads = omp_get_max_threads();
    std::vector<int> thread_counts = {1};
    if (all_threads > 1) thread_counts.push_back(all_threads);
    std::printf("backend %s, threads: 1 and %d (OMP_NUM_THREADS), median of %d samples >= %.0f ms\n", ops->name(),
                all_threads, samples, min_sample_ms);
    std::printf("%-40s %7s %10s %10s %10s %14s\n", "shape (m x k . k x n)", "threads", "GFLOP/s", "min", "max",
                "GFLOP/cpu-s");
    for (const Shape& s : shapes)
      for (int threads : thread_counts) {
        omp_set_num_threads(threads);
        const Rate r = measure(*ops, s, samples, min_sample_ms * 1e-3);
        std::printf("%-40s %7d %10.1f %10.1f %10.1f %14.1f\n", s.what.c_str(), threads, r.median, r.low, r.high,
                    r.per_cpu_second);
      }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
