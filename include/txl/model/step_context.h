// What one forward pass needs to know besides its tokens: whether dropout is on, the
// keys of the counter-based dropout masks, and where the local batch sits in the global
// batch (so masks do not depend on the number of ranks or batch chunks), and how many of
// its first token rows are extended context (ext_len).
#pragma once
#include <cstdint>

namespace txl {

struct StepContext {
  bool train = false;        // dropout / dropatt active
  uint64_t seed = 0;         // run seed
  uint64_t step = 0;         // optimizer step (dropout key)
  int64_t batch_offset = 0;  // global index of the first local stream (rank * local + chunk offset)
  int64_t batch_global = 0;  // streams in the global batch; 0 = the local batch size
  int64_t ext_rows = 0;      // leading rows of `data` that are context only: attended to, not predicted
};

}  // namespace txl
