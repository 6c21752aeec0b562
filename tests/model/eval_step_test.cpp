// EvalStep: evaluation with the decoder layers replayed from a recorded step graph gives
// exactly the eager results (loss and memory) through memory warm-up, steady state, a
// shorter batch and a new stream of batches, and replays as soon as the geometry repeats;
// for every attn_type (types 2 and 3 add positions to the layer inputs in place).
#include <gtest/gtest.h>

#include <string>

#include "model_test_util.h"
#include "txl/core/recording_ops.h"
#include "txl/model/eval_step.h"

namespace txl {
namespace {

ModelConfig graph_test_config() {
  ModelConfig c = test::tiny_config();
  c.n_token = 40;
  c.cutoffs = {10, 25};  // the loss head partitions tokens by cluster on the host
  c.div_val = 2;
  c.n_layer = 3;
  c.tgt_len = 3;
  c.mem_len = 5;
  c.same_length = true;
  c.clamp_len = 4;
  return c;
}

class EvalStepAttnType : public ::testing::TestWithParam<int64_t> {};

TEST_P(EvalStepAttnType, GraphReplayEqualsEagerBitForBit) {
  ModelConfig cfg = graph_test_config();
  cfg.attn_type = GetParam();
  auto plain = make_cpu_ops<double>();
  RecordingOps<double> recording(make_cpu_ops<double>());
  TransformerXL<double> eager_model(cfg, *plain), graph_model(cfg, recording);
  test::randomize_params(eager_model, 11);
  test::randomize_params(graph_model, 11);
  EvalStep<double> eager(eager_model, nullptr);
  EvalStep<double> graphed(graph_model, make_recorded_step_graph<double>(recording));
  ASSERT_TRUE(graphed.graphed());

  const int64_t batch = 2;
  // Two streams of batches (a new memory each): qlen 3 until the memory is full and
  // steady, a shorter batch, then qlen 3 again.
  const std::vector<std::vector<int64_t>> streams = {{3, 3, 3, 3, 3, 3, 2, 3, 3, 3}, {3, 3, 3, 3}};
  int64_t step = 0;
  for (const auto& lengths : streams) {
    Memory<double> mem_eager, mem_graph;
    for (int64_t qlen : lengths) {
      const auto data = test::random_tokens(cfg, qlen * batch, 100 + step);
      const auto target = test::random_tokens(cfg, qlen * batch, 200 + step);
      StepContext ctx;
      const auto nll_e = test::host_of(*plain, eager.forward(data.data(), target.data(), qlen, batch, mem_eager, ctx));
      const auto nll_g =
          test::host_of<double>(recording, graphed.forward(data.data(), target.data(), qlen, batch, mem_graph, ctx));
      EXPECT_EQ(nll_g, nll_e) << "step " << step;
      ASSERT_EQ(mem_graph.mlen, mem_eager.mlen);
      for (size_t l = 0; l < mem_eager.layers.size(); ++l)
        EXPECT_EQ(test::host_of<double>(recording, mem_graph.layers[l]), test::host_of(*plain, mem_eager.layers[l]))
            << "memory of layer " << l << ", step " << step;
      ++step;
    }
  }
  // Memory 0 -> 3 -> 5 rows, then steady: stream 1 records at its 4th batch and replays
  // batches 4..6; the short batch and the one after it run eagerly, then a new recording
  // (batch 10 replays it). Stream 2 (new memory buffers) records at its 4th batch.
  EXPECT_EQ(graphed.captures(), 3);
  EXPECT_EQ(graphed.replays(), 3 + 2 + 1);
  EXPECT_EQ(eager.replays(), 0);
  EXPECT_GT(graphed.graph_nodes(), static_cast<size_t>(cfg.n_layer) * 10u);
}

INSTANTIATE_TEST_SUITE_P(EvalStep, EvalStepAttnType, ::testing::Values(0, 1, 2, 3),
                         [](const ::testing::TestParamInfo<int64_t>& info) {
                           return "AttnType" + std::to_string(info.param);
                         });

TEST(EvalStep, TrainingStepsAreNotReplayed) {
  const ModelConfig cfg = graph_test_config();
  RecordingOps<double> recording(make_cpu_ops<double>());
  TransformerXL<double> model(cfg, recording);
  test::randomize_params(model, 3);
  EvalStep<double> graphed(model, make_recorded_step_graph<double>(recording));
  Memory<double> mem;
  const auto tokens = test::random_tokens(cfg, 6, 1);
  StepContext ctx;
  ctx.train = true;
  EXPECT_THROW(graphed.forward(tokens.data(), tokens.data(), 3, 2, mem, ctx), Error);
}

}  // namespace
}  // namespace txl
