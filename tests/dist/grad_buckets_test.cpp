// Bucket planning and the reducer's control flow, in one process (a recording
// communicator stands in for the other ranks). The multi-rank tests are in mpi/.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "txl/core/error.h"
#include "txl/dist/bucketed_grad_reducer.h"

namespace txl {
namespace {

std::vector<FlatSlice> slices_of(const std::vector<int64_t>& sizes) {
  std::vector<FlatSlice> s;
  int64_t offset = 0;
  for (int64_t n : sizes) {
    s.push_back({offset, n});
    offset += n;
  }
  return s;
}

TEST(PlanGradBuckets, GroupsWholeParametersUntilTheTargetSize) {
  const auto params = slices_of({10, 20, 30, 40, 5});
  // 100 bytes = 25 floats: [10 20] [30] [40] [5]
  const auto b = plan_grad_buckets(params, 100);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[0].offset, 0);
  EXPECT_EQ(b[0].numel, 30);
  EXPECT_EQ(b[0].first_param, 0);
  EXPECT_EQ(b[0].end_param, 2);
  EXPECT_EQ(b[1].offset, 30);
  EXPECT_EQ(b[1].numel, 30);
  EXPECT_EQ(b[2].numel, 40);
  EXPECT_EQ(b[3].offset, 100);
  EXPECT_EQ(b[3].numel, 5);
  EXPECT_EQ(b[3].end_param, 5);
}

TEST(PlanGradBuckets, BucketSmallerThanAParameterGivesOneParameterEach) {
  const auto b = plan_grad_buckets(slices_of({1000, 3, 7}), 4);
  ASSERT_EQ(b.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(b[i].first_param, i);
    EXPECT_EQ(b[i].end_param, i + 1);
  }
}

TEST(PlanGradBuckets, NoTargetGivesOneBucket) {
  const auto b = plan_grad_buckets(slices_of({1000, 3, 7}), 0);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].numel, 1010);
  EXPECT_EQ(b[0].end_param, 3);
}

TEST(PlanGradBuckets, RejectsALayoutWithGaps) {
  std::vector<FlatSlice> gap = {{0, 10}, {12, 5}};
  EXPECT_THROW(plan_grad_buckets(gap, 100), Error);
}

TEST(GradProgressNames, RoundTrip) {
  for (auto p : {GradProgress::kAuto, GradProgress::kThread, GradProgress::kPoll, GradProgress::kAfterBackward,
                 GradProgress::kStream}) {
    EXPECT_EQ(parse_grad_progress(grad_progress_name(p)), p);
  }
  EXPECT_THROW(parse_grad_progress("sometimes"), Error);
}

// Pretends to be a 2-rank world whose other rank has the same gradient: a sum doubles.
// Records which ranges were reduced, in order.
class RecordingCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 2; }
  std::string name() const override { return "recording"; }
  void allreduce_sum(float* data, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) data[i] *= 2.0f;
    std::lock_guard<std::mutex> lock(mutex_);
    calls_.push_back({data, n});
    changed_.notify_all();
  }
  void allreduce_sum(double*, int64_t) override { fail("unexpected double all-reduce"); }
  void broadcast(void*, size_t, int) override { fail("unexpected broadcast"); }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }

  // Waits up to 10 s until `count` reductions happened; returns how many did.
  size_t wait_for(size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, std::chrono::seconds(10), [&] { return calls_.size() >= count; });
    return calls_.size();
  }
  std::vector<std::pair<float*, int64_t>> calls() {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::pair<float*, int64_t>> calls_;
};

TEST(BucketedGradReducer, ThreadModeStartsABucketBeforeBackwardEnds) {
  RecordingCommunicator comm;
  const auto params = slices_of({100, 200, 300});
  std::vector<float> grad(600, 1.0f);
  // 400 bytes = 100 floats: every parameter its own bucket.
  BucketedGradReducer reducer(comm, grad.data(), params, GradReducerOptions{400.0 / 1048576.0, GradProgress::kThread});
  ASSERT_EQ(reducer.buckets().size(), 3u);
  reducer.begin(true);
  reducer.on_grad_ready(0);
  // Backward is still "running" (parameters 1 and 2 not ready): bucket 0 must go anyway.
  ASSERT_EQ(comm.wait_for(1), 1u);
  EXPECT_EQ(comm.calls()[0].first, grad.data());
  EXPECT_EQ(comm.calls()[0].second, 100);
  reducer.on_grad_ready(2);  // out of order: bucket 2 before bucket 1
  ASSERT_EQ(comm.wait_for(2), 2u);
  EXPECT_EQ(comm.calls()[1].first, grad.data() + 300);
  reducer.on_grad_ready(1);
  reducer.finish();
  ASSERT_EQ(comm.calls().size(), 3u);
  for (float g : grad) ASSERT_EQ(g, 2.0f);
}

