// StreamOrderedCollectives: what a communicator offers when its collectives run on a GPU
// stream (NCCL, src/cuda/nccl_communicator.cpp). A gradient bucket's all-reduce is
// enqueued behind the work already enqueued on the compute stream (an event recorded
// there at the call, waited for on the communication stream) and the call returns at
// once; wait_on_compute_stream() makes later compute-stream work (the optimizer) wait
// for every collective enqueued so far, again with events only. No host thread waits, so
// the all-reduces overlap the rest of backward. BucketedGradReducer uses this
// (GradProgress::kStream) when the communicator has it.
#pragma once
#include <cstdint>

#include "txl/dist/communicator.h"

namespace txl {

class StreamOrderedCollectives {
 public:
  virtual ~StreamOrderedCollectives() = default;
  // In-place sum across ranks of device buffer `data`, ordered after the compute stream's
  // work so far. Every rank must enqueue the same sequence.
  virtual void enqueue_allreduce_sum(float* data, int64_t n) = 0;
  // The compute stream waits (on the device) for every collective enqueued so far.
  virtual void wait_on_compute_stream() = 0;
};

// The communicator's stream-ordered side, or nullptr when it has none.
inline StreamOrderedCollectives* stream_ordered(Communicator& comm) {
  return dynamic_cast<StreamOrderedCollectives*>(&comm);
}

}  // namespace txl
