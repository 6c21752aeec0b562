#include "txl/model/adaptive_softmax.h"

#include <algorithm>

namespace txl {
namespace {

// A view of `need` elements of `storage`, which only ever grows: the per-cluster blocks
// change size from step to step (they depend on the targets), and steady state must not
// allocate. It grows at least geometrically (x2) up to `cap`, the most any batch of this
// size can need, so a run of ever larger tail counts allocates O(log) times instead of
// once per new maximum; the old block is freed before the new one is taken.
template <typename T>
T* grow_workspace(Ops<T>& ops, Tensor<T>& storage, int64_t need, int64_t cap) {
  if (!storage.defined() || storage.numel() < need || storage.device() != ops.device()) {
    const int64_t doubled = storage.defined() ? 2 * storage.numel() : 0;
    const int64_t size = std::max(need, std::min(cap, std::max(need + need / 4 + 1, doubled)));
    storage = Tensor<T>();
    storage = ops.empty({size});
  }
  return storage.data();
}

std::string crit_name(const char* what, int64_t c) { return fmt::format("crit.{}.{}", what, c); }

}  // namespace

template <typename T>
ProjectedAdaptiveLogSoftmax<T>::ProjectedAdaptiveLogSoftmax(const ModelConfig& cfg) : cfg_(cfg) {
  TXL_CHECK(cfg.n_token > 0, "ProjectedAdaptiveLogSoftmax: n_token must be positive (got {})", cfg.n_token);
  TXL_CHECK(cfg.div_val >= 1, "ProjectedAdaptiveLogSoftmax: div_val must be >= 1 (got {})", cfg.div_val);
  n_clusters_ = cfg.n_clusters();
  shortlist_ = cfg.cluster_end(0);
  const bool one_table = cfg.div_val == 1;
  for (int64_t c = 0; c <= n_clusters_; ++c) {
    Cluster k;
    k.begin = cfg.cluster_begin(c);
    k.end = cfg.cluster_end(c);
    k.dim = one_table ? cfg.embed_dim() : cfg.cluster_dim(c);
    TXL_CHECK(k.dim >= 1, "ProjectedAdaptiveLogSoftmax: d_embed {} / div_val^{} is zero", cfg.embed_dim(), c);
    k.weight_row = one_table ? k.begin : 0;
    k.bias_offset = one_table ? k.begin : 0;
    clusters_.push_back(k);
  }
}

// Whether cluster c's logits need a projection P_c (docs/model.md §6).
static bool needs_projection(const ModelConfig& cfg) { return cfg.div_val > 1 || cfg.embed_dim() != cfg.d_model; }

template <typename T>
void ProjectedAdaptiveLogSoftmax<T>::register_params(ParamStore<T>& ps) const {
  const int64_t C = n_clusters_;
  const bool one_table = cfg_.div_val == 1;
  if (C > 0) {
    ps.add("crit.cluster_weight", {C, clusters_[0].dim}, ParamInit::kWeight);
    ps.add("crit.cluster_bias", {C}, ParamInit::kZero);
  }
  if (!cfg_.tie_weight) {
    if (one_table) {
      ps.add(crit_name("out_layers_weights", 0), {cfg_.n_token, cfg_.embed_dim()}, ParamInit::kWeight);
    } else {
      for (const Cluster& k : clusters_)
        ps.add(crit_name("out_layers_weights", &k - clusters_.data()), {k.end - k.begin, k.dim}, ParamInit::kWeight);
    }
  }
  if (one_table) {
    ps.add(crit_name("out_layers_biases", 0), {cfg_.n_token}, ParamInit::kZero);
  } else {
    for (const Cluster& k : clusters_)
      ps.add(crit_name("out_layers_biases", &k - clusters_.data()), {k.end - k.begin}, ParamInit::kZero);
  }
  if (needs_projection(cfg_)) {
    for (int64_t c = 0; c <= C; ++c)
      if (!cfg_.tie_proj(c))
        ps.add(crit_name("out_projs", c), {cfg_.d_model, clusters_[static_cast<size_t>(c)].dim},
               ParamInit::kProjection);
  }
}

template <typename T>
void ProjectedAdaptiveLogSoftmax<T>::bind(const ParamStore<T>& ps) {
  const bool one_table = cfg_.div_val == 1;
  const int64_t M = cfg_.d_model;
  if (n_clusters_ > 0) {
    cluster_weight_id_ = ps.id("crit.cluster_weight");
    cluster_bias_id_ = ps.id("crit.cluster_bias");
  }
  for (int64_t c = 0; c <= n_clusters_; ++c) {
    Cluster& k = clusters_[static_cast<size_t>(c)];
    const int64_t table = one_table ? 0 : c;
    const std::string wname = cfg_.tie_weight ? emb_layer_name(table) : crit_name("out_layers_weights", table);
    k.weight_id = ps.id(wname);
    const Shape& ws = ps.info(k.weight_id).shape;
    TXL_CHECK(ws.size() == 2 && ws[1] == k.dim && ws[0] >= k.weight_row + (k.end - k.begin),
              "{} has shape {}, which cannot hold the output weights of cluster {} ([{}, {}])", wname,
              shape_string(ws), c, k.end - k.begin, k.dim);
    k.bias_id = ps.id(crit_name("out_layers_biases", table));
    k.proj_id = -1;
    if (needs_projection(cfg_)) {
      const std::string pname = cfg_.tie_proj(c) ? emb_proj_name(table) : crit_name("out_projs", c);
      k.proj_id = ps.id(pname);
      TXL_CHECK(ps.info(k.proj_id).shape == Shape({M, k.dim}), "{} has shape {}, expected [{}, {}]", pname,
                shape_string(ps.info(k.proj_id).shape), M, k.dim);
    } else {
      TXL_CHECK(k.dim == M, "cluster {} has width {} but no projection to d_model {}", c, k.dim, M);
    }
    k.shares_head_proj = c > 0 && k.proj_id == clusters_[0].proj_id && k.dim == clusters_[0].dim;
  }
}

// The head's bias: b_0 itself, or concat(b_0, cluster_bias) that forward assembled.
template <typename T>
const T* ProjectedAdaptiveLogSoftmax<T>::head_bias(const ParamStore<T>& ps) const {
  if (n_clusters_ > 0) return head_bias_.data();
  const Cluster& h = clusters_[0];
  return ps.param(h.bias_id).data() + h.bias_offset;
}

template <typename T>
void ProjectedAdaptiveLogSoftmax<T>::forward(Ops<T>& ops, const ParamStore<T>& ps, const Tensor<T>& hidden,
                                             const std::vector<int32_t>& targets, Tensor<T>& nll) {
  TXL_CHECK(clusters_.front().weight_id >= 0, "ProjectedAdaptiveLogSoftmax: forward before bind");
  check_token_ids(targets, cfg_.n_token, "loss targets");
  const int64_t n = static_cast<int64_t>(targets.size());
  const int64_t M = cfg_.d_model;
  // Any layout of n rows of width M is accepted (e.g. time-major [len, batch, M]).
  TXL_CHECK(hidden.ndim() >= 1 && hidden.dim(-1) == M && hidden.numel() == n * M,
            "adaptive softmax: hidden has shape {}, expected [{}, {}] ({} targets)", shape_string(hidden.shape()), n,
            M, n);
  const int64_t C = n_clusters_, S = shortlist_, HS = head_size();
  const size_t K = clusters_.size();
  n_ = n;
  ensure(ops, nll, {n});
  if (n == 0) return;

  // ---- host: sort tokens by the cluster of their target; head and tail columns --------
  auto cluster_of = [&](int32_t t) {
    size_t c = 0;
    while (t >= clusters_[c].end) ++c;
    return c;
  };
  count_.assign(K, 0);
  row_offset_.assign(K, 0);
  xp_offset_.assign(K, 0);
  logits_offset_.assign(K, 0);
  for (int32_t t : targets) ++count_[cluster_of(t)];
  int64_t xp_total = 0, logits_total = 0;
  for (size_t c = 1; c < K; ++c) {
    const Cluster& k = clusters_[c];
    row_offset_[c] = row_offset_[c - 1] + count_[c - 1];
    xp_offset_[c] = xp_total;
    logits_offset_[c] = logits_total;
    if (!k.shares_head_proj) xp_total += count_[c] * k.dim;
    logits_total += count_[c] * (k.end - k.begin);
  }
  host_index_.resize(static_cast<size_t>(3 * n));
  std::vector<int64_t> next = row_offset_;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t t = targets[static_cast<size_t>(i)];
    const size_t c = cluster_of(t);
    const size_t r = static_cast<size_t>(next[c]++);
    host_index_[r] = static_cast<int32_t>(i);
    host_index_[static_cast<size_t>(n) + r] = static_cast<int32_t>(c == 0 ? t : HS - static_cast<int64_t>(c));
    host_index_[static_cast<size_t>(2 * n) + r] = static_cast<int32_t>(t - clusters_[c].begin);
  }
  ensure(ops, index_, {3 * n});
  ops.upload(index_.data(), host_index_.data(), host_index_.size() * sizeof(int32_t));
  const int32_t* positions = index_.data();
  const int32_t* head_col = index_.data() + n;
  const int32_t* tail_col = index_.data() + 2 * n;

