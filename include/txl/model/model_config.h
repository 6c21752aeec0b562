// Hyper-parameters of a Transformer-XL model (docs/model.md). Names are the recipe's option
// names. The length fields (tgt_len, mem_len, ext_len, same_length, clamp_len) may be
// changed between forward passes (evaluation uses other values than training).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "txl/core/param_store.h"

namespace txl {

struct ModelConfig {
  int64_t n_token = 0;
  int64_t n_layer = 16;
  int64_t n_head = 8;
  int64_t d_head = 64;
  int64_t d_model = 512;
  int64_t d_inner = 2048;
  int64_t d_embed = -1;  // -1: same as d_model
  int64_t div_val = 1;
  std::vector<int64_t> cutoffs;  // without n_token; empty: no clusters
  bool tie_weight = true;
  std::vector<bool> tie_projs;   // one per cluster (cutoffs.size() + 1); empty: all false
  bool pre_lnorm = false;
  double dropout = 0.1;
  double dropatt = 0.0;
  int64_t tgt_len = 192;
  int64_t mem_len = 192;
  int64_t ext_len = 0;
  bool same_length = false;
  int64_t clamp_len = -1;  // <= 0: no clamping
  // 0: relative sinusoids with u, w biases (Transformer-XL); 1: learned relative positions
  // (Shaw et al.); 2: absolute sinusoids added to the input (Vaswani et al.); 3: learned
  // absolute positions added to every layer's input (Al-Rfou et al.). docs/model.md.
  int64_t attn_type = 0;
  // > 0: train with the sampled softmax over this many log-uniform samples (2x drawn,
  // made distinct); the loss head is then sampled_softmax.h. <= 0: adaptive softmax.
  int64_t sample_softmax = -1;
  // attn_type 1 and 3: rows of the learned position tables (the recipe's max_klen). 0: taken
  // as tgt_len + ext_len + mem_len when the model is built (then fixed: the tables' shape).
  int64_t max_klen = 0;
  InitSpec init;

  int64_t embed_dim() const { return d_embed > 0 ? d_embed : d_model; }
  int64_t n_clusters() const { return static_cast<int64_t>(cutoffs.size()); }  // C (tail clusters)
  // Cluster c covers ids [bound(c), bound(c+1)), c = 0..C.
  int64_t cluster_begin(int64_t c) const { return c == 0 ? 0 : cutoffs.at(static_cast<size_t>(c - 1)); }
  int64_t cluster_end(int64_t c) const { return c == n_clusters() ? n_token : cutoffs.at(static_cast<size_t>(c)); }
  int64_t cluster_dim(int64_t c) const;  // d_embed / div_val^c
  bool sampled() const { return sample_softmax > 0; }
  bool learned_positions() const { return attn_type == 1 || attn_type == 3; }
  int64_t position_rows() const { return max_klen > 0 ? max_klen : tgt_len + ext_len + mem_len; }
  bool tie_proj(int64_t c) const { return static_cast<size_t>(c) < tie_projs.size() && tie_projs[static_cast<size_t>(c)]; }

  // Throws txl::Error naming the first inconsistent field.
  void validate() const;
};

}  // namespace txl
