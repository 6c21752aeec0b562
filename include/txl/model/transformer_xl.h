// The Transformer-XL language model (docs/model.md), written once against Ops<T>: adaptive
// input embedding -> n_layer decoder layers with attention and memory -> projected
// adaptive log-softmax, or with sample_softmax > 0 the sampled softmax (sampled_softmax.h:
// sampled in training, full in evaluation). Every layer's forward and backward is written out; activations
// are kept in members reused across steps. attn_type 0 is docs/model.md's relative attention;
// 1, 2 and 3 are the recipe's other position schemes (docs/model.md, position_inputs.h).
//
// Parameter registration order (= flat buffer layout = order in which backward finalises
// gradients, so all-reduce buckets are contiguous): crit.* (sampled: out_layer.bias), layers n_layer-1 .. 0 (each:
// pos_ff.*, then dec_attn.*), the model-level position parameters (attn_type 0: r_w_bias,
// r_r_bias; 1: r_emb, r_w_bias, r_bias; 3: r_emb), word_emb.* (last: with tie_weight the
// table receives its final contribution from the embedding backward).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "txl/core/param_store.h"
#include "txl/model/adaptive_embedding.h"
#include "txl/model/adaptive_softmax.h"
#include "txl/model/decoder_layer.h"
#include "txl/model/layer_workspace.h"
#include "txl/model/memory.h"
#include "txl/model/model_config.h"
#include "txl/model/sampled_softmax.h"
#include "txl/model/position_inputs.h"
#include "txl/model/step_context.h"
#include "txl/model/step_geometry.h"

namespace txl {

template <typename T>
class TransformerXL {
 public:
  // Validates the config, registers and allocates the parameters (zero until init_params
  // or a checkpoint load). config().max_klen is resolved here (attn_type 1 and 3: the
  // learned tables' length stays when set_lengths changes the lengths).
  TransformerXL(const ModelConfig& cfg, Ops<T>& ops);
  TransformerXL(const TransformerXL&) = delete;
  TransformerXL& operator=(const TransformerXL&) = delete;

  const ModelConfig& config() const { return cfg_; }
  ParamStore<T>& params() { return store_; }
  const ParamStore<T>& params() const { return store_; }
  Ops<T>& ops() const { return ops_; }

  // docs/model.md §7 initialisation, deterministic in `seed`.
  void init_params(uint64_t seed);
  // Length settings used by the following forward passes (evaluation uses other values
  // than training).
  void set_lengths(int64_t tgt_len, int64_t ext_len, int64_t mem_len, bool same_length, int64_t clamp_len);

  // data: host int32, time-major [qlen, batch] row-major; its first e = ctx.ext_rows rows
  // are extended context (they pass every layer but predict nothing), target holds the
  // [qlen - e, batch] targets of the other rows. Returns the per-token nll [qlen - e, batch]
  // (device; valid until the next forward). `mem` is read (old memory, or empty) and
  // replaced by the new memory (docs/model.md §5).
  const Tensor<T>& forward(const int32_t* data, const int32_t* target, int64_t qlen, int64_t batch, Memory<T>& mem,
                           const StepContext& ctx);
  // dnll [qlen - ext_rows, batch] (device) = d loss / d nll -> parameter gradients ACCUMULATED into
  // params() grads. grad_ready(id) is called exactly once per parameter, as soon as its
  // gradient is final for this backward (in registration order); may be empty.
  // forward() in its three stages. forward_layers (memory rows in, every decoder layer,
  // the new memory written in place) has fixed shapes and pointers from step to step once
  // the memory is full, so evaluation can record it in a StepGraph and replay it
  // (EvalStep, eval_step.h); the stages around it do host work (token ids, the loss
  // head's cluster partition) and run eagerly. `mem` must be the same object in
  // forward_embed and forward_layers.
  void forward_embed(const int32_t* data, const int32_t* target, int64_t qlen, int64_t batch, const Memory<T>& mem,
                     const StepContext& ctx);
  void forward_layers(Memory<T>& mem);
  const Tensor<T>& forward_loss();
  // Instead of forward_layers, after a StepGraph replayed a forward_layers recorded for
  // the same geometry and memory: the host-side part of it (the stage, the memory's row
  // count), checking that the memory kept its shape (the replay wrote it in place).
  void forward_layers_replayed(Memory<T>& mem);
  // The geometry of the step started by the last forward_embed.
  const StepGeometry& geometry() const { return geometry_; }
  // Whether that step keeps the memory's length (a full memory): only then does
  // forward_layers write the new memory into the same buffers, so only such a step can
  // be replayed.
  bool keeps_memory_length() const;

  void backward(const Tensor<T>& dnll, const std::function<void(int)>& grad_ready = {});

