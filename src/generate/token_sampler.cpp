#include "txl/generate/token_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "txl/core/error.h"
#include "txl/core/philox.h"

namespace txl::generate {
namespace {

bool more_probable(const std::pair<int32_t, double>& a, const std::pair<int32_t, double>& b) {
  return a.second > b.second || (a.second == b.second && a.first < b.first);
}

void add_shortlist(ClusteredLogProbs& d, Candidates& out) {
  for (int64_t t = 0; t < d.shortlist(); ++t) out.emplace_back(static_cast<int32_t>(t), d.token_head(t));
}
void add_cluster(ClusteredLogProbs& d, int64_t c, Candidates& out) {
  const std::vector<double>& lp = d.tail(c);
  const double head = d.cluster_head(c);
  for (size_t i = 0; i < lp.size(); ++i)
    out.emplace_back(static_cast<int32_t>(d.cluster_begin(c) + static_cast<int64_t>(i)), head + lp[i]);
}
// Clusters 1..C in order of decreasing head probability.
std::vector<int64_t> clusters_by_head(const ClusteredLogProbs& d) {
  std::vector<int64_t> order;
  for (int64_t c = 1; c <= d.n_clusters(); ++c) order.push_back(c);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return d.cluster_head(a) > d.cluster_head(b); });
  return order;
}

// Index chosen by inverse CDF of weights w (not necessarily normalised) at u in [0, 1).
size_t inverse_cdf(const std::vector<double>& w, double u) {
  double total = 0.0;
  for (double x : w) total += x;
  const double target = u * total;
  double acc = 0.0;
  for (size_t i = 0; i < w.size(); ++i) {
    acc += w[i];
    if (target < acc) return i;
  }
  for (size_t i = w.size(); i-- > 0;)  // rounding: the last token with weight
    if (w[i] > 0.0) return i;
  return 0;
}

// Cuts `sorted` (most probable first, weights w) to the shortest prefix of mass >= top_p.
void cut_to_nucleus(Candidates& sorted, std::vector<double>& w, double top_p) {
  if (top_p >= 1.0) return;
  double total = 0.0;
  for (double x : w) total += x;
  double acc = 0.0;
  size_t keep = sorted.size();
  for (size_t i = 0; i < w.size(); ++i) {
    acc += w[i];
    if (acc >= top_p * total) {
      keep = i + 1;
      break;
    }
  }
  sorted.resize(keep);
  w.resize(keep);
}

}  // namespace

void check_sampling_settings(const SamplingSettings& s) {
  if (!(s.top_p > 0.0 && s.top_p <= 1.0)) failf("--top_p {} is outside (0, 1]", s.top_p);
  if (!(s.temperature > 0.0) || !std::isfinite(s.temperature))
    failf("--temperature {} must be a positive number", s.temperature);
  if (s.top_k < 0) failf("--top_k {} must be >= 0 (0: no top-k filter)", s.top_k);
}

double sample_uniform(uint64_t seed, uint64_t sample, uint64_t position, uint32_t draw) {
  const Philox4 ctr{{static_cast<uint32_t>(position), static_cast<uint32_t>(position >> 32),
                     static_cast<uint32_t>(sample), draw ^ (static_cast<uint32_t>(sample >> 32) << 16)}};
  const Philox4 r = philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  const uint64_t bits = (static_cast<uint64_t>(r.v[0] >> 5) << 26) | static_cast<uint64_t>(r.v[1] >> 6);
  return static_cast<double>(bits) * (1.0 / 9007199254740992.0);
}

Candidates top_k_candidates(ClusteredLogProbs& d, int64_t k) {
  TXL_CHECK(k >= 1, "top_k_candidates: k must be positive (got {})", k);
  Candidates cand;
  add_shortlist(d, cand);
  const size_t K = static_cast<size_t>(std::min<int64_t>(k, d.vocab_size()));
  for (int64_t c : clusters_by_head(d)) {
    if (cand.size() >= K) {
      std::nth_element(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(K - 1), cand.end(), more_probable);
      cand.resize(K);
      // Every token of c (and of the clusters after it) is less probable than its head entry.
      if (d.cluster_head(c) < cand[K - 1].second) break;
    }
    add_cluster(d, c, cand);
  }
  std::sort(cand.begin(), cand.end(), more_probable);
  if (cand.size() > K) cand.resize(K);
  return cand;
}

