// Recipe checkpoint (.pt) -> txl training checkpoint (recipe_checkpoint.h).
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "txl/convert/checkpoint_vocabulary.h"
#include "txl/convert/recipe_checkpoint.h"
#include "txl/core/error.h"
#include "txl/data/corpus.h"
#include "txl/model/model_checkpoint.h"
#include "txl/model/transformer_xl.h"

namespace txl {
namespace {

using pt::Value;
using Kind = Value::Kind;

// Buffers of the recipe's state_dict that are not parameters (recomputed from d_model).
const std::set<std::string> kRecipeBuffers = {"pos_emb.inv_freq"};

// Recipe training options that txl's train configuration has under the same name and
// meaning (docs/training.md); the rest is reported as not carried over.
const char* const kSharedTrainKeys[] = {
    "n_layer", "n_head", "d_head", "d_model", "d_inner", "d_embed", "div_val", "adaptive", "pre_lnorm", "dropout",
    "dropatt", "attn_type", "clamp_len", "same_length", "init", "init_std", "proj_init_std", "init_range", "dataset",
    "tgt_len", "eval_tgt_len", "ext_len", "mem_len", "batch_size", "local_batch_size", "eval_batch_size",
    "batch_chunk", "varlen", "roll", "optim", "lr", "mom", "weight_decay", "scheduler", "max_step",
    "max_step_scheduler", "warmup_step", "decay_rate", "lr_min", "eta_min", "patience", "clip", "seed",
    "log_interval", "eval_interval", "eval_max_steps", "save_all", "fp16"};

class Reader {
 public:
  explicit Reader(const pt::TorchFile& f) : f_(f) {}
  const pt::TorchFile& file() const { return f_; }

