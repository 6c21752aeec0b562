#include "txl/model/incremental_decoder.h"

#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "txl/model/layer_norm.h"
#include "txl/model/learned_position_rows.h"
#include "txl/model/linear.h"
#include "txl/model/positional_embedding.h"

namespace txl {

template <typename T>
IncrementalDecoder<T>::IncrementalDecoder(TransformerXL<T>& model, Mode mode)
    : model_(model),
      ops_(model.ops()),
      cfg_(model.config()),
      relative_(mode == Mode::kAuto && model.config().attn_type <= 1),
      embedding_(model.config()) {
  TXL_CHECK(!cfg_.sampled(), "generation: a model with sample_softmax > 0 is not supported");
  const ParamStore<T>& ps = model_.params();
  embedding_.bind(ps);
  if (!relative_) return;
  // The parameters by their recipe names (the names checkpoints carry, docs/model.md).
  for (int64_t l = 0; l < cfg_.n_layer; ++l) {
    const std::string a = fmt::format("layers.{}.dec_attn.", l), f = fmt::format("layers.{}.pos_ff.", l);
    LayerParams p;
    p.qkv = ps.id(a + "qkv_net.weight");
    if (cfg_.attn_type == 0) p.r_net = ps.id(a + "r_net.weight");
    p.o_net = ps.id(a + "o_net.weight");
    p.attn_ln_w = ps.id(a + "layer_norm.weight");
    p.attn_ln_b = ps.id(a + "layer_norm.bias");
    p.ff_w1 = ps.id(f + "CoreNet.0.weight");
    p.ff_b1 = ps.id(f + "CoreNet.0.bias");
    p.ff_w2 = ps.id(f + "CoreNet.3.weight");
    p.ff_b2 = ps.id(f + "CoreNet.3.bias");
    p.ff_ln_w = ps.id(f + "layer_norm.weight");
    p.ff_ln_b = ps.id(f + "layer_norm.bias");
    layer_params_.push_back(p);
  }
  r_w_bias_ = ps.id("r_w_bias");
  if (cfg_.attn_type == 0) {
    r_r_bias_ = ps.id("r_r_bias");
  } else {
    r_emb_ = ps.id("r_emb");
    r_bias_ = ps.id("r_bias");
  }
}

template <typename T>
void IncrementalDecoder<T>::reset(int64_t batch) {
  TXL_CHECK(batch > 0, "generation: batch must be positive (got {})", batch);
  cfg_ = model_.config();
  TXL_CHECK(cfg_.ext_len == 0, "generation: ext_len must be 0 (got {})", cfg_.ext_len);
  batch_ = batch;
  mlen_ = 0;
  pending_ = 0;
  capacity_ = cfg_.mem_len + cfg_.tgt_len;
  memory_.clear();
  pending_ids_.clear();
  dummy_targets_.assign(static_cast<size_t>(cfg_.tgt_len * batch), 0);
  if (!relative_) return;
  const int64_t M = cfg_.d_model, HD = cfg_.n_head * cfg_.d_head;
  rows_.resize(static_cast<size_t>(cfg_.n_layer));
  kv_.resize(static_cast<size_t>(cfg_.n_layer));
  for (int64_t l = 0; l < cfg_.n_layer; ++l) {
    ensure(ops_, rows_[static_cast<size_t>(l)], {capacity_, batch, M});
    ensure(ops_, kv_[static_cast<size_t>(l)], {capacity_, batch, 2 * HD});
  }
  prepare_positions();
}

template <typename T>
void IncrementalDecoder<T>::prepare_positions() {
  // Position rows of a forward with klen = capacity_; a window of K keys uses the last K
  // (they depend on the distance only: positional_embedding.h, learned_position_rows.h).
  const ParamStore<T>& ps = model_.params();
  const int64_t P = capacity_, M = cfg_.d_model, H = cfg_.n_head, HD = H * cfg_.d_head;
  const int64_t clamp = cfg_.clamp_len > 0 ? cfg_.clamp_len : 0;
  r_all_.resize(static_cast<size_t>(cfg_.n_layer));
  rbias_all_.resize(static_cast<size_t>(cfg_.n_layer));
  if (cfg_.attn_type == 0) {
    const Tensor<T> pos = to_device(ops_, position_embedding<T>(P, M, clamp), {P, M});
    for (int64_t l = 0; l < cfg_.n_layer; ++l) {
      Tensor<T>& r = r_all_[static_cast<size_t>(l)];
      ensure(ops_, r, {P, HD});
      linear_forward<T>(ops_, pos.data(), P, M, ps.param(layer_params_[static_cast<size_t>(l)].r_net).data(), HD,
                        nullptr, r.data());
    }
  } else {
    const int64_t table = cfg_.position_rows();
    const std::vector<int32_t> rows = learned_relative_rows(P, table, clamp);
    ensure(ops_, table_rows_, {P});
    ops_.upload(table_rows_.data(), rows.data(), rows.size() * sizeof(int32_t));
    for (int64_t l = 0; l < cfg_.n_layer; ++l) {
      Tensor<T>& r = r_all_[static_cast<size_t>(l)];
      Tensor<T>& rb = rbias_all_[static_cast<size_t>(l)];
      ensure(ops_, r, {P, HD});
      ensure(ops_, rb, {P, H});
      ops_.gather_rows(ps.param(r_emb_).data() + l * table * HD, table_rows_.data(), P, HD, r.data());
      ops_.gather_rows(ps.param(r_bias_).data() + l * table * H, table_rows_.data(), P, H, rb.data());
    }
  }
}

template <typename T>
const Tensor<T>& IncrementalDecoder<T>::feed(const int32_t* ids, int64_t count) {
  TXL_CHECK(batch_ > 0, "generation: feed before reset");
  TXL_CHECK(count > 0, "generation: nothing to feed");
  const int64_t B = batch_, S = cfg_.tgt_len;
  for (int64_t t = 0; t < count; ++t) {
    const int32_t* row = ids + t * B;
    if (relative_) {
      if (pending_ == 0 && count - t > S) {
        run_segment(row);
        t += S - 1;
      } else {
        step_one_row(row);
      }
    } else {
      step_recompute(row, t + 1 == count);
    }
  }
  return output_;
}

template <typename T>
Memory<T> IncrementalDecoder<T>::memory() const {
  if (!relative_) return clone_memory(ops_, memory_);
  Memory<T> m;
  m.mlen = mlen_;
  m.batch = mlen_ > 0 ? batch_ : 0;
  if (mlen_ == 0) return m;
  const int64_t M = cfg_.d_model;
  for (const Tensor<T>& rows : rows_) {
    Tensor<T> t = ops_.empty({mlen_, batch_, M});
    ops_.copy(t.data(), rows.data(), t.bytes());
    m.layers.push_back(std::move(t));
  }
  return m;
}

// ---- attn_type 0 / 1: one query row --------------------------------------------------------

template <typename T>
void IncrementalDecoder<T>::layer_norm_rows(int gamma_id, int beta_id, const T* x, int64_t rows, T* y) {
  const ParamStore<T>& ps = model_.params();
  ensure(ops_, ln_mean_, {rows});
  ensure(ops_, ln_rstd_, {rows});
  ops_.layernorm_fwd(rows, cfg_.d_model, x, ps.param(gamma_id).data(), ps.param(beta_id).data(),
                     T(LayerNorm<T>::kEps), y, ln_mean_.data(), ln_rstd_.data());
}

template <typename T>
void IncrementalDecoder<T>::step_one_row(const int32_t* ids) {
  const int64_t B = batch_, M = cfg_.d_model, W = mlen_ + pending_;
  std::vector<int32_t> host(ids, ids + B);
  embedding_.forward(ops_, model_.params(), host, emb_);
  ensure(ops_, x_, {B, M});
  ensure(ops_, y_, {B, M});
  ensure(ops_, mid_, {B, M});
  const T* cur = emb_.data();
  T* next = x_.data();
  for (int64_t l = 0; l < cfg_.n_layer; ++l) {
    // The row joins the window first: its own key and value are among the K keys.
    ops_.copy(rows_[static_cast<size_t>(l)].data() + W * B * M, cur, static_cast<size_t>(B * M) * sizeof(T));
    attention_row(l, cur, mid_.data());
    feed_forward_row(l, mid_.data(), next);
    cur = next;
    next = next == x_.data() ? y_.data() : x_.data();
  }
  ensure(ops_, output_, {B, M});
  ops_.copy(output_.data(), cur, output_.bytes());
  if (++pending_ == cfg_.tgt_len) roll_window();
}

template <typename T>
void IncrementalDecoder<T>::attention_row(int64_t layer, const T* x, T* out) {
  const ParamStore<T>& ps = model_.params();
  const LayerParams& p = layer_params_[static_cast<size_t>(layer)];
  const int64_t B = batch_, M = cfg_.d_model, H = cfg_.n_head, D = cfg_.d_head, HD = H * D;
  const int64_t W = mlen_ + pending_, K = W + 1;
  const T scale = T(1.0 / std::sqrt(static_cast<double>(D)));
  const T* w_qkv = ps.param(p.qkv).data();
  T* kv = kv_[static_cast<size_t>(layer)].data();

  const T* xn = x;
  if (cfg_.pre_lnorm) {
    ensure(ops_, xn_, {B, M});
    layer_norm_rows(p.attn_ln_w, p.attn_ln_b, x, B, xn_.data());
    xn = xn_.data();
  }
  ensure(ops_, q_, {B, HD});
  linear_forward<T>(ops_, xn, B, M, w_qkv, HD, nullptr, q_.data());
  linear_forward<T>(ops_, xn, B, M, w_qkv + HD * M, 2 * HD, nullptr, kv + W * B * 2 * HD);

  // q + u for the content term; q + w (attn_type 0) or q (attn_type 1) for the position term.
  ensure(ops_, qu_, {B, HD});
  ensure(ops_, qw_, {B, HD});
  ops_.copy(qu_.data(), q_.data(), q_.bytes());
  ops_.add_bias(qu_.data(), ps.param(r_w_bias_).data() + (cfg_.attn_type == 1 ? layer * HD : 0), B, HD);
  ops_.copy(qw_.data(), q_.data(), q_.bytes());
  if (cfg_.attn_type == 0) ops_.add_bias(qw_.data(), ps.param(r_r_bias_).data(), B, HD);

  // scores [H, B, K]: content term per stream (the cached keys of stream b are every B-th
  // row of kv), position term for all streams of a head at once.
  ensure(ops_, scores_, {H, B, K});
  ensure(ops_, bd_, {H, B, K});
  for (int64_t b = 0; b < B; ++b)
    ops_.gemm_strided_batched(Trans::kNo, Trans::kYes, 1, K, D, T(1), qu_.data() + b * HD, D, D, kv + b * 2 * HD,
                              B * 2 * HD, D, T(0), scores_.data() + b * K, K, B * K, H);
  const T* R = r_all_[static_cast<size_t>(layer)].data() + (capacity_ - K) * HD;
  ops_.gemm_strided_batched(Trans::kNo, Trans::kYes, B, K, D, T(1), qw_.data(), HD, D, R, HD, D, T(0), bd_.data(), K,
                            B * K, H);
  if (cfg_.attn_type == 1) {
    const T* rb = rbias_all_[static_cast<size_t>(layer)].data() + (capacity_ - K) * H;
    ensure(ops_, ones_, {B});
    ops_.fill(ones_.data(), B, T(1));
    for (int64_t h = 0; h < H; ++h)
      ops_.gemm(Trans::kNo, Trans::kYes, B, K, 1, T(1), ones_.data(), 1, rb + h, H, T(1), bd_.data() + h * B * K, K);
  }
  // The last row of a forward with klen K: qlen 1 over K-1 earlier rows.
  ops_.rel_shift_add(bd_.data(), H * B, 1, K, K - 1, scores_.data());
  ensure(ops_, probs_, {H, B, K});
  ops_.attn_softmax_fwd(scores_.data(), H * B, 1, K, scale, AttnMask{K - 1, cfg_.same_length, cfg_.mem_len},
                        probs_.data());

  ensure(ops_, attn_vec_, {B, HD});
  for (int64_t b = 0; b < B; ++b)
    ops_.gemm_strided_batched(Trans::kNo, Trans::kNo, 1, D, K, T(1), probs_.data() + b * K, K, B * K,
                              kv + HD + b * 2 * HD, B * 2 * HD, D, T(0), attn_vec_.data() + b * HD, D, D, H);
  ensure(ops_, o_, {B, M});
  linear_forward<T>(ops_, attn_vec_.data(), B, HD, ps.param(p.o_net).data(), M, nullptr, o_.data());
  if (cfg_.pre_lnorm) {
    ops_.add(B * M, x, o_.data(), out);
  } else {
    ensure(ops_, sum_, {B, M});
    ops_.add(B * M, x, o_.data(), sum_.data());
    layer_norm_rows(p.attn_ln_w, p.attn_ln_b, sum_.data(), B, out);
  }
}

template <typename T>
void IncrementalDecoder<T>::feed_forward_row(int64_t layer, const T* x, T* out) {
  const ParamStore<T>& ps = model_.params();
  const LayerParams& p = layer_params_[static_cast<size_t>(layer)];
  const int64_t B = batch_, M = cfg_.d_model, F = cfg_.d_inner;
  const T* in = x;
  if (cfg_.pre_lnorm) {
    ensure(ops_, xn_, {B, M});
    layer_norm_rows(p.ff_ln_w, p.ff_ln_b, x, B, xn_.data());
    in = xn_.data();
  }
  ensure(ops_, inner_, {B, F});
  linear_forward<T>(ops_, in, B, M, ps.param(p.ff_w1).data(), F, ps.param(p.ff_b1).data(), inner_.data());
  ops_.relu_fwd(B * F, inner_.data(), inner_.data());
  ensure(ops_, ff_sum_, {B, M});
  T* f = cfg_.pre_lnorm ? out : ff_sum_.data();
  linear_forward<T>(ops_, inner_.data(), B, F, ps.param(p.ff_w2).data(), M, ps.param(p.ff_b2).data(), f);
  ops_.add(B * M, x, f, f);
  if (!cfg_.pre_lnorm) layer_norm_rows(p.ff_ln_w, p.ff_ln_b, ff_sum_.data(), B, out);
}

template <typename T>
void IncrementalDecoder<T>::roll_window() {
  // The model's memory update over the segment just completed: rows [begin, end) of
  // concat(memory, segment) stay.
  const MemoryWindow w = memory_window(mlen_, pending_, cfg_.mem_len, 0);
  const int64_t B = batch_, M = cfg_.d_model, HD = cfg_.n_head * cfg_.d_head;
  if (w.begin > 0 && w.length() > 0) {
    auto keep = [&](Tensor<T>& t, int64_t width) {
      const size_t bytes = static_cast<size_t>(w.length() * B * width) * sizeof(T);
      ensure(ops_, scratch_, {w.length() * B * width});
      ops_.copy(scratch_.data(), t.data() + w.begin * B * width, bytes);  // via scratch: the ranges may overlap
      ops_.copy(t.data(), scratch_.data(), bytes);
    };
    for (size_t l = 0; l < rows_.size(); ++l) {
      keep(rows_[l], M);
      keep(kv_[l], 2 * HD);
    }
  }
  mlen_ = w.length();
  pending_ = 0;
}

template <typename T>
void IncrementalDecoder<T>::load_window(const Memory<T>& mem) {
  const ParamStore<T>& ps = model_.params();
  const int64_t B = batch_, M = cfg_.d_model, HD = cfg_.n_head * cfg_.d_head, N = mem.mlen * B;
  TXL_CHECK(mem.mlen <= cfg_.mem_len, "generation: a memory of {} rows exceeds mem_len {}", mem.mlen, cfg_.mem_len);
  mlen_ = mem.mlen;
  pending_ = 0;
  if (N == 0) return;
  for (size_t l = 0; l < rows_.size(); ++l) {
    const LayerParams& p = layer_params_[l];
    ops_.copy(rows_[l].data(), mem.layers[l].data(), mem.layers[l].bytes());
    const T* x = rows_[l].data();
    if (cfg_.pre_lnorm) {
      ensure(ops_, xn_, {N, M});
      layer_norm_rows(p.attn_ln_w, p.attn_ln_b, x, N, xn_.data());
      x = xn_.data();
    }
    linear_forward<T>(ops_, x, N, M, ps.param(p.qkv).data() + HD * M, 2 * HD, nullptr, kv_[l].data());
  }
}

template <typename T>
void IncrementalDecoder<T>::run_segment(const int32_t* ids) {
  Memory<T> mem = memory();
  StepContext ctx;
  model_.forward_embed(ids, dummy_targets_.data(), cfg_.tgt_len, batch_, mem, ctx);
  model_.forward_layers(mem);
  load_window(mem);
}

// ---- recompute: a model forward over [memory, pending] ------------------------------------

template <typename T>
void IncrementalDecoder<T>::step_recompute(const int32_t* ids, bool need_output) {
  const int64_t B = batch_, M = cfg_.d_model;
  pending_ids_.insert(pending_ids_.end(), ids, ids + B);
  ++pending_;
  const bool full = pending_ == cfg_.tgt_len;
  if (!need_output && !full) return;
  // The model's forward writes the new memory into the memory it is given: a copy.
  scratch_memory_ = clone_memory(ops_, memory_);
  StepContext ctx;
  model_.forward_embed(pending_ids_.data(), dummy_targets_.data(), pending_, B, scratch_memory_, ctx);
  model_.forward_layers(scratch_memory_);
  ensure(ops_, output_, {B, M});
  ops_.copy(output_.data(), model_.output().data() + (pending_ - 1) * B * M, output_.bytes());
  if (full) {
    std::swap(memory_, scratch_memory_);
    mlen_ = memory_.mlen;
    pending_ = 0;
    pending_ids_.clear();
  }
}

template class IncrementalDecoder<float>;
template class IncrementalDecoder<double>;

}  // namespace txl
