// CUDA graph capture of a step: replays match eager runs, see new inputs uploaded into
// the same buffers, allocate nothing, and a step that synchronises is refused cleanly.
#include "gpu_test_util.h"
#include "txl/cuda/cuda_graph.h"

namespace txl {
namespace {

using gpu_test::GpuTest;
using gpu_test::rel_error;

class GpuGraph : public GpuTest {};

TEST_F(GpuGraph, ReplayMatchesEagerAndSeesNewInputs) {
  if (!require_cuda()) GTEST_SKIP() << "skipped: needs the CUDA backend";
  Ops<float>& ops = dut();
  CudaBackend& backend = *as_cuda_backend(ops);
  const int64_t rows = 64, d = 96, vocab = 1000;
  auto x = on(ops, randn(rows * d)), gamma = on(ops, randn(d)), beta = on(ops, randn(d));
  auto W = on(ops, randn(vocab * d, 0.1f)), b = on(ops, randn(vocab));
  auto targets = on(ops, randint(rows, 0, static_cast<int32_t>(vocab)));
  Tensor<float> h(Shape{rows, d}, ops.allocator()), mean(Shape{rows}, ops.allocator()),
      rstd(Shape{rows}, ops.allocator()), logits(Shape{rows, vocab}, ops.allocator()), nll(Shape{rows}, ops.allocator()),
      colsum(Shape{vocab}, ops.allocator());
  auto step = [&] {  // a small evaluation step: layer norm, projection, log-softmax, pick
    ops.layernorm_fwd(rows, d, x.data(), gamma.data(), beta.data(), 1e-5f, h.data(), mean.data(), rstd.data());
    ops.gemm(Trans::kNo, Trans::kYes, rows, vocab, d, 1.0f, h.data(), d, W.data(), d, 0.0f, logits.data(), vocab);
    ops.add_bias(logits.data(), b.data(), rows, vocab);
    ops.log_softmax(logits.data(), rows, vocab, logits.data());
    ops.pick_cols(logits.data(), targets.data(), rows, vocab, false, nll.data());
    Tensor<float> tmp(Shape{rows, vocab}, ops.allocator());  // a temporary inside the step
    ops.copy(tmp.data(), logits.data(), tmp.bytes());
    ops.fill(colsum.data(), vocab, 0.0f);
    ops.bias_grad(tmp.data(), colsum.data(), rows, vocab);  // uses scratch memory
  };
  step();  // eager warm-up: every buffer exists
  const auto eager_nll1 = read(ops, nll);

  CudaGraph graph(ops);
  EXPECT_FALSE(graph.captured());
  graph.capture(step);
  EXPECT_TRUE(graph.captured());
  EXPECT_GE(graph.num_nodes(), 7u);
  EXPECT_EQ(read(ops, nll), eager_nll1);  // capturing executes nothing

  for (int round = 0; round < 3; ++round) {
    const auto x_host = randn(rows * d);
    ops.upload(x.data(), x_host.data(), x.bytes());
    const auto before = backend.arena().stats();
    graph.replay();
    ops.synchronize();
    const auto after = backend.arena().stats();
    EXPECT_EQ(after.allocations, before.allocations) << "a replay allocates nothing";
    EXPECT_EQ(after.raw_reservations, before.raw_reservations);
    const auto replay_nll = read(ops, nll), replay_colsum = read(ops, colsum);
    step();  // eager on the same input
    const auto eager_nll = read(ops, nll), eager_colsum = read(ops, colsum);
    EXPECT_LE(rel_error(replay_nll, eager_nll), 1e-6) << "round " << round;
    EXPECT_LE(rel_error(replay_colsum, eager_colsum), 1e-6) << "round " << round;
    EXPECT_GT(rel_error(replay_nll, eager_nll1), 1e-3) << "the replay did not see the new input";
  }
}

TEST_F(GpuGraph, SynchronisingStepIsRefusedAndBackendStaysUsable) {
  if (!require_cuda()) GTEST_SKIP() << "skipped: needs the CUDA backend";
  Ops<float>& ops = dut();
  auto x = on(ops, randn(1000));
  CudaGraph graph(ops);
  EXPECT_THROW(graph.capture([&] { (void)ops.sum(x.data(), 1000); }), Error);
  EXPECT_FALSE(graph.captured());
  EXPECT_THROW(graph.replay(), Error);
  ops.fill(x.data(), 1000, 3.0f);
  EXPECT_EQ(ops.sum(x.data(), 1000), 3000.0);
}

TEST(CudaGraphApi, RejectsNonCudaBackend) {
  auto cpu = make_cpu_ops<float>();
  EXPECT_THROW(CudaGraph{*cpu}, Error);
}

}  // namespace
}  // namespace txl
