// Projected adaptive log-softmax loss (docs/model.md §6), forward and backward written out
// against Ops<T>.
//
// Clusters c = 0..C cover ids [l_c, r_c); S = cutoffs[0] (n_token without cutoffs).
// Head classes: ids [0, S) then C cluster tokens; head_size = S + C. Cluster c >= 1 is head
// column head_size - c, i.e. crit.cluster_weight row C - c (load-bearing for
// compatibility with the recipe). Logits of cluster c: x·P_c·W_cᵀ + b_c.
//   logp(t) = log_softmax(head)[t]                                   t in cluster 0
//   logp(t) = log_softmax(head)[head_size - c] + log_softmax(tail_c)[t - l_c]   c >= 1
//   nll = -logp(t)
//
// Parameters (docs/model.md §8), registered in this order (the recipe's state_dict order):
//   crit.cluster_weight [C, d_0], crit.cluster_bias [C]           (only when C > 0)
//   crit.out_layers_weights.{c}                                    (only without tie_weight)
//       div_val == 1: one [n_token, d_embed] (c = 0); else [r_c - l_c, d_c] per cluster
//   crit.out_layers_biases.{c}  div_val == 1: one [n_token]; else [r_c - l_c] per cluster
//   crit.out_projs.{c} [d_model, d_c]  for each cluster that needs a projection and does
//       not tie it (div_val == 1: only when d_embed != d_model).
// Tied parameters are the embedding's tensors (one tensor, one gradient):
//   tie_weight:     W_c = word_emb.emb_layers.{c}.weight (div_val == 1: rows [l_c, r_c) of
//                   emb_layers.0)
//   tie_projs[c]:   P_c = word_emb.emb_projs.{c} (div_val == 1: emb_projs.0)
//   div_val == 1 and d_embed == d_model: no projection at all.
//
// Implementation: tokens are processed sorted by the cluster of their target (one
// host-built permutation uploaded per forward), so every tail cluster works on one
// contiguous block of rows and only those rows get tail logits. Results are scattered
// back into token order.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "txl/core/ops.h"
#include "txl/core/param_store.h"
#include "txl/model/adaptive_embedding.h"
#include "txl/model/model_config.h"

namespace txl {

template <typename T>
class ProjectedAdaptiveLogSoftmax {
 public:
  explicit ProjectedAdaptiveLogSoftmax(const ModelConfig& cfg);

  // Adds the crit.* parameters that are not tied (see above).
  void register_params(ParamStore<T>& ps) const;
  // Looks up the ids of its own parameters and of the tied word_emb parameters.
  void bind(const ParamStore<T>& ps);

  // hidden [n, d_model] (device; any shape with n rows of width d_model, e.g.
  // [len, batch, d_model]); targets host [n], each in [0, n_token) (else
  // txl::Error naming the id and its position) -> nll [n] = -log p(target) (ensure()'d).
  void forward(Ops<T>& ops, const ParamStore<T>& ps, const Tensor<T>& hidden, const std::vector<int32_t>& targets,
               Tensor<T>& nll);
  // dnll [n] (d loss / d nll) -> dhidden [n, d_model] OVERWRITTEN (ensure()'d);
  // parameter gradients ACCUMULATED.
  void backward(Ops<T>& ops, ParamStore<T>& ps, const Tensor<T>& dnll, Tensor<T>& dhidden);

  int64_t head_size() const { return shortlist_ + n_clusters_; }

 private:
  struct Cluster {
    int64_t begin = 0, end = 0;  // token ids [begin, end)
    int64_t dim = 0;             // d_c
    int weight_id = -1;          // table holding W_c (own or tied)
    int64_t weight_row = 0;      // first row of W_c in that table (div_val == 1: l_c)
    int bias_id = -1;
    int64_t bias_offset = 0;
    int proj_id = -1;            // -1: no projection (identity)
    bool shares_head_proj = false;  // c >= 1 with the head's projection: reuse x·P_0
  };

  ModelConfig cfg_;
  const T* head_bias(const ParamStore<T>& ps) const;

  int64_t n_clusters_ = 0;  // C
  int64_t shortlist_ = 0;   // S
  std::vector<Cluster> clusters_;
  int cluster_weight_id_ = -1, cluster_bias_id_ = -1;

  // Saved by forward for backward (sorted row order).
  int64_t n_ = 0;
  std::vector<int64_t> count_;       // tokens per cluster
  std::vector<int64_t> row_offset_;  // first sorted row of each cluster
  std::vector<int64_t> xp_offset_;   // element offset of each tail's x·P_c rows in tail_xp_
  std::vector<int64_t> logits_offset_; // element offset of each tail's logits in tail_logits_
  std::vector<int32_t> host_index_;  // [3n]: sorted row -> token position; head column; tail column
  Tensor<int32_t> index_;            // device copy of host_index_
  Tensor<T> xs_;         // [n, M] hidden rows in sorted order
  Tensor<T> xp_;         // [n, d_0] xs · P_0 (undefined use when the head has no projection)
  Tensor<T> head_bias_;  // [head_size] concat(b_0, cluster_bias)
  // The loss is formed by Ops::biased_log_softmax_pick from the logits before the bias,
  // which are kept with each row's log-normaliser (lse) for the backward.
  Tensor<T> head_logits_;  // [n, head_size]
  Tensor<T> tail_xp_;      // tails with their own projection: packed x·P_c blocks (grow-only)
  Tensor<T> tail_logits_;  // packed [n_c, r_c - l_c] logit blocks (grow-only)
  Tensor<T> lse_;          // [2, n]: the head's lse of every row, then each tail row's
  Tensor<T> nll_sorted_; // [n]
  // Backward workspaces.
  Tensor<T> coef_;       // [n] -dnll in sorted order
  Tensor<T> dlogits_;    // one cluster's logits gradient at a time (grow-only)
  Tensor<T> dxp_;        // [n, d_0]
  Tensor<T> dtail_xp_;   // one tail's d(x·P_c) (grow-only)
  Tensor<T> dxs_;        // [n, M]
  Tensor<T> dhead_bias_; // [head_size]
};

}  // namespace txl
