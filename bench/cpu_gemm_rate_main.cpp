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

#include "gemm_rate.h"
#include "txl/core/ops.h"

namespace {

using txl::bench::GemmRate;
using txl::bench::GemmShape;

// "NT 30x160000x512": transposes of A and B, then m x n x k (the profile's notation,
// bench/op_profile.h).
GemmShape parse_shape(const std::string& text) {
  GemmShape s{text, 0, 0, 0, txl::Trans::kNo, txl::Trans::kNo};
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
    float beta = 0.0f;
    app.add_option("--beta", beta, "C = A·B + beta·C (1: C is read too, as for an accumulated gradient)");
    std::vector<std::string> extra;
    app.add_option("--shape", extra,
                   "measure these shapes instead of the default ones, e.g. 'NT 30x160000x512' (transposes, m x n x k)");
    CLI11_PARSE(app, argc, argv);
    std::vector<GemmShape> shapes = {txl::bench::kSquareShape};
    shapes.insert(shapes.end(), std::begin(txl::bench::kLayerShapes), std::end(txl::bench::kLayerShapes));
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
    for (const GemmShape& s : shapes)
      for (int threads : thread_counts) {
        omp_set_num_threads(threads);
        const GemmRate r = txl::bench::measure(*ops, s, samples, min_sample_ms * 1e-3, beta);
        std::printf("%-40s %7d %10.1f %10.1f %10.1f %14.1f\n", s.what.c_str(), threads, r.median, r.low, r.high,
                    r.per_cpu_second);
      }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
