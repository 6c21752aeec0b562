// A model with sample_softmax > 0: training draws its candidates from (seed, step) only,
// so splitting the batch (ranks, chunks) changes nothing; evaluation's full softmax is a
// distribution over all ids; the checkpoint records sample_softmax.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "model_test_util.h"
#include "txl/model/log_uniform_sampler.h"
#include "txl/model/model_checkpoint.h"

namespace txl::test {
namespace {

ModelConfig sampled_config() {
  ModelConfig c = tiny_config();
  c.sample_softmax = 4;
  c.dropout = 0.1;
  c.dropatt = 0.1;
  return c;
}

// Columns [b0, b0 + nb) of a time-major [rows, B] array.
std::vector<int32_t> columns(const std::vector<int32_t>& a, int64_t B, int64_t b0, int64_t nb) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < a.size(); ++i)
    if (static_cast<int64_t>(i) % B >= b0 && static_cast<int64_t>(i) % B < b0 + nb) out.push_back(a[i]);
  return out;
}

TEST(SampledSoftmaxModel, CandidatesDependOnSeedAndStepOnly) {
  const ModelConfig cfg = sampled_config();
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> model(cfg, *ops);
  randomize_params(model, 3);
  const int64_t Q = cfg.tgt_len, B = 4;
  const std::vector<int32_t> data = random_tokens(cfg, Q * B, 4), target = random_tokens(cfg, Q * B, 5);
  StepContext ctx;
  ctx.train = true;
  ctx.seed = 9;
  ctx.step = 17;
  ctx.batch_global = B;
  Memory<double> mem;
  const std::vector<double> whole = to_host(*ops, model.forward(data.data(), target.data(), Q, B, mem, ctx));
  const std::vector<int32_t> drawn = LogUniformSampler(cfg.n_token, cfg.sample_softmax).draw(9, 17);
  EXPECT_EQ(model.candidates(), drawn);

  for (int64_t b0 : {0, 2}) {
    ctx.batch_offset = b0;
    Memory<double> half_mem;
    const std::vector<int32_t> d = columns(data, B, b0, 2), t = columns(target, B, b0, 2);
    const std::vector<double> half = to_host(*ops, model.forward(d.data(), t.data(), Q, 2, half_mem, ctx));
    EXPECT_EQ(model.candidates(), drawn);
    for (int64_t q = 0; q < Q; ++q)
      for (int64_t b = 0; b < 2; ++b)
        EXPECT_NEAR(half[static_cast<size_t>(q * 2 + b)], whole[static_cast<size_t>(q * B + b0 + b)], 1e-12);
  }
  ctx.batch_offset = 0;
  ctx.step = 18;
  Memory<double> next_mem;
  model.forward(data.data(), target.data(), Q, B, next_mem, ctx);
  EXPECT_NE(model.candidates(), drawn);
}

// Evaluation: every stream reads the same tokens, stream b's target is id b, so the
// probabilities of one position over the streams are the whole distribution.
TEST(SampledSoftmaxModel, EvaluationIsTheFullSoftmax) {
  const ModelConfig cfg = sampled_config();
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> model(cfg, *ops);
  randomize_params(model, 6);
  const int64_t Q = cfg.tgt_len, B = cfg.n_token;
  const std::vector<int32_t> row = random_tokens(cfg, Q, 7);
  std::vector<int32_t> data, target;
  for (int64_t q = 0; q < Q; ++q)
    for (int64_t b = 0; b < B; ++b) {
      data.push_back(row[static_cast<size_t>(q)]);
      target.push_back(static_cast<int32_t>(b));
    }
  Memory<double> mem;
  const std::vector<double> nll = to_host(*ops, model.forward(data.data(), target.data(), Q, B, mem, StepContext{}));
  EXPECT_TRUE(model.candidates().empty());
  for (int64_t q = 0; q < Q; ++q) {
    double total = 0, spread = 0;
    for (int64_t b = 0; b < B; ++b) {
      total += std::exp(-nll[static_cast<size_t>(q * B + b)]);
      spread = std::max(spread, std::abs(nll[static_cast<size_t>(q * B + b)] - nll[static_cast<size_t>(q * B)]));
    }
    EXPECT_NEAR(total, 1.0, 1e-12) << q;
    EXPECT_GT(spread, 1e-3) << q;  // not uniform: the weights matter
  }
}

TEST(SampledSoftmaxModel, CheckpointRecordsSampleSoftmax) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("txl_sampled_ckpt_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "m.h5").string();
  const ModelConfig cfg = sampled_config();
  auto ops = make_cpu_ops<float>();
  TransformerXL<float> model(cfg, *ops);
  model.init_params(1);
  {
    h5::File f = h5::File::create(path);
    save_model_params(f, model.params(), model.config(), *ops);
  }
  const h5::File f = h5::File::open(path);
  EXPECT_EQ(read_model_config(f).sample_softmax, 4);
  TransformerXL<float> again(read_model_config(f), *ops);
  EXPECT_NO_THROW(load_model_params(f, again.params(), again.config(), *ops));
  ModelConfig adaptive = cfg;
  adaptive.sample_softmax = -1;
  TransformerXL<float> other(adaptive, *ops);
  EXPECT_THROW(load_model_params(f, other.params(), adaptive, *ops), Error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace txl::test
