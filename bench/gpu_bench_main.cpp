// GPU throughput of a whole Transformer-XL on the CUDA backend, on synthetic tokens (no
// corpus needed), for the shapes of the `trainbench` presets:
//
//   gpu_bench train --model wt103_base --batch 16 --precision bf16
//       full training steps as txl_train does them: forward, backward, global-norm
//       clipping (0.25), LAMB; fp16 with dynamic loss scaling.
//   gpu_bench eval --model wt103_base --batch 1,2,4,8,16,32 [--type graph]
//       evaluation steps (no dropout) at the preset's eval lengths (wt103 base: tgt_len
//       64, mem_len 640, clamp_len 400, same_length), memory carried between steps;
//       --type graph replays the decoder layers from a CUDA graph (EvalStep).
//   gpu_bench gemm --precision tf32
//       cuBLAS rate of the model's GEMM shapes (a ceiling for the whole step).
//
// Reported: ms/step (median of the timed steps, after warm-up steps that also fill the
// memory), tok/s, the arena's peak of live device memory and the device memory in use,
// and MFU = achieved FLOP/s / peak FLOP/s of the GPU for the GEMM precision. Training
// counts 3x the forward FLOPs per token (TransformerXL::flops_per_token_fwd; backward ~
// 2x forward), evaluation 1x; docs/gpu.md lists the formula and the peaks.
//
// Tokens are drawn log-uniformly over the vocabulary (P(id < k) ~ log k / log n_token),
// a Zipf-like mix that sends most targets to the shortlist, as real text does.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "txl/core/loss_scaler.h"
#include "txl/optim/update_step.h"
#include "txl/model/eval_step.h"
#include "txl/model/transformer_xl.h"
#include "txl/optim/optimizer.h"
#include "txl/train/step_plan.h"
#if defined(TXL_WITH_CUDA)
#include <cuda_runtime.h>

#include "txl/cuda/cuda_graph.h"
#include "txl/cuda/cuda_ops.h"
#endif

namespace {

using txl::ModelConfig;

// The shapes of configs/<name>.yaml (model and the `eval` section), WikiText-103
// vocabulary and the recipe's adaptive-softmax settings.
struct Preset {
  ModelConfig model;
  int64_t eval_tgt_len, eval_mem_len, eval_clamp_len;
};

Preset preset(const std::string& name) {
  Preset p;
  ModelConfig& c = p.model;
  c.n_token = 267735;
  c.cutoffs = {19997, 39997, 199997};
  c.tie_weight = true;
  c.tie_projs = {false, true, true, true};
  if (name == "wt103_base") {
    c.n_layer = 16;
    c.d_model = 512;
    c.n_head = 8;
    c.d_head = 64;
    c.d_inner = 2048;
    c.div_val = 1;
    c.dropout = 0.1;
    c.dropatt = 0.0;
    c.tgt_len = 192;
    c.mem_len = 192;
    p.eval_tgt_len = 64;
    p.eval_mem_len = 640;
    p.eval_clamp_len = 400;
  } else if (name == "wt103_large") {
    c.n_layer = 18;
    c.d_model = 1024;
    c.n_head = 16;
    c.d_head = 64;
    c.d_inner = 4096;
    c.div_val = 4;
    c.dropout = 0.2;
    c.dropatt = 0.2;
    c.tgt_len = 384;
    c.mem_len = 384;
    c.init.init_std = 0.005;
    p.eval_tgt_len = 128;
    p.eval_mem_len = 1600;
    p.eval_clamp_len = 1000;
  } else {
    txl::failf("--model: unknown value '{}' (wt103_base | wt103_large)", name);
  }
  return p;
}

// The traffic model's prediction for a training step (include/txl/train/step_plan.h).
txl::StepPlan plan_for(const std::string& model, const std::string& precision, int64_t batch, int64_t batch_chunk,
                       const std::string& storage = "fp32") {
  txl::StepPlanRequest rq;
  rq.model = preset(model).model;
  rq.chunk_batch = batch / batch_chunk;
  rq.batch_chunk = batch_chunk;
  rq.precision = txl::parse_plan_precision(precision);
  rq.storage = txl::parse_plan_storage(storage);
  rq.optim = "lamb";
  rq.label = model;
  return txl::plan_training_step(rq);
}

int run_plan(const std::string& model, const std::string& precision, int64_t batch, int64_t batch_chunk,
             const std::string& device, double memory_gb, const std::string& storage) {
  if (batch % batch_chunk != 0) txl::failf("--batch_chunk: {} does not divide --batch {}", batch_chunk, batch);
  const txl::StepPlan plan = plan_for(model, precision, batch, batch_chunk, storage);
  std::fputs(txl::format_step_plan(plan).c_str(), stdout);
  const txl::DeviceSpec* spec = txl::find_plan_device(device);
  if (!spec) txl::failf("--plan_device: unknown value '{}' (h100 | h200 | a100)", device);
  const double bytes = memory_gb > 0 ? memory_gb * 1e9 : spec->memory_bytes;
  std::fputs(txl::format_memory_fit(plan, bytes, memory_gb > 0 ? fmt::format("{} GB", memory_gb) : spec->name).c_str(),
             stdout);
  return 0;
}

#if defined(TXL_WITH_CUDA)
using Clock = std::chrono::steady_clock;

using txl::zipf_like_tokens;

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::min<double>(static_cast<double>(v.size() - 1), q * static_cast<double>(v.size())));
  return v[i];
}

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// Dense tensor-core (or FP32 core) peak of the GPU in FLOP/s; 0 when unknown.
double peak_flops(const std::string& gpu, txl::GemmPrecision p) {
  const bool hopper = gpu.find("H100") != std::string::npos || gpu.find("H200") != std::string::npos ||
                      gpu.find("GH200") != std::string::npos;
  const bool pcie = gpu.find("PCIe") != std::string::npos;
  const bool a100 = gpu.find("A100") != std::string::npos;
  switch (p) {
    case txl::GemmPrecision::kFp32: return hopper ? (pcie ? 51.2e12 : 66.9e12) : a100 ? 19.5e12 : 0.0;
    case txl::GemmPrecision::kTf32: return hopper ? (pcie ? 378e12 : 494.7e12) : a100 ? 156e12 : 0.0;
    case txl::GemmPrecision::kBf16:
    case txl::GemmPrecision::kFp16: return hopper ? (pcie ? 756e12 : 989.4e12) : a100 ? 312e12 : 0.0;
  }
  return 0.0;
}

