#include "txl/model/sampled_softmax.h"

#include <algorithm>

namespace txl {
namespace {
constexpr const char* kBiasName = "out_layer.bias";
// The value a masked logit gets (a candidate equal to the target): far below any score,
// so its probability is exactly 0 in the softmax, as in the recipe.
constexpr double kMaskedLogit = -1e30;
}  // namespace

template <typename T>
SampledSoftmax<T>::SampledSoftmax(const ModelConfig& cfg)
    : cfg_(cfg), sampler_(cfg.n_token, std::max<int64_t>(cfg.sample_softmax, 1)), weights_(cfg) {}

template <typename T>
void SampledSoftmax<T>::register_params(ParamStore<T>& ps) const {
  ps.add(kBiasName, {cfg_.n_token}, ParamInit::kZero);
}

template <typename T>
void SampledSoftmax<T>::bind(const ParamStore<T>& ps) {
  bias_id_ = ps.id(kBiasName);
  weights_.bind(ps);
}

template <typename T>
void SampledSoftmax<T>::forward(Ops<T>& ops, const ParamStore<T>& ps, const Tensor<T>& hidden,
                                const std::vector<int32_t>& targets, const std::vector<int32_t>* candidates,
                                Tensor<T>& nll) {
  TXL_CHECK(bias_id_ >= 0, "SampledSoftmax: forward before bind");
  check_token_ids(targets, cfg_.n_token, "loss targets");
  const int64_t n = static_cast<int64_t>(targets.size()), M = cfg_.d_model;
  TXL_CHECK(hidden.ndim() >= 1 && hidden.dim(-1) == M && hidden.numel() == n * M,
            "sampled softmax: hidden has shape {}, expected [{}, {}] ({} targets)", shape_string(hidden.shape()), n,
            M, n);
  n_ = n;
  hidden_ = hidden.data();
  sampled_ = candidates != nullptr;
  host_ids_.assign(targets.begin(), targets.end());
  ensure(ops, nll, {n});
  if (n == 0) return;
  if (sampled_) {
    forward_sampled(ops, ps, *candidates, nll);
  } else {
    forward_full(ops, ps, nll);
  }
}

template <typename T>
void SampledSoftmax<T>::forward_sampled(Ops<T>& ops, const ParamStore<T>& ps, const std::vector<int32_t>& candidates,
                                        Tensor<T>& nll) {
  TXL_CHECK(!candidates.empty(), "sampled softmax: no candidates");
  check_token_ids(candidates, cfg_.n_token, "sampled-softmax candidates");
  const int64_t n = n_, S = static_cast<int64_t>(candidates.size()), W = 1 + S, M = cfg_.d_model;
  S_ = S;

  // ---- host: ids, where each logit's bias term comes from, hit positions ---------------
  // host_ids_ = [targets (n), candidates (S)], then term index [n·W], then n zeros (the
  // target column), then the flat positions of masked logits.
  host_ids_.insert(host_ids_.end(), candidates.begin(), candidates.end());
  std::vector<T> host_terms(static_cast<size_t>(n + S));
  for (int64_t j = 0; j < n + S; ++j)
    host_terms[static_cast<size_t>(j)] = static_cast<T>(-sampler_.log_expected_count(host_ids_[static_cast<size_t>(j)]));
  for (int64_t i = 0; i < n; ++i) {
    host_ids_.push_back(static_cast<int32_t>(i));
    for (int64_t s = 0; s < S; ++s) host_ids_.push_back(static_cast<int32_t>(n + s));
  }
  host_ids_.insert(host_ids_.end(), static_cast<size_t>(n), 0);
  n_hits_ = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t s = 0; s < S; ++s)
      if (host_ids_[static_cast<size_t>(i)] == candidates[static_cast<size_t>(s)]) {
        host_ids_.push_back(static_cast<int32_t>(i * W + 1 + s));
        ++n_hits_;
      }
  ensure(ops, index_, {static_cast<int64_t>(host_ids_.size())});
  ops.upload(index_.data(), host_ids_.data(), host_ids_.size() * sizeof(int32_t));
  const int32_t* ids = index_.data();
  const int32_t* term_of = ids + n + S;
  const int32_t* col0 = term_of + n * W;
  const int32_t* hits = col0 + n;

  // ---- device: weights, logits, loss ------------------------------------------------
  std::vector<int32_t> all_ids(host_ids_.begin(), host_ids_.begin() + n + S);
  weights_.forward(ops, ps, all_ids, w_);  // [n + S, M]
  ensure(ops, terms_, {n + S});
  ops.upload(terms_.data(), host_terms.data(), host_terms.size() * sizeof(T));
  ensure(ops, dterms_, {n + S});  // scratch here: the gathered bias
  ops.gather_rows(ps.param(bias_id_).data(), ids, n + S, 1, dterms_.data());
  ops.add(n + S, terms_.data(), dterms_.data(), terms_.data());

