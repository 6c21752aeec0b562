// The whole Transformer-XL on the CUDA backend against the CPU backend: per-token loss,
// every parameter gradient and the new memory over several steps (memory growing, so
// klen != qlen; dropout and dropatt on; every attn_type), in strict fp32 (relative 1e-5)
// and with bf16 GEMMs (1e-2); and 200 training steps of a tiny model whose loss curve
// must track the CPU's.
#include <cmath>
#include <cstdio>

#include "gpu_test_util.h"
#include "txl/model/transformer_xl.h"
#include "txl/optim/optimizer.h"

namespace txl {
namespace {

using gpu_test::GpuTest;
using gpu_test::rel_error;

// Adaptive input/softmax with div_val 2, tied weights and projections, dropout and
// dropatt, post-LN.
ModelConfig config_adaptive() {
  ModelConfig c;
  c.n_token = 211;
  c.n_layer = 2;
  c.n_head = 3;
  c.d_head = 8;
  c.d_model = 24;
  c.d_inner = 40;
  c.div_val = 2;
  c.cutoffs = {40, 120};
  c.tie_weight = true;
  c.tie_projs = {false, true, true};
  c.dropout = 0.1;
  c.dropatt = 0.1;
  c.tgt_len = 9;
  c.mem_len = 7;
  c.init.init_std = 0.1;
  c.init.proj_init_std = 0.1;
  return c;
}

// Pre-LN, same_length, clamp_len, d_embed != d_model with one projection, untied output
// layer, memory longer than the segment.
ModelConfig config_pre_ln() {
  ModelConfig c;
  c.n_token = 150;
  c.n_layer = 3;
  c.n_head = 2;
  c.d_head = 6;
  c.d_model = 16;
  c.d_inner = 30;
  c.d_embed = 10;
  c.div_val = 1;
  c.cutoffs = {60};
  c.tie_weight = false;
  c.tie_projs = {false, true};
  c.pre_lnorm = true;
  c.same_length = true;
  c.clamp_len = 5;
  c.dropout = 0.05;
  c.dropatt = 0.0;
  c.tgt_len = 8;
  c.mem_len = 12;
  c.init.init_std = 0.1;
  c.init.proj_init_std = 0.1;
  return c;
}

// Sampled softmax (sample_softmax 5 of 90 ids) over an adaptive embedding with div_val 2:
// training scores against the log-uniform candidates, evaluation with the full softmax.
ModelConfig config_sampled() {
  ModelConfig c = config_adaptive();
  c.n_token = 90;
  c.cutoffs = {30, 60};
  c.sample_softmax = 5;
  return c;
}

class GpuModel : public GpuTest {
 protected:
  std::vector<int32_t> tokens(const ModelConfig& cfg, int64_t n) { return randint(n, 0, static_cast<int32_t>(cfg.n_token)); }

