// Evaluation of a model on one split: the recipe's loop (no dropout, memory carried from
// batch to batch, warm-up batches run but not counted), loss = total nll / tokens over
// all ranks.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "txl/data/batch_iterator.h"
#include "txl/dist/communicator.h"
#include "txl/model/eval_step.h"
#include "txl/model/transformer_xl.h"

namespace txl {

// One batch as the loop saw it (this rank), for eval.py's per-interval log lines.
struct EvalBatch {
  int64_t index = 0;       // 0-based, in this pass over the split
  int64_t n_batch = 0;     // batches of the split
  double seconds = 0.0;    // latency of the batch
  double mean_loss = 0.0;  // mean nll of its target tokens (warm-up batches included)
  int64_t tokens = 0;      // its target tokens
};

struct EvalSettings {
  int64_t tgt_len = 64;
  int64_t ext_len = 0;
  int64_t mem_len = 640;
  bool same_length = true;
  int64_t clamp_len = 400;
  int64_t max_batches = -1;  // counted batches to run (-1: the whole split)
  std::function<void(const EvalBatch&)> on_batch;  // called after every batch (may be empty)
};

struct EvalResult {
  double nll_sum = 0.0;         // all ranks
  int64_t tokens = 0;           // counted target tokens, all ranks
  int64_t tokens_processed = 0; // target tokens run, warm-up included, all ranks
  int64_t batches = 0;          // batches run (warm-up included)
  double seconds = 0.0;         // wall time of the loop (slowest rank)
  std::vector<double> latencies;  // seconds per batch on this rank (forward until the loss is on the host)
  int64_t graph_replays = 0;    // batches whose decoder layers were replayed from a graph (this rank)
  double loss() const { return tokens > 0 ? nll_sum / static_cast<double>(tokens) : 0.0; }
};

// Runs one epoch of `it` from its start. `batch_global` is the global number of streams;
// this rank's streams start at rank * it.local_streams(). Collective (one all-reduce at
// the end). The model keeps the lengths of `s` afterwards. `step`: runs the forward
// passes (an EvalStep of `model` with a StepGraph for `txl_eval --type graph`); null:
// eager.
EvalResult evaluate(TransformerXL<float>& model, data::BatchIterator& it, const EvalSettings& s, int64_t batch_global,
                    Communicator& comm, EvalStep<float>* step = nullptr);

}  // namespace txl
