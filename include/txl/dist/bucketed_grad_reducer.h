// BucketedGradReducer: the GradReducer of a multi-rank job (see txl/dist/grad_reducer.h).
//
// The flat gradient is cut into buckets of about bucket_mb MiB, each a contiguous range of
// whole parameters in flat order. The flat order is the order in which backward finishes
// gradients (loss head first, embedding last), so bucket 0 is complete first and its
// all-reduce runs while backward still computes the rest.
//
// How an all-reduce makes progress while the backward thread computes:
//  - kThread: a communication thread runs each ready bucket's blocking all-reduce
//    (Communicator::allreduce_sum), so progress does not depend on the backward thread.
//    Works for any Communicator (needs MPI_THREAD_SERIALIZED or better for MPI).
//  - kPoll: MPI_Iallreduce started from the backward thread, advanced by MPI_Test at
//    every on_grad_ready call (MPI communicators only).
//  - kStream: the communicator runs collectives on a GPU stream (NCCL,
//    stream_ordered_collectives.h): the bucket's all-reduce is enqueued from the backward
//    thread the moment its last gradient is enqueued (ordered after it by an event on
//    the compute stream), finish() makes the compute stream wait for them; no host wait.
//  - kAfterBackward: no overlap, one all-reduce per bucket in finish() (bucket_mb <= 0
//    gives one bucket: the classic "all-reduce after backward").
// kAuto is kStream for a stream-ordered communicator, else kThread unless
// TXL_GRAD_PROGRESS says otherwise; docs/benchmarks.md has the measurements behind that.
//
// Buckets start in the order their last gradients are reported, so every rank must report
// in the same order (the model's backward is deterministic); buckets never reported go,
// in bucket order, at finish().
//
// Call pattern per optimizer step with batch_chunk chunks: begin(false), the chunk's
// backward, [finish()], ... for all but the last chunk, then begin(true), backward,
// finish(). finish() after a non-communicating chunk is optional and returns at once.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "txl/core/ops.h"
#include "txl/dist/grad_reducer.h"
#include "txl/dist/mpi_communicator.h"
#include "txl/dist/stream_ordered_collectives.h"

namespace txl {

enum class GradProgress { kAuto, kThread, kPoll, kAfterBackward, kStream };
GradProgress parse_grad_progress(const std::string& name);  // "auto", "thread", "poll", "after_backward", "stream"
const char* grad_progress_name(GradProgress progress);

struct GradReducerOptions {
  double bucket_mb = 25.0;  // <= 0: one bucket, reduced after backward
  GradProgress progress = GradProgress::kAuto;
};

struct GradBucket {
  int64_t offset = 0, numel = 0;  // range of the flat gradient
  int first_param = 0, end_param = 0;  // parameters [first, end) in flat order
};

// Groups parameters (given by their flat slices, in flat order) into buckets of at least
// `bucket_bytes` (the last one may be smaller; a parameter is never split).
// bucket_bytes <= 0: one bucket.
std::vector<GradBucket> plan_grad_buckets(const std::vector<FlatSlice>& params, int64_t bucket_bytes);

class BucketedGradReducer final : public GradReducer {
 public:
  // `flat_grad` holds every parameter's gradient at `params[i]`; it must outlive this.
  BucketedGradReducer(Communicator& comm, float* flat_grad, std::vector<FlatSlice> params,
                      const GradReducerOptions& options);
  ~BucketedGradReducer() override;

  void begin(bool communicate) override;
  void on_grad_ready(int param_id) override;
  void finish() override;

  const std::vector<GradBucket>& buckets() const { return buckets_; }
  GradProgress progress() const { return progress_; }
  // All-reduces started since construction (one per bucket per communicating backward).
  int64_t reductions_started() const { return reductions_started_; }

 private:
  void launch(int bucket);
  void poll_in_flight();
  void communication_thread();

  Communicator& comm_;
  MpiCommunicator* mpi_ = nullptr;  // set for kPoll
  StreamOrderedCollectives* stream_ = nullptr;  // set for kStream
  float* grad_;
  std::vector<FlatSlice> params_;
  std::vector<GradBucket> buckets_;
  std::vector<int> bucket_of_param_;
  GradProgress progress_;

  // State of the current backward pass.
  bool communicate_ = false;
  bool finished_ = true;
  std::vector<char> param_ready_;
  std::vector<int> bucket_missing_;  // parameters of the bucket not yet ready
  std::vector<char> bucket_launched_;
  int64_t reductions_started_ = 0;

  // kPoll: requests in flight, oldest first.
  struct InFlight {
    int bucket;
    MPI_Request request;
  };
  std::vector<InFlight> in_flight_;

  // kThread: buckets handed to the communication thread.
  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable work_ready_, work_done_;
  std::deque<int> queue_;
  int64_t handed_ = 0, completed_ = 0;
  bool stop_ = false;
  std::exception_ptr worker_error_;
};

// make_grad_reducer with explicit options; the flat gradient comes from `params`.
std::unique_ptr<GradReducer> make_grad_reducer(Communicator& comm, ParamStore<float>& params,
                                               const GradReducerOptions& options);

}  // namespace txl
