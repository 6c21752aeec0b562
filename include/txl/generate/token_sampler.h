// Choosing the next token from a ClusteredLogProbs (docs/generate.md):
//  - greedy (or top_k 1): the most probable token of the full vocabulary;
//  - temperature T: probabilities q(t) proportional to p(t)^(1/T), i.e. softmax(log p / T);
//  - top_k K > 0: only the K most probable tokens (ties: lower id first);
//  - top_p P < 1 (nucleus): of those (or of all), the shortest prefix in order of
//    decreasing q whose mass reaches P, renormalised.
// Tail clusters are materialised only when they can matter: a token of cluster c has
// p(t) < p_head(c), so a cluster whose head probability is below the current top-k or
// nucleus threshold is never computed; with T = 1 and no filter the head is sampled first
// and then only the chosen cluster's tail.
// Random numbers: Philox4x32-10 keyed by the seed, counting (position, sample index,
// draw), so a sample's text depends on the seed and its index only — not on how samples
// are batched.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "txl/generate/clustered_log_probs.h"

namespace txl::generate {

struct SamplingSettings {
  double temperature = 1.0;
  int64_t top_k = 0;   // 0: no top-k filter
  double top_p = 1.0;  // 1: no nucleus filter
  bool greedy = false;
  uint64_t seed = 0;
};

// Throws txl::Error with one line naming the bad setting (top_p outside (0, 1],
// temperature <= 0, top_k < 0).
void check_sampling_settings(const SamplingSettings& s);

// Uniform in [0, 1) with 53 random bits, a pure function of its arguments.
double sample_uniform(uint64_t seed, uint64_t sample, uint64_t position, uint32_t draw);

// (token, log p) pairs, most probable first (ties: lower id first).
using Candidates = std::vector<std::pair<int32_t, double>>;
// The K most probable tokens of the full vocabulary.
Candidates top_k_candidates(ClusteredLogProbs& d, int64_t k);
// The nucleus of p itself (temperature 1): the shortest most-probable-first prefix whose
// probability mass reaches top_p.
Candidates nucleus_candidates(ClusteredLogProbs& d, double top_p);

// The token for sample `sample` at stream position `position`.
int32_t choose_token(ClusteredLogProbs& d, const SamplingSettings& s, uint64_t sample, uint64_t position);

}  // namespace txl::generate