  ensure(ops, xs_, {n, M});
  ops.gather_rows(hidden.data(), positions, n, M, xs_.data());
  ensure(ops, nll_sorted_, {n});
  T* nll_sorted = nll_sorted_.data();

  // ---- head: logits over [shortlist ids, cluster tokens] -------------------------------
  const Cluster& h = clusters_[0];
  const int64_t d0 = h.dim;
  const T* xp = xs_.data();
  if (h.proj_id >= 0) {
    ensure(ops, xp_, {n, d0});
    ops.gemm(Trans::kNo, Trans::kNo, n, d0, M, T(1), xs_.data(), M, ps.param(h.proj_id).data(), d0, T(0),
             xp_.data(), d0);
    xp = xp_.data();
  }
  ensure(ops, head_logits_, {n, HS});
  ensure(ops, lse_, {2, n});
  T* hl = head_logits_.data();
  const T* W0 = ps.param(h.weight_id).data() + h.weight_row * d0;
  const T* b0 = ps.param(h.bias_id).data() + h.bias_offset;
  ops.gemm(Trans::kNo, Trans::kYes, n, S, d0, T(1), xp, d0, W0, d0, T(0), hl, HS);
  if (C > 0) {
    ops.gemm(Trans::kNo, Trans::kYes, n, C, d0, T(1), xp, d0, ps.param(cluster_weight_id_).data(), d0, T(0), hl + S,
             HS);
    ensure(ops, head_bias_, {HS});
    ops.copy(head_bias_.data(), b0, static_cast<size_t>(S) * sizeof(T));
    ops.copy(head_bias_.data() + S, ps.param(cluster_bias_id_).data(), static_cast<size_t>(C) * sizeof(T));
  }
  ops.biased_log_softmax_pick(hl, head_bias(ps), head_col, n, HS, false, nll_sorted, lse_.data());

