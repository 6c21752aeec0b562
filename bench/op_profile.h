// The per-op profile table of the CPU benches (cpu_fwdbwd --profile, cpu_eval --profile):
// TimingOps' times per op and phase, GEMM GFLOP/s, and GB/s where the traffic model
// (counting_ops.h, one step's ideal bytes per op) knows the op.
#pragma once
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "txl/core/counting_ops.h"
#include "txl/core/timing_ops.h"

namespace txl::bench {

// The GEMM shapes that take the most time, with their rate: which products run below the
// standalone rate of bench/cpu_gemm_rate.
inline void print_gemm_shapes(const TimingOps<float>& timing, int steps, size_t top = 64) {
  std::vector<std::pair<std::string, OpTime>> shapes(timing.gemm_shapes().begin(), timing.gemm_shapes().end());
  if (shapes.empty()) return;
  std::sort(shapes.begin(), shapes.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  double total = 0;
  for (const auto& s : shapes) total += s.second.seconds;
  std::printf("\nGEMM shapes by time (%zu of %zu; m x n x k, transposes of A and B; per step):\n",
              std::min(top, shapes.size()), shapes.size());
  std::printf("%-28s %7s %10s %7s %9s\n", "shape", "calls", "ms", "share", "GFLOP/s");
  for (size_t i = 0; i < shapes.size() && i < top; ++i) {
    const OpTime& t = shapes[i].second;
    std::printf("%-28s %7.0f %10.2f %6.1f%% %9.1f\n", shapes[i].first.c_str(), double(t.calls) / steps,
                t.seconds / steps * 1e3, 100.0 * t.seconds / total, t.seconds > 0 ? t.flops / t.seconds * 1e-9 : 0.0);
  }
}

// `steps`: how many steps `timing` holds (phase "untimed" is left out); `step_s`: the
// mean measured time of those steps;
// `traffic`: bytes per op of one step (may be empty).
inline void print_op_profile(const TimingOps<float>& timing, int steps, double step_s,
                             const std::map<std::string, TrafficCount>& traffic) {
  struct Row {
    std::string op;
    OpTime all;
    double fwd_s = 0, bwd_s = 0;
  };
  std::map<std::string, Row> rows;
  for (const auto& [key, t] : timing.by_phase_op()) {
    if (key.first == "untimed") continue;  // ops the bench runs outside the timed step
    Row& r = rows[key.second];
    r.op = key.second;
    r.all.calls += t.calls;
    r.all.seconds += t.seconds;
    r.all.flops += t.flops;
    (key.first == "backward" ? r.bwd_s : r.fwd_s) += t.seconds;
  }
  std::vector<Row> sorted;
  for (auto& kv : rows) sorted.push_back(kv.second);
  std::sort(sorted.begin(), sorted.end(), [](const Row& a, const Row& b) { return a.all.seconds > b.all.seconds; });
  const double per = 1.0 / steps;
  std::printf("\nper-op profile (%d steps, times per step; GB/s from the traffic model's ideal bytes):\n", steps);
  std::printf("%-22s %8s %10s %10s %10s %7s %9s %8s\n", "op", "calls", "fwd ms", "bwd ms", "total ms", "share",
              "GFLOP/s", "GB/s");
  double op_s = 0, gemm_s = 0, gemm_flops = 0;
  for (const Row& r : sorted) {
    const double s = r.all.seconds * per;
    op_s += s;
    if (r.all.flops > 0) {
      gemm_s += s;
      gemm_flops += r.all.flops * per;
    }
    char gflops[16] = "-", gbs[16] = "-";
    if (r.all.flops > 0 && s > 0) std::snprintf(gflops, sizeof gflops, "%.1f", r.all.flops * per / s * 1e-9);
    auto it = traffic.find(r.op);
    if (it != traffic.end() && s > 0 && it->second.bytes() > 0)
      std::snprintf(gbs, sizeof gbs, "%.1f", it->second.bytes() / s * 1e-9);
    std::printf("%-22s %8.0f %10.2f %10.2f %10.2f %6.1f%% %9s %8s\n", r.op.c_str(), r.all.calls * per,
                r.fwd_s * per * 1e3, r.bwd_s * per * 1e3, s * 1e3, 100.0 * s / step_s, gflops, gbs);
  }
  std::printf("ops: %.1f ms of the %.1f ms step; outside the ops (host code between them): %.1f ms (%.1f%%)\n",
              op_s * 1e3, step_s * 1e3, (step_s - op_s) * 1e3, 100.0 * (step_s - op_s) / step_s);
  if (gemm_s > 0)
    std::printf("GEMMs: %.1f ms (%.1f%% of the step) at %.1f GFLOP/s; the step runs at %.1f%% of its own GEMM rate\n",
                gemm_s * 1e3, 100.0 * gemm_s / step_s, gemm_flops / gemm_s * 1e-9, 100.0 * gemm_s / step_s);
  print_gemm_shapes(timing, steps);
}

}  // namespace txl::bench