  // Forward FLOPs per target token: 2·m·n·k of every GEMM of one step of tgt_len tokens
  // with a full memory (klen = tgt_len + mem_len) and `batch` streams (0: the last
  // forward's batch, 1 before any): q/k/v, r_net (attn_type 0; shared by the batch), AC,
  // BD (attn_type 0, 1) and AV over the whole [qlen, klen] score matrix, o_net, pos_ff,
  // the embedding projection, and the loss head's projection and head logits (shortlist
  // + cluster tokens). Tail-cluster
  // logits (data dependent, a few percent of tokens) and elementwise work are not
  // counted. Backward costs about twice this.
  double flops_per_token_fwd(int64_t batch = 0) const;
  // The data-dependent rest of the forward GEMM work for these `n` targets: each target in
  // tail cluster c costs its cluster's logits (2 · d_c · cluster size) and, when d_c !=
  // d_model, its projection (2 · d_model · d_c). 0 with a sampled softmax. Benches add it
  // to report the rate of all the arithmetic a step did.
  double tail_cluster_flops_fwd(const int32_t* target, int64_t n) const;

  // ---- inspection (tests, analysis) ----------------------------------------------------
  // Layer L's concat(memory, input) of the last forward, [klen*batch, d_model].
  const Tensor<T>& layer_input(int64_t layer) const { return layer_in_.at(static_cast<size_t>(layer)); }
  // The last layer's output of the last forward_layers, [qlen*batch, d_model] (time-major;
  // the input of the loss head). Used by generation (incremental_decoder.h).
  const Tensor<T>& output() const { return core_out_; }
  // Gradient of the loss w.r.t. the word-embedding output (before its dropout), from the
  // last backward, [qlen*batch, d_model].
  const Tensor<T>& embedding_grad() const { return d_emb_; }
  // Called in forward on the word-embedding output [qlen*batch, d_model] before its
  // dropout (e.g. to perturb it for finite differences). Empty: none.
  void set_embedding_hook(std::function<void(Ops<T>&, Tensor<T>&)> hook) { embedding_hook_ = std::move(hook); }
  // Sampled softmax: the candidates of a training step (distinct ids) come from `source`
  // instead of the model's LogUniformSampler (e.g. the draws of a reference run). Empty:
  // the sampler.
  using CandidateSource = std::function<std::vector<int32_t>(const StepContext&)>;
  void set_candidate_source(CandidateSource source) { candidate_source_ = std::move(source); }
  // The candidates of the last sampled training forward (empty otherwise).
  const std::vector<int32_t>& candidates() const { return candidates_; }

 private:
  const T* position_embedding_for(int64_t klen);

  ModelConfig cfg_;
  Ops<T>& ops_;
  ParamStore<T> store_;
  AdaptiveEmbedding<T> word_emb_;
  ProjectedAdaptiveLogSoftmax<T> crit_;
  SampledSoftmax<T> sampled_head_;  // the head instead of crit_ when cfg_.sampled()
  CandidateSource candidate_source_;
  std::vector<int32_t> candidates_;
  std::vector<DecoderLayer<T>> layers_;  // index = layer number
  int r_w_bias_id_ = -1, r_r_bias_id_ = -1;  // attn_type 0
  PositionInputs<T> positions_;              // attn_type 1, 2, 3
  std::vector<int> position_ids_;            // model-level position parameters
  std::vector<int> crit_ids_, emb_ids_;  // parameters registered by the head / embedding
  LayerWorkspace<T> ws_;
  std::function<void(Ops<T>&, Tensor<T>&)> embedding_hook_;

  // Forward state kept for backward.
  enum class Stage { kNone, kEmbedded, kLayersDone };
  Stage stage_ = Stage::kNone;
  bool have_forward_ = false;
  const T* pos_ = nullptr;              // position embedding used by this step's layers
  StepGeometry geometry_;
  std::vector<int32_t> ids_, targets_;  // host copies, [qlen*batch] and [(qlen-ext_rows)*batch]
  Tensor<T> emb_out_;                   // [Q*B, M] word embedding (before dropout)
  std::vector<Tensor<T>> layer_in_;     // per layer [K*B, M]: memory rows, then layer input
  Tensor<T> core_out_;                  // [Q*B, M] last layer output (after final dropout)
  Tensor<T> nll_flat_;                  // [Q*B]
  Tensor<T> nll_;                       // [Q, B] view of nll_flat_
  Tensor<T> pos_emb_;                   // [K, M] cached for (pos_klen_, pos_clamp_)
  int64_t pos_klen_ = -1, pos_clamp_ = 0;
  Tensor<T> pos_drop_;                  // [K, M] position embedding after dropout
  DropoutPlan drop_emb_, drop_pos_, drop_core_;

  // Backward buffers.
  Tensor<T> d_hidden_, d_other_;  // [Q*B, M] ping-pong gradients between layers
  Tensor<T> d_predicted_;         // [(Q-E)*B, M] loss-head gradient when E = ext_rows > 0
  Tensor<T> d_emb_;               // [Q*B, M]
  Tensor<T> d_mem_;               // [mlen*B, M] attn_type 3: gradient of a layer's memory rows
};

}  // namespace txl