  // Runs `steps` forward/backward steps on the CPU and on `dev_ops` from the same
  // parameters and data; compares nll, gradients and memory with the given tolerances.
  void compare_model(const ModelConfig& cfg, Ops<float>& dev_ops, double tol, int steps, const std::string& what,
                     bool train = true) {
    TransformerXL<float> ref(cfg, cpu());
    TransformerXL<float> dev(cfg, dev_ops);
    ref.init_params(11);
    const std::vector<float> params = read(cpu(), ref.params().flat_params());
    dev_ops.upload(dev.params().flat_params().data(), params.data(), params.size() * sizeof(float));
    const ParamStore<float>& ps = ref.params();
    Memory<float> mem_ref, mem_dev;
    const int64_t qlen = cfg.tgt_len, batch = 3, n = qlen * batch;
    for (int step = 1; step <= steps; ++step) {
      const std::string at = what + " step " + std::to_string(step);
      const auto data = tokens(cfg, n), target = tokens(cfg, n);
      StepContext ctx;
      ctx.train = train;
      ctx.seed = 5;
      ctx.step = static_cast<uint64_t>(step);
      ctx.batch_offset = 1;
      ctx.batch_global = 5;
      ref.params().zero_grad(cpu());
      dev.params().zero_grad(dev_ops);
      const auto nll_ref = to_host(cpu(), ref.forward(data.data(), target.data(), qlen, batch, mem_ref, ctx));
      const auto nll_dev = to_host(dev_ops, dev.forward(data.data(), target.data(), qlen, batch, mem_dev, ctx));
      EXPECT_LE(rel_error(nll_dev, nll_ref), tol) << at << ": per-token loss";
      double loss_ref = 0, loss_dev = 0;
      for (size_t i = 0; i < nll_ref.size(); ++i) {
        loss_ref += nll_ref[i];
        loss_dev += nll_dev[i];
      }
      EXPECT_LE(std::abs(loss_dev - loss_ref), tol * std::abs(loss_ref)) << at << ": loss";
      // Weighted loss: every token's gradient is different.
      const auto weights = uniform(n, 0.5f / static_cast<float>(n), 1.5f / static_cast<float>(n));
      const Tensor<float> dnll_ref = to_device(cpu(), weights, {qlen, batch});
      const Tensor<float> dnll_dev = to_device(dev_ops, weights, {qlen, batch});
      ref.backward(dnll_ref);
      dev.backward(dnll_dev);
      const auto g_ref = read(cpu(), ref.params().flat_grads()), g_dev = read(dev_ops, dev.params().flat_grads());
      EXPECT_LE(rel_error(g_dev, g_ref), tol) << at << ": all gradients";
      std::printf("%s: per-token loss rel. error %.2e, gradient rel. error %.2e\n", at.c_str(),
                  rel_error(nll_dev, nll_ref), rel_error(g_dev, g_ref));
      for (const ParamInfo& p : ps.infos()) {
        const auto b = g_ref.begin() + p.slice.offset, e = b + p.slice.numel;
        const auto bd = g_dev.begin() + p.slice.offset, ed = bd + p.slice.numel;
        const std::vector<float> want(b, e), got(bd, ed);
        EXPECT_LE(rel_error(got, want), 10 * tol) << at << ": gradient of " << p.name;
      }
      ASSERT_EQ(mem_dev.layers.size(), mem_ref.layers.size()) << at;
      EXPECT_EQ(mem_dev.mlen, mem_ref.mlen) << at;
      for (size_t l = 0; l < mem_ref.layers.size(); ++l)
        EXPECT_LE(rel_error(to_host(dev_ops, mem_dev.layers[l]), to_host(cpu(), mem_ref.layers[l])), tol)
            << at << ": memory of layer " << l;
    }
  }
};

TEST_F(GpuModel, Fp32LossGradientsAndMemoryMatchCpu) {
  compare_model(config_adaptive(), dut(), 1e-5, 3, "adaptive/post-LN");
  compare_model(config_pre_ln(), dut(), 1e-5, 3, "pre-LN/same_length/clamp");
}

TEST_F(GpuModel, SampledSoftmaxMatchesCpu) {
  compare_model(config_sampled(), dut(), 1e-5, 3, "sampled softmax (training)");
  compare_model(config_sampled(), dut(), 1e-5, 2, "sampled-softmax model, full softmax (evaluation)", false);
}

// attn_type 1, 2, 3 (docs/model.md) through the same kernels: learned relative tables
// (row gathers and scatter-adds with repeated rows under clamp_len), absolute sinusoids
// and learned absolute rows added to the inputs and memory in place.
TEST_F(GpuModel, Fp32EveryAttnTypeMatchesCpu) {
  for (int64_t attn_type : {1, 2, 3}) {
    const std::string name = "attn_type " + std::to_string(attn_type);
    ModelConfig post = config_adaptive();
    post.attn_type = attn_type;
    compare_model(post, dut(), 1e-5, 3, name + " adaptive/post-LN");
    ModelConfig pre = config_pre_ln();
    pre.attn_type = attn_type;
    compare_model(pre, dut(), 1e-5, 3, name + " pre-LN/same_length/clamp");
  }
}

TEST_F(GpuModel, Bf16GemmsStayWithinOnePercent) {
  auto bf16 = make_dut(GemmPrecision::kBf16);
  compare_model(config_adaptive(), *bf16, 1e-2, 2, "bf16 adaptive/post-LN");
}

// ---- training ------------------------------------------------------------------------------

// Token streams with learnable structure: Zipf-distributed unigrams, and with
// probability 0.6 the next token is a fixed function of the previous one.
std::vector<std::vector<int32_t>> synthetic_streams(int64_t vocab, int64_t batch, int64_t length, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> w(static_cast<size_t>(vocab));
  for (int64_t r = 0; r < vocab; ++r) w[static_cast<size_t>(r)] = 1.0 / std::pow(static_cast<double>(r + 1), 1.1);
  std::discrete_distribution<int32_t> zipf(w.begin(), w.end());
  std::bernoulli_distribution follow(0.6);
  std::vector<std::vector<int32_t>> streams(static_cast<size_t>(batch));
  for (auto& s : streams) {
    s.push_back(zipf(rng));
    for (int64_t t = 1; t < length; ++t)
      s.push_back(follow(rng) ? static_cast<int32_t>((s.back() * 7 + 3) % vocab) : zipf(rng));
  }
  return streams;
}

// Mean training loss of each of `steps` steps: LAMB (lr 0.01, 10 warm-up steps),
// global-norm clipping at 0.25, dropout on, memory carried between steps.
std::vector<double> train_curve(Ops<float>& ops, const ModelConfig& cfg, const std::vector<float>& init, int steps,
                                const std::vector<std::vector<int32_t>>& streams) {
  TransformerXL<float> model(cfg, ops);
  ops.upload(model.params().flat_params().data(), init.data(), init.size() * sizeof(float));
  auto optimizer = make_optimizer<float>(OptimizerSettings{"lamb", 0.0, 0.0}, model.params(), ops);
  const int64_t qlen = cfg.tgt_len, batch = static_cast<int64_t>(streams.size()), n = qlen * batch;
  Memory<float> mem;
  Tensor<float> dnll = ops.empty({qlen, batch});
  ops.fill(dnll.data(), n, 1.0f / static_cast<float>(n));
  std::vector<int32_t> data(static_cast<size_t>(n)), target(static_cast<size_t>(n));
  std::vector<double> losses;
  for (int step = 1; step <= steps; ++step) {
    for (int64_t t = 0; t < qlen; ++t)
      for (int64_t b = 0; b < batch; ++b) {
        const auto& s = streams[static_cast<size_t>(b)];
        const size_t pos = static_cast<size_t>((step - 1) * qlen + t);
        data[static_cast<size_t>(t * batch + b)] = s[pos];
        target[static_cast<size_t>(t * batch + b)] = s[pos + 1];
      }
    StepContext ctx;
    ctx.train = true;
    ctx.seed = 99;
    ctx.step = static_cast<uint64_t>(step);
    model.params().zero_grad(ops);
    const Tensor<float>& nll = model.forward(data.data(), target.data(), qlen, batch, mem, ctx);
    losses.push_back(ops.sum(nll.data(), n) / static_cast<double>(n));
    model.backward(dnll);
    const double norm = std::sqrt(ops.sum_squares(model.params().flat_grads().data(), model.params().total_numel()));
    const double clip = std::min(1.0, 0.25 / (norm + 1e-6));
    const double lr = step <= 10 ? 0.01 * step / 10.0 : 0.01;
    optimizer->step(lr, clip);
  }
  return losses;
}

TEST_F(GpuModel, TwoHundredTrainingStepsTrackTheCpuLossCurve) {
  ModelConfig cfg;
  cfg.n_token = 300;
  cfg.n_layer = 2;
  cfg.n_head = 2;
  cfg.d_head = 16;
  cfg.d_model = 32;
  cfg.d_inner = 64;
  cfg.cutoffs = {60, 150};
  cfg.div_val = 2;
  cfg.tie_projs = {false, true, true};
  cfg.dropout = 0.1;
  cfg.dropatt = 0.0;
  cfg.tgt_len = 16;
  cfg.mem_len = 16;
  const int steps = 200;
  const auto streams = synthetic_streams(cfg.n_token, 4, steps * cfg.tgt_len + 1, 3);
  std::vector<float> init;
  {
    TransformerXL<float> m(cfg, cpu());
    m.init_params(21);
    init = read(cpu(), m.params().flat_params());
  }
  const auto ref = train_curve(cpu(), cfg, init, steps, streams);
  const auto got = train_curve(dut(), cfg, init, steps, streams);
  ASSERT_EQ(got.size(), ref.size());
  double worst = 0.0;
  int worst_step = 0;
  for (int i = 0; i < steps; ++i) {
    const double d = std::abs(got[i] - ref[i]) / ref[i];
    if (i < 20) {
      EXPECT_LE(d, 1e-4) << "step " << i + 1 << ": " << got[i] << " vs " << ref[i];
    }
    if (d > worst) {
      worst = d;
      worst_step = i + 1;
    }
  }
  EXPECT_LE(worst, 1e-2) << "largest difference at step " << worst_step;
  // The model learned (the curve is worth tracking): the last 20 steps' mean loss is
  // clearly below the first 5 steps'.
  auto mean = [](const std::vector<double>& v, size_t b, size_t e) {
    double s = 0;
    for (size_t i = b; i < e; ++i) s += v[i];
    return s / static_cast<double>(e - b);
  };
  const double first = mean(ref, 0, 5), last = mean(ref, steps - 20, steps);
  std::printf("loss curve (cpu / device): first-5 mean %.4f / %.4f, last-20 mean %.4f / %.4f, max rel diff %.2e at step %d\n",
              first, mean(got, 0, 5), last, mean(got, steps - 20, steps), worst, worst_step);
  EXPECT_LT(last, first - 0.5);
}

}  // namespace
}  // namespace txl