TEST(BucketedGradReducer, AfterBackwardModeWaitsForFinish) {
  RecordingCommunicator comm;
  std::vector<float> grad(600, 1.0f);
  BucketedGradReducer reducer(comm, grad.data(), slices_of({100, 200, 300}),
                              GradReducerOptions{0.0, GradProgress::kThread});
  EXPECT_EQ(reducer.progress(), GradProgress::kAfterBackward);
  reducer.begin(true);
  for (int id = 0; id < 3; ++id) reducer.on_grad_ready(id);
  EXPECT_TRUE(comm.calls().empty());
  reducer.finish();
  ASSERT_EQ(comm.calls().size(), 1u);
  EXPECT_EQ(comm.calls()[0].second, 600);
}

TEST(BucketedGradReducer, PollModeNeedsMpiAndFallsBackToTheThread) {
  RecordingCommunicator comm;
  std::vector<float> grad(10, 1.0f);
  BucketedGradReducer reducer(comm, grad.data(), slices_of({10}), GradReducerOptions{1.0, GradProgress::kPoll});
  EXPECT_EQ(reducer.progress(), GradProgress::kThread);
}

// A communicator whose collectives are stream-ordered (as NCCL's): records the order of
// enqueues, device waits and blocking calls, on one event log.
class StreamOrderedRecorder final : public Communicator, public StreamOrderedCollectives {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 2; }
  std::string name() const override { return "stream-recorder"; }
  void allreduce_sum(float*, int64_t n) override { log.push_back("blocking " + std::to_string(n)); }
  void allreduce_sum(double*, int64_t) override { fail("unexpected double all-reduce"); }
  void broadcast(void*, size_t, int) override { fail("unexpected broadcast"); }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
  void enqueue_allreduce_sum(float* data, int64_t n) override {
    log.push_back("enqueue " + std::to_string(data - base) + "+" + std::to_string(n));
  }
  void wait_on_compute_stream() override { log.push_back("compute waits"); }
  float* base = nullptr;
  std::vector<std::string> log;
};

// NCCL-style progress: each bucket is enqueued from the backward thread when its last
// gradient is reported (no communication thread, no host wait), and finish() only makes
// the compute stream wait; a non-communicating chunk enqueues nothing.
TEST(BucketedGradReducer, StreamModeEnqueuesEachBucketWhenReadyAndWaitsOnTheDevice) {
  StreamOrderedRecorder comm;
  std::vector<float> grad(600, 1.0f);
  comm.base = grad.data();
  BucketedGradReducer reducer(comm, grad.data(), slices_of({100, 200, 300}), GradReducerOptions{400.0 / 1048576.0});
  EXPECT_EQ(reducer.progress(), GradProgress::kStream);
  reducer.begin(false);  // an earlier chunk of the step: gradients accumulate only
  for (int id = 0; id < 3; ++id) reducer.on_grad_ready(id);
  reducer.finish();
  EXPECT_TRUE(comm.log.empty());
  reducer.begin(true);
  reducer.on_grad_ready(0);
  EXPECT_EQ(comm.log, (std::vector<std::string>{"enqueue 0+100"}));  // while backward still runs
  reducer.on_grad_ready(2);
  reducer.finish();  // parameter 1 never reported: its bucket goes now, then the device wait
  EXPECT_EQ(comm.log, (std::vector<std::string>{"enqueue 0+100", "enqueue 300+300", "enqueue 100+200", "compute waits"}));
  EXPECT_EQ(reducer.reductions_started(), 3);
}

TEST(BucketedGradReducer, StreamModeNeedsAStreamOrderedCommunicator) {
  RecordingCommunicator comm;
  std::vector<float> grad(10, 1.0f);
  EXPECT_THROW(BucketedGradReducer(comm, grad.data(), slices_of({10}), GradReducerOptions{1.0, GradProgress::kStream}),
               Error);
  BucketedGradReducer automatic(comm, grad.data(), slices_of({10}), GradReducerOptions{1.0, GradProgress::kAuto});
  EXPECT_NE(automatic.progress(), GradProgress::kStream);
}

TEST(MakeGradReducer, OneRankLeavesTheGradientAlone) {
  auto comm = make_single_process_communicator();
  auto ops = make_cpu_ops<float>();
  ParamStore<float> params;
  params.add("a", {3, 4}, ParamInit::kWeight);
  params.add("b", {5}, ParamInit::kZero);
  params.allocate(*ops);
  for (int64_t i = 0; i < params.total_numel(); ++i) params.flat_grads().data()[i] = 0.5f + static_cast<float>(i);
  auto reducer = make_grad_reducer(*comm, params, 25.0);
  reducer->begin(true);
  reducer->on_grad_ready(0);
  reducer->on_grad_ready(1);
  reducer->finish();
  for (int64_t i = 0; i < params.total_numel(); ++i) EXPECT_EQ(params.flat_grads().data()[i], 0.5f + i);
}

}  // namespace
}  // namespace txl
