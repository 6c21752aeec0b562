// GradReducer: averages the flat gradient buffer across ranks during backward.
// Parameters are grouped into buckets of about `bucket_mb` MiB, contiguous in the flat
// buffer (the model registers parameters in gradient-completion order). The model calls
// on_grad_ready(param_id) when a parameter's gradient is final; a bucket whose last
// parameter is ready starts its all-reduce at once while backward continues.
// With batch_chunk > 1 only the last chunk's backward communicates (begin(true)).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "txl/core/param_store.h"
#include "txl/dist/communicator.h"

namespace txl {

class GradReducer {
 public:
  virtual ~GradReducer() = default;
  // Starts a backward pass; `communicate` false for all but the last batch chunk.
  virtual void begin(bool communicate) = 0;
  // Called by the model (from the thread running backward).
  virtual void on_grad_ready(int param_id) = 0;
  // Waits until every bucket is reduced; afterwards the flat gradient holds the SUM over
  // ranks (the trainer folds 1/world into the optimizer's grad_scale).
  virtual void finish() = 0;
};

// The reducer for `params` on `comm`: a no-op for one rank; bucketed and overlapped
// otherwise. `bucket_mb` <= 0 means one bucket reduced after backward (no overlap).
std::unique_ptr<GradReducer> make_grad_reducer(Communicator& comm, ParamStore<float>& params, double bucket_mb);

}  // namespace txl
