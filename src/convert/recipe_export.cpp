// txl checkpoint (.h5) -> recipe checkpoint (.pt) (recipe_checkpoint.h).
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "txl/convert/checkpoint_vocabulary.h"
#include "txl/convert/pickle_writer.h"
#include "txl/convert/recipe_checkpoint.h"
#include "txl/core/error.h"
#include "txl/data/corpus.h"
#include "txl/model/model_checkpoint.h"
#include "txl/model/transformer_xl.h"

namespace txl {
namespace {

std::vector<uint8_t> float_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(float));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// The recipe's positional-embedding buffer: 1 / 10000^(2i / d_model), computed in float32.
std::vector<float> inverse_frequencies(int64_t d_model) {
  std::vector<float> v;
  for (int64_t i = 0; i < d_model; i += 2) {
    const float x = static_cast<float>(i) / static_cast<float>(d_model);
    v.push_back(1.0f / std::pow(10000.0f, x));
  }
  return v;
}

// A YAML scalar as the Python value argparse would have produced.
void write_scalar(pt::PickleWriter& w, const YAML::Node& n) {
  const std::string s = n.Scalar();
  if (s == "true" || s == "false") return w.boolean(s == "true");
  if (s == "null" || s == "~") return w.none();
  try {
    size_t used = 0;
    const long long i = std::stoll(s, &used);
    if (used == s.size()) return w.integer(i);
  } catch (const std::exception&) {
  }
  try {
    size_t used = 0;
    const double d = std::stod(s, &used);
    if (used == s.size()) return w.real(d);
  } catch (const std::exception&) {
  }
  w.string(s);
}

void write_model_config(pt::PickleWriter& w, const ModelConfig& c) {
  w.begin_dict();
  auto key = [&](const char* k) { w.string(k); };
  key("n_token"), w.integer(c.n_token);
  key("n_layer"), w.integer(c.n_layer);
  key("n_head"), w.integer(c.n_head);
  key("d_model"), w.integer(c.d_model);
  key("d_head"), w.integer(c.d_head);
  key("d_inner"), w.integer(c.d_inner);
  key("dropout"), w.real(c.dropout);
  key("dropatt"), w.real(c.dropatt);
  key("dtype"), w.none();
  key("tie_weight"), w.boolean(c.tie_weight);
  key("d_embed"), w.integer(c.embed_dim());
  key("div_val"), w.integer(c.div_val);
  key("tie_projs");
  w.begin_list();
  for (int64_t k = 0; k <= c.n_clusters(); ++k) w.boolean(c.tie_proj(k));
  w.end_list();
  key("pre_lnorm"), w.boolean(c.pre_lnorm);
  key("tgt_len"), w.integer(c.tgt_len);
  key("ext_len"), w.integer(c.ext_len);
  key("mem_len"), w.integer(c.mem_len);
  key("cutoffs");
  w.begin_list();
  for (int64_t cut : c.cutoffs) w.integer(cut);
  w.end_list();
  key("same_length"), w.boolean(c.same_length);
  key("attn_type"), w.integer(c.attn_type);
  key("clamp_len"), w.integer(c.clamp_len);
  key("sample_softmax"), w.integer(-1);
  w.end_dict();
}

void write_args(pt::PickleWriter& w, const h5::File& in, const ModelConfig& c, const std::string& vocab_kind) {
  w.begin_object("argparse", "Namespace");
  if (in.has_attr("/", "config")) {
    const YAML::Node cfg = YAML::Load(in.attr_string("/", "config"));
    if (cfg.IsMap())
      for (const auto& kv : cfg) {
        const std::string k = kv.first.as<std::string>();
        if (!kv.second.IsScalar() || k == "tie_weight") continue;
        w.string(k);
        write_scalar(w, kv.second);
      }
  }
  w.string("n_token"), w.integer(c.n_token);
  w.string("not_tied"), w.boolean(!c.tie_weight);
  w.string("vocab"), w.string(vocab_kind == "char" ? "char" : "word");
  w.end_object();
}

void write_vocab(pt::PickleWriter& w, const CheckpointVocabulary& cv) {
  const data::Vocabulary& v = cv.vocabulary;
  const data::TokenizationRules& r = v.rules();
  std::vector<std::string> special;
  for (const std::string* s : {&r.sentence_begin, &r.sentence_end, &r.line_end, &r.unk})
    if (!s->empty()) special.push_back(*s);
  w.begin_object("utils.vocabulary", "Vocab");
  w.string("counter");
  w.begin_call("collections", "Counter");
  w.begin_dict();
  for (int64_t i = 0; i < v.size(); ++i)
    if (v.counts()[static_cast<size_t>(i)] > 0) w.string(v.symbol(i)), w.integer(v.counts()[static_cast<size_t>(i)]);
  w.end_dict();
  w.end_call();
  w.string("special");
  w.begin_list();
  for (const std::string& s : special) w.string(s);
  w.end_list();
  w.string("min_freq"), w.integer(0);
  w.string("max_size"), w.none();
  w.string("lower_case"), w.boolean(r.lower_case);
  w.string("delimiter"), w.none();
  w.string("vocab_file"), w.none();
  w.string("idx2sym");
  w.begin_list();
  for (const std::string& s : v.symbols()) w.string(s);
  w.end_list();
  w.string("sym2idx");
  w.begin_ordered_dict();
  for (int64_t i = 0; i < v.size(); ++i) w.string(v.symbol(i)), w.integer(i);
  w.end_dict();
  // The recipe names each special symbol's id `<name>_idx` ('<eos>' -> eos_idx).
  for (const std::string& s : special) {
    std::string name = s;
    if (name.size() > 2 && name.front() == '<' && name.back() == '>') name = name.substr(1, name.size() - 2);
    w.string(name + "_idx"), w.integer(v.id(s));
  }
  w.end_object();
}

}  // namespace

