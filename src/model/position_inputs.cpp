#include "txl/model/position_inputs.h"

#include <algorithm>

#include "txl/model/learned_position_rows.h"
#include "txl/model/positional_embedding.h"

namespace txl {

template <typename T>
PositionInputs<T>::PositionInputs(const ModelConfig& cfg)
    : attn_type_(cfg.attn_type),
      n_layer_(cfg.n_layer),
      n_head_(cfg.n_head),
      d_head_(cfg.d_head),
      d_model_(cfg.d_model),
      table_rows_(cfg.learned_positions() ? cfg.position_rows() : 0) {}

template <typename T>
void PositionInputs<T>::register_params(ParamStore<T>& store) {
  // Initialisation as the recipe's: tables and u normal, r_bias zero.
  if (attn_type_ == 1) {
    r_emb_id_ = store.add("r_emb", {n_layer_, table_rows_, n_head_, d_head_}, ParamInit::kWeight);
    r_w_bias_id_ = store.add("r_w_bias", {n_layer_, n_head_, d_head_}, ParamInit::kWeight);
    r_bias_id_ = store.add("r_bias", {n_layer_, table_rows_, n_head_}, ParamInit::kZero);
    ids_ = {r_emb_id_, r_w_bias_id_, r_bias_id_};
  } else if (attn_type_ == 3) {
    r_emb_id_ = store.add("r_emb", {n_layer_, table_rows_, d_model_}, ParamInit::kWeight);
    ids_ = {r_emb_id_};
  }
}

template <typename T>
void PositionInputs<T>::bind(std::vector<DecoderLayer<T>>& layers) {
  if (attn_type_ != 1) return;
  for (DecoderLayer<T>& layer : layers)
    layer.relative_attention()->bind_learned_positions(r_emb_id_, r_w_bias_id_, r_bias_id_, table_rows_, &rows_);
}

template <typename T>
void PositionInputs<T>::prepare(Ops<T>& ops, const StepGeometry& g, int64_t clamp_len) {
  if (attn_type_ == 0) return;
  const int64_t clamp = clamp_len > 0 ? clamp_len : 0;
  if (attn_type_ == 3)
    TXL_CHECK(g.qlen < table_rows_ || (g.mlen == 0 && g.qlen == table_rows_),
              "attn_type 3: {} new rows{} do not fit the {} rows of r_emb (max_klen)", g.qlen,
              g.mlen > 0 ? " and a memory" : "", table_rows_);
  if (g.klen == klen_ && g.batch == batch_ && clamp == clamp_) return;
  const int64_t K = g.klen, B = g.batch, M = d_model_;
  if (attn_type_ == 1) {
    const std::vector<int32_t> rows = learned_relative_rows(K, table_rows_, clamp);
    ensure(ops, rows_, {K});
    ops.upload(rows_.data(), rows.data(), rows.size() * sizeof(int32_t));
  } else if (attn_type_ == 2) {
    const std::vector<T> pos = position_embedding<T>(K, M, clamp);
    std::vector<T> per_stream(static_cast<size_t>(K * B * M));
    for (int64_t r = 0; r < K; ++r)
      for (int64_t b = 0; b < B; ++b)
        std::copy(pos.begin() + r * M, pos.begin() + (r + 1) * M, per_stream.begin() + (r * B + b) * M);
    ensure(ops, sinusoid_, {K * B, M});
    ops.upload(sinusoid_.data(), per_stream.data(), per_stream.size() * sizeof(T));
  } else {
    const std::vector<int32_t> rows = learned_absolute_rows(K, B, table_rows_);
    ensure(ops, rows_, {K * B});
    ops.upload(rows_.data(), rows.data(), rows.size() * sizeof(int32_t));
    ensure(ops, gathered_, {K * B, M});
  }
  klen_ = K;
  batch_ = B;
  clamp_ = clamp;
}

template <typename T>
void PositionInputs<T>::add_to_embedding(Ops<T>& ops, const StepGeometry& g, const T* emb, T* out) const {
  TXL_CHECK(attn_type_ == 2 && g.klen == klen_ && g.batch == batch_, "add_to_embedding: not prepared for this step");
  ops.add(g.query_rows() * d_model_, emb, sinusoid_.data() + g.memory_rows() * d_model_, out);
}

template <typename T>
void PositionInputs<T>::add_to_layer_input(Ops<T>& ops, const ParamStore<T>& store, const StepGeometry& g,
                                           int64_t layer, T* cat) {
  if (attn_type_ != 2 && attn_type_ != 3) return;
  TXL_CHECK(g.klen == klen_ && g.batch == batch_, "add_to_layer_input: not prepared for this step");
  const int64_t M = d_model_;
  if (attn_type_ == 2) {
    if (layer == 0 && g.mlen > 0) ops.add(g.memory_rows() * M, cat, sinusoid_.data(), cat);
    return;
  }
  const int64_t NK = g.key_rows();
  ops.gather_rows(store.param(r_emb_id_).data() + layer * table_rows_ * M, rows_.data(), NK, M, gathered_.data());
  ops.add(NK * M, cat, gathered_.data(), cat);
}

template <typename T>
void PositionInputs<T>::backward_layer_input(Ops<T>& ops, ParamStore<T>& store, const StepGeometry& g,
                                             int64_t layer, const T* dmem, const T* dh) {
  if (attn_type_ != 3) return;
  const int64_t M = d_model_, NM = g.memory_rows();
  T* grad = store.grad(r_emb_id_).data() + layer * table_rows_ * M;
  if (NM > 0) {
    TXL_CHECK(dmem != nullptr, "attn_type 3: the memory rows' gradient is missing");
    ops.scatter_add_rows(dmem, rows_.data(), NM, M, grad);
  }
  ops.scatter_add_rows(dh, rows_.data() + NM, g.query_rows(), M, grad);
}

template class PositionInputs<float>;
template class PositionInputs<double>;

}  // namespace txl