struct Device {
  std::string name;
  double total_gib = 0.0;
};
Device device_info(int index) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) return {};
  return {prop.name, static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0)};
}
double device_used_gib() {
  size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) != cudaSuccess) return 0.0;
  return static_cast<double>(total - free) / (1024.0 * 1024.0 * 1024.0);
}

struct Common {
  std::string model = "wt103_base";
  std::string precision = "tf32";
  int warmup = -1;  // -1: enough to fill the memory, plus 2
  int steps = 20;
  double peak_tflops = 0.0;  // 0: from the device name
  std::string json;
  int device = 0;
};

nlohmann::json base_record(const Common& o, const Device& dev, txl::Ops<float>& ops, const ModelConfig& cfg,
                           const txl::TransformerXL<float>& model) {
  return nlohmann::json{{"model", o.model},
                        {"precision", o.precision},
                        {"backend", ops.name()},
                        {"gpu", dev.name},
                        {"gpu_memory_gib", dev.total_gib},
                        {"parameters", model.params().total_numel()},
                        {"n_layer", cfg.n_layer},
                        {"d_model", cfg.d_model}};
}

void write_json(const std::string& path, const nlohmann::json& j) {
  if (path.empty()) return;
  std::ofstream f(path, std::ios::app);
  if (!f) txl::failf("--json: cannot write {}", path);
  f << j.dump() << "\n";
}

double mfu(double flops_per_s, const Common& o, const Device& dev, txl::GemmPrecision p) {
  const double peak = o.peak_tflops > 0 ? o.peak_tflops * 1e12 : peak_flops(dev.name, p);
  return peak > 0 ? flops_per_s / peak : std::nan("");
}

