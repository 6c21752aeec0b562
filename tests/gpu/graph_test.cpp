// CUDA graph capture of a step: replays match eager runs, see new inputs uploaded into
// the same buffers, allocate nothing, and a step that synchronises is refused cleanly;
// the model's graphed evaluation (EvalStep, `txl_eval --type graph`) equals the CPU's.
#include "gpu_test_util.h"
#include "txl/core/recording_ops.h"
#include "txl/cuda/cuda_graph.h"
#include "txl/model/eval_step.h"

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

TEST_F(GpuGraph, GraphedEvaluationMatchesTheCpu) {
  // In the CPU stand-in mode the recorded-op twin (RecordedStepGraph) plays the CUDA graph.
  std::unique_ptr<RecordingOps<float>> twin;
  if (gpu_test::cpu_stand_in()) twin = std::make_unique<RecordingOps<float>>(make_cpu_ops<float>());
  Ops<float>& ops = twin ? *twin : dut();
  CudaBackend* backend = as_cuda_backend(ops);
  std::unique_ptr<StepGraph> graph;
  if (backend) graph = std::make_unique<CudaGraph>(ops);
  else graph = make_recorded_step_graph(ops);
  ASSERT_NE(graph, nullptr);
  ModelConfig cfg;
  cfg.n_token = 300;
  cfg.n_layer = 3;
  cfg.n_head = 4;
  cfg.d_head = 8;
  cfg.d_model = 32;
  cfg.d_inner = 64;
  cfg.div_val = 2;
  cfg.cutoffs = {50, 150};
  cfg.tgt_len = 8;
  cfg.mem_len = 16;
  cfg.same_length = true;
  cfg.clamp_len = 12;
  cfg.dropout = 0.0;
  cfg.dropatt = 0.0;
  cfg.init.init_std = 0.1;
  TransformerXL<float> ref(cfg, cpu()), dev(cfg, ops);
  ref.init_params(5);
  const auto params = read(cpu(), ref.params().flat_params());
  ops.upload(dev.params().flat_params().data(), params.data(), params.size() * sizeof(float));
  EvalStep<float> cpu_step(ref, nullptr), gpu_step(dev, std::move(graph));

  const int64_t batch = 3;
  Memory<float> mem_cpu, mem_gpu;
  for (int step = 0; step < 9; ++step) {
    const int64_t qlen = step == 6 ? 5 : 8;  // one shorter batch in the middle
    const auto data = randint(qlen * batch, 0, 300), target = randint(qlen * batch, 0, 300);
    StepContext ctx;
    const auto c = read(cpu(), cpu_step.forward(data.data(), target.data(), qlen, batch, mem_cpu, ctx));
    const cuda::ArenaStats before = backend ? backend->arena().stats() : cuda::ArenaStats{};
    const auto g = read(ops, gpu_step.forward(data.data(), target.data(), qlen, batch, mem_gpu, ctx));
    EXPECT_LE(rel_error(g, c), kTol) << "step " << step;
    for (size_t l = 0; l < mem_cpu.layers.size(); ++l)
      EXPECT_LE(rel_error(read(ops, mem_gpu.layers[l]), read(cpu(), mem_cpu.layers[l])), kTol)
          << "memory of layer " << l << ", step " << step;
    if (backend && step == 5) {  // a replayed step: no cudaMalloc
      EXPECT_EQ(backend->arena().stats().raw_reservations, before.raw_reservations);
    }
  }
  // Memory 0 -> 8 -> 16 rows, steady from step 2: recorded at step 3 (replays 3, 4, 5),
  // eager at 6 (short) and 7, recorded again at 8.
  EXPECT_EQ(gpu_step.captures(), 2);
  EXPECT_EQ(gpu_step.replays(), 4);
}

TEST(CudaGraphApi, RejectsNonCudaBackend) {
  auto cpu = make_cpu_ops<float>();
  EXPECT_THROW(CudaGraph{*cpu}, Error);
}

}  // namespace
}  // namespace txl
