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
#include "txl/train/step_plan.h"
#include "cpu_bench.h"
#include "gemm_rate.h"

using txl::zipf_like_tokens;

int main(int argc, char** argv) {
  try {
    CLI::App app{"Evaluation step time of Transformer-XL on the CPU (float)"};
    txl::ModelConfig cfg = txl::bench::wt103_base_model();
    cfg.tgt_len = 64;
    cfg.mem_len = 640;
    cfg.clamp_len = 400;
    cfg.same_length = true;
    int64_t batch = 4;
    int steps = 3;
    bool profile = false;
    txl::bench::add_shape_options(app, cfg);
    app.add_option("--clamp-len", cfg.clamp_len, "clamp relative positions (-1: none)");
    app.add_option("--batch", batch, "streams")->check(CLI::PositiveNumber);
    app.add_option("--steps", steps, "timed steps (median reported)")->check(CLI::PositiveNumber);
    app.add_flag("--profile", profile, "time every op (bench/op_profile.h)");
    CLI11_PARSE(app, argc, argv);

    txl::TimingOps<float>* timing = nullptr;
    std::unique_ptr<txl::Ops<float>> ops = txl::bench::cpu_backend(profile, &timing);
    txl::TransformerXL<float> model(cfg, *ops);
    model.init_params(1);
    model.set_lengths(cfg.tgt_len, 0, cfg.mem_len, cfg.same_length, cfg.clamp_len);
    const int64_t qlen = cfg.tgt_len, n = qlen * batch;
    const int warmup = cfg.mem_len > 0 ? static_cast<int>((cfg.mem_len + qlen - 1) / qlen) : 0;
    txl::bench::print_model_line(*ops, cfg);
    std::printf("tgt_len %ld mem_len %ld clamp_len %ld same_length %d batch %ld; %d steps fill the memory\n",
                static_cast<long>(qlen), static_cast<long>(cfg.mem_len), static_cast<long>(cfg.clamp_len),
                cfg.same_length ? 1 : 0, static_cast<long>(batch), warmup);

    std::mt19937_64 rng(7);
    txl::Memory<float> mem;
    std::vector<double> step_ms;
    double tail_flops = 0;  // summed over the timed steps
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
      if (s >= warmup) {
        step_ms.push_back(ms);
        tail_flops += model.tail_cluster_flops_fwd(target.data(), n);
      }
      std::printf("step %d%s: %.1f ms, loss %.4f, memory %ld\n", s, s < warmup ? " (memory filling)" : "", ms, loss,
                  static_cast<long>(mem.mlen));
    }
    std::sort(step_ms.begin(), step_ms.end());
    const double ms = step_ms[step_ms.size() / 2];
    const double flops_tok = model.flops_per_token_fwd(batch);
    const double tok_s = static_cast<double>(n) / (ms * 1e-3);
    std::printf("median of %d steps: %.1f ms/step, %.0f tok/s; model FLOPs %.1f MFLOP/token, achieved %.1f GFLOP/s\n",
                steps, ms, tok_s, flops_tok * 1e-6, flops_tok * tok_s * 1e-9);
    const double tail_step = tail_flops / static_cast<double>(steps);
    const double all_gemm = (flops_tok * static_cast<double>(n) + tail_step) / (ms * 1e-3) * 1e-9;
    std::printf("with the tail-cluster logits these targets needed (data-dependent, not in the model FLOPs): "
                "+%.1f GFLOP/step, all GEMM work %.1f GFLOP/s\n",
                tail_step * 1e-9, all_gemm);
    txl::bench::print_fraction_of_gemm_rate(flops_tok * tok_s * 1e-9, all_gemm);
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
