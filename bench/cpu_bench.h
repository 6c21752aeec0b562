// What the CPU benches (cpu_fwdbwd, cpu_eval, generate_speed) share: the recipe's
// WikiText-103 base model, their shape options, the backend (optionally wrapped in
// TimingOps for --profile) and the line that describes the model.
#pragma once
#include <omp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <utility>

#include "txl/core/timing_ops.h"
#include "txl/model/model_config.h"

namespace txl::bench {

// 16 layers, d_model 512, 8 heads of 64, d_inner 2048, adaptive input and softmax over
// 267735 tokens with cutoffs [19997, 39997, 199997], div_val 1, tied weights and tail
// projections. Lengths and dropout are the caller's.
inline ModelConfig wt103_base_model() {
  ModelConfig cfg;
  cfg.n_token = 267735;
  cfg.n_layer = 16;
  cfg.n_head = 8;
  cfg.d_head = 64;
  cfg.d_model = 512;
  cfg.d_inner = 2048;
  cfg.cutoffs = {19997, 39997, 199997};
  cfg.div_val = 1;
  cfg.tie_weight = true;
  cfg.tie_projs = {false, true, true, true};
  return cfg;
}

// --n-layer, --d-model, --n-head, --d-head, --d-inner, --tgt-len, --mem-len.
inline void add_shape_options(CLI::App& app, ModelConfig& cfg) {
  app.add_option("--n-layer", cfg.n_layer, "layers")->check(CLI::PositiveNumber);
  app.add_option("--d-model", cfg.d_model, "model width")->check(CLI::PositiveNumber);
  app.add_option("--n-head", cfg.n_head, "heads")->check(CLI::PositiveNumber);
  app.add_option("--d-head", cfg.d_head, "head width")->check(CLI::PositiveNumber);
  app.add_option("--d-inner", cfg.d_inner, "feed-forward width")->check(CLI::PositiveNumber);
  app.add_option("--tgt-len", cfg.tgt_len, "tokens per stream and step")->check(CLI::PositiveNumber);
  app.add_option("--mem-len", cfg.mem_len, "memory length")->check(CLI::NonNegativeNumber);
}

// The CPU backend; with `profile`, wrapped in TimingOps (returned in *timing).
inline std::unique_ptr<Ops<float>> cpu_backend(bool profile, TimingOps<float>** timing) {
  std::unique_ptr<Ops<float>> ops = make_cpu_ops<float>();
  *timing = nullptr;
  if (!profile) return ops;
  auto wrapped = std::make_unique<TimingOps<float>>(std::move(ops));
  *timing = wrapped.get();
  return wrapped;
}

inline void print_model_line(const Ops<float>& ops, const ModelConfig& cfg) {
  std::printf("backend %s, %d threads; n_layer %ld d_model %ld n_head %ld d_head %ld d_inner %ld n_token %ld\n",
              ops.name(), omp_get_max_threads(), static_cast<long>(cfg.n_layer), static_cast<long>(cfg.d_model),
              static_cast<long>(cfg.n_head), static_cast<long>(cfg.d_head), static_cast<long>(cfg.d_inner),
              static_cast<long>(cfg.n_token));
}

}  // namespace txl::bench