int run_train(const Common& o, int64_t batch) {
  Preset pr = preset(o.model);
  ModelConfig& cfg = pr.model;
  txl::CudaOptions options;
  options.device = o.device;
  options.precision = txl::parse_gemm_precision(o.precision);
  auto ops = txl::make_cuda_ops(options);
  txl::CudaBackend& backend = *txl::as_cuda_backend(*ops);
  const Device dev = device_info(o.device);
  txl::TransformerXL<float> model(cfg, *ops);
  model.init_params(1111);
  auto optimizer = txl::make_optimizer<float>(txl::OptimizerSettings{"lamb", 0.0, 0.0}, model.params(), *ops);
  txl::LossScalerOptions ls;
  ls.enabled = options.precision == txl::GemmPrecision::kFp16;
  txl::DynamicLossScaler scaler(ls);

  const int64_t qlen = cfg.tgt_len, n = qlen * batch;
  const int warmup = o.warmup >= 0 ? o.warmup : static_cast<int>((cfg.mem_len + qlen - 1) / qlen) + 2;
  std::printf("train %s: %s on %s, batch %ld x tgt_len %ld (mem_len %ld), %.1f M parameters, %d warm-up + %d timed steps\n",
              o.model.c_str(), ops->name(), dev.name.c_str(), static_cast<long>(batch), static_cast<long>(qlen),
              static_cast<long>(cfg.mem_len), static_cast<double>(model.params().total_numel()) * 1e-6, warmup,
              o.steps);
  std::fflush(stdout);
  std::mt19937_64 rng(7);
  txl::Memory<float> mem;
  txl::Tensor<float> dnll = ops->empty({qlen, batch});
  txl::Tensor<double> loss_sum({1}, ops->allocator());
  txl::DeviceStepScalars scalars(*ops);
  std::vector<double> step_ms;
  double loss = 0.0;
  int64_t skipped = 0;
  for (int s = 0; s < warmup + o.steps; ++s) {
    if (s == warmup) backend.arena().reset_peak();
    const auto data = zipf_like_tokens(n, cfg.n_token, rng), target = zipf_like_tokens(n, cfg.n_token, rng);
    txl::StepContext ctx;
    ctx.train = true;
    ctx.seed = 1111;
    ctx.step = static_cast<uint64_t>(s + 1);
    const auto t0 = Clock::now();
    // As the trainer's step: no zero_grad (the optimizer cleared the gradients), the loss
    // and the update's scalars stay on the device (bf16/tf32/fp32: no host wait inside).
    const txl::Tensor<float>& nll = model.forward(data.data(), target.data(), qlen, batch, mem, ctx);
    ops->sum_to_device(nll.data(), n, loss_sum.data());
    ops->fill(dnll.data(), n, static_cast<float>(scaler.scale() / static_cast<double>(n)));
    model.backward(dnll);
    txl::StepLossArgs la;
    la.tokens_per_chunk = n;
    la.step = s + 1;
    la.check_finite = !scaler.enabled();
    ops->step_loss_update(loss_sum.data(), la, scalars.data());
    // The trainer's update: norm, fp16 skip decision, clipping to 0.25, LAMB at lr 0.01.
    if (!txl::clip_and_step(*ops, model.params(), *optimizer, scaler, 1, 0.25, 0.01, s + 1, scalars).applied)
      ++skipped;
    ops->synchronize();
    const double ms = ms_since(t0);
    loss = scalars.read(*ops).loss;  // outside the timed step
    if (s >= warmup) step_ms.push_back(ms);
    if (s < warmup || s == warmup + o.steps - 1)
      std::printf("  step %d%s: %.2f ms, loss %.4f\n", s + 1, s < warmup ? " (warm-up)" : "", ms, loss);
  }
  const double ms = percentile(step_ms, 0.5);
  const double tok_s = static_cast<double>(n) / (ms * 1e-3);
  const double flops_tok = 3.0 * model.flops_per_token_fwd(batch);
  const double util = mfu(flops_tok * tok_s, o, dev, options.precision);
  const auto st = backend.arena().stats();
  std::printf("RESULT train %s %s batch %ld: %.2f ms/step, %.0f tok/s, %.1f TFLOP/s, MFU %.1f%%, peak live %.2f GiB, "
              "arena %.2f GiB, device used %.2f GiB%s\n",
              o.model.c_str(), o.precision.c_str(), static_cast<long>(batch), ms, tok_s, flops_tok * tok_s * 1e-12,
              100.0 * util, static_cast<double>(st.peak_in_use) / (1u << 30), static_cast<double>(st.reserved) / (1u << 30),
              device_used_gib(), skipped ? fmt::format(", {} steps skipped (loss scale)", skipped).c_str() : "");
  // The traffic model beside the measurement (docs/gpu.md "Traffic model").
  const txl::StepPlan plan = plan_for(o.model, o.precision, batch, 1);
  const int plan_dev = dev.name.find("H200") != std::string::npos ? 1 : dev.name.find("A100") != std::string::npos ? 2 : 0;
  const double plan_ms = plan.roofline_ms(plan_dev);
  std::printf("PLAN train %s %s batch %ld: roofline %.2f ms/step on %s (measured / roofline %.2f), %.1f GB traffic, "
              "%ld launches, predicted peak %.2f GB\n",
              o.model.c_str(), o.precision.c_str(), static_cast<long>(batch), plan_ms,
              txl::plan_devices()[static_cast<size_t>(plan_dev)].name, ms / plan_ms, plan.total.bytes() * 1e-9,
              static_cast<long>(plan.total.launches), plan.peak() * 1e-9);
  nlohmann::json j = base_record(o, dev, *ops, cfg, model);
  j.update({{"predicted_roofline_ms", plan_ms},
            {"predicted_traffic_gb", plan.total.bytes() * 1e-9},
            {"predicted_launches", plan.total.launches},
            {"predicted_peak_gb", plan.peak() * 1e-9}});
  j.update({{"mode", "train"},
            {"batch", batch},
            {"tgt_len", qlen},
            {"mem_len", cfg.mem_len},
            {"ms_per_step", ms},
            {"ms_p90", percentile(step_ms, 0.9)},
            {"tokens_per_s", tok_s},
            {"flops_per_token", flops_tok},
            {"mfu", std::isnan(util) ? nlohmann::json(nullptr) : nlohmann::json(util)},
            {"peak_live_gib", static_cast<double>(st.peak_in_use) / (1u << 30)},
            {"arena_reserved_gib", static_cast<double>(st.reserved) / (1u << 30)},
            {"final_loss", loss},
            {"skipped_steps", skipped}});
  write_json(o.json, j);
  return 0;
}

