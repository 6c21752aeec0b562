// Reader for the recipe's golden numbers in tests/fixtures/golden/ (layout:
// tests/fixtures/README.md): one model case of model_cases.h5 (weights, token stream,
// per-segment losses, memories and the last segment's gradients) and one training
// trajectory of trajectories.h5. Shared by every golden test.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "txl/core/error.h"
#include "txl/io/h5file.h"
#include "txl/model/model_config.h"
#include "txl/model/transformer_xl.h"

namespace txl::test {

inline std::string golden_path(const std::string& file) {
  return std::string(TXL_SOURCE_DIR) + "/tests/fixtures/golden/" + file;
}

// A named array as stored (row-major), with its shape.
struct GoldenArray {
  std::vector<double> values;
  Shape shape;
};

struct GoldenSegment {
  int64_t data_begin = 0, target_begin = 0, len = 0;
  GoldenArray loss;        // [len, batch]
  GoldenArray mems_after;  // [n_layer, mlen, batch, d_model]
};

struct GoldenCase {
  std::string name, note;
  YAML::Node config;  // the recipe's hyper-parameter names
  int64_t batch = 0;
  int64_t stream_rows = 0;
  std::vector<int32_t> stream;  // [stream_rows, batch]
  std::vector<GoldenSegment> segments;
  std::map<std::string, GoldenArray> weights;
  std::map<std::string, GoldenArray> grads;  // of the last segment's mean loss
  std::vector<int64_t> sampled_ids;          // sample_softmax only

  // Segment s's input rows (ext_len extended-context rows, then len rows) and targets,
  // time-major [rows, batch].
  std::vector<int32_t> data(size_t s) const { return rows(segments.at(s).data_begin, data_rows(s)); }
  std::vector<int32_t> target(size_t s) const { return rows(segments.at(s).target_begin, segments.at(s).len); }
  int64_t data_rows(size_t s) const {
    const GoldenSegment& g = segments.at(s);
    return g.target_begin - 1 + g.len - g.data_begin;
  }

