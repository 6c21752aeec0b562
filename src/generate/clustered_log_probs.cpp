#include "txl/generate/clustered_log_probs.h"

#include <utility>

#include "txl/core/error.h"

namespace txl::generate {

ClusteredLogProbs::ClusteredLogProbs(std::vector<int64_t> bounds, std::vector<double> head, TailFn tail)
    : bounds_(std::move(bounds)), head_(std::move(head)), tail_fn_(std::move(tail)) {
  TXL_CHECK(bounds_.size() >= 2 && bounds_.front() == 0, "ClusteredLogProbs: bounds must start at 0 and end at n_token");
  TXL_CHECK(static_cast<int64_t>(head_.size()) == shortlist() + n_clusters(),
            "ClusteredLogProbs: {} head log-probs for a shortlist of {} and {} clusters", head_.size(), shortlist(),
            n_clusters());
  tails_.resize(bounds_.size() - 1);
  have_.assign(bounds_.size() - 1, false);
}

const std::vector<double>& ClusteredLogProbs::tail(int64_t c) {
  TXL_CHECK(c >= 1 && c <= n_clusters(), "ClusteredLogProbs: no cluster {}", c);
  const size_t i = static_cast<size_t>(c);
  if (!have_[i]) {
    tails_[i] = tail_fn_(c);
    TXL_CHECK(static_cast<int64_t>(tails_[i].size()) == cluster_end(c) - cluster_begin(c),
              "ClusteredLogProbs: cluster {} has {} log-probs, expected {}", c, tails_[i].size(),
              cluster_end(c) - cluster_begin(c));
    have_[i] = true;
  }
  return tails_[i];
}

int64_t ClusteredLogProbs::tails_computed() const {
  int64_t n = 0;
  for (bool h : have_) n += h ? 1 : 0;
  return n;
}

std::vector<double> ClusteredLogProbs::full() {
  std::vector<double> out(static_cast<size_t>(vocab_size()));
  for (int64_t t = 0; t < shortlist(); ++t) out[static_cast<size_t>(t)] = token_head(t);
  for (int64_t c = 1; c <= n_clusters(); ++c) {
    const std::vector<double>& lp = tail(c);
    for (size_t i = 0; i < lp.size(); ++i) out[static_cast<size_t>(cluster_begin(c)) + i] = cluster_head(c) + lp[i];
  }
  return out;
}

}  // namespace txl::generate
