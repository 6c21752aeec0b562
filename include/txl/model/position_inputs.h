// The positions of attn_type 1, 2 and 3 (docs/model.md), apart from the model's attn_type
// 0 path: the learned tables (attn_type 1: r_emb [n_layer, max_klen, H, D], r_w_bias
// [n_layer, H, D], r_bias [n_layer, max_klen, H]; attn_type 3: r_emb [n_layer, max_klen,
// M]), the table rows of a step (learned_position_rows.h), and the recipe's in-place
// additions to layer inputs and memory rows (attn_type 2 and 3). For attn_type 0 it holds
// nothing.
#pragma once
#include <vector>

#include "txl/core/param_store.h"
#include "txl/model/decoder_layer.h"
#include "txl/model/model_config.h"
#include "txl/model/step_geometry.h"

namespace txl {

template <typename T>
class PositionInputs {
 public:
  // cfg.max_klen must be resolved (the tables' length).
  explicit PositionInputs(const ModelConfig& cfg);

  // Registers the model-level tables (recipe names r_emb, r_w_bias, r_bias).
  void register_params(ParamStore<T>& store);
  const std::vector<int>& param_ids() const { return ids_; }
  // attn_type 1: hands each layer its tables and the step's row indices.
  void bind(std::vector<DecoderLayer<T>>& layers);

  // Host part of a step: (re)uploads the step's row indices (attn_type 1, 3) or the
  // sinusoids of every key row (attn_type 2) when klen, batch or clamp_len changed.
  void prepare(Ops<T>& ops, const StepGeometry& g, int64_t clamp_len);
  // attn_type 2: out [Q*B, M] = emb + the sinusoids of the new rows (then the embedding
  // dropout follows, as in the recipe). May alias.
  void add_to_embedding(Ops<T>& ops, const StepGeometry& g, const T* emb, T* out) const;
  // Before layer `layer` runs, in place on its cat [K*B, M] (memory rows, then input rows),
  // so a memory taken from cat keeps the additions: attn_type 2 adds the sinusoids to the
  // memory rows of layer 0; attn_type 3 adds this layer's r_emb rows to all rows.
  void add_to_layer_input(Ops<T>& ops, const ParamStore<T>& store, const StepGeometry& g, int64_t layer, T* cat);
  // attn_type 3 also differentiates through the memory rows.
  bool needs_memory_grad() const { return attn_type_ == 3; }
  // attn_type 3, after layer `layer`'s backward: the gradients of its input rows dh
  // [Q*B, M] and memory rows dmem [mlen*B, M] (null when mlen is 0) into r_emb's gradient.
  void backward_layer_input(Ops<T>& ops, ParamStore<T>& store, const StepGeometry& g, int64_t layer, const T* dmem,
                            const T* dh);

 private:
  int64_t attn_type_, n_layer_, n_head_, d_head_, d_model_, table_rows_;
  int r_emb_id_ = -1, r_w_bias_id_ = -1, r_bias_id_ = -1;
  std::vector<int> ids_;

  Tensor<int32_t> rows_;  // attn_type 1: [K]; attn_type 3: [K*B]
  Tensor<T> sinusoid_;    // attn_type 2: [K*B, M] the sinusoid of each key row, per stream
  Tensor<T> gathered_;    // attn_type 3: [K*B, M] this layer's r_emb rows
  int64_t klen_ = -1, batch_ = -1, clamp_ = 0;
};

}  // namespace txl
