// Forward + backward time of a whole Transformer-XL step on the CPU backend (float), by
// default the WikiText-103 base shape: 16 layers, d_model 512, 8 heads of 64, d_inner
// 2048, tgt_len = mem_len = 192, n_token 267735, cutoffs [19997, 39997, 199997],
// div_val 1, tie_weight, tie_projs [F, T, T, T]. Warm-up steps first (they also fill the
// memory), then the median of the timed steps. GFLOP/s counts 3x the model's forward
// FLOPs (TransformerXL::flops_per_token_fwd: backward ~ 2x forward).
//
// --profile wraps the backend in TimingOps and prints the time of every op per step
// (forward / backward), GEMM GFLOP/s and GB/s against the traffic model's bytes
// (bench/op_profile.h), and which fraction of the step its GEMMs take.
//
// Tokens are drawn log-uniformly over the vocabulary (P(id < k) ~ log k / log n_token),
// a Zipf-like mix that sends most targets to the shortlist, as real text does.
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
#include "cpu_bench.h"
#include "gemm_rate.h"
#include "txl/model/transformer_xl.h"
#include "txl/train/step_plan.h"

namespace {

using txl::zipf_like_tokens;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  try {
    CLI::App app{"Forward+backward time of one Transformer-XL step on the CPU (float)"};
    txl::ModelConfig cfg = txl::bench::wt103_base_model();
    cfg.tgt_len = 192;
    cfg.mem_len = 192;
    cfg.dropout = 0.1;
    cfg.dropatt = 0.0;
    int64_t batch = 1;
    int warmup = 1, steps = 3;
    bool train_dropout = true, profile = false;
    txl::bench::add_shape_options(app, cfg);
    app.add_option("--batch", batch, "streams")->check(CLI::PositiveNumber);
    app.add_option("--warmup", warmup, "untimed steps (fill the memory)")->check(CLI::NonNegativeNumber);
    app.add_option("--steps", steps, "timed steps (median reported)")->check(CLI::PositiveNumber);
    app.add_flag("!--no-dropout", train_dropout, "run without dropout (default: training mode, dropout 0.1)");
    app.add_flag("--profile", profile, "time every op (bench/op_profile.h)");
    CLI11_PARSE(app, argc, argv);

    txl::TimingOps<float>* timing = nullptr;
    std::unique_ptr<txl::Ops<float>> ops = txl::bench::cpu_backend(profile, &timing);
    txl::TransformerXL<float> model(cfg, *ops);
    model.init_params(1);
    const int64_t qlen = cfg.tgt_len, n = qlen * batch;
    txl::bench::print_model_line(*ops, cfg);
    std::printf("tgt_len %ld mem_len %ld batch %ld, %.1f M parameters, dropout %s\n", static_cast<long>(qlen),
                static_cast<long>(cfg.mem_len), static_cast<long>(batch),
                static_cast<double>(model.params().total_numel()) * 1e-6, train_dropout ? "on" : "off");

    std::mt19937_64 rng(7);
    txl::Memory<float> mem;
    const txl::Tensor<float> dnll =
        txl::to_device(*ops, std::vector<float>(static_cast<size_t>(n), 1.0f / static_cast<float>(n)), {qlen, batch});
    std::vector<double> fwd_ms, step_ms;
    double loss = 0, tail_flops = 0;  // tail: summed over the timed steps, forward
    for (int s = 0; s < warmup + steps; ++s) {
      const auto data = zipf_like_tokens(n, cfg.n_token, rng), target = zipf_like_tokens(n, cfg.n_token, rng);
      const txl::StepContext ctx{train_dropout, 1, static_cast<uint64_t>(s), 0, 0};
      if (timing && s == warmup) timing->reset();
      if (timing) timing->set_phase("untimed");  // zero_grad is outside the timed step
      model.params().zero_grad(*ops);
      if (timing) timing->set_phase("forward");
      const auto t0 = std::chrono::steady_clock::now();
      const txl::Tensor<float>& nll = model.forward(data.data(), target.data(), qlen, batch, mem, ctx);
      ops->synchronize();
      const auto t1 = std::chrono::steady_clock::now();
      loss = ops->sum(nll.data(), nll.numel()) / static_cast<double>(n);
      if (timing) timing->set_phase("backward");
      model.backward(dnll);
      ops->synchronize();
      const auto t2 = std::chrono::steady_clock::now();
      if (s >= warmup) {
        tail_flops += model.tail_cluster_flops_fwd(target.data(), n);
        fwd_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        step_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
      }
      std::printf("step %d%s: %.1f ms (forward %.1f ms), loss %.4f, memory %ld\n", s, s < warmup ? " (warm-up)" : "",
                  std::chrono::duration<double, std::milli>(t2 - t0).count(),
                  std::chrono::duration<double, std::milli>(t1 - t0).count(), loss, static_cast<long>(mem.mlen));
    }
    const double ms = median(step_ms), fms = median(fwd_ms);
    const double flops_tok = model.flops_per_token_fwd(batch);
    const double tok_s = static_cast<double>(n) / (ms * 1e-3);
    std::printf("median of %d steps: %.1f ms/step (forward %.1f ms, backward %.1f ms), %.0f tok/s\n", steps, ms, fms,
                ms - fms, tok_s);
    std::printf("model FLOPs: %.1f MFLOP/token forward, %.1f GFLOP/step fwd+bwd; achieved %.1f GFLOP/s "
                "(forward alone %.1f GFLOP/s)\n",
                flops_tok * 1e-6, 3 * flops_tok * static_cast<double>(n) * 1e-9, 3 * flops_tok * tok_s * 1e-9,
                flops_tok * static_cast<double>(n) / (fms * 1e-3) * 1e-9);
    const double tail_step = 3 * tail_flops / static_cast<double>(steps);
    const double all_gemm = (3 * flops_tok * static_cast<double>(n) + tail_step) / (ms * 1e-3) * 1e-9;
    std::printf("with the tail-cluster logits these targets needed (data-dependent, not in the model FLOPs): "
                "+%.1f GFLOP/step, all GEMM work %.1f GFLOP/s\n",
                tail_step * 1e-9, all_gemm);
    txl::bench::print_fraction_of_gemm_rate(3 * flops_tok * tok_s * 1e-9, all_gemm);
    if (timing) {
      txl::StepPlanRequest rq;
      rq.model = cfg;
      rq.chunk_batch = batch;
      rq.precision = txl::PlanPrecision::kFp32;
      // The profile covers every timed step: compare it with their mean, not the median.
      double mean_ms = 0;
      for (double t : step_ms) mean_ms += t / static_cast<double>(step_ms.size());
      txl::bench::print_op_profile(*timing, steps, mean_ms * 1e-3, txl::plan_training_step(rq).by_op);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
