// A next-token distribution over the full vocabulary as the adaptive softmax factors it
// (adaptive_distribution.h): head log-probabilities for the shortlist tokens and for each
// tail cluster, and per cluster the within-cluster log-probabilities, computed only when a
// sampler asks for them (and then kept).
//   log p(t) = head[t]                                 t < shortlist
//   log p(t) = head[head_size - c] + tail(c)[t - l_c]  t in cluster c >= 1
// Without clusters it is one plain log-softmax over the vocabulary.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace txl::generate {

class ClusteredLogProbs {
 public:
  using TailFn = std::function<std::vector<double>(int64_t cluster)>;
  // bounds: l_0 = 0, l_1 .. l_C (the cutoffs), n_token; head: [shortlist + C] log-probs.
  ClusteredLogProbs(std::vector<int64_t> bounds, std::vector<double> head, TailFn tail);

  int64_t vocab_size() const { return bounds_.back(); }
  int64_t n_clusters() const { return static_cast<int64_t>(bounds_.size()) - 2; }
  int64_t shortlist() const { return bounds_[1]; }
  int64_t cluster_begin(int64_t c) const { return bounds_[static_cast<size_t>(c)]; }
  int64_t cluster_end(int64_t c) const { return bounds_[static_cast<size_t>(c) + 1]; }
  double token_head(int64_t t) const { return head_[static_cast<size_t>(t)]; }  // t < shortlist
  double cluster_head(int64_t c) const { return head_[head_.size() - static_cast<size_t>(c)]; }
  // log p(t | c) for t in cluster c (c >= 1), computed on first use.
  const std::vector<double>& tail(int64_t c);
  int64_t tails_computed() const;  // how many clusters were materialised so far
  // Every log p(t) (materialises every tail).
  std::vector<double> full();

 private:
  std::vector<int64_t> bounds_;
  std::vector<double> head_;
  TailFn tail_fn_;
  std::vector<std::vector<double>> tails_;
  std::vector<bool> have_;
};

}  // namespace txl::generate