int run_eval(const Common& o, const std::vector<int64_t>& batches, const std::string& type) {
  Preset pr = preset(o.model);
  ModelConfig& cfg = pr.model;
  txl::CudaOptions options;
  options.device = o.device;
  options.precision = txl::parse_gemm_precision(o.precision);
  auto ops = txl::make_cuda_ops(options);
  txl::CudaBackend& backend = *txl::as_cuda_backend(*ops);
  const Device dev = device_info(o.device);
  txl::TransformerXL<float> model(cfg, *ops);
  model.init_params(1111);
  model.set_lengths(pr.eval_tgt_len, 0, pr.eval_mem_len, true, pr.eval_clamp_len);
  const int64_t qlen = pr.eval_tgt_len;
  const int warmup = o.warmup >= 0 ? o.warmup : static_cast<int>((pr.eval_mem_len + qlen - 1) / qlen) + 2;
  const bool graph = type == "graph";
  std::printf(
      "eval %s: %s on %s, tgt_len %ld mem_len %ld clamp_len %ld same_length, %s steps, %d warm-up + %d timed steps\n",
      o.model.c_str(), ops->name(), dev.name.c_str(), static_cast<long>(qlen), static_cast<long>(pr.eval_mem_len),
      static_cast<long>(pr.eval_clamp_len), type.c_str(), warmup, o.steps);
  std::fflush(stdout);
  std::mt19937_64 rng(7);
  for (int64_t batch : batches) {
    const int64_t n = qlen * batch;
    txl::Memory<float> mem;
    // graph: the decoder layers are recorded once the memory is full, then replayed.
    txl::EvalStep<float> step(model, graph ? std::make_unique<txl::CudaGraph>(*ops) : nullptr);
    std::vector<double> step_ms;
    double loss = 0.0;
    backend.arena().reset_peak();
    for (int s = 0; s < warmup + o.steps; ++s) {
      const auto data = zipf_like_tokens(n, cfg.n_token, rng), target = zipf_like_tokens(n, cfg.n_token, rng);
      const auto t0 = Clock::now();
      const txl::Tensor<float>& nll = step.forward(data.data(), target.data(), qlen, batch, mem, txl::StepContext{});
      loss = ops->sum(nll.data(), n) / static_cast<double>(n);  // synchronises
      const double ms = ms_since(t0);
      if (s >= warmup) step_ms.push_back(ms);
    }
    const double ms = percentile(step_ms, 0.5);
    const double tok_s = static_cast<double>(n) / (ms * 1e-3);
    const double flops_tok = model.flops_per_token_fwd(batch);
    const double util = mfu(flops_tok * tok_s, o, dev, options.precision);
    const auto st = backend.arena().stats();
    std::printf("RESULT eval %s %s %s batch %ld: %.2f ms/step (p90 %.2f, p99 %.2f), %.0f tok/s, MFU %.1f%%, peak "
                "live %.2f GiB, loss %.3f, %ld replays\n",
                o.model.c_str(), o.precision.c_str(), type.c_str(), static_cast<long>(batch), ms,
                percentile(step_ms, 0.9), percentile(step_ms, 0.99), tok_s, 100.0 * util,
                static_cast<double>(st.peak_in_use) / (1u << 30), loss, static_cast<long>(step.replays()));
    std::fflush(stdout);
    nlohmann::json j = base_record(o, dev, *ops, cfg, model);
    j.update({{"mode", "eval"},
              {"type", type},
              {"graph_replays", step.replays()},
              {"batch", batch},
              {"tgt_len", qlen},
              {"mem_len", pr.eval_mem_len},
              {"ms_per_step", ms},
              {"ms_p90", percentile(step_ms, 0.9)},
              {"ms_p99", percentile(step_ms, 0.99)},
              {"tokens_per_s", tok_s},
              {"flops_per_token", flops_tok},
              {"mfu", std::isnan(util) ? nlohmann::json(nullptr) : nlohmann::json(util)},
              {"peak_live_gib", static_cast<double>(st.peak_in_use) / (1u << 30)}});
    write_json(o.json, j);
  }
  return 0;
}