  // ---- tails: only the rows whose target is in the cluster ------------------------------
  int64_t widest_tail = 0, deepest_tail = 0;  // every row in one tail cluster: the largest need
  for (size_t c = 1; c < K; ++c) {
    widest_tail = std::max(widest_tail, clusters_[c].end - clusters_[c].begin);
    deepest_tail = std::max(deepest_tail, clusters_[c].dim);
  }
  T* tail_xp = xp_total > 0 ? grow_workspace(ops, tail_xp_, xp_total, n * deepest_tail) : nullptr;
  T* tail_logits = logits_total > 0 ? grow_workspace(ops, tail_logits_, logits_total, n * widest_tail) : nullptr;
  for (size_t c = 1; c < K; ++c) {
    const Cluster& k = clusters_[c];
    const int64_t nc = count_[c], row = row_offset_[c], V = k.end - k.begin, d = k.dim;
    if (nc == 0) continue;
    const T* xpc = xp + row * d0;
    int64_t ldx = d0;
    if (!k.shares_head_proj) {
      T* dst = tail_xp + xp_offset_[c];
      ops.gemm(Trans::kNo, Trans::kNo, nc, d, M, T(1), xs_.data() + row * M, M, ps.param(k.proj_id).data(), d, T(0),
               dst, d);
      xpc = dst;
      ldx = d;
    }
    T* logits = tail_logits + logits_offset_[c];
    ops.gemm(Trans::kNo, Trans::kYes, nc, V, d, T(1), xpc, ldx, ps.param(k.weight_id).data() + k.weight_row * d, d,
             T(0), logits, V);
    ops.biased_log_softmax_pick(logits, ps.param(k.bias_id).data() + k.bias_offset, tail_col + row, nc, V, true,
                                nll_sorted + row, lse_.data() + n + row);
  }
  ops.scale(n, T(-1), nll_sorted);
  ops.scatter_rows(nll_sorted, positions, n, 1, nll.data());
}

