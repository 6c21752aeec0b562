// Evaluation step time on the CPU backend (float): the forward pass txl_eval runs, by
// default at the WikiText-103 base shape the recipe evaluates with (16 layers, d_model
// 512, 8 heads of 64, d_inner 2048, adaptive softmax over 267735 tokens) and its
// evaluation lengths: tgt_len 64, mem_len 640, clamp_len 400, same_length, batch 4. The
// memory is filled first (ceil(mem_len / tgt_len) untimed steps), then the median of the
// timed steps. GFLOP/s counts the model's forward FLOPs (TransformerXL::flops_per_token_fwd).
// --profile prints the per-op table of bench/op_profile.h.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "op_profile.h"
#include "txl/model/transformer_xl.h"

namespace {

std::vector<int32_t> zipf_like_tokens(int64_t n, int64_t n_token, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, std::log(static_cast<double>(n_token)));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int32_t& id : ids)
    id = static_cast<int32_t>(std::min<int64_t>(n_token - 1, static_cast<int64_t>(std::exp(u(rng))) - 1));
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    CLI::App app{"Evaluation step time of Transformer-XL on the CPU (float)"};
    txl::ModelConfig cfg;
    cfg.n_token = 267735;
    cfg.n_layer = 16;
    cfg.n_head = 8;
    cfg.d_head = 64;
    cfg.d_model = 512;
    cfg.d_inner = 2048;
    cfg.cutoffs = {19997, 39997, 199997};
    cfg.tie_weight = true;
    cfg.tie_projs = {false, true, true, true};
    cfg.tgt_len = 64;
    cfg.mem_len = 640;
    cfg.clamp_len = 400;
    cfg.same_length = true;
    int64_t batch = 4;
    int steps = 3;
    bool profile = false;
    app.add_option("--n-layer", cfg.n_layer, "layers")->check(CLI::PositiveNumber);
    app.add_option("--d-model", cfg.d_model, "model width")->check(CLI::PositiveNumber);
    app.add_option("--n-head", cfg.n_head, "heads")->check(CLI::PositiveNumber);
    app.add_option("--d-head", cfg.d_head, "head width")->check(CLI::PositiveNumber);
    app.add_option("--d-inner", cfg.d_inner, "feed-forward width")->check(CLI::PositiveNumber);
    app.add_option("--tgt-len", cfg.tgt_len, "tokens per stream and step")->check(CLI::PositiveNumber);
    app.add_option("--mem-len", cfg.mem_len, "memory length")->check(CLI::NonNegativeNumber);
    app.add_option("--clamp-len", cfg.clamp_len, "clamp relative positions (-1: none)");
    app.add_option("--batch", batch, "streams")->check(CLI::PositiveNumber);
    app.add_option("--steps", steps, "timed steps (median reported)")->check(CLI::PositiveNumber);
    app.add_flag("--profile", profile, "time every op (bench/op_profile.h)");
    CLI11_PARSE(app, argc, argv);

    std::unique_ptr<txl::Ops<float>> ops = txl::make_cpu_ops<float>();
    txl::TimingOps<float>* timing = nullptr;
    if (profile) {
      auto wrapped = std::make_unique<txl::TimingOps<float>>(std::move(ops));
      timing = wrapped.get();
      ops = std::move(wrapped);
    }
    txl::TransformerXL<float> model(cfg, *ops);
    model.init_params(1);
    model.set_lengths(cfg.tgt_len, 0, cfg.mem_len, cfg.same_length, cfg.clamp_len);
    const int64_t qlen = cfg.tgt_len, n = qlen * batch;
    const int warmup = cfg.mem_len > 0 ? static_cast<int>((cfg.mem_len + qlen - 1) / qlen) : 0;
    std::printf("backend %s, %d threads; n_layer %ld d_model %ld n_head %ld d_head %ld d_inner %ld n_token %ld\n",
                ops->name(), omp_get_max_threads(), static_cast<long>(cfg.n_layer), static_cast<long>(cfg.d_model),
                static_cast<long>(cfg.n_head), static_cast<long>(cfg.d_head), static_cast<long>(cfg.d_inner),
                static_cast<long>(cfg.n_token));
    std::printf("tgt_len %ld mem_len %ld clamp_len %ld same_length %d batch %ld; %d steps fill the memory\n",
                static_cast<long>(qlen), static_cast<long>(cfg.mem_len), static_cast<long>(cfg.clamp_len),
                cfg.same_length ? 1 : 0, static_cast<long>(batch), warmup);

    std::mt19937_64 rng(7);
    txl::Memory<float> mem;
    std::vector<double> step_ms;
    for (int s = 0; s < warmup + steps; ++s) {
      const auto data = zipf_like_tokens(n, cfg.n_token, rng), target = zipf_like_tokens(n, cfg.n_token, rng);
      const txl::StepContext ctx{false, 1, static_cast<uint64_t>(s), 0, 0};
      if (timing && s == warmup) timing->reset();
      if (timing) timing->set_phase("forward");
      const auto t0 = std::chrono::steady_clock::now();
      const txl::Tensor<float>& nll = model.forward(data.data(), target.data(), qlen, batch, mem, ctx);
      const double loss = ops->sum(nll.data(), nll.numel()) / static_cast<double>(n);
      const auto t1 = std::chrono::steady_clock::now();
      const double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
      if (s >= warmup) step_ms.push_back(ms);
      std::printf("step %d%s: %.1f ms, loss %.4f, memory %ld\n", s, s < warmup ? " (memory filling)" : "", ms, loss,
                  static_cast<long>(mem.mlen));
    }
    std::sort(step_ms.begin(), step_ms.end());
    const double ms = step_ms[step_ms.size() / 2];
    const double flops_tok = model.flops_per_token_fwd(batch);
    const double tok_s = static_cast<double>(n) / (ms * 1e-3);
    std::printf("median of %d steps: %.1f ms/step, %.0f tok/s; model FLOPs %.1f MFLOP/token, achieved %.1f GFLOP/s\n",
                steps, ms, tok_s, flops_tok * 1e-6, flops_tok * tok_s * 1e-9);
    if (timing) {
      // The profile covers every timed step: compare it with their mean, not the median.
      double mean_ms = 0;
      for (double t : step_ms) mean_ms += t / static_cast<double>(step_ms.size());
      txl::bench::print_op_profile(*timing, steps, mean_ms * 1e-3, {});
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
