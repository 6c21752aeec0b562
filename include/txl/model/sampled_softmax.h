// The loss head of a model with sample_softmax > 0 (the recipe's sampled softmax).
//
// Output weights are the model's input embedding: w(id) = word_emb(id), the embedding's
// own forward (scaled by sqrt(d_model), projected when it projects), so the head's
// gradient flows into the word_emb tables; the bias is out_layer.bias [n_token].
//
// Training (candidates given, the distinct ids a LogUniformSampler drew, S of them): per
// token i with target t and hidden h,
//   logit_0 = h·w(t) + b(t) - logQ(t),   logit_s = h·w(c_s) + b(c_s) - logQ(c_s)
// with logQ the sampler's log expected count; logit_s = -1e30 where c_s == t;
//   nll = -log_softmax([logit_0, logit_1 .. logit_S])[0].
// Evaluation (no candidates): the full softmax over every id with the same weights and
// bias, nll = -log_softmax(h·Wᵀ + b)[t] (the recipe has no evaluation path for such a
// model; docs/training.md).
//
// Implementation: logits [n, 1 + S] start as the bias-minus-logQ terms (one elementwise
// gather of a [n + S] vector), then the sample scores (one GEMM) and the target scores (a
// batch of n 1x1 products) are added.
#pragma once
#include <cstdint>
#include <vector>

#include "txl/core/ops.h"
#include "txl/core/param_store.h"
#include "txl/model/adaptive_embedding.h"
#include "txl/model/log_uniform_sampler.h"
#include "txl/model/model_config.h"

namespace txl {

template <typename T>
class SampledSoftmax {
 public:
  explicit SampledSoftmax(const ModelConfig& cfg);

  // Adds out_layer.bias [n_token].
  void register_params(ParamStore<T>& ps) const;
  // Binds the bias and the word_emb parameters (after all registration).
  void bind(const ParamStore<T>& ps);

  const LogUniformSampler& sampler() const { return sampler_; }

  // hidden [n, d_model] rows, targets host [n]. candidates: distinct ids (host), or
  // nullptr for the full softmax. nll [n] (ensure()'d).
  void forward(Ops<T>& ops, const ParamStore<T>& ps, const Tensor<T>& hidden, const std::vector<int32_t>& targets,
               const std::vector<int32_t>* candidates, Tensor<T>& nll);
  // dnll [n] -> dhidden [n, d_model] OVERWRITTEN (ensure()'d); gradients of out_layer.bias
  // and the word_emb parameters ACCUMULATED.
  void backward(Ops<T>& ops, ParamStore<T>& ps, const Tensor<T>& dnll, Tensor<T>& dhidden);

 private:
  void forward_sampled(Ops<T>& ops, const ParamStore<T>& ps, const std::vector<int32_t>& candidates,
                       Tensor<T>& nll);
  void forward_full(Ops<T>& ops, const ParamStore<T>& ps, Tensor<T>& nll);

  ModelConfig cfg_;
  LogUniformSampler sampler_;
  AdaptiveEmbedding<T> weights_;  // a second user of the word_emb parameters
  int bias_id_ = -1;

  // Saved by forward for backward.
  bool sampled_ = false;
  int64_t n_ = 0, S_ = 0;         // tokens, candidates (0: full softmax)
  const T* hidden_ = nullptr;     // the forward's hidden rows (caller keeps them)
  std::vector<int32_t> host_ids_; // sampled: [n + S] ids, [n·(1+S)] term index, [n] zeros, hits
  int64_t n_hits_ = 0;
  Tensor<int32_t> index_;         // device copy of host_ids_
  Tensor<T> w_;                   // [n + S, M] (sampled) or [n_token, M] (full) output weights
  Tensor<T> terms_;               // [n + S] b(id) - logQ(id)
  Tensor<T> masked_;              // [hits] fill values of the masked logits
  Tensor<T> logp_;                // [n, 1 + S] or [n, n_token] log-probabilities
  // Backward workspaces.
  Tensor<T> coef_, dlogits_, dw_, dterms_;
};

}  // namespace txl
