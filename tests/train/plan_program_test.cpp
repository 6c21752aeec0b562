// txl_train --plan: the options are taken out of the command line, the configuration is
// planned without a corpus when --plan_n_token is given, and a configuration that does
// not fit the given memory gets the batch_chunk that makes it fit.
#include <gtest/gtest.h>

#include <sstream>

#include "txl/core/error.h"
#include "txl/train/step_plan.h"
#include "txl/config/train_config.h"

namespace txl {
namespace {

std::string plan_text(std::vector<std::string> args) {
  PlanOptions o;
  EXPECT_TRUE(take_plan_options(args, o));
  const CommandLine cl = parse_command_line(args, option_types(train_config_keys()));
  std::ostringstream out;
  EXPECT_EQ(run_plan_program(o, cl, out), 0);
  return out.str();
}

const std::vector<std::string> kSmall = {"--plan", "--plan_n_token", "500", "--data",    "missing.h5", "--n_layer",
                                         "2",      "--d_model",      "64",  "--n_head",  "2",          "--d_head",
                                         "32",     "--d_inner",      "128", "--tgt_len", "32",         "--mem_len",
                                         "32",     "--batch_size",   "8",   "--device",  "cuda",       "--precision",
                                         "bf16"};

TEST(PlanProgram, PlansWithoutACorpusAndReportsTheFit) {
  const std::string text = plan_text(kSmall);
  EXPECT_NE(text.find("batch 8 x tgt_len 32 (mem_len 32)"), std::string::npos) << text;
  EXPECT_NE(text.find("bf16 GEMMs"), std::string::npos);
  EXPECT_NE(text.find("fits: predicted peak"), std::string::npos);
  EXPECT_EQ(text.find("without a traffic model"), std::string::npos) << text;
}

StepPlanRequest small_request(PlanPrecision precision, const std::string& optim) {
  StepPlanRequest rq;
  rq.model.n_token = 500;
  rq.model.n_layer = 2;
  rq.model.d_model = 64;
  rq.model.n_head = 2;
  rq.model.d_head = 32;
  rq.model.d_inner = 128;
  rq.model.tgt_len = 32;
  rq.model.mem_len = 32;
  rq.chunk_batch = 4;
  rq.batch_chunk = 2;
  rq.precision = precision;
  rq.optim = optim;
  return rq;
}

TEST(PlanProgram, SuggestsTheBatchChunkThatFits) {
  StepPlanRequest rq = small_request(PlanPrecision::kBf16, "lamb");
  rq.chunk_batch = 64;
  rq.batch_chunk = 1;
  const StepPlan whole = plan_training_step(rq);
  rq.chunk_batch = 32;
  rq.batch_chunk = 2;
  const StepPlan halves = plan_training_step(rq);
  // The same step in two chunks: only the per-chunk r_net products (and the tail clusters
  // the synthetic targets fall in) differ.
  EXPECT_NEAR(halves.total.flops / whole.total.flops, 1.0, 0.01);
  ASSERT_LT(halves.peak(), whole.peak());
  EXPECT_EQ(format_memory_fit(whole, whole.peak() * 1.01, "test GPU").rfind("fits: ", 0), 0u);
  const std::string text = format_memory_fit(whole, (whole.peak() + halves.peak()) / 2, "test GPU");
  EXPECT_NE(text.find("does not fit"), std::string::npos) << text;
  EXPECT_NE(text.find("use --batch_chunk 2"), std::string::npos) << text;
}


// The planned step is the trainer's: no host synchronisation in a bf16 / fp32 / tf32
// step (the loss and the update's scalars stay on the device), no zero_grad pass (the
// optimizer writes the cleared gradient), and fp16 reads the gradient sum of squares
// back once for the loss scaler.
TEST(PlanTrainingStep, NoHostSynchronisationAndNoZeroGradPass) {
  for (const char* optim : {"lamb", "adam", "sgd", "adagrad"}) {
    SCOPED_TRACE(optim);
    for (PlanPrecision precision : {PlanPrecision::kBf16, PlanPrecision::kFp32, PlanPrecision::kTf32}) {
      const StepPlan plan = plan_training_step(small_request(precision, optim));
      EXPECT_EQ(plan.total.host_syncs, 0) << plan_precision_name(precision);
      EXPECT_TRUE(plan.unmodelled.empty());
    }
    const StepPlan plan = plan_training_step(small_request(PlanPrecision::kBf16, optim));
    for (const auto& [key, count] : plan.by_phase_region) {
      EXPECT_NE(key.first, "zero_grad");
      EXPECT_EQ(count.host_syncs, 0) << key.first << " / " << key.second;
    }
    EXPECT_EQ(plan.by_op.count("fill"), 1u);  // the loss gradient only
    EXPECT_EQ(plan.by_op.at("fill").launches, 1);
    EXPECT_EQ(plan.by_op.count("sum"), 0u);
    EXPECT_EQ(plan.by_op.count("sum_squares"), 0u);
    EXPECT_EQ(plan.by_op.count("download"), 0u);
    EXPECT_EQ(plan.by_op.at("sum_to_device").calls, 2);  // one per chunk
    EXPECT_EQ(plan.by_op.at("sum_squares_to_device").calls, 1);
    EXPECT_EQ(plan.by_op.at("step_loss_update").launches, 1);
    EXPECT_EQ(plan.by_op.at("step_grad_factor").launches, 1);
  }
  const StepPlan fp16 = plan_training_step(small_request(PlanPrecision::kFp16, "lamb"));
  EXPECT_EQ(fp16.total.host_syncs, 1);
  EXPECT_EQ(fp16.by_op.at("download").host_syncs, 1);
}

TEST(PlanProgram, RefusesPlanOptionsWithoutPlanAndAMissingCorpus) {
  PlanOptions o;
  std::vector<std::string> args = {"--plan_device", "h200"};
  EXPECT_THROW(take_plan_options(args, o), Error);
  args = {"--plan", "--plan_device", "v100"};
  EXPECT_THROW(take_plan_options(args, o), Error);
  std::vector<std::string> no_vocab(kSmall.begin(), kSmall.end());
  no_vocab.erase(no_vocab.begin() + 1, no_vocab.begin() + 3);
  PlanOptions p;
  EXPECT_TRUE(take_plan_options(no_vocab, p));
  const CommandLine cl = parse_command_line(no_vocab, option_types(train_config_keys()));
  std::ostringstream out;
  try {
    run_plan_program(p, cl, out);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--plan_n_token"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace txl
