#include "txl/model/model_checkpoint.h"

#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace txl {

namespace {

std::string dataset_path(const std::string& name) { return std::string(kModelGroup) + "/" + name; }

// tie_projs resolved to one entry per cluster (an empty list means all false).
std::vector<int64_t> resolved_tie_projs(const ModelConfig& cfg) {
  std::vector<int64_t> v;
  for (int64_t c = 0; c <= cfg.n_clusters(); ++c) v.push_back(cfg.tie_proj(c) ? 1 : 0);
  return v;
}

struct ScalarField {
  const char* name;
  int64_t value;
};

std::vector<ScalarField> architecture_scalars(const ModelConfig& cfg) {
  return {{"n_token", cfg.n_token},           {"n_layer", cfg.n_layer},    {"n_head", cfg.n_head},
          {"d_head", cfg.d_head},             {"d_model", cfg.d_model},    {"d_inner", cfg.d_inner},
          {"d_embed", cfg.embed_dim()},       {"div_val", cfg.div_val},    {"tie_weight", cfg.tie_weight ? 1 : 0},
          {"pre_lnorm", cfg.pre_lnorm ? 1 : 0}, {"attn_type", cfg.attn_type}};
}

}  // namespace

template <typename T>
void save_model_params(h5::File& file, const ParamStore<T>& params, const ModelConfig& cfg, Ops<T>& ops) {
  TXL_CHECK(params.allocated(), "save_model_params: parameters are not allocated");
  std::vector<T> host;
  std::vector<float> values;
  TXL_CHECK(params.size() > 0, "save_model_params: the model has no parameters");
  for (int id = 0; id < params.size(); ++id) {
    const ParamInfo& p = params.info(id);
    host.resize(static_cast<size_t>(p.slice.numel));
    ops.download(host.data(), params.param(id).data(), host.size() * sizeof(T));
    values.assign(host.begin(), host.end());
    file.write(dataset_path(p.name), values.data(), p.shape);
  }
  for (const ScalarField& f : architecture_scalars(cfg)) file.set_attr(kModelGroup, f.name, f.value);
  file.set_attr(kModelGroup, "cutoffs", cfg.cutoffs);
  file.set_attr(kModelGroup, "tie_projs", resolved_tie_projs(cfg));
  file.set_attr(kModelGroup, "model_format_version", kModelFormatVersion);
  // The learned position tables' length (not derivable from the lengths below, which
  // evaluation may change).
  if (cfg.learned_positions()) file.set_attr(kModelGroup, "max_klen", cfg.position_rows());
  // Informational: the settings the model was used with when saved.
  file.set_attr(kModelGroup, "tgt_len", cfg.tgt_len);
  file.set_attr(kModelGroup, "mem_len", cfg.mem_len);
  file.set_attr(kModelGroup, "ext_len", cfg.ext_len);
  file.set_attr(kModelGroup, "same_length", static_cast<int64_t>(cfg.same_length ? 1 : 0));
  file.set_attr(kModelGroup, "clamp_len", cfg.clamp_len);
  file.set_attr(kModelGroup, "dropout", cfg.dropout);
  file.set_attr(kModelGroup, "dropatt", cfg.dropatt);
}

void check_model_config(const h5::File& file, const ModelConfig& cfg) {
  TXL_CHECK(file.exists(kModelGroup), "{}: no model parameters (group {} missing)", file.path(), kModelGroup);
  for (const ScalarField& f : architecture_scalars(cfg)) {
    TXL_CHECK(file.has_attr(kModelGroup, f.name), "{}: model hyper-parameter '{}' missing", file.path(), f.name);
    const int64_t stored = file.attr_int(kModelGroup, f.name);
    TXL_CHECK(stored == f.value, "{}: model hyper-parameter '{}' is {} in the file but {} in this model", file.path(),
              f.name, stored, f.value);
  }
  auto check_list = [&](const char* name, const std::vector<int64_t>& expect) {
    TXL_CHECK(file.has_attr(kModelGroup, name), "{}: model hyper-parameter '{}' missing", file.path(), name);
    const std::vector<int64_t> stored = file.attr_ints(kModelGroup, name);
    TXL_CHECK(stored == expect, "{}: model hyper-parameter '{}' is [{}] in the file but [{}] in this model",
              file.path(), name, fmt::join(stored, ", "), fmt::join(expect, ", "));
  };
  check_list("cutoffs", cfg.cutoffs);
  check_list("tie_projs", resolved_tie_projs(cfg));
  if (cfg.learned_positions()) {
    TXL_CHECK(file.has_attr(kModelGroup, "max_klen"), "{}: model hyper-parameter 'max_klen' missing", file.path());
    const int64_t stored = file.attr_int(kModelGroup, "max_klen");
    TXL_CHECK(stored == cfg.position_rows(),
              "{}: model hyper-parameter 'max_klen' is {} in the file but {} in this model", file.path(), stored,
              cfg.position_rows());
  }
}