std::vector<uint8_t> export_recipe_checkpoint(const h5::File& in, const RecipeExportOptions& options,
                                              ConversionReport& rep) {
  ModelConfig cfg = read_model_config(in);
  auto ops = make_cpu_ops<float>();
  TransformerXL<float> model(cfg, *ops);
  load_model_params(in, model.params(), cfg, *ops);
  const ParamStore<float>& params = model.params();

  pt::TorchFileWriter zip("archive");
  pt::PickleWriter w;
  w.begin_dict();

  CheckpointVocabulary vocab;
  bool have_vocab = has_checkpoint_vocabulary(in);
  if (have_vocab) {
    vocab = read_checkpoint_vocabulary(in);
  } else if (!options.corpus_path.empty()) {
    const data::CorpusFile corpus = data::CorpusFile::open(options.corpus_path);
    const std::string saved = in.has_attr("/", "corpus_checksum") ? in.attr_string("/", "corpus_checksum") : "";
    if (saved != corpus.checksum())
      failf("{}: the model was trained on another corpus (checksum {}) than {} ({})", in.path(), saved,
            options.corpus_path, corpus.checksum());
    vocab = CheckpointVocabulary{corpus.vocabulary(), corpus.vocab_kind()};
    have_vocab = true;
  }
  if (have_vocab && vocab.vocabulary.size() != cfg.n_token)
    failf("{}: the vocabulary has {} symbols but the model n_token = {}", in.path(), vocab.vocabulary.size(),
          cfg.n_token);
  w.string("args");
  write_args(w, in, cfg, vocab.vocab_kind);
  w.string("model_config");
  write_model_config(w, cfg);

  w.string("model_state");
  w.begin_ordered_dict();
  std::vector<float> host;
  for (int id = 0; id < params.size(); ++id) {
    const ParamInfo& p = params.info(id);
    host.resize(static_cast<size_t>(p.slice.numel));
    ops->download(host.data(), params.param(id).data(), host.size() * sizeof(float));
    w.string(p.name);
    w.tensor(pt::DType::kFloat32, zip.add_storage(float_bytes(host)), p.shape);
  }
  if (cfg.attn_type == 0 || cfg.attn_type == 2) {
    const std::vector<float> f = inverse_frequencies(cfg.d_model);
    w.string("pos_emb.inv_freq");
    w.tensor(pt::DType::kFloat32, zip.add_storage(float_bytes(f)), {static_cast<int64_t>(f.size())});
  }
  w.end_dict();
  rep.carried.push_back(fmt::format("model: {} parameters ({} values)", params.size(), params.total_numel()));

  // Memory: one chunk over the whole batch, [n_layer, mlen, batch, d_model].
  const int64_t mlen = in.has_attr("/", "memory_mlen") ? in.attr_int("/", "memory_mlen") : 0;
  w.string("memory");
  w.begin_list();
  if (mlen > 0) {
    const int64_t layers = in.attr_int("/", "memory_layers");
    std::vector<float> all;
    Shape shape;
    for (int64_t l = 0; l < layers; ++l) {
      const std::vector<float> layer = in.read<float>(fmt::format("/memory/layer_{}", l), &shape);
      all.insert(all.end(), layer.begin(), layer.end());
    }
    w.tensor(pt::DType::kFloat32, zip.add_storage(float_bytes(all)), {layers, shape.at(0), shape.at(1), shape.at(2)});
    rep.carried.push_back(fmt::format("memory: {} layers x {} rows x {} streams", layers, shape[0], shape[1]));
  }
  w.end_list();

  w.string("vocab");
  if (have_vocab) {
    write_vocab(w, vocab);
    rep.carried.push_back(fmt::format("vocabulary: {} symbols as utils.vocabulary.Vocab", vocab.vocabulary.size()));
  } else {
    w.none();
    rep.not_carried.push_back(
        "vocabulary: the checkpoint holds none (txl keeps it in the corpus file; give --corpus corpus.h5); vocab is "
        "None, so the recipe's eval.py needs its corpus (not --manual)");
  }
  if (in.has_attr("/", "step")) {
    const int64_t step = in.attr_int("/", "step");
    const int64_t batch = in.attr_int("/", "batch");
    const double best = in.attr_double("/", "best_val_loss");
    w.string("epoch"), w.integer(in.attr_int("/", "epoch") + 1);
    w.string("batch"), w.integer(batch);
    w.string("train_step"), w.integer(step);
    w.string("best_val_loss");
    if (std::isfinite(best)) w.real(best);
    else w.none();
    rep.carried.push_back(fmt::format("position: step {}, epoch {}, batch {}", step, in.attr_int("/", "epoch") + 1,
                                      batch));
  }
  if (in.exists("/optim"))
    rep.not_carried.push_back("optimizer state: not exported (the recipe's train.py restarts need it; eval does not)");
  w.end_dict();
  return zip.finish(w.finish());
}

ConversionReport convert_to_recipe_checkpoint(const std::string& h5_path, const std::string& pt_path,
                                              const RecipeExportOptions& options) {
  const h5::File in = h5::File::open(h5_path);
  ConversionReport rep;
  const std::vector<uint8_t> bytes = export_recipe_checkpoint(in, options, rep);
  h5::write_atomically(pt_path, [&](const std::string& tmp) {
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) failf("{}: cannot create", tmp);
    const size_t n = std::fwrite(bytes.data(), 1, bytes.size(), f);
    const bool ok = n == bytes.size() && std::fclose(f) == 0;
    if (!ok) failf("{}: write failed (disk full?)", tmp);
  });
  return rep;
}

}  // namespace txl
