// The traffic and memory plan of one training step on one GPU (`txl_train CONFIG --plan`,
// `gpu_bench plan`): the step of txl_train (per chunk forward + device loss sum +
// backward, the step scalars, gradient norm, optimizer, which clears the gradients) is
// run on CountingOps (include/txl/core/counting_ops.h) at the real shapes, after enough
// steps to fill the memory, and its counts are priced on the GPUs of plan_devices().
// docs/gpu.md "Traffic model" explains the columns.
#pragma once
#include <cstdint>
#include <map>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "txl/core/counting_ops.h"
#include "txl/model/model_config.h"
#include "txl/config/command_line.h"

namespace txl {

struct StepPlanRequest {
  ModelConfig model;        // tgt_len, mem_len, same_length, clamp_len as trained
  int64_t chunk_batch = 0;  // streams per chunk on this GPU
  int64_t batch_chunk = 1;  // chunks per step
  PlanPrecision precision = PlanPrecision::kBf16;
  PlanStorage storage = PlanStorage::kFloat32;  // kBf16: the modelled design, not the landed backend
  std::string optim = "lamb";                   // lamb | jitlamb | adam | sgd | adagrad
  std::string label;                            // what is planned, for the heading
};

struct StepPlan {
  StepPlanRequest request;
  std::map<std::string, TrafficCount> by_op;
  std::map<std::pair<std::string, std::string>, TrafficCount> by_phase_region;
  TrafficCount total;
  std::vector<std::string> unmodelled;
  int64_t tokens = 0;  // per step on this GPU
  // Device memory (bytes): the live blocks by kind when the live total peaked.
  double parameters = 0, gradients = 0, optimizer_state = 0, activations = 0, memories = 0, scratch = 0;
  double cublas_workspace = 0;
  double weight_copy = 0;  // modelled bf16 storage: the 16-bit copy of the weights
  double peak() const {
    return parameters + gradients + optimizer_state + activations + scratch + cublas_workspace + weight_copy;
  }
  double roofline_ms(int device) const { return 1e3 * total.roofline_s[static_cast<size_t>(device)]; }
};

StepPlan plan_training_step(const StepPlanRequest& request);

// The plan as text: per-op table, per phase and region table, memory, roofline per GPU.
std::string format_step_plan(const StepPlan& plan);

// Whether the step fits `memory_bytes` of device memory; when it does not, the smallest
// batch_chunk (a divisor of the GPU's batch) with which it does, re-planned.
std::string format_memory_fit(const StepPlan& plan, double memory_bytes, const std::string& device_name);

// gpu_bench's synthetic tokens: log-uniform over the vocabulary (P(id < k) ~ log k / log n),
// a Zipf-like mix that sends most targets to the adaptive softmax's shortlist.
std::vector<int32_t> zipf_like_tokens(int64_t n, int64_t n_token, std::mt19937_64& rng);

// `txl_train CONFIG --plan [--plan_device h100|h200|a100] [--plan_memory_gb N]
// [--plan_ranks N] [--plan_n_token N] [--plan_storage fp32|bf16]`: the plan of the
// configuration's step on one of `ranks` GPUs (default: the job's rank count), checked
// against the device's memory.
struct PlanOptions {
  bool plan = false;
  std::string device = "h100";
  double memory_gb = 0;  // > 0: overrides the device's memory
  int ranks = 1;
  int64_t n_token = 0;           // 0: the corpus file's vocabulary
  std::string storage = "fp32";  // bf16: the modelled mixed-precision storage design
};
// Removes the --plan options from `args`; true when --plan was given.
bool take_plan_options(std::vector<std::string>& args, PlanOptions& options);
// Prints the plan of the resolved configuration (no corpus needed with n_token).
int run_plan_program(const PlanOptions& options, const CommandLine& cl, std::ostream& out);

}  // namespace txl
