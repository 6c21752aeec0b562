// Adaptive input embedding (docs/model.md §2), forward and backward written out against Ops<T>.
//
// Vocabulary clusters c = 0..C cover ids [l_c, r_c) (ModelConfig::cluster_begin/end).
//  - div_val == 1: one table word_emb.emb_layers.0.weight [n_token, d_embed]; when
//    d_embed != d_model a projection word_emb.emb_projs.0 [d_model, d_embed] maps e -> e·Pᵀ.
//  - div_val > 1: per cluster a table word_emb.emb_layers.c.weight [r_c - l_c, d_c] and a
//    projection word_emb.emb_projs.c [d_model, d_c] (present even when d_c == d_model).
// The result is multiplied by sqrt(d_model).
//
// Registration order (flat buffer layout): every emb_layers.{c}.weight (c ascending), then
// every emb_projs.{c} (c ascending) — the recipe's state_dict order.
//
// Implementation: with div_val > 1 the tokens are processed sorted by cluster (one
// host-built permutation, uploaded once per forward), so every cluster works on a
// contiguous block of rows; the result is scattered back into token order.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "txl/core/ops.h"
#include "txl/core/param_store.h"
#include "txl/model/model_config.h"

namespace txl {

// docs/model.md §8 names of the embedding's parameters.
std::string emb_layer_name(int64_t c);  // "word_emb.emb_layers.{c}.weight"
std::string emb_proj_name(int64_t c);   // "word_emb.emb_projs.{c}"

// Throws txl::Error naming `what`, the offending id and its position when any id is
// outside [0, n_token).
void check_token_ids(const std::vector<int32_t>& ids, int64_t n_token, const char* what);

template <typename T>
class AdaptiveEmbedding {
 public:
  explicit AdaptiveEmbedding(const ModelConfig& cfg);

  // Adds word_emb.emb_layers.{c}.weight and word_emb.emb_projs.{c} (see above).
  void register_params(ParamStore<T>& ps) const;
  // Looks up the parameter ids by name (after all registration).
  void bind(const ParamStore<T>& ps);

  // ids: host, n tokens, each in [0, n_token) (else txl::Error naming the id and its
  // position). out: [n, d_model] (ensure()'d here) = embedding * sqrt(d_model).
  // Keeps the gathered table rows and index lists for backward.
  void forward(Ops<T>& ops, const ParamStore<T>& ps, const std::vector<int32_t>& ids, Tensor<T>& out);
  // dout [n, d_model] -> gradients ACCUMULATED into ps.grad() of the word_emb params.
  void backward(Ops<T>& ops, ParamStore<T>& ps, const Tensor<T>& dout);

  // Number of table clusters (1 with div_val == 1, else C + 1).
  int64_t n_tables() const { return static_cast<int64_t>(tables_.size()); }

 private:
  struct Table {
    int64_t begin = 0, end = 0;  // token ids [begin, end)
    int64_t dim = 0;             // row width d_c
    bool projected = false;      // has emb_projs.{c}
    int weight_id = -1, proj_id = -1;
  };

  ModelConfig cfg_;
  std::vector<Table> tables_;

  // Saved by forward for backward.
  int64_t n_ = 0;
  std::vector<int64_t> count_;       // tokens per table
  std::vector<int64_t> row_offset_;  // first sorted row of each table
  std::vector<int64_t> emb_offset_;  // element offset of each table's rows in emb_rows_
  std::vector<int32_t> host_index_;  // [2n]: sorted position -> token position, then local row ids
  Tensor<int32_t> index_;            // device copy of host_index_
  Tensor<T> emb_rows_;               // gathered table rows of projected tables, packed
  Tensor<T> sorted_;                 // [n, d_model] output rows in sorted order (div_val > 1)
  Tensor<T> dsorted_;                // [n, d_model] dout in sorted order (div_val > 1)
  Tensor<T> demb_;                   // gradient of the gathered rows of one table
};

}  // namespace txl