template <typename T>
void load_model_params(const h5::File& file, ParamStore<T>& params, const ModelConfig& cfg, Ops<T>& ops) {
  TXL_CHECK(params.allocated(), "load_model_params: parameters are not allocated");
  check_model_config(file, cfg);
  std::set<std::string> expected;
  for (const ParamInfo& p : params.infos()) {
    const std::string path = dataset_path(p.name);
    TXL_CHECK(file.exists(path), "{}: missing tensor '{}' (the file holds another model)", file.path(), p.name);
    const Shape stored = file.shape(path);
    TXL_CHECK(stored == p.shape, "{}: tensor '{}' has shape {} in the file but {} in this model", file.path(), p.name,
              shape_string(stored), shape_string(p.shape));
    expected.insert(p.name);
  }
  for (const std::string& name : file.list(kModelGroup))
    TXL_CHECK(expected.count(name), "{}: tensor '{}' in the file is not a parameter of this model", file.path(),
              name);
  std::vector<float> values;
  std::vector<T> host;
  for (int id = 0; id < params.size(); ++id) {
    const ParamInfo& p = params.info(id);
    values.resize(static_cast<size_t>(p.slice.numel));
    file.read_into(dataset_path(p.name), values.data(), p.shape);
    host.assign(values.begin(), values.end());
    ops.upload(params.param(id).data(), host.data(), host.size() * sizeof(T));
  }
}

ModelConfig read_model_config(const h5::File& file) {
  TXL_CHECK(file.exists(kModelGroup), "{}: no model parameters (group {} missing)", file.path(), kModelGroup);
  ModelConfig cfg;
  auto get = [&](const char* name, int64_t& out) {
    if (file.has_attr(kModelGroup, name)) out = file.attr_int(kModelGroup, name);
  };
  auto get_flag = [&](const char* name, bool& out) {
    if (file.has_attr(kModelGroup, name)) out = file.attr_int(kModelGroup, name) != 0;
  };
  TXL_CHECK(file.has_attr(kModelGroup, "n_token"), "{}: model hyper-parameter 'n_token' missing", file.path());
  get("n_token", cfg.n_token);
  get("n_layer", cfg.n_layer);
  get("n_head", cfg.n_head);
  get("d_head", cfg.d_head);
  get("d_model", cfg.d_model);
  get("d_inner", cfg.d_inner);
  get("d_embed", cfg.d_embed);
  get("div_val", cfg.div_val);
  get("attn_type", cfg.attn_type);
  get("max_klen", cfg.max_klen);
  get_flag("tie_weight", cfg.tie_weight);
  get_flag("pre_lnorm", cfg.pre_lnorm);
  if (file.has_attr(kModelGroup, "cutoffs")) cfg.cutoffs = file.attr_ints(kModelGroup, "cutoffs");
  if (file.has_attr(kModelGroup, "tie_projs")) {
    cfg.tie_projs.clear();
    for (int64_t v : file.attr_ints(kModelGroup, "tie_projs")) cfg.tie_projs.push_back(v != 0);
  }
  get("tgt_len", cfg.tgt_len);
  get("mem_len", cfg.mem_len);
  get("ext_len", cfg.ext_len);
  get_flag("same_length", cfg.same_length);
  get("clamp_len", cfg.clamp_len);
  if (file.has_attr(kModelGroup, "dropout")) cfg.dropout = file.attr_double(kModelGroup, "dropout");
  if (file.has_attr(kModelGroup, "dropatt")) cfg.dropatt = file.attr_double(kModelGroup, "dropatt");
  return cfg;
}

template void save_model_params<float>(h5::File&, const ParamStore<float>&, const ModelConfig&, Ops<float>&);
template void save_model_params<double>(h5::File&, const ParamStore<double>&, const ModelConfig&, Ops<double>&);
template void load_model_params<float>(const h5::File&, ParamStore<float>&, const ModelConfig&, Ops<float>&);
template void load_model_params<double>(const h5::File&, ParamStore<double>&, const ModelConfig&, Ops<double>&);

}  // namespace txl