// cuBLAS rate of the largest GEMMs of a training step of the model (forward shapes:
// tokens x d_model x {3HD, d_inner}, and the shortlist logits).
int run_gemm(const Common& o, int64_t batch) {
  Preset pr = preset(o.model);
  const ModelConfig& cfg = pr.model;
  txl::CudaOptions options;
  options.device = o.device;
  options.precision = txl::parse_gemm_precision(o.precision);
  auto ops = txl::make_cuda_ops(options);
  const Device dev = device_info(o.device);
  const int64_t tokens = batch * cfg.tgt_len, M = cfg.d_model, HD = cfg.n_head * cfg.d_head, F = cfg.d_inner;
  const int64_t head = cfg.cutoffs.at(0) + static_cast<int64_t>(cfg.cutoffs.size());
  struct Shape {
    const char* what;
    int64_t m, n, k;
  };
  const Shape shapes[] = {{"qkv", tokens, 3 * HD, M}, {"ff1", tokens, F, M}, {"ff2", tokens, M, F},
                          {"head logits", tokens, head, M}};
  std::mt19937_64 rng(3);
  for (const Shape& s : shapes) {
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> a(static_cast<size_t>(s.m * s.k)), b(static_cast<size_t>(s.n * s.k));
    for (float& x : a) x = d(rng);
    for (float& x : b) x = d(rng);
    auto A = txl::to_device(*ops, a, {s.m, s.k}), B = txl::to_device(*ops, b, {s.n, s.k});
    txl::Tensor<float> C = ops->empty({s.m, s.n});
    auto once = [&] {
      ops->gemm(txl::Trans::kNo, txl::Trans::kYes, s.m, s.n, s.k, 1.0f, A.data(), s.k, B.data(), s.k, 0.0f, C.data(),
                s.n);
    };
    for (int i = 0; i < 3; ++i) once();
    ops->synchronize();
    const auto t0 = Clock::now();
    for (int i = 0; i < o.steps; ++i) once();
    ops->synchronize();
    const double ms = ms_since(t0) / o.steps;
    const double flops = 2.0 * static_cast<double>(s.m) * static_cast<double>(s.n) * static_cast<double>(s.k);
    const double util = mfu(flops / (ms * 1e-3), o, dev, options.precision);
    std::printf("RESULT gemm %s %s %ldx%ldx%ld: %.3f ms, %.1f TFLOP/s, %.1f%% of peak\n", s.what, o.precision.c_str(),
                static_cast<long>(s.m), static_cast<long>(s.n), static_cast<long>(s.k), ms, flops / (ms * 1e-3) * 1e-12,
                100.0 * util);
    write_json(o.json, nlohmann::json{{"mode", "gemm"},
                                      {"what", s.what},
                                      {"precision", o.precision},
                                      {"gpu", dev.name},
                                      {"m", s.m},
                                      {"n", s.n},
                                      {"k", s.k},
                                      {"ms", ms},
                                      {"tflops", flops / (ms * 1e-3) * 1e-12}});
  }
  return 0;
}

#endif  // TXL_WITH_CUDA

}  // namespace

