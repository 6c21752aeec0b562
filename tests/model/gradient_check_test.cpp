// Central finite-difference checks (double precision) of TransformerXL::backward: every
// parameter tensor and the gradient w.r.t. the word-embedding output, on the second step
// of a stream (so the memory is non-empty), for configurations covering the docs/model.md
// options, extended context (rows that are attended to but predict nothing) included.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "model_test_util.h"

namespace txl::test {
namespace {

struct GradCase {
  std::string name;
  ModelConfig cfg;
  StepContext ctx;  // train = true: dropout on (deterministic masks)
};

void PrintTo(const GradCase& c, std::ostream* os) { *os << c.name; }

// Norm-wise relative error of two gradient vectors.
double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  const double denom = std::max(std::sqrt(na), std::sqrt(nb));
  return denom > 0 ? std::sqrt(diff) / denom : 0.0;
}

class GradientCheck : public ::testing::TestWithParam<GradCase> {};

TEST_P(GradientCheck, MatchesFiniteDifferences) {
  const GradCase& gc = GetParam();
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> model(gc.cfg, *ops);
  randomize_params(model, 11);
  const int64_t qlen = 5, batch = 2, n = qlen * batch;
  const int64_t n_target = (qlen - gc.ctx.ext_rows) * batch;

  // Step 1 fills the memory; step 2 is checked.
  Memory<double> mem;
  const auto data1 = random_tokens(gc.cfg, n, 1), target1 = random_tokens(gc.cfg, n_target, 2);
  const auto data2 = random_tokens(gc.cfg, n, 3), target2 = random_tokens(gc.cfg, n_target, 4);
  StepContext ctx1 = gc.ctx;
  ctx1.step = gc.ctx.step + 1;
  model.forward(data1.data(), target1.data(), qlen, batch, mem, ctx1);
  if (gc.cfg.mem_len > 0) {
    ASSERT_GT(mem.mlen, 0);
  } else {
    ASSERT_EQ(mem.mlen, 0);
  }
  const Memory<double> mem0 = clone_memory(*ops, mem);

  std::vector<double> weights(static_cast<size_t>(n_target));
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> wd(0.5, 1.5);
  for (double& w : weights) w = wd(rng);
  auto loss = [&]() {
    Memory<double> m = clone_memory(*ops, mem0);
    const Tensor<double>& nll = model.forward(data2.data(), target2.data(), qlen, batch, m, gc.ctx);
    return sum_weighted(to_host(*ops, nll), weights);
  };

  // Analytic gradients.
  ParamStore<double>& ps = model.params();
  ps.zero_grad(*ops);
  loss();
  const Tensor<double> dnll = to_device(*ops, weights, {qlen - gc.ctx.ext_rows, batch});
  model.backward(dnll);
  const std::vector<double> grads = to_host(*ops, ps.flat_grads());
  const std::vector<double> d_emb = to_host(*ops, model.embedding_grad());

  const double eps = 1e-5;
  const int64_t kMaxChecked = 96;  // elements per tensor (all when smaller)
  for (int id = 0; id < ps.size(); ++id) {
    const ParamInfo& p = ps.info(id);
    std::vector<int64_t> elems;
    for (int64_t i = 0; i < p.slice.numel; ++i) elems.push_back(i);
    if (p.slice.numel > kMaxChecked) {
      std::shuffle(elems.begin(), elems.end(), rng);
      elems.resize(kMaxChecked);
    }
    std::vector<double> fd, an;
    for (int64_t i : elems) {
      double* ptr = ps.flat_params().data() + p.slice.offset + i;
      double v = 0;
      ops->download(&v, ptr, sizeof(double));
      const double plus = v + eps, minus = v - eps;
      ops->upload(ptr, &plus, sizeof(double));
      const double lp = loss();
      ops->upload(ptr, &minus, sizeof(double));
      const double lm = loss();
      ops->upload(ptr, &v, sizeof(double));
      fd.push_back((lp - lm) / (2 * eps));
      an.push_back(grads[static_cast<size_t>(p.slice.offset + i)]);
    }
    double norm = 0;
    for (double g : an) norm += g * g;
    EXPECT_GT(norm, 0.0) << gc.name << ": gradient of " << p.name << " is zero on the checked elements";
    EXPECT_LE(relative_error(fd, an), 1e-6) << gc.name << ": parameter " << p.name;
  }

  // Gradient w.r.t. the word-embedding output (the core input before dropout).
  int64_t target_elem = -1;
  double delta = 0;
  model.set_embedding_hook([&](Ops<double>& o, Tensor<double>& emb) {
    if (target_elem < 0) return;
    double v = 0;
    o.download(&v, emb.data() + target_elem, sizeof(double));
    v += delta;
    o.upload(emb.data() + target_elem, &v, sizeof(double));
  });
  std::vector<double> fd;
  for (int64_t i = 0; i < static_cast<int64_t>(d_emb.size()); ++i) {
    target_elem = i;
    delta = eps;
    const double lp = loss();
    delta = -eps;
    const double lm = loss();
    fd.push_back((lp - lm) / (2 * eps));
  }
  target_elem = -1;
  EXPECT_LE(relative_error(fd, d_emb), 1e-6) << gc.name << ": word-embedding output";
}

GradCase make_case(std::string name, const std::function<void(ModelConfig&, StepContext&)>& edit) {
  GradCase c;
  c.name = std::move(name);
  c.cfg = tiny_config();
  c.ctx = StepContext{};
  edit(c.cfg, c.ctx);
  return c;
}

std::vector<GradCase> cases() {
  return {
      make_case("PostLnTiedNoCutoffs", [](ModelConfig&, StepContext&) {}),
      make_case("Div2TwoClustersPreLnSameLength",
                [](ModelConfig& c, StepContext&) {
                  c.div_val = 2;
                  c.cutoffs = {10, 20};
                  c.tie_projs = {false, true, false};
                  c.pre_lnorm = true;
                  c.same_length = true;
                }),
      make_case("Div1ProjectedUntiedClampExt",
                [](ModelConfig& c, StepContext& ctx) {
                  c.d_embed = 6;
                  c.cutoffs = {10, 20};
                  c.tie_weight = false;
                  c.tie_projs = {true, false, true};
                  c.clamp_len = 3;
                  c.ext_len = 2;
                  ctx.ext_rows = 2;
                }),
      make_case("NoMemoryDiv2UntiedPreLn",
                [](ModelConfig& c, StepContext&) {
                  c.mem_len = 0;
                  c.div_val = 2;
                  c.cutoffs = {12};
                  c.tie_weight = false;
                  c.tie_projs = {true, false};
                  c.pre_lnorm = true;
                }),
      make_case("PostLnSameLengthClampDiv2Tied",
                [](ModelConfig& c, StepContext& ctx) {
                  c.div_val = 2;
                  c.cutoffs = {10, 20};
                  c.tie_projs = {true, true, true};
                  c.same_length = true;
                  c.clamp_len = 2;
                  c.ext_len = 1;
                  ctx.ext_rows = 1;
                }),
      make_case("DropoutOnPostLn",
                [](ModelConfig& c, StepContext& ctx) {
                  c.cutoffs = {10, 20};
                  c.tie_projs = {false, true, true};
                  c.dropout = 0.2;
                  c.dropatt = 0.2;
                  ctx = StepContext{true, 1234, 7, 0, 0};
                }),
      make_case("DropoutOnPreLnDiv2",
                [](ModelConfig& c, StepContext& ctx) {
                  c.div_val = 2;
                  c.cutoffs = {10, 20};
                  c.pre_lnorm = true;
                  c.dropout = 0.25;
                  c.dropatt = 0.3;
                  ctx = StepContext{true, 99, 3, 2, 6};
                }),
      // attn_type 1..3 (docs/model.md): learned relative positions, absolute sinusoids,
      // learned absolute positions. klen is 9 on the checked step (memory 4 + 5 new rows).
      make_case("Attn1LearnedRelativeClampPreLn",
                [](ModelConfig& c, StepContext&) {
                  c.attn_type = 1;
                  c.clamp_len = 3;  // only the last 3 table rows, the first of them repeated
                  c.pre_lnorm = true;
                  c.cutoffs = {10, 20};
                  c.tie_projs = {false, true, true};
                }),
      make_case("Attn1KlenBeyondTableDropout",
                [](ModelConfig& c, StepContext& ctx) {
                  c.attn_type = 1;
                  c.max_klen = 6;  // klen 9: the table's first row serves the 4 farthest positions
                  c.same_length = true;
                  c.dropout = 0.2;
                  c.dropatt = 0.2;
                  ctx = StepContext{true, 77, 5, 0, 0};
                }),
      make_case("Attn2AbsoluteSinusoidSameLengthClamp",
                [](ModelConfig& c, StepContext&) {
                  c.attn_type = 2;
                  c.same_length = true;
                  c.clamp_len = 3;
                  c.div_val = 2;
                  c.cutoffs = {10, 20};
                }),
      make_case("Attn2PreLnDropout",
                [](ModelConfig& c, StepContext& ctx) {
                  c.attn_type = 2;
                  c.pre_lnorm = true;
                  c.dropout = 0.2;
                  c.dropatt = 0.25;
                  ctx = StepContext{true, 5, 2, 0, 0};
                }),
      make_case("Attn3LearnedAbsolutePreLnShortTable",
                [](ModelConfig& c, StepContext&) {
                  c.attn_type = 3;
                  c.pre_lnorm = true;
                  c.max_klen = 7;  // 2 rows for the 4 memory rows: the first one repeated
                  c.cutoffs = {10, 20};
                  c.tie_weight = false;
                }),
      make_case("Attn1ExtendedContextRows",
                [](ModelConfig& c, StepContext& ctx) {
                  c.attn_type = 1;
                  c.ext_len = 2;
                  ctx.ext_rows = 2;  // the first 2 of the 5 new rows predict nothing
                  c.cutoffs = {10, 20};
                }),
      make_case("Attn3DropoutSameLengthExt",
                [](ModelConfig& c, StepContext& ctx) {
                  c.attn_type = 3;
                  c.same_length = true;
                  c.ext_len = 2;  // max_klen 11: table rows 2..10 serve the 9 key rows
                  c.dropout = 0.2;
                  c.dropatt = 0.2;
                  ctx = StepContext{true, 31, 4, 0, 0};
                }),
  };
}

INSTANTIATE_TEST_SUITE_P(Model, GradientCheck, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<GradCase>& info) { return info.param.name; });

}  // namespace
}  // namespace txl::test
