// The traffic model on a whole (small) model: every op the model calls has a cost model,
// and the GEMM FLOPs of one decoder layer are the hand count of its products.
#include <gtest/gtest.h>

#include <algorithm>

#include "model_test_util.h"
#include "txl/core/counting_ops.h"
#include "txl/model/transformer_xl.h"

namespace txl {
namespace {

// Forward FLOPs of one decoder layer: Q new rows, K = mlen + Q keys, B streams.
double layer_flops(const ModelConfig& c, int64_t Q, int64_t K, double B) {
  const double M = static_cast<double>(c.d_model), HD = static_cast<double>(c.n_head * c.d_head);
  const double F = static_cast<double>(c.d_inner);
  // Scores the causal mask leaves (query i sees keys 0 .. i + mlen; no same_length here).
  double unmasked = 0;
  for (int64_t i = 0; i < Q; ++i) unmasked += static_cast<double>(std::min(K, i + (K - Q) + 1));
  const double q = static_cast<double>(Q), k = static_cast<double>(K);
  return 2 * q * B * M * HD        // q
         + 2 * k * B * M * 2 * HD  // k, v (memory rows included)
         + 2 * k * M * HD          // r_net over the K positions
         + 3 * 2 * B * unmasked * HD  // AC, BD, attention x values: the fused kernel skips masked scores
         + 2 * q * B * HD * M      // o_net
         + 2 * 2 * q * B * M * F;  // position-wise feed-forward
}

TEST(TrafficModel, DecoderLayerFlopsAndEveryOpModelled) {
  ModelConfig cfg = test::tiny_config();
  CountingOps<float> ops(make_cpu_ops<float>(), PlanPrecision::kBf16);
  TransformerXL<float> model(cfg, ops);
  ParamStore<float>& store = model.params();
  for (int id = 0; id < store.size(); ++id) {
    const std::string& name = store.info(id).name;
    const std::string region = name.rfind("layers.", 0) == 0     ? name.substr(0, name.find('.', 7))
                               : name.rfind("crit.", 0) == 0     ? "loss head"
                               : name.rfind("word_emb.", 0) == 0 ? "embedding"
                                                                 : "";
    if (!region.empty()) ops.add_region(store.param(id).data(), store.param(id).bytes(), region);
  }
  const int64_t Q = cfg.tgt_len, B = 3;
  const std::vector<int32_t> data(static_cast<size_t>(Q * B), 1), target(static_cast<size_t>(Q * B), 2);
  Memory<float> mem;
  StepContext ctx;
  ctx.train = true;
  ctx.batch_global = B;
  Tensor<float> dnll = ops.empty({Q, B});
  Tensor<double> loss_sum({1}, ops.allocator());
  for (int step = 0; step < 2; ++step) {  // the second step attends over mem_len memory rows
    ops.reset_counts();
    ops.set_phase("forward");
    const int64_t K = Q + mem.mlen;
    const Tensor<float>& nll = model.forward(data.data(), target.data(), Q, B, mem, ctx);
    ops.sum_to_device(nll.data(), nll.numel(), loss_sum.data());  // as the trainer sums it
    ASSERT_FALSE(cfg.same_length);
    EXPECT_DOUBLE_EQ(ops.by_phase_region().at({"forward", "layers.0"}).flops,
                     layer_flops(cfg, Q, K, static_cast<double>(B)));
    ops.set_phase("backward");
    model.backward(dnll);
  }
  EXPECT_EQ(mem.mlen, cfg.mem_len);
  // bf16: every GEMM packs its two operands first. Per layer and step the fused attention
  // is one forward and five backward launches (row dots, d_q, d_k|d_v, d_r, the bias
  // gradients), and it reads and writes the projections' rows: no head split or merge.
  const auto& by_op = ops.by_op();
  EXPECT_EQ(by_op.at("rel_attention_fwd").launches, cfg.n_layer);  // counts of the second step
  EXPECT_EQ(by_op.at("rel_attention_bwd").launches, 5 * cfg.n_layer);
  EXPECT_EQ(by_op.count("split_heads"), 0u);
  EXPECT_EQ(by_op.count("merge_heads"), 0u);
  EXPECT_EQ(by_op.count("head_bias_grad"), 0u);
  EXPECT_EQ(by_op.count("attn_softmax_fwd"), 0u);
  EXPECT_EQ(by_op.count("gemm_batched"), 0u);  // the attention products are inside the fused op
  EXPECT_EQ(by_op.at("pack_half").launches, 2 * by_op.at("gemm").launches);
  EXPECT_TRUE(ops.unmodelled().empty()) << ops.unmodelled().front();
  EXPECT_EQ(ops.total().host_syncs, 0);  // the loss is summed on the device: no host round trip
  EXPECT_EQ(by_op.at("sum_to_device").launches, 2);
}

// The fused relative attention priced by hand, operands in the projections' rows with
// rows wider than the heads (the bytes are the head columns touched, not the rows):
// n = H*B = 6 score blocks, Q = 5, K = 7, D = 4, HD = 8, 1 query block of 16.
//  forward: reads q once (u, w added in the loads: 2 HD), k, v (n K D each), R (H K D);
//    writes out (n Q D) and lse (n Q).
//  backward: delta reads d_out, out (2 n Q D), writes n Q; three recomputing kernels each
//    read q, d_out (2 n Q D), k, v (2 n K D), R, lse and delta (2 n Q) and u, w; d_q
//    writes n Q D and the float32 block column sums (2 n D), d_k|d_v 2 n K D, d_r H K D;
//    the bias kernel reads the sums and d_u, d_w and writes d_u, d_w.
TEST(TrafficModel, FusedAttentionReadsTheProjectionRows) {
  CountingOps<float> ops(make_cpu_ops<float>(), PlanPrecision::kFp32);
  RelAttentionArgs a;
  a.heads = 2;
  a.batch = 3;
  a.qlen = 5;
  a.klen = 7;
  a.d_head = 4;
  a.mask.mlen = 2;
  a.ld = RelAttentionLayout{9, 17, 17, 10, 11};
  Tensor<float> q = ops.empty({15, 9}), kv = ops.empty({21, 17}), r = ops.empty({7, 10}), out = ops.empty({15, 11});
  Tensor<float> lse = ops.empty({6, 5}), u = ops.empty({8}), w = ops.empty({8}), d_out = ops.empty({15, 11});
  Tensor<float> d_q = ops.empty({15, 9}), d_kv = ops.empty({21, 17}), d_r = ops.empty({7, 10});
  Tensor<float> d_u = ops.empty({8}), d_w = ops.empty({8});
  ops.rel_attention_fwd(a, q.data(), u.data(), w.data(), kv.data(), kv.data() + 8, r.data(), out.data(), lse.data());
  ops.rel_attention_bwd(a, q.data(), u.data(), w.data(), kv.data(), kv.data() + 8, r.data(), out.data(), lse.data(),
                        d_out.data(), d_q.data(), d_u.data(), d_w.data(), d_kv.data(), d_kv.data() + 8, d_r.data());
  const double nQD = 6 * 5 * 4, nKD = 6 * 7 * 4, HKD = 2 * 7 * 4, nQ = 6 * 5, HD = 8, sums = 2 * 6 * 4;
  const TrafficCount f = ops.by_op().at("rel_attention_fwd");
  EXPECT_EQ(f.launches, 1);
  EXPECT_EQ(f.bytes_read, 4 * (nQD + 2 * nKD + HKD + 2 * HD));
  EXPECT_EQ(f.bytes_written, 4 * (nQD + nQ));
  const TrafficCount b = ops.by_op().at("rel_attention_bwd");
  EXPECT_EQ(b.launches, 5);
  const double inputs = 4 * (2 * nQD + 2 * nKD + HKD + 2 * nQ + 2 * HD);
  EXPECT_EQ(b.bytes_read, 4 * 2 * nQD + 3 * inputs + 4 * sums + 4 * 2 * 2 * HD);
  EXPECT_EQ(b.bytes_written, 4 * nQ + 4 * (nQD + sums) + 4 * 2 * nKD + 4 * HKD + 4 * 2 * HD);
}

// Each block's residual tail (post-LN: dropout, W2's bias, residual add, LayerNorm) is one
// fused op forward and one backward, with the bytes of src/cuda/layernorm.cu. Hand count
// for N = Q*B rows of width M, per layer:
//  forward, attention (no bias): reads x, residual (2NM) + gamma, beta (2M); writes sum, y
//    (2NM) + mean, rstd (2N); the feed-forward reads W2's bias (M) on top.
//  backward: the row kernel reads dy, sum (2NM), gamma (M), mean, rstd (2N) and writes
//    d_sum, d_x (2NM); then one column sum: N = 15 rows fit one chunk and M = 8 columns one
//    block, so the float64 partials are 8*K*M bytes. Attention K = 2 (dgamma, dbeta; its
//    terms read dy and sum), feed-forward K = 3 (+ dbias; d_x read too). The partial pass
//    reads 4*K*NM and writes the partials, the final pass reads partials + 4*K*M outputs
//    and writes the outputs.
TEST(TrafficModel, ResidualTailsAreOneFusedOpEach) {
  ModelConfig cfg = test::tiny_config();
  cfg.dropout = 0.1;
  CountingOps<float> ops(make_cpu_ops<float>(), PlanPrecision::kBf16);
  TransformerXL<float> model(cfg, ops);
  const int64_t Q = cfg.tgt_len, B = 3;
  const std::vector<int32_t> data(static_cast<size_t>(Q * B), 1), target(static_cast<size_t>(Q * B), 2);
  Memory<float> mem;
  StepContext ctx;
  ctx.train = true;
  ctx.batch_global = B;
  Tensor<float> dnll = ops.empty({Q, B});
  model.forward(data.data(), target.data(), Q, B, mem, ctx);
  model.backward(dnll);
  const auto& by_op = ops.by_op();
  const double L = static_cast<double>(cfg.n_layer), N = static_cast<double>(Q * B);
  const double M = static_cast<double>(cfg.d_model), NM = N * M;
  ASSERT_EQ(cfg.n_layer, 2);
  ASSERT_EQ(N, 15.0);
  const TrafficCount f = by_op.at("dropout_residual_layernorm_fwd");
  EXPECT_EQ(f.calls, 2 * cfg.n_layer);
  EXPECT_EQ(f.launches, 2 * cfg.n_layer);
  EXPECT_EQ(f.bytes_read, L * 4 * ((2 * NM + 2 * M) + (2 * NM + 3 * M)));
  EXPECT_EQ(f.bytes_written, L * 2 * 4 * (2 * NM + 2 * N));
  const TrafficCount b = by_op.at("dropout_residual_layernorm_bwd");
  EXPECT_EQ(b.calls, 2 * cfg.n_layer);
  EXPECT_EQ(b.launches, 2 * cfg.n_layer * 3);
  const double row_read = 4 * (2 * NM + M + 2 * N), row_written = 4 * 2 * NM;
  auto col_read = [&](double K) { return 4 * K * NM + 8 * K * M + 4 * K * M; };
  auto col_written = [&](double K) { return 8 * K * M + 4 * K * M; };
  EXPECT_EQ(b.bytes_read, L * (2 * row_read + col_read(2) + col_read(3)));
  EXPECT_EQ(b.bytes_written, L * (2 * row_written + col_written(2) + col_written(3)));
  // Nothing of the unfused tail is left (attn_type 0 adds no position rows either).
  EXPECT_EQ(by_op.count("add"), 0u);
  EXPECT_EQ(by_op.count("layernorm_fwd"), 0u);
  EXPECT_EQ(by_op.count("layernorm_bwd"), 0u);
}

}  // namespace
}  // namespace txl
