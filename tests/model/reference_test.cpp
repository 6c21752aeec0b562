// The engine's per-token loss equals a naive O(n^2) re-implementation of docs/model.md
// (reference_transformer_xl.h) in double precision, on a first step (empty memory) and a
// second step that attends to the memory of the first.
#include <gtest/gtest.h>

#include <cmath>

#include "model_test_util.h"
#include "reference_transformer_xl.h"

namespace txl::test {
namespace {

struct RefCase {
  std::string name;
  ModelConfig cfg;
};

void PrintTo(const RefCase& c, std::ostream* os) { *os << c.name; }

class ReferenceLoss : public ::testing::TestWithParam<RefCase> {};

TEST_P(ReferenceLoss, EngineEqualsNaiveFormulas) {
  const ModelConfig& cfg = GetParam().cfg;
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> model(cfg, *ops);
  randomize_params(model, 21, 0.5);
  ReferenceTransformerXL ref(cfg, model.params(), *ops);
  const int64_t qlen = 6, batch = 3, n = qlen * batch;

  Memory<double> mem;
  std::vector<Vec> ref_mem;
  int64_t ref_mlen = 0;
  for (int step = 0; step < 3; ++step) {
    const auto data = random_tokens(cfg, n, 100 + static_cast<uint64_t>(step));
    const auto target = random_tokens(cfg, n, 200 + static_cast<uint64_t>(step));
    const std::vector<double> nll = to_host(*ops, model.forward(data.data(), target.data(), qlen, batch, mem, {}));
    const auto out = ref.forward(data, target, qlen, batch, ref_mem, ref_mlen);
    ASSERT_EQ(nll.size(), out.nll.size());
    double engine_sum = 0, ref_sum = 0;
    for (size_t i = 0; i < nll.size(); ++i) {
      EXPECT_NEAR(nll[i], out.nll[i], 1e-10 * std::abs(out.nll[i])) << "step " << step << " token " << i;
      engine_sum += nll[i];
      ref_sum += out.nll[i];
    }
    EXPECT_NEAR(engine_sum, ref_sum, 1e-10 * std::abs(ref_sum)) << "step " << step;
    EXPECT_GT(ref_sum, 0.0);
    ref_mem = ref.new_memory(ref_mem, ref_mlen, out, qlen, batch, &ref_mlen);
    ASSERT_EQ(mem.mlen, ref_mlen);
  }
  EXPECT_EQ(ref_mlen > 0, cfg.mem_len > 0);
}

RefCase make(std::string name, const std::function<void(ModelConfig&)>& edit) {
  RefCase c{std::move(name), tiny_config()};
  c.cfg.n_token = 40;
  edit(c.cfg);
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    Model, ReferenceLoss,
    ::testing::Values(make("PostLnTwoClustersClamp",
                           [](ModelConfig& c) {
                             c.cutoffs = {12, 25};
                             c.tie_projs = {false, true, true};
                             c.clamp_len = 4;
                           }),
                      make("PreLnSameLengthDiv2",
                           [](ModelConfig& c) {
                             c.pre_lnorm = true;
                             c.same_length = true;
                             c.div_val = 2;
                             c.cutoffs = {12, 25};
                             c.tie_projs = {true, false, true};
                           }),
                      make("PostLnSameLengthClampProjectedUntied",
                           [](ModelConfig& c) {
                             c.same_length = true;
                             c.clamp_len = 3;
                             c.d_embed = 6;
                             c.tie_weight = false;
                             c.cutoffs = {12, 25};
                             c.tie_projs = {true, false, false};
                             c.mem_len = 8;
                             c.ext_len = 2;
                           }),
                      make("PreLnNoMemoryNoCutoffs",
                           [](ModelConfig& c) {
                             c.pre_lnorm = true;
                             c.mem_len = 0;
                             c.same_length = true;
                           })),
    [](const ::testing::TestParamInfo<RefCase>& info) { return info.param.name; });

}  // namespace
}  // namespace txl::test
