// Dropout masks depend only on (seed, step, site, global coordinates): splitting a batch
// of 4 streams into two calls of 2 (batch_offset 0 and 2, batch_global 4) gives the same
// per-token loss as one call of 4, over two steps with memory.
#include <gtest/gtest.h>

#include <cmath>

#include "model_test_util.h"

namespace txl::test {
namespace {

// Columns [b0, b0 + nb) of a time-major [qlen, B] array.
std::vector<int32_t> columns(const std::vector<int32_t>& v, int64_t qlen, int64_t B, int64_t b0, int64_t nb) {
  std::vector<int32_t> out;
  for (int64_t t = 0; t < qlen; ++t)
    for (int64_t b = b0; b < b0 + nb; ++b) out.push_back(v[static_cast<size_t>(t * B + b)]);
  return out;
}

TEST(Dropout, SplitBatchGivesTheSameLoss) {
  ModelConfig cfg = tiny_config();
  cfg.cutoffs = {10, 20};
  cfg.dropout = 0.3;
  cfg.dropatt = 0.2;
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> model(cfg, *ops);
  randomize_params(model, 3);
  const int64_t qlen = 5, B = 4;

  Memory<double> whole, half0, half1;
  for (uint64_t step = 1; step <= 2; ++step) {
    const auto data = random_tokens(cfg, qlen * B, 40 + step), target = random_tokens(cfg, qlen * B, 50 + step);
    const StepContext ctx{true, 77, step, 0, 4};
    const std::vector<double> full = to_host(*ops, model.forward(data.data(), target.data(), qlen, B, whole, ctx));
    for (int64_t part = 0; part < 2; ++part) {
      const auto d = columns(data, qlen, B, 2 * part, 2), t = columns(target, qlen, B, 2 * part, 2);
      const StepContext pctx{true, 77, step, 2 * part, 4};
      const std::vector<double> got =
          to_host(*ops, model.forward(d.data(), t.data(), qlen, 2, part == 0 ? half0 : half1, pctx));
      for (int64_t tt = 0; tt < qlen; ++tt)
        for (int64_t b = 0; b < 2; ++b) {
          const double want = full[static_cast<size_t>(tt * B + 2 * part + b)];
          EXPECT_NEAR(got[static_cast<size_t>(tt * 2 + b)], want, 1e-12 * std::abs(want))
              << "step " << step << " t " << tt << " stream " << 2 * part + b;
        }
    }
  }
}

TEST(Dropout, MasksChangeWithStepAndAreOffInEval) {
  ModelConfig cfg = tiny_config();
  cfg.dropout = 0.3;
  cfg.dropatt = 0.2;
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> model(cfg, *ops);
  randomize_params(model, 3);
  const int64_t qlen = 5, B = 2;
  const auto data = random_tokens(cfg, qlen * B, 1), target = random_tokens(cfg, qlen * B, 2);
  auto run = [&](const StepContext& ctx) {
    Memory<double> m;
    return to_host(*ops, model.forward(data.data(), target.data(), qlen, B, m, ctx));
  };
  const auto a = run({true, 5, 1, 0, 0}), a2 = run({true, 5, 1, 0, 0});
  const auto b = run({true, 5, 2, 0, 0}), c = run({true, 6, 1, 0, 0});
  const auto e1 = run({false, 5, 1, 0, 0}), e2 = run({false, 9, 3, 0, 0});
  EXPECT_EQ(a, a2);  // deterministic
  EXPECT_NE(a, b);   // another step, other masks
  EXPECT_NE(a, c);   // another seed, other masks
  EXPECT_NE(a, e1);  // dropout really active in training
  EXPECT_EQ(e1, e2); // evaluation ignores the keys
}

}  // namespace
}  // namespace txl::test
