// Tokens/s of generation: the incremental decoder (one query row per token against cached
// keys and values, incremental_decoder.h) against recomputing [memory, pending tokens] with
// a model forward per token (IncrementalDecoder Mode::kRecompute), on random weights, in one
// run so the ratio is measured under the same machine load. Shapes: `wt103_base` (16
// layers, d_model 512, 8 heads of 64, d_inner 2048, n_token 267735, cutoffs 19997, 39997,
// 199997, div_val 1) and `small` (4 layers, d_model 128, 4 heads of 32, d_inner 512, n_token
// 18328, cutoffs 2000, 6000: the quick start's model). Evaluation lengths: tgt_len 64,
// mem_len 640, clamp_len 400, same_length. A prompt of mem_len + 1 tokens fills the
// memory first; then both paths decode the same `--tokens` positions (each feed includes
// the adaptive-softmax head for the greedy choice). --device cuda runs the same on the
// CUDA backend where the build and the machine have one, and says "unmeasured" otherwise.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "txl/generate/clustered_log_probs.h"
#include "txl/generate/token_sampler.h"
#include "txl/model/adaptive_distribution.h"
#include "txl/model/incremental_decoder.h"
#include "txl/train/backend.h"
#include "cpu_bench.h"

namespace {

using Clock = std::chrono::steady_clock;

txl::ModelConfig shape(const std::string& name) {
  txl::ModelConfig c;
  if (name == "wt103_base") {
    c = txl::bench::wt103_base_model();
  } else {
    c.n_token = 18328;
    c.cutoffs = {2000, 6000};
    c.n_layer = 4;
    c.d_model = 128;
    c.n_head = 4;
    c.d_head = 32;
    c.d_inner = 512;
  }
  c.div_val = 1;
  c.dropout = 0.0;
  c.tgt_len = 64;
  c.mem_len = 640;
  return c;
}

// Seconds to decode `tokens` positions greedily after the prompt.
// `model_seconds` gets the part spent in the decoder (the model pass), the rest being the
// loss head and the greedy choice, which both paths share.
double decode_seconds(txl::TransformerXL<float>& model, txl::IncrementalDecoder<float>::Mode mode,
                      const std::vector<int32_t>& prompt, int64_t tokens, std::vector<int32_t>* chosen,
                      double* model_seconds) {
  txl::Ops<float>& ops = model.ops();
  txl::IncrementalDecoder<float> decoder(model, mode);
  txl::AdaptiveSoftmaxDistribution<float> head(model.config());
  head.bind(model.params());
  const txl::ModelConfig& c = model.config();
  std::vector<int64_t> bounds;
  for (int64_t k = 0; k <= c.n_clusters(); ++k) bounds.push_back(c.cluster_begin(k));
  bounds.push_back(c.n_token);
  decoder.reset(1);
  const txl::Tensor<float>* hidden = &decoder.feed(prompt.data(), static_cast<int64_t>(prompt.size()));
  txl::generate::SamplingSettings greedy;
  greedy.greedy = true;
  ops.synchronize();
  const auto start = Clock::now();
  for (int64_t t = 0; t < tokens; ++t) {
    const std::vector<double>& lp = head.compute_head(ops, model.params(), *hidden);
    txl::generate::ClusteredLogProbs d(bounds, lp, [&](int64_t k) { return head.tail_log_probs(ops, model.params(), 0, k); });
    const int32_t id = txl::generate::choose_token(d, greedy, 0, static_cast<uint64_t>(t));
    chosen->push_back(id);
    ops.synchronize();
    const auto feed_start = Clock::now();
    hidden = &decoder.feed(&id, 1);
    ops.synchronize();
    *model_seconds += std::chrono::duration<double>(Clock::now() - feed_start).count();
  }
  ops.synchronize();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape_name = "wt103_base", device = "cpu";
  int64_t tokens = 32, recompute_tokens = -1;
  CLI::App app{"generation speed: incremental decoding against a full recompute per token"};
  app.add_option("--shape", shape_name, "wt103_base or small")->capture_default_str();
  app.add_option("--device", device, "cpu or cuda")->capture_default_str();
  app.add_option("--tokens", tokens, "positions decoded by the incremental path")->capture_default_str();
  app.add_option("--recompute_tokens", recompute_tokens, "positions decoded by the recompute path (default: --tokens)");
  CLI11_PARSE(app, argc, argv);
  if (recompute_tokens < 0) recompute_tokens = tokens;
  try {
    std::unique_ptr<txl::Ops<float>> ops;
    try {
      ops = txl::make_backend(device, "fp32", 0);
    } catch (const std::exception& e) {
      std::printf("%s %s: unmeasured (%s)\n", shape_name.c_str(), device.c_str(), e.what());
      return 0;
    }
    txl::ModelConfig cfg = shape(shape_name);
    txl::TransformerXL<float> model(cfg, *ops);
    model.init_params(1);
    model.set_lengths(64, 0, 640, true, 400);
    std::mt19937_64 rng(3);
    std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(cfg.n_token - 1));
    std::vector<int32_t> prompt(641);
    for (int32_t& t : prompt) t = id(rng);
    std::vector<int32_t> fast_ids, slow_ids;
    double fast_model = 0.0, slow_model = 0.0;
    const double fast =
        decode_seconds(model, txl::IncrementalDecoder<float>::Mode::kAuto, prompt, tokens, &fast_ids, &fast_model);
    const double slow = decode_seconds(model, txl::IncrementalDecoder<float>::Mode::kRecompute, prompt,
                                       recompute_tokens, &slow_ids, &slow_model);
    const double fast_rate = static_cast<double>(tokens) / fast, slow_rate = static_cast<double>(recompute_tokens) / slow;
    size_t same = 0;
    for (size_t i = 0; i < std::min(fast_ids.size(), slow_ids.size()); ++i) same += fast_ids[i] == slow_ids[i];
    const double fast_model_rate = static_cast<double>(tokens) / fast_model;
    const double slow_model_rate = static_cast<double>(recompute_tokens) / slow_model;
    std::printf("%s %s (%s, %d threads) mem_len 640 tgt_len 64: end to end incremental %.2f tok/s (%ld tokens), "
                "recompute %.3f tok/s (%ld tokens), ratio %.1fx; model pass only: incremental %.2f tok/s, recompute "
                "%.3f tok/s, ratio %.1fx; greedy tokens equal on %zu of %zu positions\n",
                shape_name.c_str(), device.c_str(), ops->name(), omp_get_max_threads(), fast_rate,
                static_cast<long>(tokens), slow_rate, static_cast<long>(recompute_tokens), fast_rate / slow_rate,
                fast_model_rate, slow_model_rate, fast_model_rate / slow_model_rate, same,
                std::min(fast_ids.size(), slow_ids.size()));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
