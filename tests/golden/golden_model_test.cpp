// The recipe's own forward losses, memories and gradients (tests/fixtures/golden/
// model_cases.h5) reproduced in double precision: segments run in order from an empty
// memory, the last segment is differentiated with the earlier memory held constant.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "golden_case.h"
#include "txl/core/ops.h"

namespace txl::test {
namespace {

// max |a - b| / max(max |b|, tiny): one number per array, robust to entries near zero.
double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 1e-300;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return diff / scale;
}

// The recipe's adaptive softmax returns the per-token losses grouped by the target's
// cluster (head-cluster tokens first, each group in flat [len, batch] order), not in token
// order; txl returns token order. Reorders txl's losses the recipe's way.
std::vector<double> in_recipe_loss_order(const std::vector<double>& nll, const std::vector<int32_t>& target,
                                         const ModelConfig& cfg) {
  std::vector<double> out;
  for (int64_t c = 0; c <= cfg.n_clusters(); ++c)
    for (size_t i = 0; i < target.size(); ++i)
      if (target[i] >= cfg.cluster_begin(c) && target[i] < cfg.cluster_end(c)) out.push_back(nll[i]);
  return out;
}

// Runs every segment of a case and compares losses, memories and the last gradients.
void check_case(const std::string& name) {
  const GoldenCase c = load_golden_case(name);
  SCOPED_TRACE(name + ": " + c.note);
  const ModelConfig cfg = golden_model_config(c.config);
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> model(cfg, *ops);
  load_golden_weights(model, c.weights);
  model.params().zero_grad(*ops);

  Memory<double> mem;
  for (size_t s = 0; s < c.segments.size(); ++s) {
    const GoldenSegment& seg = c.segments[s];
    SCOPED_TRACE("segment " + std::to_string(s));
    const std::vector<int32_t> data = c.data(s), target = c.target(s);
    StepContext ctx;
    ctx.ext_rows = c.data_rows(s) - seg.len;  // ext_len rows of extended context first
    const Tensor<double>& nll = model.forward(data.data(), target.data(), c.data_rows(s), c.batch, mem, ctx);
    EXPECT_LT(relative_error(in_recipe_loss_order(to_host(*ops, nll), target, cfg), seg.loss.values), 1e-12)
        << "loss";

    ASSERT_EQ(seg.mems_after.shape.size(), 4u);
    ASSERT_EQ(mem.mlen, seg.mems_after.shape[1]);
    std::vector<double> got;
    for (const Tensor<double>& layer : mem.layers) {
      const std::vector<double> h = to_host(*ops, layer);
      got.insert(got.end(), h.begin(), h.end());
    }
    EXPECT_LT(relative_error(got, seg.mems_after.values), 1e-12) << "memory after the segment";

    if (s + 1 == c.segments.size()) {
      Tensor<double> dnll = ops->empty(nll.shape());
      ops->fill(dnll.data(), dnll.numel(), 1.0 / static_cast<double>(nll.numel()));
      model.backward(dnll);
      ASSERT_EQ(c.grads.size(), static_cast<size_t>(model.params().size()));
      for (const ParamInfo& p : model.params().infos()) {
        auto it = c.grads.find(p.name);
        ASSERT_NE(it, c.grads.end()) << p.name;
        const int id = model.params().id(p.name);
        EXPECT_LT(relative_error(to_host(*ops, model.params().grad(id)), it->second.values), 1e-9)
            << "gradient of " << p.name;
      }
    }
  }
}

TEST(GoldenModel, Attn0AdaptiveTied) { check_case("attn0_adaptive"); }
TEST(GoldenModel, Attn0DivVal2PreLnSameLengthClamp) { check_case("attn0_divval2_preln_samelength_clamp"); }
TEST(GoldenModel, Attn0UntiedPlainSoftmax) { check_case("attn0_untied_plain_softmax"); }
TEST(GoldenModel, Attn0LongMemory) { check_case("attn0_longmem"); }
TEST(GoldenModel, Attn0ExtendedContext) { check_case("attn0_ext_len"); }
TEST(GoldenModel, Attn1LearnedRelative) { check_case("attn1"); }
TEST(GoldenModel, Attn1SameLengthClamp) { check_case("attn1_samelength_clamp"); }
TEST(GoldenModel, Attn1LongMemory) { check_case("attn1_longmem"); }
TEST(GoldenModel, Attn2AbsoluteSinusoid) { check_case("attn2"); }
TEST(GoldenModel, Attn2SameLengthClamp) { check_case("attn2_samelength_clamp"); }
TEST(GoldenModel, Attn2LongMemory) { check_case("attn2_longmem"); }
TEST(GoldenModel, Attn3LearnedAbsolute) { check_case("attn3"); }
TEST(GoldenModel, Attn3SameLengthClamp) { check_case("attn3_samelength_clamp"); }
TEST(GoldenModel, Attn3LongMemory) { check_case("attn3_longmem"); }

}  // namespace
}  // namespace txl::test
