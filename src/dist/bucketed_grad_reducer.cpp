// Bucketed, overlapped gradient all-reduce (see include/txl/dist/bucketed_grad_reducer.h).
#include "txl/dist/bucketed_grad_reducer.h"

#include <algorithm>
#include <cstdlib>

#include "txl/core/error.h"

namespace txl {
namespace {

// One MPI call carries at most this many elements (int counts).
constexpr int64_t kMaxBucketNumel = int64_t{1} << 30;

// The reducer of a one-rank job: the local gradient already is the sum.
class NoOpGradReducer final : public GradReducer {
 public:
  void begin(bool) override {}
  void on_grad_ready(int) override {}
  void finish() override {}
};

// What kAuto means; chosen by bench/allreduce_overlap (docs/benchmarks.md).
GradProgress resolve(GradProgress requested, Communicator& comm) {
  const GradProgress natural = stream_ordered(comm) != nullptr ? GradProgress::kStream : GradProgress::kThread;
  if (requested == GradProgress::kAuto) {
    const char* env = std::getenv("TXL_GRAD_PROGRESS");
    requested = env && *env ? parse_grad_progress(env) : natural;
    if (requested == GradProgress::kAuto) requested = natural;
  }
  if (requested == GradProgress::kStream && stream_ordered(comm) == nullptr)
    failf("grad progress 'stream' needs a communicator with stream-ordered collectives (NCCL); '{}' has none",
          comm.name());
  if (requested == GradProgress::kPoll && dynamic_cast<MpiCommunicator*>(&comm) == nullptr) {
    requested = GradProgress::kThread;  // polling needs MPI requests
  }
  if (requested == GradProgress::kThread) {
    if (auto* mpi = dynamic_cast<MpiCommunicator*>(&comm); mpi && mpi->thread_level() < MPI_THREAD_SERIALIZED) {
      requested = GradProgress::kPoll;  // this MPI cannot be called from a second thread
    }
  }
  return requested;
}

}  // namespace

GradProgress parse_grad_progress(const std::string& name) {
  if (name == "auto") return GradProgress::kAuto;
  if (name == "thread") return GradProgress::kThread;
  if (name == "poll") return GradProgress::kPoll;
  if (name == "after_backward") return GradProgress::kAfterBackward;
  if (name == "stream") return GradProgress::kStream;
  failf("grad progress '{}' is not one of auto, thread, poll, after_backward, stream", name);
}

const char* grad_progress_name(GradProgress progress) {
  switch (progress) {
    case GradProgress::kAuto: return "auto";
    case GradProgress::kThread: return "thread";
    case GradProgress::kPoll: return "poll";
    case GradProgress::kAfterBackward: return "after_backward";
    case GradProgress::kStream: return "stream";
  }
  return "?";
}

std::vector<GradBucket> plan_grad_buckets(const std::vector<FlatSlice>& params, int64_t bucket_bytes) {
  std::vector<GradBucket> buckets;
  const int64_t target = bucket_bytes > 0 ? std::max<int64_t>(1, bucket_bytes / int64_t{sizeof(float)})
                                          : kMaxBucketNumel;
  int64_t expected_offset = params.empty() ? 0 : params.front().offset;
  for (int i = 0; i < static_cast<int>(params.size()); ++i) {
    const FlatSlice& p = params[static_cast<size_t>(i)];
    TXL_CHECK(p.offset == expected_offset, "gradient buckets: parameter {} starts at {} but the flat layout expects {}",
              i, p.offset, expected_offset);
    TXL_CHECK(p.numel > 0 && p.numel <= kMaxBucketNumel, "gradient buckets: parameter {} has {} elements", i,
              p.numel);
    expected_offset += p.numel;
    const bool open = !buckets.empty() && buckets.back().numel < target &&
                      buckets.back().numel + p.numel <= kMaxBucketNumel;
    if (!open) buckets.push_back(GradBucket{p.offset, 0, i, i});
    buckets.back().numel += p.numel;
    buckets.back().end_param = i + 1;
  }
  return buckets;
}

BucketedGradReducer::BucketedGradReducer(Communicator& comm, float* flat_grad, std::vector<FlatSlice> params,
                                         const GradReducerOptions& options)
    : comm_(comm), grad_(flat_grad), params_(std::move(params)) {
  TXL_CHECK(grad_ != nullptr, "gradient reducer: the flat gradient buffer is not allocated");
  const bool after_backward = options.bucket_mb <= 0.0 || options.progress == GradProgress::kAfterBackward;
  progress_ = after_backward ? GradProgress::kAfterBackward : resolve(options.progress, comm_);
  const auto bucket_bytes =
      options.bucket_mb > 0.0 ? static_cast<int64_t>(options.bucket_mb * 1024.0 * 1024.0) : int64_t{0};
  buckets_ = plan_grad_buckets(params_, bucket_bytes);
  bucket_of_param_.resize(params_.size());
  for (int b = 0; b < static_cast<int>(buckets_.size()); ++b) {
    for (int p = buckets_[b].first_param; p < buckets_[b].end_param; ++p) bucket_of_param_[p] = b;
  }
  param_ready_.assign(params_.size(), 0);
  bucket_missing_.assign(buckets_.size(), 0);
  bucket_launched_.assign(buckets_.size(), 0);
  if (progress_ == GradProgress::kPoll) mpi_ = dynamic_cast<MpiCommunicator*>(&comm_);
  if (progress_ == GradProgress::kStream) stream_ = stream_ordered(comm_);
  if (progress_ == GradProgress::kThread) worker_ = std::thread([this] { communication_thread(); });
}

BucketedGradReducer::~BucketedGradReducer() {
  if (worker_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    work_ready_.notify_all();
    worker_.join();
  }
}

void BucketedGradReducer::begin(bool communicate) {
  // A non-communicating chunk's backward needs no finish(); a communicating one does,
  // because its buckets may still be in flight.
  TXL_CHECK(finished_ || !communicate_,
            "gradient reducer: begin() called while the previous communicating backward was not finished()");
  communicate_ = communicate;
  finished_ = false;
  std::fill(param_ready_.begin(), param_ready_.end(), 0);
  std::fill(bucket_launched_.begin(), bucket_launched_.end(), 0);
  for (size_t b = 0; b < buckets_.size(); ++b) bucket_missing_[b] = buckets_[b].end_param - buckets_[b].first_param;
}

void BucketedGradReducer::on_grad_ready(int param_id) {
  TXL_CHECK(!finished_, "gradient reducer: on_grad_ready({}) outside begin() ... finish()", param_id);
  TXL_CHECK(param_id >= 0 && param_id < static_cast<int>(params_.size()),
            "gradient reducer: on_grad_ready({}) but there are {} parameters", param_id, params_.size());
  TXL_CHECK(!param_ready_[param_id], "gradient reducer: parameter {} reported ready twice in one backward",
            param_id);
  param_ready_[param_id] = 1;
  if (!communicate_) return;
  const int b = bucket_of_param_[param_id];
  if (--bucket_missing_[b] == 0 && progress_ != GradProgress::kAfterBackward) launch(b);
  if (progress_ == GradProgress::kPoll) poll_in_flight();
}

void BucketedGradReducer::launch(int bucket) {
  bucket_launched_[bucket] = 1;
  ++reductions_started_;
  const GradBucket& b = buckets_[bucket];
  switch (progress_) {
    case GradProgress::kThread: {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        queue_.push_back(bucket);
        ++handed_;
      }
      work_ready_.notify_one();
      break;
    }
    case GradProgress::kPoll:
      in_flight_.push_back(InFlight{bucket, mpi_->start_allreduce_sum(grad_ + b.offset, b.numel)});
      break;
    case GradProgress::kStream:
      stream_->enqueue_allreduce_sum(grad_ + b.offset, b.numel);
      break;
    default:
      comm_.allreduce_sum(grad_ + b.offset, b.numel);
      break;
  }
}

