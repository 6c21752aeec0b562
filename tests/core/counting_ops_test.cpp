// CountingOps (the traffic model of the CUDA backend) against hand counts of single ops,
// its shape-only allocator, and ForwardingOps' hooks.
#include "txl/core/counting_ops.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace txl {
namespace {

CountingOps<float> counting(PlanPrecision p) { return CountingOps<float>(make_cpu_ops<float>(), p); }

TEST(CountingOps, Bf16GemmPacksBothOperandsThenMultiplies) {
  auto ops = counting(PlanPrecision::kBf16);
  Tensor<float> a = ops.empty({8, 32}), b = ops.empty({16, 32}), c = ops.empty({8, 16});
  ops.gemm(Trans::kNo, Trans::kYes, 8, 16, 32, 1.0f, a.data(), 32, b.data(), 32, 0.0f, c.data(), 16);
  const TrafficCount t = ops.total();
  EXPECT_EQ(t.flops, 2.0 * 8 * 16 * 32);
  EXPECT_EQ(t.launches, 3);  // two pack_half kernels and the GEMM
  EXPECT_EQ(ops.by_op().at("pack_half").calls, 1);
  EXPECT_EQ(ops.by_op().at("pack_half").launches, 2);
  // pack A: read 4*256, write 2*256; pack B: read 4*512, write 2*512; GEMM: read the
  // 16-bit copies 2*(256+512), write C 4*128 (beta 0: C is not read).
  EXPECT_EQ(t.bytes_read, 1024.0 + 2048.0 + 1536.0);
  EXPECT_EQ(t.bytes_written, 512.0 + 1024.0 + 512.0);
  EXPECT_EQ(t.host_syncs, 0);
}

TEST(CountingOps, Fp32GemmReadsCWhenBetaIsNonZero) {
  auto ops = counting(PlanPrecision::kTf32);
  Tensor<float> a = ops.empty({8, 32}), b = ops.empty({32, 16}), c = ops.empty({8, 16});
  ops.gemm(Trans::kNo, Trans::kNo, 8, 16, 32, 1.0f, a.data(), 32, b.data(), 16, 1.0f, c.data(), 16);
  const TrafficCount t = ops.total();
  EXPECT_EQ(t.launches, 1);
  EXPECT_EQ(t.bytes_read, 4.0 * (256 + 512 + 128));
  EXPECT_EQ(t.bytes_written, 4.0 * 128);
  // Roofline on an H100: the larger of 4096 B / 3.35 TB/s and 8192 FLOP / 494.7 TFLOP/s.
  EXPECT_DOUBLE_EQ(t.roofline_s[0], std::max(4096.0 / 3.35e12, 8192.0 / 494.7e12));
}

TEST(CountingOps, BatchedGemmReadsASharedOperandOnce) {
  auto ops = counting(PlanPrecision::kFp32);
  Tensor<float> a = ops.empty({4, 6, 5}), b = ops.empty({5, 7}), c = ops.empty({4, 6, 7});
  ops.gemm_strided_batched(Trans::kNo, Trans::kNo, 6, 7, 5, 1.0f, a.data(), 5, 30, b.data(), 7, 0, 0.0f, c.data(), 7,
                           42, 4);
  const TrafficCount t = ops.total();
  EXPECT_EQ(t.flops, 2.0 * 6 * 7 * 5 * 4);
  EXPECT_EQ(t.bytes_read, 4.0 * (4 * 30 + 35));
  EXPECT_EQ(t.bytes_written, 4.0 * 4 * 42);
}

// The modelled bf16-storage design: 16-bit operands read in place (no packing), C in
// 16 bits unless it is a gradient (fp32), element-wise kernels move half the bytes.
TEST(CountingOps, ModelledBf16StorageNeedsNoPacking) {
  CountingOps<float> ops(make_cpu_ops<float>(), PlanPrecision::kBf16, PlanStorage::kBf16);
  Tensor<float> a = ops.empty({8, 32}), b = ops.empty({16, 32}), c = ops.empty({8, 16}), g = ops.empty({8, 16});
  ops.add_region(g.data(), g.bytes(), "layer 0", true);
  ops.set_phase("forward");
  ops.gemm(Trans::kNo, Trans::kYes, 8, 16, 32, 1.0f, a.data(), 32, b.data(), 32, 0.0f, c.data(), 16);
  EXPECT_EQ(ops.by_op().count("pack_half"), 0u);
  EXPECT_EQ(ops.total().bytes_read, 2.0 * (256 + 512));
  EXPECT_EQ(ops.total().bytes_written, 2.0 * 128);
  ops.reset_counts();
  ops.gemm(Trans::kNo, Trans::kYes, 8, 16, 32, 1.0f, a.data(), 32, b.data(), 32, 1.0f, g.data(), 16);
  EXPECT_EQ(ops.total().bytes_read, 2.0 * (256 + 512) + 4.0 * 128);  // accumulates into an fp32 gradient
  EXPECT_EQ(ops.total().bytes_written, 4.0 * 128);
  ops.reset_counts();
  ops.relu_fwd(128, c.data(), c.data());
  EXPECT_EQ(ops.total().bytes(), 2.0 * 128 * 2);
  ops.reset_counts();
  ops.set_phase("optimizer");  // fp32 master weights and state
  ops.scale(128, 2.0f, c.data());
  EXPECT_EQ(ops.total().bytes(), 4.0 * 128 * 2);
}

TEST(CountingOps, LayerNormForwardAndBackward) {
  auto ops = counting(PlanPrecision::kBf16);
  Tensor<float> x = ops.empty({64, 32}), y = ops.empty({64, 32}), g = ops.empty({32}), bt = ops.empty({32});
  Tensor<float> mean = ops.empty({64}), rstd = ops.empty({64}), dg = ops.empty({32}), db = ops.empty({32});
  ops.layernorm_fwd(64, 32, x.data(), g.data(), bt.data(), 1e-5f, y.data(), mean.data(), rstd.data());
  const TrafficCount f = ops.by_op().at("layernorm_fwd");
  EXPECT_EQ(f.launches, 1);
  EXPECT_EQ(f.bytes_read, 4.0 * (2048 + 64));      // x, gamma, beta
  EXPECT_EQ(f.bytes_written, 4.0 * (2048 + 128));  // y, mean, rstd
  ops.reset_counts();
  ops.layernorm_bwd(64, 32, y.data(), x.data(), g.data(), mean.data(), rstd.data(), y.data(), dg.data(), db.data());
  const TrafficCount b = ops.by_op().at("layernorm_bwd");
  // Column sums: 1 column block, 2 chunks of 32 rows -> float64 partials 8*2*2*32 = 1024 B;
  // the partial pass reads dy and x, the final pass the partials and dgamma/dbeta; then dx.
  EXPECT_EQ(b.launches, 3);
  EXPECT_EQ(b.bytes_read, 2 * 4.0 * 2048 + (1024 + 256) + 4.0 * (2 * 2048 + 32 + 128));
  EXPECT_EQ(b.bytes_written, 1024 + 256 + 4.0 * 2048);
}

TEST(CountingOps, DropoutResidualLayerNormIsOneKernelPlusColumnSums) {
  auto ops = counting(PlanPrecision::kBf16);
  Tensor<float> x = ops.empty({64, 32}), h = ops.empty({64, 32}), s = ops.empty({64, 32}), y = ops.empty({64, 32});
  Tensor<float> d_s = ops.empty({64, 32}), d_x = ops.empty({64, 32}), mean = ops.empty({64}), rstd = ops.empty({64});
  Tensor<float> g = ops.empty({32}), bt = ops.empty({32}), b = ops.empty({32});
  Tensor<float> dg = ops.empty({32}), dbt = ops.empty({32}), db = ops.empty({32});
  const BatchLayout layout{16, 4, 32, 0, 4};
  // Post-LN with a bias: x, residual, bias, gamma, beta in; sum, y, mean, rstd out.
  ops.dropout_residual_layernorm_fwd(64, 32, x.data(), b.data(), 0.1f, DropoutKey{}, layout, h.data(), g.data(),
                                     bt.data(), 1e-5f, s.data(), y.data(), mean.data(), rstd.data());
  TrafficCount f = ops.by_op().at("dropout_residual_layernorm_fwd");
  EXPECT_EQ(f.launches, 1);
  EXPECT_EQ(f.bytes_read, 4.0 * (2 * 2048 + 3 * 32));
  EXPECT_EQ(f.bytes_written, 4.0 * (2 * 2048 + 2 * 64));
  ops.reset_counts();
  // Pre-LN without a bias: x, residual in; sum out.
  ops.dropout_residual_layernorm_fwd(64, 32, x.data(), nullptr, 0.1f, DropoutKey{}, layout, h.data(), nullptr,
                                     nullptr, 1e-5f, s.data(), nullptr, nullptr, nullptr);
  f = ops.by_op().at("dropout_residual_layernorm_fwd");
  EXPECT_EQ(f.launches, 1);
  EXPECT_EQ(f.bytes_read, 4.0 * 2 * 2048);
  EXPECT_EQ(f.bytes_written, 4.0 * 2048);
  ops.reset_counts();
  // Backward with LayerNorm and bias: the row kernel reads dy, sum, gamma, mean, rstd and
  // writes d_sum, d_x; one column sum of 3 outputs over 1 column block x 2 chunks of 32
  // rows: float64 partials 8*3*2*32 = 1536 B; its partial pass reads dy, sum, d_x, the
  // final pass the partials and the three outputs.
  ops.dropout_residual_layernorm_bwd(64, 32, y.data(), s.data(), g.data(), mean.data(), rstd.data(), 0.1f,
                                     DropoutKey{}, layout, d_s.data(), d_x.data(), dg.data(), dbt.data(), db.data());
  TrafficCount bw = ops.by_op().at("dropout_residual_layernorm_bwd");
  EXPECT_EQ(bw.launches, 3);
  EXPECT_EQ(bw.bytes_read, 4.0 * (2 * 2048 + 32 + 128) + 3 * 4.0 * 2048 + (1536 + 384));
  EXPECT_EQ(bw.bytes_written, 4.0 * 2 * 2048 + 1536 + 384);
  ops.reset_counts();
  // Pre-LN with a bias, no d_sum: dy in, d_x out; a 1-output column sum of d_x (512 B partials).
  ops.dropout_residual_layernorm_bwd(64, 32, y.data(), nullptr, nullptr, nullptr, nullptr, 0.1f, DropoutKey{}, layout,
                                     nullptr, d_x.data(), nullptr, nullptr, db.data());
  bw = ops.by_op().at("dropout_residual_layernorm_bwd");
  EXPECT_EQ(bw.launches, 3);
  EXPECT_EQ(bw.bytes_read, 4.0 * 2048 + 4.0 * 2048 + (512 + 128));
  EXPECT_EQ(bw.bytes_written, 4.0 * 2048 + 512 + 128);
  ops.reset_counts();
  // Pre-LN without a bias, d_sum = dy copied: one kernel.
  ops.dropout_residual_layernorm_bwd(64, 32, y.data(), nullptr, nullptr, nullptr, nullptr, 0.1f, DropoutKey{}, layout,
                                     d_s.data(), d_x.data(), nullptr, nullptr, nullptr);
  bw = ops.by_op().at("dropout_residual_layernorm_bwd");
  EXPECT_EQ(bw.launches, 1);
  EXPECT_EQ(bw.bytes_read, 4.0 * 2048);
  EXPECT_EQ(bw.bytes_written, 4.0 * 2 * 2048);
}

TEST(CountingOps, ReductionsSynchroniseOnce) {
  auto ops = counting(PlanPrecision::kBf16);
  Tensor<float> x = ops.empty({1000});
  EXPECT_EQ(ops.sum(x.data(), 1000), 0.0);
  const TrafficCount t = ops.total();
  EXPECT_EQ(t.host_syncs, 1);
  EXPECT_EQ(t.launches, 3);  // partial sums (4 blocks), final sum, the 8-byte download
  EXPECT_EQ(t.bytes_read, 4000.0 + 32 + 8);
  const std::vector<double> per = ops.sum_squares_slices(x.data(), {{0, 10}, {10, 990}});
  EXPECT_EQ(per.size(), 2u);
  EXPECT_EQ(ops.total().host_syncs, 2);
}

// The device-result reductions run the same two kernels without the download; the step
// scalar ops are one tiny kernel each; the optimizers also write the gradient they clear.
TEST(CountingOps, DeviceReductionsAndStepScalarsDoNotSynchronise) {
  auto ops = counting(PlanPrecision::kBf16);
  Tensor<float> x = ops.empty({1000}), p = ops.empty({1000}), m = ops.empty({1000}), v = ops.empty({1000});
  Tensor<double> scalars({StepScalars::kCount}, ops.allocator());
  ops.sum_to_device(x.data(), 1000, scalars.data());
  ops.sum_squares_to_device(x.data(), 1000, scalars.data() + StepScalars::kSumSquares);
  StepLossArgs la;
  ops.step_loss_update(scalars.data(), la, scalars.data());
  ops.step_grad_factor(GradFactorArgs{}, scalars.data());
  const TrafficCount t = ops.total();
  EXPECT_EQ(t.host_syncs, 0);
  EXPECT_EQ(t.launches, 2 + 2 + 1 + 1);
  EXPECT_EQ(ops.by_op().at("sum_to_device").bytes_read, 4000.0 + 32);
  EXPECT_EQ(ops.by_op().at("sum_to_device").bytes_written, 32.0 + 8);
  EXPECT_EQ(ops.by_op().count("download"), 0u);
  ops.reset_counts();
  OptimStep s;
  s.device_grad_scale = scalars.data() + StepScalars::kGradFactor;
  ops.adam_step(p.data(), x.data(), m.data(), v.data(), 1000, s);
  EXPECT_EQ(ops.by_op().at("adam_step").bytes_read, 4 * 4000.0);
  EXPECT_EQ(ops.by_op().at("adam_step").bytes_written, 4 * 4000.0);  // p, m, v and the cleared g
  EXPECT_EQ(ops.total().host_syncs, 0);
  EXPECT_TRUE(ops.unmodelled().empty());
}

TEST(CountingOps, RegionsFollowTheParametersAnOpTouches) {
  auto ops = counting(PlanPrecision::kFp32);
  Tensor<float> w = ops.empty({4, 4}), x = ops.empty({4, 4}), y = ops.empty({4, 4});
  ops.add_region(w.data(), w.bytes(), "layer 0");
  ops.set_phase("forward");
  ops.relu_fwd(16, x.data(), y.data());  // before any region: "other"
  ops.gemm(Trans::kNo, Trans::kYes, 4, 4, 4, 1.0f, x.data(), 4, w.data(), 4, 0.0f, y.data(), 4);
  ops.relu_fwd(16, y.data(), y.data());  // touches no region: stays in layer 0
  ops.fill(w.data(), 32, 0.0f);          // runs past the region's end
  const auto& r = ops.by_phase_region();
  EXPECT_EQ(r.at({"forward", "other"}).calls, 1);
  EXPECT_EQ(r.at({"forward", "layer 0"}).calls, 2);
  EXPECT_EQ(r.at({"forward", CountingOps<float>::spanning}).calls, 1);
  EXPECT_TRUE(ops.unmodelled().empty());
}

// An op without a cost model (here: the base class's forwarding relu_fwd, as a new op
// of ops.h would reach CountingOps) is not run, counts one launch and is listed.
TEST(CountingOps, AnOpWithoutACostModelIsListedNotRun) {
  auto ops = counting(PlanPrecision::kBf16);
  Tensor<float> x = ops.empty({1000});  // a fake address: running the op would crash
  ops.ForwardingOps<float>::relu_fwd(1000, x.data(), x.data());
  ops.ForwardingOps<float>::sum(x.data(), 1000);
  EXPECT_EQ(ops.unmodelled(), (std::vector<std::string>{"relu_fwd", "sum"}));
  EXPECT_EQ(ops.total().launches, 2);
  EXPECT_EQ(ops.total().host_syncs, 1);
  EXPECT_EQ(ops.total().bytes(), 0.0);
}

TEST(ShapeOnlyAllocator, CountsRoundedLiveBytesByCategoryAtThePeak) {
  ShapeOnlyAllocator alloc;
  alloc.set_category("params");
  void* p = alloc.allocate(1000);
  alloc.set_category("acts");
  void* q = alloc.allocate(5000);
  EXPECT_NE(p, q);
  EXPECT_EQ(alloc.live(), 1024u + 5120u);
  alloc.deallocate(q, 5000);
  alloc.touch_transient(100);
  EXPECT_EQ(alloc.peak(), 1024u + 5120u);
  EXPECT_EQ(alloc.at_peak().at("acts"), 5120u);
  alloc.touch_transient(10000);  // a larger peak: params + scratch
  EXPECT_EQ(alloc.peak(), 1024u + 10240u);
  EXPECT_EQ(alloc.at_peak().at("acts"), 0u);
  EXPECT_EQ(alloc.at_peak().at("op scratch"), 10240u);
  alloc.deallocate(p, 1000);
  EXPECT_EQ(alloc.live(), 0u);
}

// A decorator that only observes: every op still runs on the inner backend.
class NamingOps final : public ForwardingOps<double> {
 public:
  NamingOps() : ForwardingOps<double>(make_cpu_ops<double>()) {}
  std::vector<std::string> seen;

 protected:
  void host_op(const char* op, const std::function<void()>& call) override {
    seen.push_back(std::string("host:") + op);
    call();
  }
  void device_op(const char* op, std::function<void()> call) override {
    seen.push_back(op);
    call();
  }
};

TEST(ForwardingOps, EveryOpReachesAHookAndTheInnerBackend) {
  NamingOps ops;
  Tensor<double> x = to_device<double>(ops, {1, -2, 3}, {3}), y = ops.empty({3});
  ops.relu_fwd(3, x.data(), y.data());
  ops.scale(3, 2.0, y.data());
  EXPECT_EQ(to_host(ops, y), (std::vector<double>{2, 0, 6}));
  EXPECT_EQ(ops.sum(y.data(), 3), 8.0);
  EXPECT_EQ(ops.seen, (std::vector<std::string>{"host:upload", "relu_fwd", "scale", "host:download", "host:sum"}));
}

}  // namespace
}  // namespace txl
