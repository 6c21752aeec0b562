// Scratch tensors shared by all decoder layers of one model: values needed only inside
// one layer's forward or inside one layer's backward, never from forward to backward.
// (What backward needs is kept per layer, in the layer's own members.) Buffers are sized
// with ensure(), so nothing is allocated once the step shape repeats.
#pragma once
#include "txl/core/ops.h"

namespace txl {

template <typename T>
struct LayerWorkspace {
  // ---- attention (Q = qlen, K = klen, B = batch, H heads of D, M = d_model) ----
  Tensor<T> q_lin;       // [Q*B, HD]     q projection; in backward its gradient
  Tensor<T> kv_lin;      // [K*B, 2HD]    k|v projection; in backward its gradient
  Tensor<T> r_lin;       // [K, HD]       R = pos_emb·W_rᵀ; in backward its gradient
  Tensor<T> scores;      // [H*B, Q, K]   AC + shifted BD; in backward d probs, then d scores
  Tensor<T> bd;          // [H*B, Q, K]   raw BD; in backward its gradient
  Tensor<T> av;          // [H, B, Q, D]  per-head attention output; in backward its gradient
  Tensor<T> d_attn_vec;  // [Q*B, HD]     attn_type 0 backward: gradient of the o_net input
  Tensor<T> d_qu, d_qw;  // [H, B, Q, D]  gradients of q+u and q+w
  Tensor<T> d_kh, d_vh;  // [H, B, K, D]
  Tensor<T> d_rh;        // [H, K, D]
  Tensor<T> r_bias;      // [K, H]        attn_type 1: r_bias rows of the step; in backward their gradient
  Tensor<T> ones;        // [B*Q]         attn_type 1: all ones (broadcasts r_bias over queries)
  Tensor<T> o;           // [Q*B, M]      o_net output; in backward its gradient
  Tensor<T> d_cat;       // [K*B, M]      pre-LN: gradient of LayerNorm(cat)
  Tensor<T> d_cat_in;    // [K*B, M]      pre-LN: gradient of cat
  // ---- position-wise feed-forward ----
  Tensor<T> d_inner;     // [Q*B, d_inner]
  Tensor<T> d_a, d_b;    // [Q*B, M]
  // ---- decoder layer ----
  Tensor<T> d_mid;       // [Q*B, M]      gradient of the attention block output
};

}  // namespace txl