 private:
  std::vector<int32_t> rows(int64_t begin, int64_t count) const {
    TXL_CHECK(begin >= 0 && begin + count <= stream_rows, "golden case {}: rows [{}, {}) outside the stream", name,
              begin, begin + count);
    return {stream.begin() + begin * batch, stream.begin() + (begin + count) * batch};
  }
};

inline GoldenArray read_golden_array(const h5::File& f, const std::string& path) {
  GoldenArray a;
  a.values = f.read<double>(path, &a.shape);
  return a;
}

inline std::map<std::string, GoldenArray> read_golden_group(const h5::File& f, const std::string& group) {
  std::map<std::string, GoldenArray> out;
  for (const std::string& name : f.list(group)) out[name] = read_golden_array(f, group + "/" + name);
  return out;
}

inline GoldenCase load_golden_case(const std::string& name) {
  const h5::File f = h5::File::open(golden_path("model_cases.h5"));
  const std::string g = "/" + name;
  GoldenCase c;
  c.name = name;
  c.note = f.attr_string(g, "note");
  c.config = YAML::Load(f.attr_string(g, "config"));
  c.batch = c.config["batch"].as<int64_t>();
  Shape stream_shape;
  c.stream = f.read<int32_t>(g + "/stream", &stream_shape);
  c.stream_rows = stream_shape.at(0);
  TXL_CHECK(stream_shape.size() == 2 && stream_shape[1] == c.batch, "golden case {}: stream is not [rows, batch]",
            name);
  const int64_t n_segments = f.attr_int(g, "n_segments");
  for (int64_t s = 0; s < n_segments; ++s) {
    const std::string sg = g + "/seg" + std::to_string(s);
    GoldenSegment seg;
    seg.data_begin = f.attr_int(sg, "data_begin");
    seg.target_begin = f.attr_int(sg, "target_begin");
    seg.len = f.attr_int(sg, "len");
    seg.loss = read_golden_array(f, sg + "/loss");
    seg.mems_after = read_golden_array(f, sg + "/mems_after");
    if (s + 1 == n_segments) c.grads = read_golden_group(f, sg + "/grads");
    c.segments.push_back(std::move(seg));
  }
  c.weights = read_golden_group(f, g + "/weights");
  if (f.exists(g + "/sampled_ids")) c.sampled_ids = f.read<int64_t>(g + "/sampled_ids");
  return c;
}

// The recipe's hyper-parameters (YAML) as a txl ModelConfig; a key this function does not
// know fails, so a case with a feature nobody mapped cannot pass by accident.
inline ModelConfig golden_model_config(const YAML::Node& y) {
  ModelConfig m;
  m.dropout = 0.0;
  m.dropatt = 0.0;
  bool adaptive = false;
  for (const auto& kv : y) {
    const std::string k = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (k == "n_token") m.n_token = v.as<int64_t>();
    else if (k == "n_layer") m.n_layer = v.as<int64_t>();
    else if (k == "n_head") m.n_head = v.as<int64_t>();
    else if (k == "d_head") m.d_head = v.as<int64_t>();
    else if (k == "d_model") m.d_model = v.as<int64_t>();
    else if (k == "d_inner") m.d_inner = v.as<int64_t>();
    else if (k == "d_embed") m.d_embed = v.as<int64_t>();
    else if (k == "div_val") m.div_val = v.as<int64_t>();
    else if (k == "cutoffs") m.cutoffs = v.as<std::vector<int64_t>>();
    else if (k == "tie_weight") m.tie_weight = v.as<bool>();
    else if (k == "tie_projs") m.tie_projs = v.as<std::vector<bool>>();
    else if (k == "pre_lnorm") m.pre_lnorm = v.as<bool>();
    else if (k == "tgt_len") m.tgt_len = v.as<int64_t>();
    else if (k == "mem_len") m.mem_len = v.as<int64_t>();
    else if (k == "ext_len") m.ext_len = v.as<int64_t>();
    else if (k == "same_length") m.same_length = v.as<bool>();
    else if (k == "clamp_len") m.clamp_len = v.as<int64_t>();
    else if (k == "attn_type") m.attn_type = v.as<int64_t>();
    else if (k == "adaptive") adaptive = v.as<bool>();
    else if (k == "batch") continue;  // the streams, not a model setting
    else failf("golden config: key '{}' is not mapped to ModelConfig", k);
  }
  if (!adaptive) m.cutoffs.clear();
  return m;
}

// The recipe's state_dict also lists the embedding's projections under the head's name
// `crit.shared_out_projs.<k>` (the head keeps a reference to the embedding's list); such
// an alias must equal `word_emb.emb_projs.<k>` and is not a parameter of its own.
inline bool is_shared_projection_alias(const std::string& name, const std::map<std::string, GoldenArray>& weights) {
  const std::string prefix = "crit.shared_out_projs.";
  if (name.rfind(prefix, 0) != 0) return false;
  auto alias = weights.find(name);
  auto target = weights.find("word_emb.emb_projs." + name.substr(prefix.size()));
  TXL_CHECK(target != weights.end(), "golden weights: {} aliases no embedding projection", name);
  TXL_CHECK(alias->second.values == target->second.values, "golden weights: {} differs from {}", name, target->first);
  return true;
}

// Uploads the case's weights into the model's parameters; every parameter of the model
// must be given with its shape, and every given weight must be used (or be an alias).
template <typename T>
void load_golden_weights(TransformerXL<T>& model, const std::map<std::string, GoldenArray>& weights) {
  ParamStore<T>& ps = model.params();
  std::vector<T> host(static_cast<size_t>(ps.total_numel()));
  for (const ParamInfo& p : ps.infos()) {
    auto it = weights.find(p.name);
    TXL_CHECK(it != weights.end(), "golden weights: no value for parameter {}", p.name);
    TXL_CHECK(it->second.shape == p.shape, "golden weights: {} has another shape", p.name);
    for (int64_t i = 0; i < p.slice.numel; ++i)
      host[static_cast<size_t>(p.slice.offset + i)] = static_cast<T>(it->second.values[static_cast<size_t>(i)]);
  }
  for (const auto& [name, value] : weights)
    TXL_CHECK(ps.find(name) >= 0 || is_shared_projection_alias(name, weights),
              "golden weights: {} is not a parameter of the model", name);
  model.ops().upload(ps.flat_params().data(), host.data(), host.size() * sizeof(T));
}

// One training trajectory of trajectories.h5 (float32).
struct GoldenTrajectory {
  std::string name, note;
  YAML::Node config;  // model + optimisation settings (optim, lr, warmup_step, ...)
  std::map<std::string, GoldenArray> initial_weights, final_weights;
  std::vector<int32_t> train_tokens;
  std::vector<double> step_loss, step_lr;
  std::vector<int64_t> step_epoch;
};

inline GoldenTrajectory load_golden_trajectory(const std::string& name) {
  const h5::File f = h5::File::open(golden_path("trajectories.h5"));
  const std::string g = "/" + name;
  GoldenTrajectory t;
  t.name = name;
  t.note = f.attr_string(g, "note");
  t.config = YAML::Load(f.attr_string(g, "config"));
  t.initial_weights = read_golden_group(f, g + "/initial_weights");
  t.final_weights = read_golden_group(f, g + "/final_weights");
  t.train_tokens = f.read<int32_t>(g + "/train_tokens");
  t.step_loss = f.read<double>(g + "/step_loss");
  t.step_lr = f.read<double>(g + "/step_lr");
  t.step_epoch = f.read<int64_t>(g + "/step_epoch");
  return t;
}

}  // namespace txl::test
