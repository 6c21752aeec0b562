// allreduce_overlap: does the bucketed gradient all-reduce hide communication behind
// backward? Run under MPI with 2 or more ranks:
//   mpirun -np 2 build/bin/allreduce_overlap --model enwik8_base
// A simulated backward walks the parameters of a real Transformer-XL shape in gradient
// completion order (loss head, layers from last to first, embedding), "computes" each
// gradient with a fixed amount of arithmetic per element and reports it ready. The
// arithmetic per element is calibrated so that backward alone takes `--compute-ratio`
// times one all-reduce of the whole gradient. Reported per mode (median over steps):
//   compute      backward alone (no communication)
//   after        backward, then one all-reduce of the whole gradient (no overlap)
//   thread/poll  overlapped buckets (see include/txl/dist/bucketed_grad_reducer.h)
// hidden = 1 - (step - compute) / (after - compute): the share of the all-reduce time
// that no longer shows in the step.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "txl/core/error.h"
#include "txl/dist/bucketed_grad_reducer.h"
#include "txl/dist/world.h"

namespace {

using txl::FlatSlice;

struct NamedShape {
  std::string name;
  int64_t numel;
};

// Parameters in gradient-completion order for a model shape (docs/model.md §8 tensors; the tied
// output weight is the embedding, whose gradient is final last).
std::vector<NamedShape> model_params(const std::string& model) {
  int64_t n_layer, d_model, n_head, d_head, d_inner, n_token;
  std::vector<int64_t> cutoffs;
  if (model == "enwik8_base") {
    n_layer = 12, d_model = 512, n_head = 8, d_head = 64, d_inner = 2048, n_token = 204;
  } else if (model == "wt103_base") {
    n_layer = 16, d_model = 512, n_head = 8, d_head = 64, d_inner = 2048, n_token = 267735;
    cutoffs = {19997, 39997, 199997};
  } else if (model == "tiny") {
    n_layer = 2, d_model = 64, n_head = 2, d_head = 32, d_inner = 128, n_token = 1000;
  } else {
    txl::failf("--model '{}' is not one of enwik8_base, wt103_base, tiny", model);
  }
  std::vector<NamedShape> p;
  if (!cutoffs.empty()) {
    p.push_back({"crit.cluster_weight", static_cast<int64_t>(cutoffs.size()) * d_model});
    p.push_back({"crit.cluster_bias", static_cast<int64_t>(cutoffs.size())});
  }
  p.push_back({"crit.out_layers_biases", n_token});
  for (int64_t l = n_layer - 1; l >= 0; --l) {
    const std::string pre = fmt::format("layers.{}.", l);
    p.push_back({pre + "pos_ff.layer_norm.weight", d_model});
    p.push_back({pre + "pos_ff.layer_norm.bias", d_model});
    p.push_back({pre + "pos_ff.CoreNet.3.weight", d_model * d_inner});
    p.push_back({pre + "pos_ff.CoreNet.3.bias", d_model});
    p.push_back({pre + "pos_ff.CoreNet.0.weight", d_inner * d_model});
    p.push_back({pre + "pos_ff.CoreNet.0.bias", d_inner});
    p.push_back({pre + "dec_attn.layer_norm.weight", d_model});
    p.push_back({pre + "dec_attn.layer_norm.bias", d_model});
    p.push_back({pre + "dec_attn.o_net.weight", d_model * n_head * d_head});
    p.push_back({pre + "dec_attn.r_net.weight", n_head * d_head * d_model});
    p.push_back({pre + "dec_attn.qkv_net.weight", 3 * n_head * d_head * d_model});
  }
  p.push_back({"r_w_bias", n_head * d_head});
  p.push_back({"r_r_bias", n_head * d_head});
  p.push_back({"word_emb.emb_layers.0.weight", n_token * d_model});
  return p;
}

// Gradient value of element i on `rank` after `rounds` rounds of arithmetic.
inline float simulated_grad(int rank, int64_t i, int rounds) {
  float v = static_cast<float>(rank + 1) + static_cast<float>(i % 1024) * (1.0f / 1024.0f);
  for (int k = 0; k < rounds; ++k) v = v * 0.999f + 0.001f;
  return v;
}

// Backward stand-in: writes every gradient in completion order, reporting each one.
void simulated_backward(float* grad, const std::vector<FlatSlice>& slices, int rank, int rounds,
                        txl::GradReducer* reducer) {
  for (int id = 0; id < static_cast<int>(slices.size()); ++id) {
    float* g = grad + slices[id].offset;
    const int64_t n = slices[id].numel;
    const int64_t base = slices[id].offset;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) g[i] = simulated_grad(rank, base + i, rounds);
    if (reducer) reducer->on_grad_ready(id);
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Mean over ranks of each rank's median step time.
double mean_over_ranks(txl::Communicator& comm, double value) {
  comm.allreduce_sum(&value, 1);
  return value / comm.size();
}

int run(txl::Communicator& comm, int argc, char** argv) {
  CLI::App app{"Step time of bucketed, overlapped gradient all-reduce vs one all-reduce after backward"};
  std::string model = "enwik8_base";
  double bucket_mb = 25.0, compute_ratio = 1.0;
  int steps = 5;
  std::string modes = "thread,poll";
  app.add_option("--model", model, "parameter shapes: enwik8_base, wt103_base, tiny");
  app.add_option("--bucket-mb", bucket_mb, "bucket size in MiB");
  app.add_option("--compute-ratio", compute_ratio, "backward time / all-reduce time to simulate");
  app.add_option("--steps", steps, "timed steps per mode (median reported)");
  app.add_option("--modes", modes, "overlapped progress modes to time: thread,poll");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  TXL_CHECK(comm.size() >= 2, "allreduce_overlap needs at least 2 MPI ranks (mpirun -np 2 ...)");
  const int rank = comm.rank();

  const std::vector<NamedShape> shapes = model_params(model);
  std::vector<FlatSlice> slices;
  int64_t total = 0;
  for (const NamedShape& s : shapes) {
    slices.push_back(FlatSlice{total, s.numel});
    total += s.numel;
  }
  std::vector<float> grad(static_cast<size_t>(total), 0.0f);

  // One all-reduce of everything, and the cost of one arithmetic round per element.
  std::vector<double> comm_times;
  for (int s = 0; s < 3; ++s) {
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    comm.allreduce_sum(grad.data(), total);
    comm_times.push_back(seconds_since(t0));
  }
  const double t_comm = mean_over_ranks(comm, median(comm_times));
  // Rounds of arithmetic per element so that backward alone takes compute_ratio * t_comm:
  // a first guess, then two corrections (few rounds are memory-bound, many compute-bound).
  int rounds = 64;
  for (int pass = 0; pass < 3; ++pass) {
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    simulated_backward(grad.data(), slices, rank, rounds, nullptr);
    const double t = mean_over_ranks(comm, seconds_since(t0));
    rounds = std::max(1, static_cast<int>(std::lround(rounds * compute_ratio * t_comm / t)));
  }

  // Every mode's reducer; the modes take turns step by step, so that a change in the
  // machine's load during the run affects all of them alike.
  std::vector<std::string> mode_names = {"compute", "after"};
  for (std::string rest = modes; !rest.empty();) {
    const size_t comma = rest.find(',');
    mode_names.push_back(rest.substr(0, comma));
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
  }
  std::vector<std::unique_ptr<txl::BucketedGradReducer>> reducers;
  for (const std::string& mode : mode_names) {
    if (mode == "compute") {
      reducers.push_back(nullptr);
      continue;
    }
    txl::GradReducerOptions options;
    options.bucket_mb = mode == "after" ? 0.0 : bucket_mb;
    options.progress = mode == "after" ? txl::GradProgress::kAfterBackward : txl::parse_grad_progress(mode);
    reducers.push_back(std::make_unique<txl::BucketedGradReducer>(comm, grad.data(), slices, options));
  }
  std::vector<std::vector<double>> times(mode_names.size()), backward_times(mode_names.size());
  for (int s = 0; s < steps + 1; ++s) {  // step 0 warms up
    for (size_t m = 0; m < mode_names.size(); ++m) {
      txl::BucketedGradReducer* reducer = reducers[m].get();
      comm.barrier();
      const auto start = std::chrono::steady_clock::now();
      if (reducer) reducer->begin(true);
      simulated_backward(grad.data(), slices, rank, rounds, reducer);
      const double backward = seconds_since(start);
      if (reducer) reducer->finish();
      if (s > 0) times[m].push_back(seconds_since(start));
      if (s > 0) backward_times[m].push_back(backward);
      if (reducer) {  // the reduced gradient must be the sum over ranks
        for (int64_t i = 0; i < total; i += 9973) {
          float expected = 0.0f;
          for (int r = 0; r < comm.size(); ++r) expected += simulated_grad(r, i, rounds);
          TXL_CHECK(std::fabs(grad[static_cast<size_t>(i)] - expected) <= 1e-5f * std::fabs(expected),
                    "mode {}: element {} is {} after the all-reduce, expected {}", mode_names[m], i,
                    grad[static_cast<size_t>(i)], expected);
        }
      }
    }
  }
  struct Result {
    std::string mode;
    double seconds, backward_seconds;
    int buckets;
  };
  std::vector<Result> results;
  for (size_t m = 0; m < mode_names.size(); ++m) {
    results.push_back({mode_names[m], mean_over_ranks(comm, median(times[m])),
                       mean_over_ranks(comm, median(backward_times[m])),
                       reducers[m] ? static_cast<int>(reducers[m]->buckets().size()) : 0});
  }

  if (rank == 0) {
    const double t_compute = results[0].seconds, t_after = results[1].seconds;
    std::printf("allreduce_overlap: %s, %d ranks, %lld parameters (%.1f MiB of gradients), bucket %.1f MiB\n",
                model.c_str(), comm.size(), static_cast<long long>(total), total * 4.0 / 1048576.0, bucket_mb);
    std::printf("one all-reduce of the whole gradient: %.1f ms; backward simulated with %d rounds/element\n",
                t_comm * 1e3, rounds);
    // backward_ms: until the last gradient is reported; wait_ms: finish() after it.
    std::printf("%-8s %8s %10s %12s %8s %10s %8s\n", "mode", "buckets", "step_ms", "backward_ms", "wait_ms",
                "exposed_ms", "hidden");
    for (const Result& r : results) {
      const double exposed = r.seconds - t_compute;
      const double hidden = r.mode == "compute" ? 0.0 : 1.0 - exposed / (t_after - t_compute);
      std::printf("%-8s %8d %10.1f %12.1f %8.1f %10.1f %7.0f%%\n", r.mode.c_str(), r.buckets, r.seconds * 1e3,
                  r.backward_seconds * 1e3, (r.seconds - r.backward_seconds) * 1e3, exposed * 1e3,
                  r.mode == "compute" ? 0.0 : hidden * 100.0);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<txl::Communicator> comm;
  try {
    comm = txl::init_world(argc, argv);
    return run(*comm, argc, argv);
  } catch (const std::exception& e) {
    return txl::exit_after_error(comm.get(), e);
  }
}