int main(int argc, char** argv) {
  try {
    CLI::App app{"Training / evaluation throughput of Transformer-XL on the CUDA backend (synthetic tokens)"};
    app.require_subcommand(1);
    std::string plan_model = "wt103_base", plan_precision = "bf16", plan_device = "h100", plan_storage = "fp32";
    int64_t plan_batch = 32, plan_batch_chunk = 1;
    double plan_memory_gb = 0.0;
    CLI::App* plan = app.add_subcommand("plan", "traffic and memory model of a training step (no GPU needed)");
    plan->add_option("--model", plan_model, "wt103_base | wt103_large");
    plan->add_option("--precision", plan_precision, "GEMM precision: fp32 | tf32 | bf16 | fp16");
    plan->add_option("--batch", plan_batch, "streams per GPU")->check(CLI::PositiveNumber);
    plan->add_option("--batch_chunk", plan_batch_chunk, "chunks per step")->check(CLI::PositiveNumber);
    plan->add_option("--plan_device", plan_device, "h100 | h200 | a100: the memory to fit");
    plan->add_option("--plan_memory_gb", plan_memory_gb, "device memory to fit in GB (overrides --plan_device's)");
    plan->add_option("--storage", plan_storage, "fp32 (the landed backend) | bf16 (the modelled storage design)");
#if defined(TXL_WITH_CUDA)
    Common o;
    int64_t train_batch = 16;
    std::string eval_batches = "1,2,4,8,16,32";
    std::string eval_type = "eager";
    auto add_common = [&](CLI::App* sub) {
      sub->add_option("--model", o.model, "wt103_base | wt103_large (the shapes of configs/<model>.yaml)");
      sub->add_option("--precision", o.precision, "GEMM precision: fp32 | tf32 | bf16 | fp16");
      sub->add_option("--warmup", o.warmup, "untimed steps (default: fill the memory, plus 2)");
      sub->add_option("--steps", o.steps, "timed steps")->check(CLI::PositiveNumber);
      sub->add_option("--peak-tflops", o.peak_tflops, "peak of the GPU for MFU (default: from its name)");
      sub->add_option("--json", o.json, "append one JSON record per result to this file");
      sub->add_option("--device", o.device, "CUDA device index");
    };
    CLI::App* train = app.add_subcommand("train", "training steps (forward, backward, clipping, LAMB)");
    add_common(train);
    train->add_option("--batch", train_batch, "streams per GPU")->check(CLI::PositiveNumber);
    CLI::App* eval = app.add_subcommand("eval", "evaluation steps at the preset's eval lengths");
    add_common(eval);
    eval->add_option("--batch", eval_batches, "comma-separated batch sizes");
    eval->add_option("--type", eval_type, "eager | graph (decoder layers replayed from a CUDA graph)");
    CLI::App* gemm = app.add_subcommand("gemm", "cuBLAS rate of the model's GEMM shapes");
    add_common(gemm);
    gemm->add_option("--batch", train_batch, "streams (tokens = batch x tgt_len)")->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);
    if (*plan) return run_plan(plan_model, plan_precision, plan_batch, plan_batch_chunk, plan_device, plan_memory_gb,
                               plan_storage);

    if (txl::cuda_device_count() == 0) txl::fail("gpu_bench: no CUDA device is visible");
    if (*train) return run_train(o, train_batch);
    if (*gemm) return run_gemm(o, train_batch);
    if (eval_type != "eager" && eval_type != "graph") txl::failf("--type: unknown value '{}' (eager | graph)", eval_type);
    std::vector<int64_t> batches;
    size_t pos = 0;
    while (pos <= eval_batches.size()) {
      const size_t comma = eval_batches.find(',', pos);
      const std::string item = eval_batches.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      try {
        batches.push_back(std::stol(item));
      } catch (const std::exception&) {
        txl::failf("--batch: '{}' is not a list of positive integers", eval_batches);
      }
      if (batches.back() <= 0) txl::failf("--batch: '{}' is not a list of positive integers", eval_batches);
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
    return run_eval(o, batches, eval_type);
#else
    CLI11_PARSE(app, argc, argv);
    if (*plan) return run_plan(plan_model, plan_precision, plan_batch, plan_batch_chunk, plan_device, plan_memory_gb,
                               plan_storage);
    txl::fail("gpu_bench: this build has no CUDA backend (configure with -DTXL_CUDA=ON)");
#endif
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