template <typename T>
void ProjectedAdaptiveLogSoftmax<T>::backward(Ops<T>& ops, ParamStore<T>& ps, const Tensor<T>& dnll,
                                              Tensor<T>& dhidden) {
  const int64_t n = n_;
  const int64_t M = cfg_.d_model;
  TXL_CHECK(dnll.numel() == n, "adaptive softmax backward: dnll has {} elements, expected {}", dnll.numel(), n);
  ensure(ops, dhidden, {n, M});
  if (n == 0) return;
  const int64_t C = n_clusters_, S = shortlist_, HS = head_size();
  const size_t K = clusters_.size();
  const int32_t* positions = index_.data();
  const int32_t* head_col = index_.data() + n;
  const int32_t* tail_col = index_.data() + 2 * n;

  // d logp = -d nll, in sorted order.
  ensure(ops, coef_, {n});
  ops.gather_rows(dnll.data(), positions, n, 1, coef_.data());
  ops.scale(n, T(-1), coef_.data());
  const T* coef = coef_.data();

  int64_t dl_need = n * HS, dl_cap = n * HS, deepest_tail = 0;
  for (size_t c = 1; c < K; ++c) {
    const int64_t V = clusters_[c].end - clusters_[c].begin;
    dl_need = std::max(dl_need, count_[c] * V);
    dl_cap = std::max(dl_cap, n * V);
    deepest_tail = std::max(deepest_tail, clusters_[c].dim);
  }
  T* dl = grow_workspace(ops, dlogits_, dl_need, dl_cap);  // one cluster's logits gradient at a time

  // ---- head -----------------------------------------------------------------------------
  const Cluster& h = clusters_[0];
  const int64_t d0 = h.dim;
  const bool head_projected = h.proj_id >= 0;
  const T* xp = head_projected ? xp_.data() : xs_.data();
  ensure(ops, dxs_, {n, M});
  T* dxp = dxs_.data();  // without a head projection x·P_0 is x itself
  if (head_projected) {
    ensure(ops, dxp_, {n, d0});
    dxp = dxp_.data();
  }
  const T* W0 = ps.param(h.weight_id).data() + h.weight_row * d0;
  T* dW0 = ps.grad(h.weight_id).data() + h.weight_row * d0;
  T* db0 = ps.grad(h.bias_id).data() + h.bias_offset;
  ops.biased_log_softmax_pick_bwd(head_logits_.data(), head_bias(ps), lse_.data(), head_col, coef, n, HS, dl);
  if (C > 0) {
    ensure(ops, dhead_bias_, {HS});
    ops.fill(dhead_bias_.data(), HS, T(0));
    ops.bias_grad(dl, dhead_bias_.data(), n, HS);
    ops.axpy(S, T(1), dhead_bias_.data(), db0);
    ops.axpy(C, T(1), dhead_bias_.data() + S, ps.grad(cluster_bias_id_).data());
  } else {
    ops.bias_grad(dl, db0, n, HS);
  }
  ops.gemm(Trans::kYes, Trans::kNo, S, d0, n, T(1), dl, HS, xp, d0, T(1), dW0, d0);
  ops.gemm(Trans::kNo, Trans::kNo, n, d0, S, T(1), dl, HS, W0, d0, T(0), dxp, d0);
  if (C > 0) {
    const T* CW = ps.param(cluster_weight_id_).data();
    ops.gemm(Trans::kYes, Trans::kNo, C, d0, n, T(1), dl + S, HS, xp, d0, T(1), ps.grad(cluster_weight_id_).data(),
             d0);
    ops.gemm(Trans::kNo, Trans::kNo, n, d0, C, T(1), dl + S, HS, CW, d0, T(1), dxp, d0);
  }

  // ---- tails --------------------------------------------------------------------------------
  // Tails that share the head's projection add into d(x·P_0) before the head projection's
  // backward; the others add into dx after it (which overwrites dx).
  auto tail_backward = [&](size_t c) {
    const Cluster& k = clusters_[c];
    const int64_t nc = count_[c], row = row_offset_[c], V = k.end - k.begin, d = k.dim;
    const T* logits = tail_logits_.data() + logits_offset_[c];
    const T* bias = ps.param(k.bias_id).data() + k.bias_offset;
    ops.biased_log_softmax_pick_bwd(logits, bias, lse_.data() + n + row, tail_col + row, coef + row, nc, V, dl);
    ops.bias_grad(dl, ps.grad(k.bias_id).data() + k.bias_offset, nc, V);
    const T* W = ps.param(k.weight_id).data() + k.weight_row * d;
    T* dW = ps.grad(k.weight_id).data() + k.weight_row * d;
    if (k.shares_head_proj) {
      ops.gemm(Trans::kYes, Trans::kNo, V, d, nc, T(1), dl, V, xp + row * d0, d0, T(1), dW, d);
      ops.gemm(Trans::kNo, Trans::kNo, nc, d, V, T(1), dl, V, W, d, T(1), dxp + row * d0, d0);
    } else {
      const T* xpc = tail_xp_.data() + xp_offset_[c];
      ops.gemm(Trans::kYes, Trans::kNo, V, d, nc, T(1), dl, V, xpc, d, T(1), dW, d);
      T* dxpc = grow_workspace(ops, dtail_xp_, nc * d, n * deepest_tail);
      ops.gemm(Trans::kNo, Trans::kNo, nc, d, V, T(1), dl, V, W, d, T(0), dxpc, d);
      // dP_c += x_cᵀ · d(x_c·P_c);  dx_c += d(x_c·P_c) · P_cᵀ
      ops.gemm(Trans::kYes, Trans::kNo, M, d, nc, T(1), xs_.data() + row * M, M, dxpc, d, T(1),
               ps.grad(k.proj_id).data(), d);
      ops.gemm(Trans::kNo, Trans::kYes, nc, M, d, T(1), dxpc, d, ps.param(k.proj_id).data(), d, T(1),
               dxs_.data() + row * M, M);
    }
  };
  for (size_t c = 1; c < K; ++c)
    if (count_[c] > 0 && clusters_[c].shares_head_proj) tail_backward(c);
  if (head_projected) {
    ops.gemm(Trans::kYes, Trans::kNo, M, d0, n, T(1), xs_.data(), M, dxp, d0, T(1), ps.grad(h.proj_id).data(), d0);
    ops.gemm(Trans::kNo, Trans::kYes, n, M, d0, T(1), dxp, d0, ps.param(h.proj_id).data(), d0, T(0), dxs_.data(), M);
  }
  for (size_t c = 1; c < K; ++c)
    if (count_[c] > 0 && !clusters_[c].shares_head_proj) tail_backward(c);

  ops.scatter_rows(dxs_.data(), positions, n, M, dhidden.data());
}

template class ProjectedAdaptiveLogSoftmax<float>;
template class ProjectedAdaptiveLogSoftmax<double>;

}  // namespace txl
