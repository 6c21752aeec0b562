#include "txl/model/decoder_layer.h"

namespace txl {

template <typename T>
DecoderLayer<T>::DecoderLayer(const ModelConfig& cfg, int64_t layer)
    : d_model_(cfg.d_model), ff_(cfg, layer) {
  if (cfg.attn_type <= 1) {
    rel_attn_ = std::make_unique<RelMultiHeadAttention<T>>(cfg, layer);
    attn_ = rel_attn_.get();
  } else {
    abs_attn_ = std::make_unique<MultiHeadAttention<T>>(cfg, layer);
    attn_ = abs_attn_.get();
  }
}

template <typename T>
void DecoderLayer<T>::register_params(ParamStore<T>& store) {
  ff_.register_params(store);
  attn_->register_params(store);
}

template <typename T>
std::vector<int> DecoderLayer<T>::param_ids() const {
  std::vector<int> ids = ff_.param_ids();
  for (int id : attn_->param_ids()) ids.push_back(id);
  return ids;
}

template <typename T>
void DecoderLayer<T>::forward(Ops<T>& ops, const ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g,
                              const T* cat, const T* pos, T* out) {
  ensure(ops, mid_, {g.query_rows(), d_model_});
  attn_->forward(ops, store, ws, g, cat, pos, mid_.data());
  ff_.forward(ops, store, g, mid_.data(), out);
}

template <typename T>
void DecoderLayer<T>::backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g,
                               const T* dout, T* dh, T* dmem, const std::function<void(int)>& grad_ready) {
  ensure(ops, ws.d_mid, {g.query_rows(), d_model_});
  ff_.backward(ops, store, ws, g, dout, ws.d_mid.data());
  if (grad_ready)
    for (int id : ff_.param_ids()) grad_ready(id);
  attn_->backward(ops, store, ws, g, ws.d_mid.data(), dh, dmem);
  if (grad_ready)
    for (int id : attn_->param_ids()) grad_ready(id);
}

template class DecoderLayer<float>;
template class DecoderLayer<double>;

}  // namespace txl
