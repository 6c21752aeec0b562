// Sizes of one forward/backward pass, shared by every layer of the model.
#pragma once
#include <cstdint>

#include "txl/core/ops.h"
#include "txl/model/step_context.h"

namespace txl {

struct StepGeometry {
  int64_t qlen = 0;   // new tokens per stream
  int64_t mlen = 0;   // memory rows per stream
  int64_t klen = 0;   // mlen + qlen
  int64_t batch = 0;  // local streams
  AttnMask mask;      // docs/model.md §4 mask parameters
  StepContext ctx;    // dropout keys and batch position

  int64_t query_rows() const { return qlen * batch; }  // rows of [qlen, B, ...] tensors
  int64_t key_rows() const { return klen * batch; }    // rows of [klen, B, ...] tensors
  int64_t memory_rows() const { return mlen * batch; }
};

}  // namespace txl
