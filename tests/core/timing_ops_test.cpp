// TimingOps: per-(phase, op) call counts, GEMM FLOPs and times of a wrapped backend, with
// results identical to the unwrapped backend.
#include "txl/core/timing_ops.h"

#include <gtest/gtest.h>

#include <vector>

namespace txl {
namespace {

std::vector<float> iota(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
  return v;
}

TEST(TimingOps, CountsCallsAndGemmFlopsPerPhaseAndKeepsTheResults) {
  TimingOps<float> ops(make_cpu_ops<float>());
  auto plain = make_cpu_ops<float>();
  const int64_t m = 6, n = 5, k = 4;
  const std::vector<float> a = iota(m * k), b = iota(k * n);
  std::vector<float> c_timed(m * n), c_plain(m * n);
  for (Ops<float>* o : {static_cast<Ops<float>*>(&ops), plain.get()}) {
    Tensor<float> ta = o->empty({m, k}), tb = o->empty({k, n}), tc = o->empty({m, n});
    o->upload(ta.data(), a.data(), a.size() * sizeof(float));
    o->upload(tb.data(), b.data(), b.size() * sizeof(float));
    if (o == &ops) ops.set_phase("forward");
    o->gemm(Trans::kNo, Trans::kNo, m, n, k, 1.0f, ta.data(), k, tb.data(), n, 0.0f, tc.data(), n);
    o->gemm_strided_batched(Trans::kNo, Trans::kNo, 3, n, k, 1.0f, ta.data(), k, 3 * k, tb.data(), n, 0, 1.0f,
                            tc.data(), n, 3 * n, 2);
    if (o == &ops) ops.set_phase("backward");
    o->add(m * n, tc.data(), tc.data(), tc.data());
    o->download(o == &ops ? c_timed.data() : c_plain.data(), tc.data(), c_plain.size() * sizeof(float));
  }
  EXPECT_EQ(c_timed, c_plain);

  const auto& t = ops.by_phase_op();
  EXPECT_EQ(t.at({"step", "upload"}).calls, 2);
  EXPECT_EQ(t.at({"forward", "gemm"}).calls, 1);
  EXPECT_EQ(t.at({"forward", "gemm"}).flops, 2.0 * m * n * k);
  EXPECT_EQ(t.at({"forward", "gemm_strided_batched"}).flops, 2.0 * 3 * n * k * 2);
  EXPECT_EQ(t.at({"backward", "add"}).calls, 1);
  EXPECT_EQ(t.at({"backward", "add"}).flops, 0.0);
  EXPECT_EQ(t.at({"backward", "download"}).calls, 1);
  EXPECT_EQ(t.count({"forward", "add"}), 0u);

  const auto total = ops.by_op();
  EXPECT_EQ(total.at("upload").calls, 2);
  double sum = 0;
  for (const auto& kv : t) {
    EXPECT_GE(kv.second.seconds, 0.0);
    sum += kv.second.seconds;
  }
  EXPECT_DOUBLE_EQ(ops.total_seconds(), sum);
  ops.reset();
  EXPECT_TRUE(ops.by_phase_op().empty());
}

}  // namespace
}  // namespace txl
