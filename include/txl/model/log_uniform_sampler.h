// The log-uniform (Zipfian) candidate sampler of the recipe's sampled softmax: ids are
// frequency-ranked, P(id) = (log(id + 2) - log(id + 1)) / log(n_token + 1). One step
// draws n_tries = 2·n_sample ids with replacement and keeps the distinct ones (sorted).
// Every sampled-softmax logit is corrected by log Q(id) with the recipe's expected count
// Q(id) = 1 - (1 + P(id))^(-n_tries) (note 1 + P: the textbook probability of being drawn
// at least once is 1 - (1 - P)^n_tries; the two agree to first order in P). As in the
// recipe, P is evaluated in float32 and log Q rounded to float32; with these the recipe's
// golden losses are reproduced to 1e-12 (tests/golden/golden_model_test.cpp).
//
// The draws are a pure function of (run seed, optimizer step): philox uniforms
// (philox.h) under the site kSampledSoftmax of dropout_sites.h, inverted through the
// distribution's closed-form CDF P(id <= k) = log(k + 2) / log(n_token + 1). Every rank
// and batch chunk of a step therefore uses the same candidates.
#pragma once
#include <cstdint>
#include <vector>

namespace txl {

class LogUniformSampler {
 public:
  LogUniformSampler(int64_t n_token, int64_t n_sample);

  int64_t n_token() const { return n_token_; }
  int64_t n_tries() const { return 2 * n_sample_; }

  double probability(int64_t id) const;
  // log(-expm1(-n_tries · log1p(P(id)))) = log Q(id) (see above; float32 P and result).
  double log_expected_count(int64_t id) const;
  // The distinct ids of one step's n_tries draws, ascending.
  std::vector<int32_t> draw(uint64_t seed, uint64_t step) const;
  // The id whose CDF interval holds u in [0, 1).
  int64_t id_for_uniform(double u) const;
  // P(id) evaluated in float32 arithmetic.
  float probability_float(int64_t id) const;

 private:
  int64_t n_token_ = 0, n_sample_ = 0;
  double log_range_ = 0;  // log(n_token + 1)
};

}  // namespace txl