Candidates nucleus_candidates(ClusteredLogProbs& d, double top_p) {
  Candidates cand;
  add_shortlist(d, cand);
  std::vector<bool> expanded(static_cast<size_t>(d.n_clusters() + 1), false);
  for (;;) {
    std::sort(cand.begin(), cand.end(), more_probable);
    // Threshold: the log-prob of the last token of the nucleus among the candidates so far
    // (-inf while their mass is below top_p).
    double acc = 0.0, threshold = -std::numeric_limits<double>::infinity();
    size_t keep = cand.size();
    for (size_t i = 0; i < cand.size(); ++i) {
      acc += std::exp(cand[i].second);
      if (acc >= top_p) {
        threshold = cand[i].second;
        keep = i + 1;
        break;
      }
    }
    int64_t best = -1;
    for (int64_t c = 1; c <= d.n_clusters(); ++c)
      if (!expanded[static_cast<size_t>(c)] && (best < 0 || d.cluster_head(c) > d.cluster_head(best))) best = c;
    // Done when no unexpanded token can reach the threshold.
    if (best < 0 || d.cluster_head(best) < threshold) {
      cand.resize(keep);
      return cand;
    }
    expanded[static_cast<size_t>(best)] = true;
    add_cluster(d, best, cand);
  }
}

int32_t choose_token(ClusteredLogProbs& d, const SamplingSettings& s, uint64_t sample, uint64_t position) {
  if (s.greedy || s.top_k == 1) return top_k_candidates(d, 1).front().first;
  const double u = sample_uniform(s.seed, sample, position, 0);
  const bool filtered = s.top_k > 0 || s.top_p < 1.0;
  if (!filtered && s.temperature == 1.0) {
    // Exact two-stage draw: a head column, then (for a cluster) a token of its tail.
    std::vector<double> w(static_cast<size_t>(d.shortlist() + d.n_clusters()));
    for (int64_t t = 0; t < d.shortlist(); ++t) w[static_cast<size_t>(t)] = std::exp(d.token_head(t));
    for (int64_t c = 1; c <= d.n_clusters(); ++c) w[w.size() - static_cast<size_t>(c)] = std::exp(d.cluster_head(c));
    const int64_t col = static_cast<int64_t>(inverse_cdf(w, u));
    if (col < d.shortlist()) return static_cast<int32_t>(col);
    const int64_t c = static_cast<int64_t>(w.size()) - col;
    const std::vector<double>& lp = d.tail(c);
    std::vector<double> wt(lp.size());
    for (size_t i = 0; i < lp.size(); ++i) wt[i] = std::exp(lp[i]);
    return static_cast<int32_t>(d.cluster_begin(c) + static_cast<int64_t>(inverse_cdf(wt, sample_uniform(s.seed, sample, position, 1))));
  }
  Candidates cand;
  bool nucleus_done = false;
  if (s.top_k > 0) {
    cand = top_k_candidates(d, s.top_k);
  } else if (s.temperature == 1.0) {
    cand = nucleus_candidates(d, s.top_p);
    nucleus_done = true;
  } else {
    const std::vector<double> all = d.full();
    for (size_t t = 0; t < all.size(); ++t) cand.emplace_back(static_cast<int32_t>(t), all[t]);
    if (s.top_p < 1.0) std::sort(cand.begin(), cand.end(), more_probable);
  }
  // q proportional to p^(1/T) over the candidates (relative to the largest: no overflow).
  double top = -std::numeric_limits<double>::infinity();
  for (const auto& [t, lp] : cand) top = std::max(top, lp);
  std::vector<double> w(cand.size());
  for (size_t i = 0; i < cand.size(); ++i) w[i] = std::exp((cand[i].second - top) / s.temperature);
  if (!nucleus_done) cut_to_nucleus(cand, w, s.top_p);
  return cand[inverse_cdf(w, u)].first;
}

}  // namespace txl::generate
