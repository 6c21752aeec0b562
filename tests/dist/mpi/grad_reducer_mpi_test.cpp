// BucketedGradReducer across real MPI ranks: the reduced gradient is the sum of every
// rank's gradient, identical on all ranks, for every bucket size and progress mode.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "mpi_test_world.h"
#include "txl/core/error.h"
#include "txl/core/ops.h"
#include "txl/dist/bucketed_grad_reducer.h"

namespace txl::test {
namespace {

// Parameter sizes of mixed magnitude (a bias, a 1-element scalar, big matrices).
const std::vector<int64_t> kSizes = {1000, 7, 50000, 300, 123457, 64, 1, 2048, 9000};

std::vector<FlatSlice> layout() {
  std::vector<FlatSlice> slices;
  int64_t offset = 0;
  for (int64_t n : kSizes) {
    slices.push_back({offset, n});
    offset += n;
  }
  return slices;
}

int64_t total_numel() { return std::accumulate(kSizes.begin(), kSizes.end(), int64_t{0}); }

// Rank r's gradient for trial `trial` (every rank can compute every other rank's).
std::vector<float> rank_grad(int rank, int trial) {
  std::mt19937 rng(static_cast<uint32_t>(1000 * trial + rank));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> g(static_cast<size_t>(total_numel()));
  for (float& x : g) x = normal(rng);
  return g;
}

// Checks `got` against the sum over ranks (exact for 2 ranks, where a+b is the only
// order), and that every rank holds the same bits.
void expect_sum_on_every_rank(Communicator& comm, const std::vector<float>& got, int trial, const std::string& what) {
  const int W = comm.size();
  std::vector<std::vector<float>> all;
  for (int r = 0; r < W; ++r) all.push_back(rank_grad(r, trial));
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (W == 2) {
      if (got[i] != all[0][i] + all[1][i]) ++bad;
    } else {
      double sum = 0.0, mag = 0.0;
      for (int r = 0; r < W; ++r) sum += all[r][i], mag += std::fabs(all[r][i]);
      if (std::fabs(got[i] - sum) > 1e-6 * mag + 1e-30) ++bad;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": elements that are not the sum over ranks";
  std::vector<float> reference = got;
  comm.broadcast(reference.data(), reference.size() * sizeof(float), 0);
  EXPECT_EQ(std::memcmp(reference.data(), got.data(), got.size() * sizeof(float)), 0)
      << what << ": rank " << comm.rank() << " differs from rank 0";
}

enum class Order { kFlat, kReversed, kShuffled, kHalfReported };

std::vector<int> report_order(Order order) {
  std::vector<int> ids(kSizes.size());
  std::iota(ids.begin(), ids.end(), 0);
  if (order == Order::kReversed) std::reverse(ids.begin(), ids.end());
  if (order == Order::kShuffled) std::shuffle(ids.begin(), ids.end(), std::mt19937(7));  // same on every rank
  if (order == Order::kHalfReported) ids.resize(ids.size() / 2);
  return ids;
}

struct Case {
  double bucket_mb;
  GradProgress progress;
};

TEST(BucketedGradReducer, SumsEveryRanksGradientForAllBucketSizesAndModes) {
  Communicator& comm = world();
  const std::vector<double> bucket_sizes = {
      1e-6,  // smaller than any parameter: one parameter per bucket
      0.1,   // ~26k floats: several parameters per bucket, the big one alone
      0.0,   // one bucket after backward
      25.0,  // the default: everything fits in one overlapped bucket
  };
  int trial = 0;
  for (double mb : bucket_sizes) {
    for (GradProgress mode : {GradProgress::kThread, GradProgress::kPoll, GradProgress::kAfterBackward}) {
      for (Order order : {Order::kFlat, Order::kReversed, Order::kShuffled, Order::kHalfReported}) {
        ++trial;
        std::vector<float> grad = rank_grad(comm.rank(), trial);
        BucketedGradReducer reducer(comm, grad.data(), layout(), GradReducerOptions{mb, mode});
        reducer.begin(true);
        for (int id : report_order(order)) reducer.on_grad_ready(id);
        reducer.finish();
        const std::string what =
            fmt::format("bucket_mb {} mode {} order {}", mb, grad_progress_name(mode), static_cast<int>(order));
        expect_sum_on_every_rank(comm, grad, trial, what);
        EXPECT_EQ(reducer.reductions_started(), static_cast<int64_t>(reducer.buckets().size())) << what;
      }
    }
  }
}

TEST(BucketedGradReducer, BucketCountFollowsBucketSize) {
  Communicator& comm = world();
  std::vector<float> grad(static_cast<size_t>(total_numel()));
  EXPECT_EQ(BucketedGradReducer(comm, grad.data(), layout(), {1e-6, GradProgress::kThread}).buckets().size(),
            kSizes.size());
  EXPECT_EQ(BucketedGradReducer(comm, grad.data(), layout(), {0.0, GradProgress::kThread}).buckets().size(), 1u);
  EXPECT_EQ(BucketedGradReducer(comm, grad.data(), layout(), {25.0, GradProgress::kThread}).buckets().size(), 1u);
  // 0.1 MiB = 26214 floats: [1000 7 50000] [300 123457] [64 1 2048 9000]
  EXPECT_EQ(BucketedGradReducer(comm, grad.data(), layout(), {0.1, GradProgress::kThread}).buckets().size(), 3u);
}

TEST(BucketedGradReducer, OnlyTheLastBatchChunkCommunicates) {
  Communicator& comm = world();
  for (GradProgress mode : {GradProgress::kThread, GradProgress::kPoll, GradProgress::kAfterBackward}) {
    const int trial = 500 + static_cast<int>(mode);
    std::vector<float> grad = rank_grad(comm.rank(), trial);
    const std::vector<float> local = grad;
    BucketedGradReducer reducer(comm, grad.data(), layout(), GradReducerOptions{0.05, mode});
    // Chunks 1..3 of 4: backward runs, nothing is exchanged. finish() after them is
    // optional (chunk 2 skips it, as a trainer may).
    for (int chunk = 0; chunk < 3; ++chunk) {
      reducer.begin(false);
      for (int id = 0; id < static_cast<int>(kSizes.size()); ++id) reducer.on_grad_ready(id);
      if (chunk != 1) reducer.finish();
    }
    EXPECT_EQ(reducer.reductions_started(), 0) << grad_progress_name(mode);
    EXPECT_EQ(grad, local) << grad_progress_name(mode) << ": gradient changed by a non-communicating chunk";
    // The last chunk reduces the accumulated gradient.
    reducer.begin(true);
    for (int id = 0; id < static_cast<int>(kSizes.size()); ++id) reducer.on_grad_ready(id);
    reducer.finish();
    EXPECT_EQ(reducer.reductions_started(), static_cast<int64_t>(reducer.buckets().size()));
    expect_sum_on_every_rank(comm, grad, trial, fmt::format("chunked {}", grad_progress_name(mode)));
  }
}

TEST(BucketedGradReducer, RejectsMisuse) {
  Communicator& comm = world();
  std::vector<float> grad = rank_grad(comm.rank(), 900);
  BucketedGradReducer reducer(comm, grad.data(), layout(), GradReducerOptions{1e-6, GradProgress::kThread});
  EXPECT_THROW(reducer.on_grad_ready(0), Error);  // before begin()
  reducer.begin(true);
  reducer.on_grad_ready(2);
  EXPECT_THROW(reducer.on_grad_ready(2), Error);  // twice
  EXPECT_THROW(reducer.on_grad_ready(static_cast<int>(kSizes.size())), Error);
  EXPECT_THROW(reducer.begin(true), Error);  // previous backward not finished
  reducer.finish();                          // reduces everything, same on every rank
  expect_sum_on_every_rank(comm, grad, 900, "after misuse");
}

TEST(BucketedGradReducer, ReducesAParamStoresFlatGradient) {
  Communicator& comm = world();
  auto ops = make_cpu_ops<float>();
  ParamStore<float> params;
  for (size_t i = 0; i < kSizes.size(); ++i) params.add(fmt::format("p{}", i), {kSizes[i]}, ParamInit::kWeight);
  params.allocate(*ops);
  const std::vector<float> local = rank_grad(comm.rank(), 77);
  std::memcpy(params.flat_grads().data(), local.data(), local.size() * sizeof(float));
  auto reducer = make_grad_reducer(comm, params, 0.01);
  reducer->begin(true);
  for (int id = 0; id < params.size(); ++id) reducer->on_grad_ready(id);
  reducer->finish();
  std::vector<float> got(params.flat_grads().data(), params.flat_grads().data() + params.total_numel());
  expect_sum_on_every_rank(comm, got, 77, "ParamStore");
}

}  // namespace
}  // namespace txl::test
