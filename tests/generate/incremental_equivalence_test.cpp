// The incremental decoder's outputs and logits equal a full recomputation (docs/generate.md)
// at every position, in double on the CPU, for every attn_type and the mem_len /
// same_length / clamp_len / pre_lnorm cases, with the memory rolled as the model rolls it.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "generate_test_util.h"
#include "txl/model/incremental_decoder.h"

namespace txl {
namespace {

struct Case {
  int64_t attn_type;
  int64_t mem_len;
  bool same_length;
  int64_t clamp_len;
  bool pre_lnorm;
};
std::string case_name(const testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  return "attn" + std::to_string(c.attn_type) + "_mem" + std::to_string(c.mem_len) + (c.same_length ? "_same" : "") +
         (c.clamp_len > 0 ? "_clamp" + std::to_string(c.clamp_len) : "") + (c.pre_lnorm ? "_preln" : "");
}
std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (int64_t t = 0; t < 4; ++t)
    // mem_len 2: shorter than a segment; 9: longer than a segment, shorter than the text;
    // 40: longer than all 23 generated tokens (the memory never drops a row).
    for (int64_t mem : {2, 9, 40})
      for (bool same : {false, true})
        for (int64_t clamp : {-1, 3}) cases.push_back({t, mem, same, clamp, false});
  for (int64_t t = 0; t < 4; ++t) cases.push_back({t, 9, true, 3, true});
  return cases;
}

class IncrementalEquivalence : public testing::TestWithParam<Case> {};

constexpr int64_t kTokens = 23;  // 5 segments of tgt_len 4 and 3 more
constexpr int64_t kBatch = 2;
constexpr double kTol = 1e-10;

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

TEST_P(IncrementalEquivalence, EveryPositionMatchesFullRecomputation) {
  const Case& c = GetParam();
  auto ops = make_cpu_ops<double>();
  ModelConfig cfg = test::small_generation_config(c.attn_type);
  cfg.pre_lnorm = c.pre_lnorm;
  cfg.mem_len = c.mem_len;
  TransformerXL<double> model(cfg, *ops);
  test::randomize(model, 100 + static_cast<uint64_t>(c.attn_type));
  model.set_lengths(cfg.tgt_len, 0, c.mem_len, c.same_length, c.clamp_len);
  const int64_t M = cfg.d_model;

  const std::vector<int32_t> ids = test::random_ids(kTokens * kBatch, cfg.n_token, 7);
  std::vector<Memory<double>> memories;
  const std::vector<std::vector<double>> want = test::recomputed_outputs(model, ids, kBatch, &memories);

  IncrementalDecoder<double> decoder(model);
  EXPECT_EQ(decoder.one_row_steps(), c.attn_type <= 1);
  decoder.reset(kBatch);
  AdaptiveSoftmaxDistribution<double> head(model.config());
  head.bind(model.params());
  for (int64_t i = 0; i < kTokens; ++i) {
    const Tensor<double>& out = decoder.feed(ids.data() + i * kBatch, 1);
    ASSERT_EQ(out.numel(), kBatch * M);
    const std::vector<double> got = to_host(*ops, out);
    EXPECT_LE(max_abs_diff(got, want[static_cast<size_t>(i)]), kTol) << "position " << i;
    // The logits (log-probabilities over the whole vocabulary) of both.
    const std::vector<double> lp_got = head.full_log_probs(*ops, model.params(), out);
    const Tensor<double> ref = to_device(*ops, want[static_cast<size_t>(i)], {kBatch, M});
    const std::vector<double> lp_want = head.full_log_probs(*ops, model.params(), ref);
    EXPECT_LE(max_abs_diff(lp_got, lp_want), kTol) << "position " << i;
    // After each complete segment the memory is the model's memory update.
    if ((i + 1) % cfg.tgt_len == 0) {
      const Memory<double> mem = decoder.memory();
      const Memory<double>& ref_mem = memories[static_cast<size_t>((i + 1) / cfg.tgt_len)];
      ASSERT_EQ(mem.mlen, ref_mem.mlen) << "position " << i;
      EXPECT_EQ(decoder.pending(), 0);
      for (size_t l = 0; l < mem.layers.size() && mem.mlen > 0; ++l)
        EXPECT_LE(max_abs_diff(to_host(*ops, mem.layers[l]), to_host(*ops, ref_mem.layers[l])), kTol)
            << "layer " << l << " after position " << i;
    }
  }
}

// A long prompt fed at once (whole segments as model forwards, the rest token by token)
// leaves the decoder where token-by-token feeding does.
TEST_P(IncrementalEquivalence, PromptFedAtOnceMatchesTokenByToken) {
  const Case& c = GetParam();
  auto ops = make_cpu_ops<double>();
  ModelConfig cfg = test::small_generation_config(c.attn_type);
  cfg.pre_lnorm = c.pre_lnorm;
  cfg.mem_len = c.mem_len;
  TransformerXL<double> model(cfg, *ops);
  test::randomize(model, 200 + static_cast<uint64_t>(c.attn_type));
  model.set_lengths(cfg.tgt_len, 0, c.mem_len, c.same_length, c.clamp_len);
  const std::vector<int32_t> ids = test::random_ids(kTokens * kBatch, cfg.n_token, 9);
  const std::vector<std::vector<double>> want = test::recomputed_outputs(model, ids, kBatch);

  IncrementalDecoder<double> decoder(model);
  decoder.reset(kBatch);
  const int64_t prompt = 14;  // 3 whole segments and 2 tokens
  std::vector<double> got = to_host(*ops, decoder.feed(ids.data(), prompt));
  EXPECT_LE(max_abs_diff(got, want[prompt - 1]), kTol);
  EXPECT_EQ(decoder.pending(), prompt % cfg.tgt_len);
  for (int64_t i = prompt; i < kTokens; ++i) {
    got = to_host(*ops, decoder.feed(ids.data() + i * kBatch, 1));
    EXPECT_LE(max_abs_diff(got, want[static_cast<size_t>(i)]), kTol) << "position " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AllAttnTypes, IncrementalEquivalence, testing::ValuesIn(all_cases()), case_name);

// The recompute mode (the bench's baseline) is the same function.
TEST(IncrementalDecoder, RecomputeModeMatchesOneRowSteps) {
  auto ops = make_cpu_ops<double>();
  ModelConfig cfg = test::small_generation_config(0);
  TransformerXL<double> model(cfg, *ops);
  test::randomize(model, 5);
  model.set_lengths(cfg.tgt_len, 0, 5, true, 3);
  IncrementalDecoder<double> fast(model), slow(model, IncrementalDecoder<double>::Mode::kRecompute);
  EXPECT_TRUE(fast.one_row_steps());
  EXPECT_FALSE(slow.one_row_steps());
  fast.reset(1);
  slow.reset(1);
  for (int32_t id : test::random_ids(17, cfg.n_token, 3)) {
    const std::vector<double> a = to_host(*ops, fast.feed(&id, 1));
    const std::vector<double> b = to_host(*ops, slow.feed(&id, 1));
    EXPECT_LE(max_abs_diff(a, b), kTol);
  }
}

TEST(IncrementalDecoder, RefusesExtendedContext) {
  auto ops = make_cpu_ops<double>();
  ModelConfig cfg = test::small_generation_config(0);
  TransformerXL<double> model(cfg, *ops);
  model.set_lengths(cfg.tgt_len, 2, cfg.mem_len, false, -1);
  IncrementalDecoder<double> decoder(model);
  try {
    decoder.reset(1);
    FAIL() << "ext_len 2 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ext_len must be 0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace txl
