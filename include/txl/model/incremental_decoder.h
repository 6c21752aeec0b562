// IncrementalDecoder: feeds a TransformerXL one token per stream at a time and returns the
// last layer's output for that token, reusing what earlier tokens computed (docs/generate.md).
//
// The state is the model's evaluation state over a token stream cut into segments of
// tgt_len tokens (ext_len 0): the memory (per layer the last <= mem_len rows of the layer
// inputs, as TransformerXL::forward_layers keeps them after each complete segment) and the
// tokens since the memory was last updated ("pending", 0 .. tgt_len-1 of them between calls).
// The output for a token is, by definition, that of the LAST position of a full forward
// over [memory, pending tokens including this one] with the model's mem_len / clamp_len /
// same_length / attn_type rules ("full recomputation"). When the pending tokens make a
// whole segment the memory rolls forward exactly as the model's memory update over that
// segment does (memory_window(mlen, tgt_len, mem_len, 0)), and pending starts again at 0.
//
// How, per attn_type:
//  - 0 and 1 (relative positions): every layer keeps the window rows [memory, pending] and
//    their key/value projections. A new token runs one query row through every layer: its
//    q, k, v (k and v appended to the cache), scores against the K = window + 1 cached keys
//    with the relative shift and mask of the last row of the full forward (qlen 1 and mlen
//    K-1 give exactly that row's mask, also with same_length), softmax, values, o_net,
//    residual + LayerNorm, feed-forward. The position rows R (sinusoid projection, or the
//    learned tables' rows) are computed once for the longest window; a window of K keys
//    uses their last K rows, which are the rows a forward with klen K builds.
//  - 2 and 3 (absolute positions): a position is counted back from the newest token
//    (docs/model.md), so a new token changes the input of every pending token and no hidden
//    state of a pending token can be reused. Each token runs a forward over the pending
//    tokens against the cached memory (the model's own forward), i.e. the full
//    recomputation itself; only the memory is reused.
// Long inputs: whenever nothing is pending and more than a whole segment is still to be
// fed, that segment runs as one model forward (the memory update by definition) instead
// of token by token.
//
// Written against Ops<T>, so it runs on any backend. Dropout is never applied.
#pragma once
#include <cstdint>
#include <vector>

#include "txl/model/adaptive_embedding.h"
#include "txl/model/memory.h"
#include "txl/model/transformer_xl.h"

namespace txl {

template <typename T>
class IncrementalDecoder {
 public:
  enum class Mode {
    kAuto,       // one query row per token for attn_type 0 and 1; recompute for 2 and 3
    kRecompute,  // every token: a model forward over [memory, pending] (the bench's baseline)
  };
  // Uses the model's current lengths (TransformerXL::set_lengths; ext_len must be 0). The
  // model must outlive the decoder; its parameters are read at every call.
  explicit IncrementalDecoder(TransformerXL<T>& model, Mode mode = Mode::kAuto);

  // Empties the memory and the pending tokens; the next tokens are the start of `batch`
  // streams.
  void reset(int64_t batch);
  // Feeds `count` tokens of every stream: host ids, time-major [count, batch]. Returns the
  // last layer's output for the last of them, [batch, d_model] (device; valid until the
  // next call).
  const Tensor<T>& feed(const int32_t* ids, int64_t count);

  int64_t batch() const { return batch_; }
  int64_t memory_length() const { return mlen_; }  // rows of memory per stream
  int64_t pending() const { return pending_; }     // tokens since the last memory update
  bool one_row_steps() const { return relative_; } // whether tokens run as one query row
  // The memory as the model keeps it (a copy; per layer [mlen, batch, d_model]).
  Memory<T> memory() const;

 private:
  void step_one_row(const int32_t* ids);
  void run_segment(const int32_t* ids);   // relative path: one whole segment as a model forward
  void step_recompute(const int32_t* ids, bool need_output);
  void load_window(const Memory<T>& mem);  // relative path: window := mem, k/v recomputed
  void roll_window();
  void attention_row(int64_t layer, const T* x, T* out);
  void feed_forward_row(int64_t layer, const T* x, T* out);
  void layer_norm_rows(int gamma_id, int beta_id, const T* x, int64_t rows, T* y);
  void prepare_positions();

  TransformerXL<T>& model_;
  Ops<T>& ops_;
  ModelConfig cfg_;
  bool relative_;  // attn_type 0 / 1 in Mode::kAuto
  AdaptiveEmbedding<T> embedding_;
  int64_t batch_ = 0, mlen_ = 0, pending_ = 0;
  int64_t capacity_ = 0;  // mem_len + tgt_len: the longest window

  // Parameter ids, per layer.
  struct LayerParams {
    int qkv = -1, r_net = -1, o_net = -1, attn_ln_w = -1, attn_ln_b = -1;
    int ff_w1 = -1, ff_b1 = -1, ff_w2 = -1, ff_b2 = -1, ff_ln_w = -1, ff_ln_b = -1;
  };
  std::vector<LayerParams> layer_params_;
  int r_w_bias_ = -1, r_r_bias_ = -1, r_emb_ = -1, r_bias_ = -1;

  // Relative path state, per layer: window rows [capacity, B, M] and k|v [capacity, B, 2HD].
  std::vector<Tensor<T>> rows_, kv_;
  std::vector<Tensor<T>> r_all_;     // [capacity, HD] position rows for klen = capacity
  std::vector<Tensor<T>> rbias_all_; // attn_type 1: [capacity, H] r_bias rows for klen = capacity
  Tensor<T> scratch_;                // roll: one layer's rows or k|v
  // One-row step buffers ([B, ...]; xn_ also [mlen*B, M] when a window is loaded).
  Tensor<T> emb_, x_, y_, mid_, xn_, q_, qu_, qw_, scores_, bd_, probs_, attn_vec_, o_, sum_, inner_, ff_sum_,
      ln_mean_, ln_rstd_, ones_;
  Tensor<int32_t> table_rows_;

  // Recompute path state.
  Memory<T> memory_, scratch_memory_;
  std::vector<int32_t> pending_ids_;  // [pending, batch]
  std::vector<int32_t> dummy_targets_;
  Tensor<T> output_;  // [B, M]
};

}  // namespace txl
