// A step whose gradient is not finite still stops the run with one error naming that
// step, although the step itself no longer waits on the host (the device records the
// first non-finite step, the optimizer does not apply it, and the trainer reads the
// record when it logs, validates, checkpoints or finishes): the parameters stay those of
// the last good step and no checkpoint is written after it.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "train_test_util.h"
#include "txl/train/trainer.h"

namespace txl {
namespace {

using json = nlohmann::json;

TrainConfig finalized(TrainConfig c) {
  c.finalize(1);
  return c;
}

struct FaultRun {
  std::string error;
  std::vector<float> params_before_fault;  // the parameters of the last good step
  std::vector<float> params_after;
};

// Runs `c`, writing a NaN into one gradient of step `fault_step` between its backward
// pass and its update.
FaultRun run_with_nan_gradient(const TrainConfig& c, int64_t fault_step) {
  auto comm = make_single_process_communicator();
  Trainer t(finalized(c), "", "", *comm);
  FaultRun r;
  ParamStore<float>& ps = t.model().params();
  t.set_before_update([&](int64_t step) {
    if (step != fault_step) return;
    const float* p = ps.flat_params().data();  // the CPU backend: host memory
    r.params_before_fault.assign(p, p + ps.total_numel());
    ps.flat_grads().data()[ps.total_numel() / 2] = std::numeric_limits<float>::quiet_NaN();
  });
  try {
    t.run();
  } catch (const Error& e) {
    r.error = e.what();
  }
  const float* p = ps.flat_params().data();
  r.params_after.assign(p, p + ps.total_numel());
  return r;
}

TEST(NonFiniteStep, AtTheNextLogLineTheRunStopsNamingTheStepWithItsParametersIntact) {
  const std::string dir = test::fresh_dir("nan_gradient_log");
  TrainConfig c = test::tiny_train_config(dir);
  c.log_interval = 4;
  c.eval_interval = 4;
  const FaultRun r = run_with_nan_gradient(c, 5);
  EXPECT_NE(r.error.find("step 5: the gradient is not finite"), std::string::npos) << r.error;
  ASSERT_EQ(r.params_after.size(), r.params_before_fault.size());
  EXPECT_EQ(r.params_after, r.params_before_fault);  // steps 5..8 applied nothing
  for (float v : r.params_after) ASSERT_TRUE(std::isfinite(v));
  // The checkpoint of step 4 is the last one; the log has no line after step 4.
  EXPECT_EQ(TrainingCheckpoint::open(dir + "/checkpoint_last.h5").state().step, 4);
  int64_t last_logged = 0;
  for (const std::string& line : test::read_lines(dir + "/train_log.jsonl")) {
    const json rec = json::parse(line);
    if (rec["type"] == "train") last_logged = rec["step"].get<int64_t>();
  }
  EXPECT_EQ(last_logged, 4);
}

TEST(NonFiniteStep, AtTheEndOfTrainingWithoutALogLineOrValidation) {
  const std::string dir = test::fresh_dir("nan_gradient_end");
  TrainConfig c = test::tiny_train_config(dir);
  c.max_step = 6;
  c.log_interval = 100;
  c.eval_interval = 0;
  c.no_eval = true;
  const FaultRun r = run_with_nan_gradient(c, 4);
  EXPECT_NE(r.error.find("step 4: the gradient is not finite"), std::string::npos) << r.error;
  EXPECT_EQ(r.params_after, r.params_before_fault);
}

TEST(NonFiniteStep, TheFirstRecordedStepIsReportedTheLossFirst) {
  StepScalarValues v;
  EXPECT_NO_THROW(require_finite_steps(v));
  v.bad_grad_step = 9;
  v.bad_loss_step = 9;
  v.bad_loss = std::numeric_limits<double>::infinity();
  try {
    require_finite_steps(v);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("step 9: the loss (inf) is not finite"), std::string::npos) << e.what();
  }
  v.bad_grad_step = 3;
  try {
    require_finite_steps(v);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("step 3: the gradient is not finite"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace txl
