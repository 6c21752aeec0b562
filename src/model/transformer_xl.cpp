#include "txl/model/transformer_xl.h"

#include <utility>

#include "txl/model/dropout_sites.h"
#include "txl/model/positional_embedding.h"

namespace txl {

namespace {
std::vector<int> id_range(int begin, int end) {
  std::vector<int> ids;
  for (int i = begin; i < end; ++i) ids.push_back(i);
  return ids;
}
ModelConfig resolved(const ModelConfig& cfg) {
  cfg.validate();
  ModelConfig out = cfg;
  if (out.learned_positions()) out.max_klen = out.position_rows();
  return out;
}
}  // namespace

template <typename T>
TransformerXL<T>::TransformerXL(const ModelConfig& cfg, Ops<T>& ops)
    : cfg_(resolved(cfg)), ops_(ops), word_emb_(cfg_), crit_(cfg_), sampled_head_(cfg_), positions_(cfg_) {
  layers_.reserve(static_cast<size_t>(cfg_.n_layer));
  for (int64_t l = 0; l < cfg_.n_layer; ++l) layers_.emplace_back(cfg_, l);

  int first = store_.size();
  if (cfg_.sampled()) {
    sampled_head_.register_params(store_);
  } else {
    crit_.register_params(store_);
  }
  crit_ids_ = id_range(first, store_.size());
  for (int64_t l = cfg_.n_layer - 1; l >= 0; --l) layers_[static_cast<size_t>(l)].register_params(store_);
  if (cfg_.attn_type == 0) {
    r_w_bias_id_ = store_.add("r_w_bias", {cfg_.n_head, cfg_.d_head}, ParamInit::kWeight);
    r_r_bias_id_ = store_.add("r_r_bias", {cfg_.n_head, cfg_.d_head}, ParamInit::kWeight);
    position_ids_ = {r_w_bias_id_, r_r_bias_id_};
  } else {
    positions_.register_params(store_);
    position_ids_ = positions_.param_ids();
  }
  first = store_.size();
  word_emb_.register_params(store_);
  emb_ids_ = id_range(first, store_.size());

  store_.allocate(ops_);
  word_emb_.bind(store_);
  if (cfg_.sampled()) {
    sampled_head_.bind(store_);
  } else {
    crit_.bind(store_);
  }
  if (cfg_.attn_type == 0)
    for (DecoderLayer<T>& layer : layers_) layer.relative_attention()->bind_shared_biases(r_w_bias_id_, r_r_bias_id_);
  positions_.bind(layers_);
}

template <typename T>
void TransformerXL<T>::init_params(uint64_t seed) {
  store_.initialize(cfg_.init, seed, ops_);
}

template <typename T>
void TransformerXL<T>::set_lengths(int64_t tgt_len, int64_t ext_len, int64_t mem_len, bool same_length,
                                   int64_t clamp_len) {
  ModelConfig next = cfg_;
  next.tgt_len = tgt_len;
  next.ext_len = ext_len;
  next.mem_len = mem_len;
  next.same_length = same_length;
  next.clamp_len = clamp_len;
  next.validate();
  cfg_ = next;
}

template <typename T>
const T* TransformerXL<T>::position_embedding_for(int64_t klen) {
  const int64_t clamp = cfg_.clamp_len > 0 ? cfg_.clamp_len : 0;
  if (klen != pos_klen_ || clamp != pos_clamp_ || !pos_emb_.defined()) {
    pos_emb_ = to_device(ops_, position_embedding<T>(klen, cfg_.d_model, clamp), {klen, cfg_.d_model});
    pos_klen_ = klen;
    pos_clamp_ = clamp;
  }
  return pos_emb_.data();
}

template <typename T>
const Tensor<T>& TransformerXL<T>::forward(const int32_t* data, const int32_t* target, int64_t qlen, int64_t batch,
                                           Memory<T>& mem, const StepContext& ctx) {
  forward_embed(data, target, qlen, batch, mem, ctx);
  forward_layers(mem);
  return forward_loss();
}

template <typename T>
void TransformerXL<T>::forward_embed(const int32_t* data, const int32_t* target, int64_t qlen, int64_t batch,
                                     const Memory<T>& mem, const StepContext& ctx) {
  TXL_CHECK(qlen > 0 && batch > 0, "forward: empty batch (qlen {}, batch {})", qlen, batch);
  TXL_CHECK(ctx.ext_rows >= 0 && ctx.ext_rows < qlen, "forward: {} extended-context rows leave no target of {} rows",
            ctx.ext_rows, qlen);
  TXL_CHECK(ctx.batch_global == 0 || (ctx.batch_offset >= 0 && ctx.batch_offset + batch <= ctx.batch_global),
            "forward: local streams [{}, {}) outside the global batch of {}", ctx.batch_offset,
            ctx.batch_offset + batch, ctx.batch_global);
  const int64_t M = cfg_.d_model;
  const size_t n_layer = static_cast<size_t>(cfg_.n_layer);
  const int64_t mlen = mem.mlen;
  if (mlen > 0) {
    TXL_CHECK(mem.batch == batch, "memory holds {} streams but the batch has {}", mem.batch, batch);
    TXL_CHECK(mem.layers.size() == n_layer, "memory has {} layers, the model {}", mem.layers.size(), n_layer);
    for (size_t l = 0; l < n_layer; ++l)
      TXL_CHECK(mem.layers[l].shape() == Shape({mlen, batch, M}), "memory of layer {} has shape {}, expected {}", l,
                shape_string(mem.layers[l].shape()), shape_string({mlen, batch, M}));
  }
  have_forward_ = false;
  stage_ = Stage::kEmbedded;

  StepGeometry& g = geometry_;
  g.qlen = qlen;
  g.mlen = mlen;
  g.klen = mlen + qlen;
  g.batch = batch;
  g.mask = AttnMask{mlen, cfg_.same_length, cfg_.mem_len};
  g.ctx = ctx;
  const int64_t N = g.query_rows(), NM = g.memory_rows();

  ids_.assign(data, data + N);
  targets_.assign(target, target + (qlen - ctx.ext_rows) * batch);

  // Layer inputs: memory rows first (copied in forward_layers); the new rows of layer 0
  // are the embedding, those of layer L > 0 the output of layer L-1.
  layer_in_.resize(n_layer);
  for (size_t l = 0; l < n_layer; ++l) ensure(ops_, layer_in_[l], {g.key_rows(), M});

  positions_.prepare(ops_, g, cfg_.clamp_len);
  word_emb_.forward(ops_, store_, ids_, emb_out_);
  if (embedding_hook_) embedding_hook_(ops_, emb_out_);
  T* core_in = layer_in_[0].data() + NM * M;
  const T* emb = emb_out_.data();
  if (cfg_.attn_type == 2) {
    positions_.add_to_embedding(ops_, g, emb, core_in);
    emb = core_in;
  }
  drop_emb_ = stream_dropout(ctx, cfg_.dropout, dropout_site::kWordEmbedding, qlen, batch, M);
  apply_dropout(ops_, drop_emb_, emb, core_in);

  // The sinusoid the layers see (attn_type 0 only; type 2 adds it to the input above).
  pos_ = nullptr;
  drop_pos_ = DropoutPlan{};
  if (cfg_.attn_type == 0) {
    pos_ = position_embedding_for(g.klen);
    drop_pos_ = shared_dropout(ctx, cfg_.dropout, dropout_site::kPositionEmbedding, g.klen * M);
  }
  if (drop_pos_.active) {
    ensure(ops_, pos_drop_, {g.klen, M});
    apply_dropout(ops_, drop_pos_, pos_, pos_drop_.data());
    pos_ = pos_drop_.data();
  }
  ensure(ops_, core_out_, {N, M});
}

template <typename T>
void TransformerXL<T>::forward_layers(Memory<T>& mem) {
  TXL_CHECK(stage_ == Stage::kEmbedded, "forward_layers: call forward_embed first");
  const StepGeometry& g = geometry_;
  TXL_CHECK(mem.mlen == g.mlen, "forward_layers: the memory changed since forward_embed ({} rows, then {})", g.mlen,
            mem.mlen);
  const int64_t M = cfg_.d_model, NM = g.memory_rows();
  const size_t n_layer = static_cast<size_t>(cfg_.n_layer);
  if (g.mlen > 0)
    for (size_t l = 0; l < n_layer; ++l) ops_.copy(layer_in_[l].data(), mem.layers[l].data(), mem.layers[l].bytes());

  for (size_t l = 0; l < n_layer; ++l) {
    T* out = l + 1 < n_layer ? layer_in_[l + 1].data() + NM * M : core_out_.data();
    positions_.add_to_layer_input(ops_, store_, g, static_cast<int64_t>(l), layer_in_[l].data());
    layers_[l].forward(ops_, store_, ws_, g, layer_in_[l].data(), pos_, out);
  }
  drop_core_ = stream_dropout(g.ctx, cfg_.dropout, dropout_site::kCoreOutput, g.qlen, g.batch, M);
  apply_dropout(ops_, drop_core_, core_out_.data(), core_out_.data());

  // New memory: rows [begin, end) of concat(mem_L, hid_L) = layer_in_[L]. Written into the
  // memory's own buffers when their shape is unchanged (in place: a recorded step stays valid).
  const MemoryWindow w = memory_window(g.mlen, g.qlen, cfg_.mem_len, cfg_.ext_len);
  mem.layers.resize(n_layer);
  for (size_t l = 0; l < n_layer; ++l) {
    ensure(ops_, mem.layers[l], {w.length(), g.batch, M});
    ops_.copy(mem.layers[l].data(), layer_in_[l].data() + w.begin * g.batch * M, mem.layers[l].bytes());
  }
  mem.mlen = w.length();
  mem.batch = g.batch;
  stage_ = Stage::kLayersDone;
}

template <typename T>
bool TransformerXL<T>::keeps_memory_length() const {
  const StepGeometry& g = geometry_;
  return g.mlen > 0 && memory_window(g.mlen, g.qlen, cfg_.mem_len, cfg_.ext_len).length() == g.mlen;
}

template <typename T>
void TransformerXL<T>::forward_layers_replayed(Memory<T>& mem) {
  TXL_CHECK(stage_ == Stage::kEmbedded, "forward_layers_replayed: call forward_embed first");
  const StepGeometry& g = geometry_;
  const Shape shape{g.mlen, g.batch, cfg_.d_model};
  TXL_CHECK(keeps_memory_length() && mem.mlen == g.mlen && mem.layers.size() == static_cast<size_t>(cfg_.n_layer),
            "forward_layers_replayed: the memory ({} rows) does not keep its length ({} rows) in this step", mem.mlen,
            g.mlen);
  for (const Tensor<T>& t : mem.layers)
    TXL_CHECK(t.shape() == shape, "forward_layers_replayed: a memory layer has shape {}, expected {}",
              shape_string(t.shape()), shape_string(shape));
  drop_core_ = stream_dropout(g.ctx, cfg_.dropout, dropout_site::kCoreOutput, g.qlen, g.batch, cfg_.d_model);
  TXL_CHECK(!drop_core_.active, "forward_layers_replayed: a step with dropout cannot be replayed");
  stage_ = Stage::kLayersDone;
}

template <typename T>
const Tensor<T>& TransformerXL<T>::forward_loss() {
  TXL_CHECK(stage_ == Stage::kLayersDone, "forward_loss: call forward_embed and forward_layers first");
  const StepGeometry& g = geometry_;
  // Only the rows after the extended context are predicted (the recipe's loss covers the
  // last rows of the hidden output).
  const Tensor<T> predicted = core_out_.slice(g.ctx.ext_rows * g.batch, g.query_rows());
  candidates_.clear();
  if (!cfg_.sampled()) {
    crit_.forward(ops_, store_, predicted, targets_, nll_flat_);
  } else if (g.ctx.train) {
    candidates_ = candidate_source_ ? candidate_source_(g.ctx) : sampled_head_.sampler().draw(g.ctx.seed, g.ctx.step);
    sampled_head_.forward(ops_, store_, predicted, targets_, &candidates_, nll_flat_);
  } else {
    sampled_head_.forward(ops_, store_, predicted, targets_, nullptr, nll_flat_);
  }
  nll_ = nll_flat_.reshaped({g.qlen - g.ctx.ext_rows, g.batch});
  stage_ = Stage::kNone;
  have_forward_ = true;
  return nll_;
}

template <typename T>
void TransformerXL<T>::backward(const Tensor<T>& dnll, const std::function<void(int)>& grad_ready) {
  TXL_CHECK(have_forward_, "backward without a preceding forward");
  const StepGeometry& g = geometry_;
  const int64_t N = g.query_rows(), M = cfg_.d_model;
  const int64_t E = g.ctx.ext_rows * g.batch;
  TXL_CHECK(dnll.numel() == N - E, "backward: dnll has {} elements, the forward produced {}", dnll.numel(), N - E);
  auto ready = [&](const std::vector<int>& ids) {
    if (grad_ready)
      for (int id : ids) grad_ready(id);
  };

  auto head_backward = [&](const Tensor<T>& d, Tensor<T>& dhidden) {
    if (cfg_.sampled()) {
      sampled_head_.backward(ops_, store_, d, dhidden);
    } else {
      crit_.backward(ops_, store_, d, dhidden);
    }
  };
  if (E == 0) {
    head_backward(dnll.reshaped({N}), d_hidden_);
  } else {  // the extended-context rows get no gradient from the loss
    head_backward(dnll.reshaped({N - E}), d_predicted_);
    ensure(ops_, d_hidden_, {N, M});
    ops_.fill(d_hidden_.data(), E * M, T(0));
    ops_.copy(d_hidden_.data() + E * M, d_predicted_.data(), d_predicted_.bytes());
  }
  ready(crit_ids_);
  apply_dropout(ops_, drop_core_, d_hidden_.data(), d_hidden_.data());

  ensure(ops_, d_other_, {N, M});
  T* d_mem = nullptr;
  if (positions_.needs_memory_grad() && g.mlen > 0) {
    ensure(ops_, d_mem_, {g.memory_rows(), M});
    d_mem = d_mem_.data();
  }
  T* d_cur = d_hidden_.data();
  T* d_next = d_other_.data();
  for (int64_t l = cfg_.n_layer - 1; l >= 0; --l) {
    layers_[static_cast<size_t>(l)].backward(ops_, store_, ws_, g, d_cur, d_next, d_mem, grad_ready);
    positions_.backward_layer_input(ops_, store_, g, l, d_mem, d_next);
    std::swap(d_cur, d_next);
  }
  ready(position_ids_);

  ensure(ops_, d_emb_, {N, M});
  apply_dropout(ops_, drop_emb_, d_cur, d_emb_.data());
  word_emb_.backward(ops_, store_, d_emb_);
  ready(emb_ids_);
}

template <typename T>
double TransformerXL<T>::flops_per_token_fwd(int64_t batch) const {
  const double B = static_cast<double>(batch > 0 ? batch : (geometry_.batch > 0 ? geometry_.batch : 1));
  const double Q = static_cast<double>(cfg_.tgt_len), K = static_cast<double>(cfg_.tgt_len + cfg_.mem_len);
  const double M = static_cast<double>(cfg_.d_model), HD = static_cast<double>(cfg_.n_head * cfg_.d_head);
  const double F = static_cast<double>(cfg_.d_inner);
  const double r_net = cfg_.attn_type == 0 ? 2.0 * K * M * HD / (Q * B) : 0.0;
  const double score_gemms = cfg_.attn_type <= 1 ? 3.0 : 2.0;  // AC, BD, AV; absolute types: no BD
  double layer = 2.0 * M * HD                  // q
                 + 2.0 * M * 2.0 * HD * K / Q  // k, v over memory and new rows
                 + r_net                       // once per step
                 + score_gemms * 2.0 * HD * K
                 + 2.0 * HD * M                // o_net
                 + 2.0 * 2.0 * M * F;          // pos_ff
  const double d0 = static_cast<double>(cfg_.cluster_dim(0));
  const double de = static_cast<double>(cfg_.embed_dim());
  const bool projected = cfg_.div_val > 1 || cfg_.embed_dim() != cfg_.d_model;
  const double head_classes = static_cast<double>(cfg_.cluster_end(0) + cfg_.n_clusters());
  double other = 2.0 * d0 * head_classes;
  if (projected) other += 2.0 * M * d0 + 2.0 * de * M;  // loss-head and embedding projections (cluster 0)
  if (cfg_.sampled()) {  // target + at most 2·sample_softmax candidate scores, embedding projection
    other = 2.0 * M * (1.0 + 2.0 * static_cast<double>(cfg_.sample_softmax));
    if (projected) other += 2.0 * de * M;
  }
  return static_cast<double>(cfg_.n_layer) * layer + other;
}

template <typename T>
double TransformerXL<T>::tail_cluster_flops_fwd(const int32_t* target, int64_t n) const {
  if (cfg_.sampled() || cfg_.n_clusters() == 0) return 0.0;
  const int64_t C = cfg_.n_clusters();
  std::vector<int64_t> count(static_cast<size_t>(C + 1), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t c = 0;
    while (c < C && target[i] >= cfg_.cluster_end(c)) ++c;
    ++count[static_cast<size_t>(c)];
  }
  const double M = static_cast<double>(cfg_.d_model);
  double flops = 0;
  for (int64_t c = 1; c <= C; ++c) {
    const double d = static_cast<double>(cfg_.cluster_dim(c));
    const double size = static_cast<double>(cfg_.cluster_end(c) - cfg_.cluster_end(c - 1));
    const double per_token = 2.0 * d * size + (cfg_.cluster_dim(c) != cfg_.d_model ? 2.0 * M * d : 0.0);
    flops += per_token * static_cast<double>(count[static_cast<size_t>(c)]);
  }
  return flops;
}

template class TransformerXL<float>;
template class TransformerXL<double>;

}  // namespace txl
