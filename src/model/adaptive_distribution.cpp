#include "txl/model/adaptive_distribution.h"

#include <fmt/format.h>

#include "txl/model/adaptive_embedding.h"

namespace txl {
namespace {
std::string crit_name(const char* what, int64_t c) { return fmt::format("crit.{}.{}", what, c); }
bool needs_projection(const ModelConfig& cfg) { return cfg.div_val > 1 || cfg.embed_dim() != cfg.d_model; }
}  // namespace

template <typename T>
AdaptiveSoftmaxDistribution<T>::AdaptiveSoftmaxDistribution(const ModelConfig& cfg) : cfg_(cfg) {
  TXL_CHECK(!cfg.sampled(), "generation: a model with sample_softmax > 0 is not supported");
  const bool one_table = cfg.div_val == 1;
  for (int64_t c = 0; c <= cfg.n_clusters(); ++c) {
    Cluster k;
    k.begin = cfg.cluster_begin(c);
    k.end = cfg.cluster_end(c);
    k.dim = one_table ? cfg.embed_dim() : cfg.cluster_dim(c);
    k.weight_row = one_table ? k.begin : 0;
    k.bias_offset = one_table ? k.begin : 0;
    clusters_.push_back(k);
  }
}

template <typename T>
void AdaptiveSoftmaxDistribution<T>::bind(const ParamStore<T>& ps) {
  const bool one_table = cfg_.div_val == 1;
  if (cfg_.n_clusters() > 0) {
    cluster_weight_id_ = ps.id("crit.cluster_weight");
    cluster_bias_id_ = ps.id("crit.cluster_bias");
  }
  for (size_t c = 0; c < clusters_.size(); ++c) {
    Cluster& k = clusters_[c];
    const int64_t table = one_table ? 0 : static_cast<int64_t>(c);
    k.weight_id = ps.id(cfg_.tie_weight ? emb_layer_name(table) : crit_name("out_layers_weights", table));
    k.bias_id = ps.id(crit_name("out_layers_biases", table));
    k.proj_id = -1;
    if (needs_projection(cfg_))
      k.proj_id = ps.id(cfg_.tie_proj(static_cast<int64_t>(c)) ? emb_proj_name(table)
                                                               : crit_name("out_projs", static_cast<int64_t>(c)));
  }
}

template <typename T>
const std::vector<double>& AdaptiveSoftmaxDistribution<T>::compute_head(Ops<T>& ops, const ParamStore<T>& ps,
                                                                        const Tensor<T>& hidden) {
  TXL_CHECK(clusters_.front().weight_id >= 0, "AdaptiveSoftmaxDistribution: compute_head before bind");
  const int64_t M = cfg_.d_model, n = hidden.numel() / M, S = shortlist(), C = n_clusters(), HS = head_size();
  TXL_CHECK(n * M == hidden.numel() && n > 0, "adaptive distribution: hidden has shape {}, not rows of width {}",
            shape_string(hidden.shape()), M);
  rows_ = n;
  ensure(ops, x_, {n, M});
  ops.copy(x_.data(), hidden.data(), x_.bytes());
  const Cluster& h = clusters_[0];
  const T* xp = x_.data();
  if (h.proj_id >= 0) {
    ensure(ops, xp_, {n, h.dim});
    ops.gemm(Trans::kNo, Trans::kNo, n, h.dim, M, T(1), x_.data(), M, ps.param(h.proj_id).data(), h.dim, T(0),
             xp_.data(), h.dim);
    xp = xp_.data();
  }
  ensure(ops, head_, {n, HS});
  ops.gemm(Trans::kNo, Trans::kYes, n, S, h.dim, T(1), xp, h.dim, ps.param(h.weight_id).data() + h.weight_row * h.dim,
           h.dim, T(0), head_.data(), HS);
  if (C > 0)
    ops.gemm(Trans::kNo, Trans::kYes, n, C, h.dim, T(1), xp, h.dim, ps.param(cluster_weight_id_).data(), h.dim, T(0),
             head_.data() + S, HS);
  // Biases: b_0 over the shortlist columns, cluster_bias over the cluster columns.
  ensure(ops, head_bias_, {HS});
  ops.copy(head_bias_.data(), ps.param(h.bias_id).data() + h.bias_offset, static_cast<size_t>(S) * sizeof(T));
  if (C > 0)
    ops.copy(head_bias_.data() + S, ps.param(cluster_bias_id_).data(), static_cast<size_t>(C) * sizeof(T));
  ops.add_bias(head_.data(), head_bias_.data(), n, HS);
  ops.log_softmax(head_.data(), n, HS, head_.data());
  host_.resize(static_cast<size_t>(n * HS));
  ops.download(host_.data(), head_.data(), head_.bytes());
  head_logp_.assign(host_.begin(), host_.end());
  return head_logp_;
}

template <typename T>
std::vector<double> AdaptiveSoftmaxDistribution<T>::tail_log_probs(Ops<T>& ops, const ParamStore<T>& ps, int64_t row,
                                                                   int64_t c) {
  TXL_CHECK(row >= 0 && row < rows_ && c >= 1 && c <= n_clusters(), "tail_log_probs: row {} / cluster {} out of range",
            row, c);
  const int64_t M = cfg_.d_model;
  const Cluster& k = clusters_[static_cast<size_t>(c)];
  const int64_t V = k.end - k.begin;
  const T* xp = x_.data() + row * M;
  if (k.proj_id >= 0) {
    ensure(ops, tail_xp_, {1, k.dim});
    ops.gemm(Trans::kNo, Trans::kNo, 1, k.dim, M, T(1), xp, M, ps.param(k.proj_id).data(), k.dim, T(0),
             tail_xp_.data(), k.dim);
    xp = tail_xp_.data();
  }
  ensure(ops, tail_, {1, V});
  ops.gemm(Trans::kNo, Trans::kYes, 1, V, k.dim, T(1), xp, k.dim, ps.param(k.weight_id).data() + k.weight_row * k.dim,
           k.dim, T(0), tail_.data(), V);
  ops.add_bias(tail_.data(), ps.param(k.bias_id).data() + k.bias_offset, 1, V);
  ops.log_softmax(tail_.data(), 1, V, tail_.data());
  std::vector<T> host(static_cast<size_t>(V));
  ops.download(host.data(), tail_.data(), tail_.bytes());
  return std::vector<double>(host.begin(), host.end());
}

template <typename T>
std::vector<double> AdaptiveSoftmaxDistribution<T>::full_log_probs(Ops<T>& ops, const ParamStore<T>& ps,
                                                                   const Tensor<T>& hidden) {
  const std::vector<double> head = compute_head(ops, ps, hidden);
  const int64_t V = n_token(), S = shortlist(), HS = head_size();
  std::vector<double> out(static_cast<size_t>(rows_ * V));
  for (int64_t r = 0; r < rows_; ++r) {
    for (int64_t t = 0; t < S; ++t) out[static_cast<size_t>(r * V + t)] = head[static_cast<size_t>(r * HS + t)];
    for (int64_t c = 1; c <= n_clusters(); ++c) {
      const std::vector<double> tail = tail_log_probs(ops, ps, r, c);
      const double lc = head[static_cast<size_t>(r * HS + HS - c)];
      for (size_t i = 0; i < tail.size(); ++i)
        out[static_cast<size_t>(r * V + cluster_begin(c)) + i] = lc + tail[i];
    }
  }
  return out;
}

template class AdaptiveSoftmaxDistribution<float>;
template class AdaptiveSoftmaxDistribution<double>;

}  // namespace txl