void BucketedGradReducer::poll_in_flight() {
  // MPI_Test on the oldest requests drives the progress engine for all of them.
  while (!in_flight_.empty() && mpi_->test(in_flight_.front().request)) in_flight_.erase(in_flight_.begin());
}

void BucketedGradReducer::finish() {
  if (finished_) return;
  finished_ = true;
  if (!communicate_) return;
  // Buckets with parameters that never reported (unused in this forward, or a model that
  // reports nothing) go now, in bucket order, which is the same on every rank.
  for (int b = 0; b < static_cast<int>(buckets_.size()); ++b) {
    if (!bucket_launched_[b]) launch(b);
  }
  if (progress_ == GradProgress::kPoll) {
    for (InFlight& f : in_flight_) mpi_->wait(f.request, "gradient all-reduce");
    in_flight_.clear();
  } else if (progress_ == GradProgress::kThread) {
    std::unique_lock<std::mutex> lock(mutex_);
    work_done_.wait(lock, [this] { return completed_ == handed_ || worker_error_; });
    if (worker_error_) std::rethrow_exception(worker_error_);
  } else if (progress_ == GradProgress::kStream) {
    stream_->wait_on_compute_stream();  // the optimizer, enqueued next, runs after the sums
  }
}

void BucketedGradReducer::communication_thread() {
  MpiCommunicator::set_background_waits(true);
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_ready_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    const int bucket = queue_.front();
    queue_.pop_front();
    lock.unlock();
    try {
      comm_.allreduce_sum(grad_ + buckets_[bucket].offset, buckets_[bucket].numel);
    } catch (...) {
      lock.lock();
      worker_error_ = std::current_exception();
      work_done_.notify_all();
      continue;
    }
    lock.lock();
    ++completed_;
    if (completed_ == handed_) work_done_.notify_all();
  }
}

std::unique_ptr<GradReducer> make_grad_reducer(Communicator& comm, ParamStore<float>& params,
                                               const GradReducerOptions& options) {
  if (comm.size() == 1) return std::make_unique<NoOpGradReducer>();
  TXL_CHECK(params.allocated(), "gradient reducer: parameters must be allocated first");
  return std::make_unique<BucketedGradReducer>(comm, params.flat_grads().data(), params.slices(), options);
}

std::unique_ptr<GradReducer> make_grad_reducer(Communicator& comm, ParamStore<float>& params, double bucket_mb) {
  GradReducerOptions options;
  options.bucket_mb = bucket_mb;
  return make_grad_reducer(comm, params, options);
}

}  // namespace txl
