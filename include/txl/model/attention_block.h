// The attention half of a decoder layer, as the decoder layer sees it: relative attention
// (attn_type 0 and 1, rel_attention.h) or standard attention over absolute-position
// inputs (attn_type 2 and 3, multihead_attention.h). Residual and LayerNorm included.
#pragma once
#include <vector>

#include "txl/core/param_store.h"
#include "txl/model/layer_workspace.h"
#include "txl/model/step_geometry.h"

namespace txl {

template <typename T>
class AttentionBlock {
 public:
  virtual ~AttentionBlock() = default;

  virtual void register_params(ParamStore<T>& store) = 0;
  virtual void set_dropout(double dropout, double dropatt) = 0;
  // cat [K*B, M]: the memory rows, then the layer input h (the last Q*B rows). pos [K, M]:
  // the sinusoid position embedding (attn_type 0; others ignore it). cat and pos must stay
  // unchanged until backward. out [Q*B, M].
  virtual void forward(Ops<T>& ops, const ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g,
                       const T* cat, const T* pos, T* out) = 0;
  // dout [Q*B, M] -> dh [Q*B, M] (overwritten): gradient w.r.t. h. dmem [mlen*B, M]: where
  // given (not null), the gradient w.r.t. the memory rows of cat (overwritten); the memory
  // itself is detached, but attn_type 3 adds parameters to it. Parameter gradients are
  // accumulated.
  virtual void backward(Ops<T>& ops, ParamStore<T>& store, LayerWorkspace<T>& ws, const StepGeometry& g,
                        const T* dout, T* dh, T* dmem) = 0;
  // The block's own parameters (not the model-level position parameters), in
  // registration order.
  virtual std::vector<int> param_ids() const = 0;
};

}  // namespace txl
