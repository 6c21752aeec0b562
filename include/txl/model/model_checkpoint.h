// Model parameters in an HDF5 file (docs/training.md §6): every parameter as a float32 dataset
// /model/<docs/model.md §8 name> in its docs/model.md §8 shape, and the architecture hyper-parameters as
// attributes of /model. The trainer adds optimizer state and training attributes to the
// same file (and writes it with h5::write_atomically).
#pragma once
#include "txl/core/param_store.h"
#include "txl/io/h5file.h"
#include "txl/model/model_config.h"

namespace txl {

inline constexpr const char* kModelGroup = "/model";
inline constexpr int64_t kModelFormatVersion = 1;

// Writes /model/<name> for every parameter and the hyper-parameter attributes.
template <typename T>
void save_model_params(h5::File& file, const ParamStore<T>& params, const ModelConfig& cfg, Ops<T>& ops);

// Loads every parameter of `params` from /model. Throws txl::Error naming the first
// mismatch: an architecture hyper-parameter that differs from `cfg`, a missing tensor, a
// tensor of another shape, or a tensor in the file that the model does not have.
template <typename T>
void load_model_params(const h5::File& file, ParamStore<T>& params, const ModelConfig& cfg, Ops<T>& ops);

// Throws txl::Error naming the first architecture hyper-parameter of `cfg` that differs
// from the file's (n_token, n_layer, n_head, d_head, d_model, d_inner, d_embed, div_val,
// cutoffs, tie_weight, tie_projs, pre_lnorm, attn_type; max_klen for attn_type 1 and 3).
void check_model_config(const h5::File& file, const ModelConfig& cfg);

// The model hyper-parameters stored in the file (architecture, plus the length and
// dropout settings it was saved with; fields absent from the file keep their defaults).
ModelConfig read_model_config(const h5::File& file);

}  // namespace txl