  ensure(ops, logp_, {n, W});
  T* logits = logp_.data();
  ops.gather_rows(terms_.data(), term_of, n * W, 1, logits);
  const T* w = w_.data();
  ops.gemm(Trans::kNo, Trans::kYes, n, S, M, T(1), hidden_, M, w + n * M, M, T(1), logits + 1, W);
  ops.gemm_strided_batched(Trans::kNo, Trans::kYes, 1, 1, M, T(1), hidden_, M, M, w, M, M, T(1), logits, 1, W, n);
  if (n_hits_ > 0) {
    ensure(ops, masked_, {n_hits_});
    ops.fill(masked_.data(), n_hits_, static_cast<T>(kMaskedLogit));
    ops.scatter_rows(masked_.data(), hits, n_hits_, 1, logits);
  }
  ops.log_softmax(logits, n, W, logits);
  ops.pick_cols(logits, col0, n, W, false, nll.data());
  ops.scale(n, T(-1), nll.data());
}

template <typename T>
void SampledSoftmax<T>::forward_full(Ops<T>& ops, const ParamStore<T>& ps, Tensor<T>& nll) {
  const int64_t n = n_, V = cfg_.n_token, M = cfg_.d_model;
  S_ = 0;
  ensure(ops, index_, {n});
  ops.upload(index_.data(), host_ids_.data(), static_cast<size_t>(n) * sizeof(int32_t));
  std::vector<int32_t> every_id(static_cast<size_t>(V));
  for (int64_t v = 0; v < V; ++v) every_id[static_cast<size_t>(v)] = static_cast<int32_t>(v);
  weights_.forward(ops, ps, every_id, w_);  // [V, M]
  ensure(ops, logp_, {n, V});
  ops.gemm(Trans::kNo, Trans::kYes, n, V, M, T(1), hidden_, M, w_.data(), M, T(0), logp_.data(), V);
  ops.add_bias(logp_.data(), ps.param(bias_id_).data(), n, V);
  ops.log_softmax(logp_.data(), n, V, logp_.data());
  ops.pick_cols(logp_.data(), index_.data(), n, V, false, nll.data());
  ops.scale(n, T(-1), nll.data());
}

template <typename T>
void SampledSoftmax<T>::backward(Ops<T>& ops, ParamStore<T>& ps, const Tensor<T>& dnll, Tensor<T>& dhidden) {
  const int64_t n = n_, M = cfg_.d_model;
  TXL_CHECK(dnll.numel() == n, "sampled softmax backward: dnll has {} elements, the forward had {} tokens",
            dnll.numel(), n);
  ensure(ops, dhidden, {n, M});
  if (n == 0) return;
  ensure(ops, coef_, {n});
  ops.copy(coef_.data(), dnll.data(), static_cast<size_t>(n) * sizeof(T));
  ops.scale(n, T(-1), coef_.data());
  T* dbias = ps.grad(bias_id_).data();

  if (!sampled_) {
    const int64_t V = cfg_.n_token;
    ensure(ops, dlogits_, {n, V});
    ops.log_softmax_pick_bwd(logp_.data(), index_.data(), coef_.data(), n, V, dlogits_.data());
    ops.gemm(Trans::kNo, Trans::kNo, n, M, V, T(1), dlogits_.data(), V, w_.data(), M, T(0), dhidden.data(), M);
    ensure(ops, dw_, {V, M});
    ops.gemm(Trans::kYes, Trans::kNo, V, M, n, T(1), dlogits_.data(), V, hidden_, M, T(0), dw_.data(), M);
    ops.bias_grad(dlogits_.data(), dbias, n, V);
    weights_.backward(ops, ps, dw_);
    return;
  }

  const int64_t S = S_, W = 1 + S;
  const int32_t* ids = index_.data();
  const int32_t* term_of = ids + n + S;
  const int32_t* col0 = term_of + n * W;
  const int32_t* hits = col0 + n;
  ensure(ops, dlogits_, {n, W});
  T* dl = dlogits_.data();
  ops.log_softmax_pick_bwd(logp_.data(), col0, coef_.data(), n, W, dl);
  if (n_hits_ > 0) {  // a masked logit is a constant
    ops.fill(masked_.data(), n_hits_, T(0));
    ops.scatter_rows(masked_.data(), hits, n_hits_, 1, dl);
  }
  const T* w = w_.data();
  ops.gemm(Trans::kNo, Trans::kNo, n, M, S, T(1), dl + 1, W, w + n * M, M, T(0), dhidden.data(), M);
  ops.gemm_strided_batched(Trans::kNo, Trans::kNo, 1, M, 1, T(1), dl, 1, W, w, M, M, T(1), dhidden.data(), M, M, n);

  ensure(ops, dw_, {n + S, M});
  ops.gemm_strided_batched(Trans::kNo, Trans::kNo, 1, M, 1, T(1), dl, 1, W, hidden_, M, M, T(0), dw_.data(), M, M,
                           n);
  ops.gemm(Trans::kYes, Trans::kNo, S, M, n, T(1), dl + 1, W, hidden_, M, T(0), dw_.data() + n * M, M);
  weights_.backward(ops, ps, dw_);

  ensure(ops, dterms_, {n + S});
  ops.fill(dterms_.data(), n + S, T(0));
  ops.scatter_add_rows(dl, term_of, n * W, 1, dterms_.data());
  ops.scatter_add_rows(dterms_.data(), ids, n + S, 1, dbias);
}

template class SampledSoftmax<float>;
template class SampledSoftmax<double>;

}  // namespace txl
