// The next-token distribution of the projected adaptive softmax (adaptive_softmax.h) for
// generation: the head log-probabilities of a batch of hidden rows, and on demand the
// within-cluster log-probabilities of one tail cluster for one row, so a sampler can work
// over the full vocabulary while computing only the tails it needs:
//   log p(t) = head[t]                                  t < shortlist (cluster 0)
//   log p(t) = head[head_size - c] + tail_c[t - l_c]    t in cluster c >= 1
// Same parameters (looked up by name, tied or not) and arithmetic as the loss head.
#pragma once
#include <cstdint>
#include <vector>

#include "txl/core/ops.h"
#include "txl/core/param_store.h"
#include "txl/model/model_config.h"

namespace txl {

template <typename T>
class AdaptiveSoftmaxDistribution {
 public:
  explicit AdaptiveSoftmaxDistribution(const ModelConfig& cfg);
  // Looks up the loss head's parameters (crit.*, or the tied word_emb tensors).
  void bind(const ParamStore<T>& ps);

  // hidden [rows, d_model] (device) -> head log-probabilities, host [rows, head_size].
  // Keeps the rows (and their head projection) for tail_log_probs.
  const std::vector<double>& compute_head(Ops<T>& ops, const ParamStore<T>& ps, const Tensor<T>& hidden);
  // log p(t | cluster c), t in [cluster_begin(c), cluster_end(c)), of row `row` of the last
  // compute_head; c in [1, n_clusters()].
  std::vector<double> tail_log_probs(Ops<T>& ops, const ParamStore<T>& ps, int64_t row, int64_t c);
  // Every log p(t), host [rows, n_token] (materialises every tail; tests and references).
  std::vector<double> full_log_probs(Ops<T>& ops, const ParamStore<T>& ps, const Tensor<T>& hidden);

  int64_t n_token() const { return cfg_.n_token; }
  int64_t n_clusters() const { return cfg_.n_clusters(); }
  int64_t shortlist() const { return cfg_.cluster_end(0); }
  int64_t head_size() const { return shortlist() + n_clusters(); }
  int64_t cluster_begin(int64_t c) const { return cfg_.cluster_begin(c); }
  int64_t cluster_end(int64_t c) const { return cfg_.cluster_end(c); }

 private:
  struct Cluster {
    int64_t begin = 0, end = 0, dim = 0;
    int weight_id = -1, bias_id = -1, proj_id = -1;
    int64_t weight_row = 0, bias_offset = 0;
  };
  ModelConfig cfg_;
  std::vector<Cluster> clusters_;
  int cluster_weight_id_ = -1, cluster_bias_id_ = -1;
  int64_t rows_ = 0;
  Tensor<T> x_, xp_, head_, head_bias_, tail_xp_, tail_;
  std::vector<T> host_;
  std::vector<double> head_logp_;
};

}  // namespace txl
