#include "txl/model/adaptive_embedding.h"

#include <algorithm>
#include <cmath>

namespace txl {
namespace {

// A view of `need` elements of `storage`, which only ever grows: the per-cluster blocks
// change size from step to step, and steady state must not allocate.
template <typename T>
T* grow_workspace(Ops<T>& ops, Tensor<T>& storage, int64_t need) {
  if (!storage.defined() || storage.numel() < need || storage.device() != ops.device())
    storage = ops.empty({need + need / 4 + 1});
  return storage.data();
}

}  // namespace

std::string emb_layer_name(int64_t c) { return fmt::format("word_emb.emb_layers.{}.weight", c); }
std::string emb_proj_name(int64_t c) { return fmt::format("word_emb.emb_projs.{}", c); }

void check_token_ids(const std::vector<int32_t>& ids, int64_t n_token, const char* what) {
  for (size_t i = 0; i < ids.size(); ++i)
    TXL_CHECK(ids[i] >= 0 && ids[i] < n_token, "{}: token id {} at position {} is outside [0, n_token={})", what,
              ids[i], i, n_token);
}

template <typename T>
AdaptiveEmbedding<T>::AdaptiveEmbedding(const ModelConfig& cfg) : cfg_(cfg) {
  TXL_CHECK(cfg.n_token > 0, "AdaptiveEmbedding: n_token must be positive (got {})", cfg.n_token);
  TXL_CHECK(cfg.div_val >= 1, "AdaptiveEmbedding: div_val must be >= 1 (got {})", cfg.div_val);
  if (cfg.div_val == 1) {
    Table t;
    t.begin = 0;
    t.end = cfg.n_token;
    t.dim = cfg.embed_dim();
    t.projected = cfg.embed_dim() != cfg.d_model;
    tables_.push_back(t);
  } else {
    for (int64_t c = 0; c <= cfg.n_clusters(); ++c) {
      Table t;
      t.begin = cfg.cluster_begin(c);
      t.end = cfg.cluster_end(c);
      t.dim = cfg.cluster_dim(c);
      t.projected = true;  // docs/model.md §2: every cluster has emb_projs.c when div_val > 1
      TXL_CHECK(t.dim >= 1, "AdaptiveEmbedding: d_embed {} / div_val^{} is zero", cfg.embed_dim(), c);
      tables_.push_back(t);
    }
  }
}

template <typename T>
void AdaptiveEmbedding<T>::register_params(ParamStore<T>& ps) const {
  for (size_t c = 0; c < tables_.size(); ++c) {
    const Table& t = tables_[c];
    ps.add(emb_layer_name(static_cast<int64_t>(c)), {t.end - t.begin, t.dim}, ParamInit::kWeight);
  }
  for (size_t c = 0; c < tables_.size(); ++c) {
    const Table& t = tables_[c];
    if (t.projected) ps.add(emb_proj_name(static_cast<int64_t>(c)), {cfg_.d_model, t.dim}, ParamInit::kProjection);
  }
}

template <typename T>
void AdaptiveEmbedding<T>::bind(const ParamStore<T>& ps) {
  for (size_t c = 0; c < tables_.size(); ++c) {
    Table& t = tables_[c];
    t.weight_id = ps.id(emb_layer_name(static_cast<int64_t>(c)));
    TXL_CHECK(ps.info(t.weight_id).shape == Shape({t.end - t.begin, t.dim}), "{} has shape {}, expected [{}, {}]",
              emb_layer_name(static_cast<int64_t>(c)), shape_string(ps.info(t.weight_id).shape), t.end - t.begin,
              t.dim);
    t.proj_id = t.projected ? ps.id(emb_proj_name(static_cast<int64_t>(c))) : -1;
  }
}

template <typename T>
void AdaptiveEmbedding<T>::forward(Ops<T>& ops, const ParamStore<T>& ps, const std::vector<int32_t>& ids,
                                   Tensor<T>& out) {
  TXL_CHECK(tables_.front().weight_id >= 0, "AdaptiveEmbedding: forward before bind");
  check_token_ids(ids, cfg_.n_token, "embedding input");
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t M = cfg_.d_model;
  const T emb_scale = static_cast<T>(std::sqrt(static_cast<double>(M)));
  n_ = n;
  ensure(ops, out, {n, M});
  if (n == 0) return;

  // Host: sort token positions by table (stable), local row ids per table.
  const size_t K = tables_.size();
  count_.assign(K, 0);
  row_offset_.assign(K, 0);
  emb_offset_.assign(K, 0);
  auto table_of = [&](int32_t id) {
    size_t c = 0;
    while (id >= tables_[c].end) ++c;
    return c;
  };
  for (int32_t id : ids) ++count_[table_of(id)];
  int64_t emb_total = 0;
  for (size_t c = 0; c < K; ++c) {
    if (c > 0) row_offset_[c] = row_offset_[c - 1] + count_[c - 1];
    emb_offset_[c] = emb_total;
    if (tables_[c].projected) emb_total += count_[c] * tables_[c].dim;
  }
  host_index_.resize(static_cast<size_t>(2 * n));
  std::vector<int64_t> next = row_offset_;
  for (int64_t i = 0; i < n; ++i) {
    const size_t c = table_of(ids[static_cast<size_t>(i)]);
    const int64_t r = next[c]++;
    host_index_[static_cast<size_t>(r)] = static_cast<int32_t>(i);
    host_index_[static_cast<size_t>(n + r)] = static_cast<int32_t>(ids[static_cast<size_t>(i)] - tables_[c].begin);
  }
  ensure(ops, index_, {2 * n});
  ops.upload(index_.data(), host_index_.data(), host_index_.size() * sizeof(int32_t));
  const int32_t* positions = index_.data();
  const int32_t* local_ids = index_.data() + n;

  // With one table the sorted order is the token order: write `out` directly.
  const bool single = K == 1;
  T* sorted = out.data();
  if (!single) {
    ensure(ops, sorted_, {n, M});
    sorted = sorted_.data();
  }
  T* emb_rows = emb_total > 0 ? grow_workspace(ops, emb_rows_, emb_total) : nullptr;

  for (size_t c = 0; c < K; ++c) {
    const Table& t = tables_[c];
    const int64_t nc = count_[c];
    if (nc == 0) continue;
    const T* table = ps.param(t.weight_id).data();
    T* rows_out = sorted + row_offset_[c] * M;
    const int32_t* local = local_ids + row_offset_[c];
    if (t.projected) {
      // rows = E_c[local]; out = sqrt(M) * rows · P_cᵀ
      T* rows = emb_rows + emb_offset_[c];
      ops.gather_rows(table, local, nc, t.dim, rows);
      ops.gemm(Trans::kNo, Trans::kYes, nc, M, t.dim, emb_scale, rows, t.dim, ps.param(t.proj_id).data(), t.dim,
               T(0), rows_out, M);
    } else {
      ops.gather_rows(table, local, nc, M, rows_out);
      ops.scale(nc * M, emb_scale, rows_out);
    }
  }
  if (!single) ops.scatter_rows(sorted, positions, n, M, out.data());
}

template <typename T>
void AdaptiveEmbedding<T>::backward(Ops<T>& ops, ParamStore<T>& ps, const Tensor<T>& dout) {
  const int64_t n = n_;
  const int64_t M = cfg_.d_model;
  TXL_CHECK(dout.numel() == n * M, "AdaptiveEmbedding backward: dout has shape {}, expected [{}, {}]",
            shape_string(dout.shape()), n, M);
  if (n == 0) return;
  const T emb_scale = static_cast<T>(std::sqrt(static_cast<double>(M)));
  const size_t K = tables_.size();
  const int32_t* positions = index_.data();
  const int32_t* local_ids = index_.data() + n;

  const T* dsorted = dout.data();
  if (K > 1) {
    ensure(ops, dsorted_, {n, M});
    ops.gather_rows(dout.data(), positions, n, M, dsorted_.data());
    dsorted = dsorted_.data();
  }
  int64_t demb_need = 0;
  for (size_t c = 0; c < K; ++c) demb_need = std::max(demb_need, count_[c] * tables_[c].dim);
  T* demb = grow_workspace(ops, demb_, demb_need);  // one table's row gradients at a time

  for (size_t c = 0; c < K; ++c) {
    const Table& t = tables_[c];
    const int64_t nc = count_[c];
    if (nc == 0) continue;
    const T* dblock = dsorted + row_offset_[c] * M;
    if (t.projected) {
      const T* rows = emb_rows_.data() + emb_offset_[c];
      // drows = sqrt(M) * dout_c · P_c ;  dP_c += sqrt(M) * dout_cᵀ · rows
      ops.gemm(Trans::kNo, Trans::kNo, nc, t.dim, M, emb_scale, dblock, M, ps.param(t.proj_id).data(), t.dim, T(0),
               demb, t.dim);
      ops.gemm(Trans::kYes, Trans::kNo, M, t.dim, nc, emb_scale, dblock, M, rows, t.dim, T(1),
               ps.grad(t.proj_id).data(), t.dim);
    } else {
      ops.copy(demb, dblock, static_cast<size_t>(nc * M) * sizeof(T));
      ops.scale(nc * M, emb_scale, demb);
    }
    ops.scatter_add_rows(demb, local_ids + row_offset_[c], nc, t.dim, ps.grad(t.weight_id).data());
  }
}

template class AdaptiveEmbedding<float>;
template class AdaptiveEmbedding<double>;

}  // namespace txl
