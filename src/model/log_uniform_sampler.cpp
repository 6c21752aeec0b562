#include "txl/model/log_uniform_sampler.h"

#include <algorithm>
#include <cmath>

#include "txl/core/error.h"
#include "txl/core/philox.h"
#include "txl/model/dropout_sites.h"

namespace txl {

LogUniformSampler::LogUniformSampler(int64_t n_token, int64_t n_sample)
    : n_token_(n_token), n_sample_(n_sample), log_range_(std::log(static_cast<double>(n_token) + 1.0)) {
  TXL_CHECK(n_token > 0, "LogUniformSampler: n_token must be positive (got {})", n_token);
  TXL_CHECK(n_sample > 0, "LogUniformSampler: n_sample must be positive (got {})", n_sample);
}

double LogUniformSampler::probability(int64_t id) const {
  TXL_CHECK(id >= 0 && id < n_token_, "LogUniformSampler: id {} outside [0, {})", id, n_token_);
  const double k = static_cast<double>(id);
  return (std::log(k + 2.0) - std::log(k + 1.0)) / log_range_;
}

double LogUniformSampler::log_expected_count(int64_t id) const {
  const double p = static_cast<double>(probability_float(id));
  return static_cast<double>(static_cast<float>(std::log(-std::expm1(-static_cast<double>(n_tries()) * std::log1p(p)))));
}

float LogUniformSampler::probability_float(int64_t id) const {
  TXL_CHECK(id >= 0 && id < n_token_, "LogUniformSampler: id {} outside [0, {})", id, n_token_);
  const float k = static_cast<float>(id);
  return (std::log(k + 2.0f) - std::log(k + 1.0f)) / std::log(static_cast<float>(n_token_) + 1.0f);
}

int64_t LogUniformSampler::id_for_uniform(double u) const {
  const double k = std::floor(std::exp(u * log_range_)) - 1.0;
  return std::clamp(static_cast<int64_t>(k), int64_t{0}, n_token_ - 1);
}

std::vector<int32_t> LogUniformSampler::draw(uint64_t seed, uint64_t step) const {
  const DropoutKey key{seed, step, dropout_site::kSampledSoftmax};
  std::vector<int32_t> ids;
  ids.reserve(static_cast<size_t>(n_tries()));
  for (int64_t j = 0; j < n_tries(); ++j)
    ids.push_back(static_cast<int32_t>(id_for_uniform(philox_uniform(key, static_cast<uint64_t>(j)))));
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace txl
