#include "txl/train/evaluator.h"

#include <chrono>

namespace txl {

EvalResult evaluate(TransformerXL<float>& model, data::BatchIterator& it, const EvalSettings& s, int64_t batch_global,
                    Communicator& comm, EvalStep<float>* step) {
  using Clock = std::chrono::steady_clock;
  Ops<float>& ops = model.ops();
  model.set_lengths(s.tgt_len, s.ext_len, s.mem_len, s.same_length, s.clamp_len);
  EvalStep<float> eager(model, nullptr);
  EvalStep<float>& forward = step ? *step : eager;
  const int64_t replays_before = forward.replays();
  Memory<float> mem;
  StepContext ctx;
  ctx.train = false;
  ctx.batch_offset = static_cast<int64_t>(comm.rank()) * it.local_streams();
  ctx.batch_global = batch_global;

  EvalResult r;
  double local[3] = {0.0, 0.0, 0.0};  // nll sum, counted tokens, processed tokens
  int64_t counted_batches = 0;
  it.start_epoch(0);
  data::Batch batch;
  const auto start = Clock::now();
  while ((s.max_batches < 0 || counted_batches < s.max_batches) && it.next(batch)) {
    const auto t0 = Clock::now();
    ctx.ext_rows = batch.ext;
    const Tensor<float>& nll =
        forward.forward(batch.data.data(), batch.target.data(), batch.ext + batch.len, batch.n_streams, mem, ctx);
    const double sum = ops.sum(nll.data(), nll.numel());  // synchronises: the latency includes the device work
    r.latencies.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    const double tokens = static_cast<double>(batch.len * batch.n_streams);
    if (s.on_batch) s.on_batch({r.batches, it.n_batch(), r.latencies.back(), sum / tokens, batch.len * batch.n_streams});
    local[2] += tokens;
    if (batch.counted) {
      local[0] += sum;
      local[1] += tokens;
      ++counted_batches;
    }
    ++r.batches;
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  comm.allreduce_sum(local, 3);
  // The job's time is that of its slowest rank: max via a sum of one-hot slots would need
  // a gather; ranks run the same batches, so rank 0's time stands for the job.
  comm.broadcast(&seconds, sizeof(seconds), 0);
  r.nll_sum = local[0];
  r.tokens = static_cast<int64_t>(local[1]);
  r.tokens_processed = static_cast<int64_t>(local[2]);
  r.seconds = seconds;
  r.graph_replays = forward.replays() - replays_before;
  return r;
}

}  // namespace txl