  const Value* find(const Value* obj, const std::string& key) const { return obj ? obj->get(key) : nullptr; }
  const Value& need(const Value* obj, const std::string& key, const std::string& where) const {
    const Value* v = find(obj, key);
    if (!v) failf("{}: {} has no '{}'", f_.what(), where, key);
    return *v;
  }
  int64_t integer(const Value& v, const std::string& name) const {
    if (v.is(Kind::kInt)) return v.i;
    if (v.is(Kind::kBool)) return v.b ? 1 : 0;
    if (v.is(Kind::kTensor) && v.tensor.numel() == 1) {  // torch >= 1.12 keeps Adam's step as a tensor
      if (v.tensor.dtype == pt::DType::kInt64 || v.tensor.dtype == pt::DType::kInt32) return f_.ints(v, name)[0];
      const double d = f_.floats(v, name)[0];
      if (d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
    }
    failf("{}: '{}' is a {}, expected an integer", f_.what(), name, pt::kind_name(v.kind));
  }
  double real(const Value& v, const std::string& name) const {
    if (v.is(Kind::kFloat)) return v.f;
    if (v.is(Kind::kInt)) return static_cast<double>(v.i);
    if (v.is(Kind::kTensor) && v.tensor.numel() == 1) return f_.floats(v, name)[0];
    failf("{}: '{}' is a {}, expected a number", f_.what(), name, pt::kind_name(v.kind));
  }
  bool flag(const Value& v, const std::string& name) const {
    if (v.is(Kind::kBool)) return v.b;
    if (v.is(Kind::kInt)) return v.i != 0;
    failf("{}: '{}' is a {}, expected True or False", f_.what(), name, pt::kind_name(v.kind));
  }
  const std::string& text(const Value& v, const std::string& name) const {
    if (!v.is(Kind::kString)) failf("{}: '{}' is a {}, expected a string", f_.what(), name, pt::kind_name(v.kind));
    return v.s;
  }
  const std::vector<Value*>& sequence(const Value& v, const std::string& name) const {
    if (!v.is(Kind::kList) && !v.is(Kind::kTuple))
      failf("{}: '{}' is a {}, expected a list", f_.what(), name, pt::kind_name(v.kind));
    return v.items;
  }
  const Value& dict(const Value& v, const std::string& name) const {
    if (!v.is(Kind::kDict) && !v.is(Kind::kObject))
      failf("{}: '{}' is a {}, expected a dict", f_.what(), name, pt::kind_name(v.kind));
    return v;
  }

 private:
  const pt::TorchFile& f_;
};

// A model hyper-parameter: model_config first, the training options second.
struct ConfigSource {
  const Reader& r;
  const Value* model_config;
  const Value* args;
  const Value* get(const std::string& key) const {
    const Value* v = r.find(model_config, key);
    if (!v || v->is(Kind::kNone)) v = r.find(args, key);
    return v && !v->is(Kind::kNone) ? v : nullptr;
  }
  void integer(const std::string& key, int64_t& out) const {
    if (const Value* v = get(key)) out = r.integer(*v, "model_config." + key);
  }
  void real(const std::string& key, double& out) const {
    if (const Value* v = get(key)) out = r.real(*v, "model_config." + key);
  }
  void flag(const std::string& key, bool& out) const {
    if (const Value* v = get(key)) out = r.flag(*v, "model_config." + key);
  }
};

ModelConfig model_config_of(const Reader& r, const Value& root, ConversionReport& rep) {
  const Value* mc = r.find(&root, "model_config");
  const Value* args = r.find(&root, "args");
  if (!mc && !args) failf("{}: not a recipe checkpoint (neither 'model_config' nor 'args')", r.file().what());
  if (mc) r.dict(*mc, "model_config");
  if (args) r.dict(*args, "args");
  const ConfigSource src{r, mc, args};
  ModelConfig cfg;
  if (!src.get("n_token")) failf("{}: model_config has no 'n_token'", r.file().what());
  src.integer("n_token", cfg.n_token);
  src.integer("n_layer", cfg.n_layer);
  src.integer("n_head", cfg.n_head);
  src.integer("d_head", cfg.d_head);
  src.integer("d_model", cfg.d_model);
  src.integer("d_inner", cfg.d_inner);
  src.integer("d_embed", cfg.d_embed);
  src.integer("div_val", cfg.div_val);
  src.flag("pre_lnorm", cfg.pre_lnorm);
  src.real("dropout", cfg.dropout);
  src.real("dropatt", cfg.dropatt);
  src.integer("tgt_len", cfg.tgt_len);
  src.integer("mem_len", cfg.mem_len);
  src.integer("ext_len", cfg.ext_len);
  src.flag("same_length", cfg.same_length);
  src.integer("clamp_len", cfg.clamp_len);
  src.integer("attn_type", cfg.attn_type);
  if (const Value* v = r.find(mc, "tie_weight")) {
    cfg.tie_weight = r.flag(*v, "model_config.tie_weight");
  } else if (const Value* nt = r.find(args, "not_tied")) {
    cfg.tie_weight = !r.flag(*nt, "args.not_tied");
  }
  if (const Value* v = src.get("cutoffs")) {
    cfg.cutoffs.clear();
    for (const Value* c : r.sequence(*v, "model_config.cutoffs")) cfg.cutoffs.push_back(r.integer(*c, "cutoffs"));
    // The recipe's model appends n_token to its cutoffs; txl's list leaves it out.
    if (!cfg.cutoffs.empty() && cfg.cutoffs.back() == cfg.n_token) cfg.cutoffs.pop_back();
  }
  if (const Value* v = src.get("tie_projs")) {
    cfg.tie_projs.clear();
    for (const Value* t : r.sequence(*v, "model_config.tie_projs")) cfg.tie_projs.push_back(r.flag(*t, "tie_projs"));
  }
  if (const Value* v = src.get("sample_softmax"); v && r.integer(*v, "sample_softmax") > 0)
    failf("{}: the model uses a sampled softmax (sample_softmax {}), which txl does not implement", r.file().what(),
          r.integer(*v, "sample_softmax"));
  if (mc) {
    static const std::set<std::string> known = {
        "n_token", "n_layer", "n_head", "d_head", "d_model", "d_inner", "d_embed", "div_val", "pre_lnorm",
        "dropout", "dropatt", "tgt_len", "mem_len", "ext_len", "same_length", "clamp_len", "attn_type",
        "tie_weight", "cutoffs", "tie_projs", "sample_softmax", "dtype"};
    for (const auto& [k, v] : mc->entries)
      if (k->is(Kind::kString) && !known.count(k->s))
        rep.not_carried.push_back(fmt::format("model_config.{}: not a txl model setting", k->s));
  }
  cfg.validate();
  return cfg;
}

// Parameter names in the recipe's model.parameters() order (the optimizer's indices):
// state_dict order without buffers and without second names of a shared tensor.
std::vector<std::string> parameter_order(const Value& state) {
  std::vector<std::string> names;
  std::set<std::tuple<std::string, int64_t, std::vector<int64_t>>> seen;
  for (const auto& [k, v] : state.entries) {
    if (!k->is(Kind::kString) || kRecipeBuffers.count(k->s) || !v->is(Kind::kTensor)) continue;
    if (!seen.insert({v->tensor.storage_key, v->tensor.offset, v->tensor.shape}).second) continue;
    names.push_back(k->s);
  }
  return names;
}

void import_model(const Reader& r, const Value& state, const ModelConfig& cfg, h5::File& out,
                  ConversionReport& rep) {
  auto ops = make_cpu_ops<float>();
  TransformerXL<float> model(cfg, *ops);
  ParamStore<float>& params = model.params();
  std::set<std::string> wanted;
  for (int id = 0; id < params.size(); ++id) {
    const ParamInfo& p = params.info(id);
    wanted.insert(p.name);
    const Value* t = state.get(p.name);
    if (!t) failf("{}: model_state has no '{}' (a parameter of the model model_config describes)", r.file().what(),
                  p.name);
    if (!t->is(Kind::kTensor)) failf("{}: model_state '{}' is a {}", r.file().what(), p.name, pt::kind_name(t->kind));
    if (t->tensor.shape != p.shape)
      failf("{}: model_state '{}' has shape {} but the model needs {}", r.file().what(), p.name,
            shape_string(t->tensor.shape), shape_string(p.shape));
    const std::vector<float> v = r.file().floats(*t, "model_state." + p.name);
    ops->upload(params.param(id).data(), v.data(), v.size() * sizeof(float));
  }
  for (const auto& [k, v] : state.entries) {
    if (!k->is(Kind::kString)) failf("{}: model_state has a key that is not a string", r.file().what());
    if (!wanted.count(k->s) && !kRecipeBuffers.count(k->s))
      failf("{}: model_state '{}' is not a parameter of the model model_config describes", r.file().what(), k->s);
  }
  save_model_params(out, params, cfg, *ops);
  rep.carried.push_back(fmt::format("model: {} parameters ({} values), {} layers x d_model {}", params.size(),
                                    params.total_numel(), cfg.n_layer, cfg.d_model));
}

// The recipe keeps one memory per batch chunk, each [n_layer, mlen, chunk_batch, d_model];
// txl keeps each layer over the whole batch.
int64_t import_memory(const Reader& r, const Value* memory, const ModelConfig& cfg, int64_t batch_size,
                      h5::File& out, ConversionReport& rep) {
  std::vector<const Value*> chunks;
  if (memory && memory->is(Kind::kTensor)) chunks.push_back(memory);
  if (memory && memory->is(Kind::kList))
    for (const Value* c : memory->items)
      if (!c->is(Kind::kNone)) chunks.push_back(c);
  if (chunks.empty()) {
    rep.carried.push_back("memory: none stored (the first segment starts without memory)");
    return 0;
  }
  int64_t mlen = -1, total = 0, layers = 0;
  for (const Value* c : chunks) {
    if (!c->is(Kind::kTensor) || c->tensor.shape.size() != 4)
      failf("{}: memory entries must be tensors [n_layer, mlen, batch, d_model]", r.file().what());
    const std::vector<int64_t>& s = c->tensor.shape;
    if (s[0] != cfg.n_layer && s[0] != cfg.n_layer + 1)
      failf("{}: memory has {} layers but the model has {}", r.file().what(), s[0], cfg.n_layer);
    if (s[3] != cfg.d_model)
      failf("{}: memory rows have {} values but d_model is {}", r.file().what(), s[3], cfg.d_model);
    if (mlen >= 0 && s[1] != mlen) failf("{}: memory chunks differ in length", r.file().what());
    mlen = s[1];
    layers = cfg.n_layer;
    total += s[2];
  }
  if (batch_size > 0 && total != batch_size) {
    rep.not_carried.push_back(fmt::format(
        "memory: it covers {} of the {} streams of a batch (saved by one rank of a multi-process run); the next "
        "segment starts without memory",
        total, batch_size));
    return 0;
  }
  const int64_t d = cfg.d_model;
  std::vector<std::vector<float>> host;
  for (const Value* c : chunks) host.push_back(r.file().floats(*c, "memory"));
  std::vector<float> layer(static_cast<size_t>(mlen * total * d));
  for (int64_t l = 0; l < layers; ++l) {
    int64_t column = 0;
    for (size_t c = 0; c < chunks.size(); ++c) {
      const int64_t b = chunks[c]->tensor.shape[2];
      for (int64_t t = 0; t < mlen; ++t)
        for (int64_t j = 0; j < b; ++j)
          for (int64_t k = 0; k < d; ++k)
            layer[static_cast<size_t>((t * total + column + j) * d + k)] =
                host[c][static_cast<size_t>(((l * mlen + t) * b + j) * d + k)];
      column += b;
    }
    out.write(fmt::format("/memory/layer_{}", l), layer.data(), Shape{mlen, total, d});
  }
  rep.carried.push_back(fmt::format("memory: {} layers x {} rows x {} streams", layers, mlen, total));
  return mlen;
}

CheckpointVocabulary vocabulary_of(const Reader& r, const Value& vocab, const std::string& dataset) {
  const Value& v = r.dict(vocab, "vocab");
  CheckpointVocabulary out;
  std::vector<std::string> symbols;
  for (const Value* s : r.sequence(r.need(&v, "idx2sym", "vocab"), "vocab.idx2sym"))
    symbols.push_back(r.text(*s, "vocab.idx2sym entry"));
  std::unordered_map<std::string, int64_t> counted;
  if (const Value* counter = r.find(&v, "counter"); counter && counter->is(Kind::kDict))
    for (const auto& [k, n] : counter->entries)
      if (k->is(Kind::kString) && n->is(Kind::kInt)) counted[k->s] = n->i;
  std::vector<int64_t> counts;
  for (const std::string& s : symbols) {
    const auto it = counted.find(s);
    counts.push_back(it == counted.end() ? 0 : it->second);
  }
  std::set<std::string> present(symbols.begin(), symbols.end());
  std::set<std::string> special;
  if (const Value* sp = r.find(&v, "special"); sp && !sp->is(Kind::kNone))
    for (const Value* s : r.sequence(*sp, "vocab.special")) special.insert(r.text(*s, "vocab.special entry"));
  data::TokenizationRules rules;
  rules.unit = data::SymbolUnit::kWord;  // the recipe splits every corpus into white-space separated symbols
  if (const Value* lc = r.find(&v, "lower_case")) rules.lower_case = r.flag(*lc, "vocab.lower_case");
  if (dataset == "lm1b") {
    if (present.count("<S>") && present.count("</S>")) rules.sentence_begin = "<S>", rules.sentence_end = "</S>";
  } else if (special.count("<eos>") && present.count("<eos>")) {
    rules.line_end = "<eos>";
  }
  if (present.count("<unk>")) rules.unk = "<unk>";
  out.vocab_kind = dataset == "enwik8" || dataset == "text8" ? "char" : "word";
  try {
    out.vocabulary = data::Vocabulary(std::move(symbols), std::move(counts), rules);
  } catch (const Error& e) {
    failf("{}: vocab: {}", r.file().what(), e.what());
  }
  return out;
}

void emit_scalar(YAML::Emitter& y, const Reader& r, const Value& v, const std::string& key) {
  if (v.is(Kind::kBool)) y << v.b;
  else if (v.is(Kind::kInt)) y << v.i;
  else if (v.is(Kind::kFloat)) y << v.f;
  else if (v.is(Kind::kString)) y << v.s;
  else failf("{}: args.{} is a {}", r.file().what(), key, pt::kind_name(v.kind));
}

std::string train_config_yaml(const Reader& r, const Value* args, const ModelConfig& cfg,
                              const std::string& corpus_path, ConversionReport& rep) {
  YAML::Emitter y;
  y << YAML::BeginMap;
  std::set<std::string> used = {"not_tied", "work_dir", "cutoffs", "tie_projs", "n_token", "restart", "data"};
  for (const char* key : kSharedTrainKeys) {
    const Value* v = r.find(args, key);
    used.insert(key);
    if (!v || v->is(Kind::kNone)) continue;
    if (!v->is(Kind::kBool) && !v->is(Kind::kInt) && !v->is(Kind::kFloat) && !v->is(Kind::kString)) {
      rep.not_carried.push_back(fmt::format("args.{}: a {} where txl takes a single value", key,
                                            pt::kind_name(v->kind)));
      continue;
    }
    y << YAML::Key << key << YAML::Value;
    emit_scalar(y, r, *v, key);
  }
  y << YAML::Key << "tie_weight" << YAML::Value << cfg.tie_weight;
  y << YAML::Key << "cutoffs" << YAML::Value << YAML::Flow << cfg.cutoffs;
  std::vector<bool> tie_projs;
  for (int64_t c = 0; c <= cfg.n_clusters(); ++c) tie_projs.push_back(cfg.tie_proj(c));
  y << YAML::Key << "tie_projs" << YAML::Value << YAML::Flow << tie_projs;
  if (!corpus_path.empty()) y << YAML::Key << "data" << YAML::Value << corpus_path;
  y << YAML::EndMap;
  if (args) {
    std::vector<std::string> dropped;
    for (const auto& [k, v] : args->entries)
      if (k->is(Kind::kString) && !used.count(k->s)) dropped.push_back(k->s);
    if (!dropped.empty())
      rep.not_carried.push_back(fmt::format("args without a txl counterpart: {}", fmt::join(dropped, ", ")));
  }
  return y.c_str();
}

// Optimizer moments by parameter name, and the steps done.
void import_optimizer(const Reader& r, const Value* opt, const std::string& optim, const Value& model_state,
                      h5::File& out, ConversionReport& rep) {
  if (!opt || opt->is(Kind::kNone)) {
    rep.not_carried.push_back("optimizer state: none in the checkpoint (a restart begins with fresh moments)");
    return;
  }
  std::string kind;
  std::vector<std::string> names;
  if (optim == "lamb" || optim == "jitlamb") kind = "lamb", names = {"exp_avg", "exp_avg_sq"};
  else if (optim == "adam") kind = "adam", names = {"exp_avg", "exp_avg_sq"};
  else if (optim == "sgd") kind = "sgd", names = {"momentum_buffer"};
  else if (optim == "adagrad") kind = "adagrad", names = {"sum"};
  else {
    rep.not_carried.push_back(fmt::format("optimizer state: optimizer '{}' is unknown to txl", optim));
    return;
  }
  const Value& o = r.dict(*opt, "optimizer_state");
  const Value& state = r.dict(r.need(&o, "state", "optimizer_state"), "optimizer_state.state");
  std::vector<int64_t> indices;
  for (const Value* g : r.sequence(r.need(&o, "param_groups", "optimizer_state"), "param_groups"))
    for (const Value* i : r.sequence(r.need(g, "params", "a param group"), "params"))
      indices.push_back(r.integer(*i, "param_groups.params"));
  const std::vector<std::string> order = parameter_order(model_state);
  if (indices.size() != order.size())
    failf("{}: the optimizer holds {} parameters but model_state {}", r.file().what(), indices.size(), order.size());
  if (state.entries.empty()) {
    rep.not_carried.push_back("optimizer state: empty (no step was taken)");
    return;
  }
  int64_t steps = -1;
  for (size_t k = 0; k < indices.size(); ++k) {
    const std::string& param = order[k];
    const Value* s = nullptr;
    for (const auto& [key, val] : state.entries)
      if (key->is(Kind::kInt) && key->i == indices[k]) s = val;
    if (!s) failf("{}: optimizer_state has no state for parameter {} ('{}')", r.file().what(), indices[k], param);
    const Value& sd = r.dict(*s, "optimizer state");
    if (const Value* st = sd.get("step")) {
      const int64_t n = r.integer(*st, "optimizer step");
      if (steps >= 0 && n != steps)
        failf("{}: optimizer steps differ between parameters ({} and {})", r.file().what(), steps, n);
      steps = n;
    }
    const Value* p = model_state.get(param);
    for (const std::string& n : names) {
      const Value& t = r.need(&sd, n, fmt::format("the optimizer state of '{}'", param));
      if (!t.is(Kind::kTensor)) failf("{}: optimizer {} of '{}' is not a tensor", r.file().what(), n, param);
      if (t.tensor.shape != p->tensor.shape)
        failf("{}: optimizer {} of '{}' has shape {} but the parameter {}", r.file().what(), n, param,
              shape_string(t.tensor.shape), shape_string(p->tensor.shape));
      const std::vector<float> v = r.file().floats(t, "optimizer " + n + " of " + param);
      out.write("/optim/" + param + "/" + n, v.data(), t.tensor.shape);
    }
  }
  out.set_attr("/optim", "kind", kind);
  out.set_attr("/optim", "steps", std::max<int64_t>(steps, 0));
  rep.carried.push_back(fmt::format("optimizer state: {} ({}) moments of {} parameters after {} steps", optim,
                                    fmt::join(names, ", "), order.size(), steps));
}

}  // namespace

ConversionReport import_recipe_checkpoint(const pt::TorchFile& src, const RecipeImportOptions& options,
                                          h5::File& out) {
  ConversionReport rep;
  const Reader r(src);
  const Value& root = r.dict(src.root(), "the checkpoint");
  const Value* args = r.find(&root, "args");
  const ModelConfig cfg = model_config_of(r, root, rep);
  const Value& model_state = r.dict(r.need(&root, "model_state", "the checkpoint"), "model_state");
  import_model(r, model_state, cfg, out, rep);

  auto arg_int = [&](const char* key, int64_t fallback) {
    const Value* v = r.find(args, key);
    return v && !v->is(Kind::kNone) ? r.integer(*v, std::string("args.") + key) : fallback;
  };
  auto arg_flag = [&](const char* key) {
    const Value* v = r.find(args, key);
    return v && !v->is(Kind::kNone) && r.flag(*v, std::string("args.") + key);
  };
  auto arg_text = [&](const char* key) {
    const Value* v = r.find(args, key);
    return v && v->is(Kind::kString) ? v->s : std::string();
  };
  const int64_t batch_size = arg_int("batch_size", 0);
  const int64_t mlen = import_memory(r, r.find(&root, "memory"), cfg, batch_size, out, rep);

  std::string dataset = arg_text("dataset");
  std::string checksum;
  if (const Value* vocab = r.find(&root, "vocab"); vocab && !vocab->is(Kind::kNone)) {
    const CheckpointVocabulary v = vocabulary_of(r, *vocab, dataset);
    if (v.vocabulary.size() != cfg.n_token)
      failf("{}: the vocabulary has {} symbols but the model n_token = {}", src.what(), v.vocabulary.size(),
            cfg.n_token);
    save_checkpoint_vocabulary(out, v);
    rep.carried.push_back(fmt::format("vocabulary: {} symbols ({}{}{})", v.vocabulary.size(), v.vocab_kind,
                                      v.vocabulary.rules().line_end.empty() ? "" : ", line end <eos>",
                                      v.vocabulary.rules().unk.empty() ? "" : ", unknown words <unk>"));
    if (!options.corpus_path.empty()) {
      const data::CorpusFile corpus = data::CorpusFile::open(options.corpus_path);
      check_same_symbols(v.vocabulary, corpus.vocabulary(), src.what() + " vocab", options.corpus_path);
      checksum = corpus.checksum();
      dataset = corpus.dataset();
      rep.carried.push_back(fmt::format("corpus: {} ({}) has the checkpoint's vocabulary", options.corpus_path,
                                        checksum));
    }
  } else {
    rep.not_carried.push_back("vocabulary: none in the checkpoint");
    if (!options.corpus_path.empty()) failf("{}: no vocabulary to compare with --corpus", src.what());
  }
  if (options.corpus_path.empty())
    rep.not_carried.push_back(
        "corpus checksum: none (no --corpus corpus.h5); txl_train --restart and txl_eval compare the corpus "
        "vocabulary with the checkpoint's instead");

  const std::string optim = arg_text("optim");
  import_optimizer(r, r.find(&root, "optimizer_state"), optim, model_state, out, rep);

  // Training position. The recipe counts epochs from 1 and `batch` batches of the epoch
  // done; txl counts epochs from 0.
  auto root_int = [&](const char* key, int64_t fallback) {
    const Value* v = r.find(&root, key);
    return v && !v->is(Kind::kNone) ? r.integer(*v, key) : fallback;
  };
  const int64_t train_step = root_int("train_step", 0);
  const int64_t epoch = std::max<int64_t>(root_int("epoch", 1) - 1, 0);
  const int64_t batch = root_int("batch", 0);
  const bool varlen = arg_flag("varlen"), roll = arg_flag("roll");
  const int64_t tgt_len = arg_int("tgt_len", cfg.tgt_len);
  out.set_attr("/", "txl_checkpoint_format", int64_t{1});
  out.set_attr("/", "step", train_step);
  out.set_attr("/", "epoch", epoch);
  out.set_attr("/", "batch", batch);
  out.set_attr("/", "offset", batch * tgt_len);
  if (varlen || roll)
    rep.not_carried.push_back(fmt::format(
        "data order: {} draws from PyTorch's random generator, which txl does not reproduce; a restart continues "
        "at epoch {} batch {} of txl's own order",
        varlen ? "varlen" : "roll", epoch + 1, batch));
  else
    rep.carried.push_back(fmt::format("data position: epoch {}, {} batches done, step {} (ordered, fixed length)",
                                      epoch + 1, batch, train_step));
  double best = std::numeric_limits<double>::infinity();
  if (const Value* b = r.find(&root, "best_val_loss"); b && !b->is(Kind::kNone)) best = r.real(*b, "best_val_loss");
  out.set_attr("/", "best_val_loss", best);
  out.set_attr("/", "eval_count", int64_t{0});
  out.set_attr("/", "last_eval_step", int64_t{0});

  // Scheduler: cosine, inv_sqrt and constant are functions of the step; dev_perf keeps
  // ReduceLROnPlateau's state and the current rate.
  double lr = 0.0;
  if (const Value* v = r.find(args, "lr")) lr = r.real(*v, "args.lr");
  double plateau_best = std::numeric_limits<double>::infinity();
  int64_t bad_evals = 0;
  const std::string scheduler = arg_text("scheduler");
  const Value* sched = r.find(&root, "scheduler_state");
  if (scheduler == "dev_perf" && sched && sched->is(Kind::kDict)) {
    if (const Value* v = sched->get("best")) plateau_best = r.real(*v, "scheduler_state.best");
    if (const Value* v = sched->get("num_bad_epochs")) bad_evals = r.integer(*v, "scheduler_state.num_bad_epochs");
    if (const Value* opt = r.find(&root, "optimizer_state"); opt && opt->is(Kind::kDict))
      if (const Value* groups = opt->get("param_groups"); groups && groups->is(Kind::kList) && !groups->items.empty())
        if (const Value* g = groups->items[0]->get("lr")) lr = r.real(*g, "param_groups.lr");
    rep.carried.push_back(fmt::format("scheduler: dev_perf at rate {}, best {}, {} bad evaluations", lr, plateau_best,
                                      bad_evals));
  } else if (!scheduler.empty()) {
    rep.carried.push_back(fmt::format("scheduler: {} at step {} (txl computes the rate from the step)", scheduler,
                                      train_step));
  }
  out.set_attr("/", "plateau_rate", lr);
  out.set_attr("/", "plateau_best", plateau_best);
  out.set_attr("/", "plateau_bad_evals", bad_evals);

  double scale = 1.0;
  int64_t clean = 0;
  if (const Value* amp = r.find(&root, "amp_state"); amp && amp->is(Kind::kDict)) {
    if (const Value* s = amp->get("scale")) scale = r.real(*s, "amp_state.scale");
    if (const Value* g = amp->get("_growth_tracker")) clean = r.integer(*g, "amp_state._growth_tracker");
    rep.carried.push_back(fmt::format("loss scale: {}", scale));
  }
  out.set_attr("/", "loss_scale", scale);
  out.set_attr("/", "loss_scale_clean_steps", clean);
  out.set_attr("/", "loss_scale_skipped_steps", int64_t{0});
  out.set_attr("/", "memory_mlen", mlen);
  out.set_attr("/", "memory_layers", mlen > 0 ? cfg.n_layer : int64_t{0});
  out.set_attr("/", "seed", arg_int("seed", 0));
  out.set_attr("/", "rng", std::string("converted from a recipe checkpoint: txl's Philox dropout stream, not "
                                       "PyTorch's generator states"));
  if (const Value* rng = r.find(&root, "rng_states"); rng && !rng->is(Kind::kNone))
    rep.not_carried.push_back("rng_states: PyTorch generator states (txl draws dropout from its own Philox stream)");
  out.set_attr("/", "corpus_checksum", checksum);
  out.set_attr("/", "dataset", dataset);
  out.set_attr("/", "config", train_config_yaml(r, args, cfg, options.corpus_path, rep));
  out.set_attr("/", "eval_config", std::string());
  out.set_attr("/", "converted_from", src.what());
  out.set_attr("/", "not_carried_over", fmt::format("{}", fmt::join(rep.not_carried, "\n")));
  out.flush();
  return rep;
}

ConversionReport convert_recipe_checkpoint(const std::string& pt_path, const std::string& h5_path,
                                           const RecipeImportOptions& options) {
  const pt::TorchFile src = pt::TorchFile::open(pt_path);
  ConversionReport rep;
  h5::write_atomically(h5_path, [&](const std::string& tmp) {
    h5::File out = h5::File::create(tmp);
    rep = import_recipe_checkpoint(src, options, out);
  });
  return rep;
}

h5::File open_recipe_checkpoint_in_memory(const std::string& pt_path) {
  const pt::TorchFile src = pt::TorchFile::open(pt_path);
  h5::File out = h5::File::create_in_memory(pt_path + " [converted in memory]");
  import_recipe_checkpoint(src, RecipeImportOptions{}, out);
  return out;
}

}  // namespace txl
