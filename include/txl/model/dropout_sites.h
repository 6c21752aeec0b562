// Dropout bookkeeping of the Transformer-XL model: which site id each dropout application
// uses (the `site` of its DropoutKey) and how a tensor is laid out for the mask.
//
// Site numbering (stable; changing it changes every training run's masks):
//   1  word embedding output              (docs/model.md §5, rate `dropout`)
//   2  position embedding                 (docs/model.md §3, rate `dropout`)
//   3  output of the last layer           (docs/model.md §5, rate `dropout`)
//   4  sampled-softmax candidates (not a dropout: the draws of log_uniform_sampler.h)
//   16 + 8*L + 0  attention probabilities of layer L      (rate `dropatt`)
//   16 + 8*L + 1  o_net output of layer L                 (rate `dropout`)
//   16 + 8*L + 2  pos_ff hidden (after ReLU) of layer L   (rate `dropout`)
//   16 + 8*L + 3  pos_ff output of layer L                (rate `dropout`)
#pragma once
#include <cstdint>

#include "txl/core/ops.h"
#include "txl/model/step_context.h"

namespace txl {

enum class DropoutPlace : uint32_t { kAttnProbs = 0, kAttnOut = 1, kFFInner = 2, kFFOut = 3 };

namespace dropout_site {
constexpr uint32_t kWordEmbedding = 1;
constexpr uint32_t kPositionEmbedding = 2;
constexpr uint32_t kCoreOutput = 3;
constexpr uint32_t kSampledSoftmax = 4;
constexpr uint32_t layer(int64_t layer_index, DropoutPlace place) {
  return 16u + 8u * static_cast<uint32_t>(layer_index) + static_cast<uint32_t>(place);
}
}  // namespace dropout_site

// One dropout application: active only in training with p > 0. The backward applies the
// same mask (same key and layout) to the gradient.
struct DropoutPlan {
  bool active = false;
  float p = 0.0f;
  DropoutKey key;
  BatchLayout layout;
  int64_t numel() const { return layout.outer * layout.batch * layout.inner; }
};

// Plan for a tensor viewed as [outer, batch, inner] whose batch axis is the stream axis
// (time-major activations [len, B, width]: outer = len, inner = width).
inline DropoutPlan stream_dropout(const StepContext& ctx, double p, uint32_t site, int64_t outer, int64_t batch,
                                  int64_t inner) {
  DropoutPlan d;
  d.active = ctx.train && p > 0.0;
  d.p = static_cast<float>(p);
  d.key = DropoutKey{ctx.seed, ctx.step, site};
  d.layout = BatchLayout{outer, batch, inner, ctx.batch_offset, ctx.batch_global > 0 ? ctx.batch_global : batch};
  return d;
}

// Plan for a tensor without a stream axis (the position embedding): one mask shared by
// every stream, independent of how the batch is split.
inline DropoutPlan shared_dropout(const StepContext& ctx, double p, uint32_t site, int64_t numel) {
  DropoutPlan d;
  d.active = ctx.train && p > 0.0;
  d.p = static_cast<float>(p);
  d.key = DropoutKey{ctx.seed, ctx.step, site};
  d.layout = BatchLayout{1, 1, numel, 0, 1};
  return d;
}

// y = dropout(x) when active; otherwise y = x (copied unless x == y).
template <typename T>
void apply_dropout(Ops<T>& ops, const DropoutPlan& d, const T* x, T* y) {
  if (d.active) {
    ops.dropout(x, y, d.p, d.key, d.layout);
  } else if (x != y) {
    ops.copy(y, x, static_cast<size_t>(d.numel()) * sizeof(T));
  }
}

// The pre-LN residual out = residual + dropout(x + bias) in one op
// (Ops::dropout_residual_layernorm_fwd without a LayerNorm). x, residual, out [rows, cols];
// bias [cols] or null; out may alias x or residual.
template <typename T>
void dropout_residual_forward(Ops<T>& ops, const DropoutPlan& d, const T* x, const T* bias, const T* residual,
                              int64_t rows, int64_t cols, T* out) {
  ops.dropout_residual_layernorm_fwd(rows, cols, x, bias, d.active ? d.p : 0.0f, d.key, d.layout, residual, nullptr,
                                     nullptr, T(0), out, nullptr, nullptr, nullptr);
}
// Its backward: d_residual = dy (copied; skipped when null), d_x = dropout(dy) (both
// overwritten, neither overlapping dy), dbias += sum_r d_x when given.
template <typename T>
void dropout_residual_backward(Ops<T>& ops, const DropoutPlan& d, const T* dy, int64_t rows, int64_t cols,
                               T* d_residual, T* d_x, T* dbias) {
  ops.dropout_residual_layernorm_bwd(rows, cols, dy, nullptr, nullptr, nullptr, nullptr, d.active ? d.p : 0.0f, d.key,
                                     d.layout, d_residual, d_x, nullptr, nullptr, dbias);
}

}  // namespace txl
