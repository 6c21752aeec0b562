// Helpers of the generation tests: small models with random parameters, and the "full
// recomputation" reference of docs/generate.md built from the model's own forward.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "txl/model/adaptive_distribution.h"
#include "txl/model/transformer_xl.h"

namespace txl::test {

inline ModelConfig small_generation_config(int64_t attn_type) {
  ModelConfig c;
  c.n_token = 40;
  c.cutoffs = {12, 25};
  c.div_val = 2;
  c.d_embed = 8;
  c.n_layer = 2;
  c.n_head = 2;
  c.d_head = 4;
  c.d_model = 8;
  c.d_inner = 12;
  c.dropout = 0.0;
  c.dropatt = 0.0;
  c.tgt_len = 4;
  c.mem_len = 6;
  c.attn_type = attn_type;
  return c;
}

// Every parameter random (LayerNorm weights around 1), large enough that attention is far
// from uniform.
template <typename T>
void randomize(TransformerXL<T>& model, uint64_t seed, double scale = 0.5) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  ParamStore<T>& ps = model.params();
  std::vector<T> host(static_cast<size_t>(ps.total_numel()));
  for (const ParamInfo& p : ps.infos())
    for (int64_t i = 0; i < p.slice.numel; ++i)
      host[static_cast<size_t>(p.slice.offset + i)] =
          static_cast<T>((p.init == ParamInit::kLayerNormWeight ? 1.0 : 0.0) + normal(rng));
  model.ops().upload(ps.flat_params().data(), host.data(), host.size() * sizeof(T));
}

inline std::vector<int32_t> random_ids(int64_t n, int64_t n_token, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(n_token - 1));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int32_t& id : ids) id = d(rng);
  return ids;
}

// Full recomputation of the last layer's output at every position of `ids` (time-major
// [n, batch]) with the model's current lengths: the memory is the model's, updated by a
// forward over each complete segment of tgt_len tokens from the start; the output at
// position i is the last row of a forward over [that memory, the tokens of i's segment up
// to i]. Returns [n][batch * d_model]; `memories[k]` is the memory after k segments.
template <typename T>
std::vector<std::vector<T>> recomputed_outputs(TransformerXL<T>& model, const std::vector<int32_t>& ids, int64_t batch,
                                               std::vector<Memory<T>>* memories = nullptr) {
  Ops<T>& ops = model.ops();
  const int64_t S = model.config().tgt_len, M = model.config().d_model;
  const int64_t n = static_cast<int64_t>(ids.size()) / batch;
  std::vector<int32_t> targets(static_cast<size_t>(S * batch), 0);
  std::vector<std::vector<T>> out;
  Memory<T> mem;
  if (memories) memories->push_back(clone_memory(ops, mem));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t seg = i / S * S, q = i - seg + 1;
    Memory<T> scratch = clone_memory(ops, mem);
    model.forward_embed(ids.data() + seg * batch, targets.data(), q, batch, scratch, StepContext{});
    model.forward_layers(scratch);
    const std::vector<T> all = to_host(ops, model.output());
    out.emplace_back(all.begin() + (q - 1) * batch * M, all.begin() + q * batch * M);
    if (q == S) {
      mem = std::move(scratch);
      if (memories) memories->push_back(clone_memory(ops, mem));
    }
  }
  return out;
}

}  // namespace txl::test
