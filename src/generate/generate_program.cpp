#include "txl/generate/generate_program.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "txl/convert/checkpoint_vocabulary.h"
#include "txl/core/error.h"
#include "txl/data/corpus.h"
#include "txl/data/moses_tokenizer.h"
#include "txl/generate/clustered_log_probs.h"
#include "txl/generate/token_sampler.h"
#include "txl/generate/wikitext_detokenizer.h"
#include "txl/model/adaptive_distribution.h"
#include "txl/model/incremental_decoder.h"
#include "txl/model/model_checkpoint.h"
#include "txl/train/backend.h"
#include "txl/config/eval_config.h"
#include "txl/config/train_config.h"
#include "txl/train/training_checkpoint.h"

namespace txl::generate {
namespace {

namespace fs = std::filesystem;

struct Options {
  std::string model;
  std::string prompt, prompt_file, prompt_ids;
  bool prompt_given = false;
  std::string data;
  int64_t max_tokens = 100;
  SamplingSettings sampling;
  int64_t num_samples = 1;
  int64_t batch_size = 1;
  std::optional<int64_t> tgt_len, mem_len, clamp_len;
  bool same_length = false;
  std::string device = "cpu";
  std::string json;
  std::vector<std::string> stop;
};

// The vocabulary a checkpoint's text goes through: its own (converted recipe checkpoints),
// else the corpus given with --data or the one it was trained on. None when neither exists.
struct VocabularySource {
  std::optional<data::Vocabulary> vocabulary;
  std::string where;  // what was looked at (for the error when there is none)
};

VocabularySource find_vocabulary(const TrainingCheckpoint& ckpt, const CheckpointInfo& info, const std::string& data) {
  VocabularySource v;
  if (data.empty() && has_checkpoint_vocabulary(ckpt.file())) {
    v.vocabulary = read_checkpoint_vocabulary(ckpt.file()).vocabulary;
    return v;
  }
  std::string path = data;
  if (path.empty()) {
    TrainConfig trained;
    apply_section(trained, train_config_keys(), YAML::Load(info.config_yaml), ckpt.path() + " [config]");
    path = trained.data;
  }
  if (!path.empty() && fs::is_directory(path)) path = (fs::path(path) / fmt::format("txl_{}.h5", info.dataset)).string();
  if (path.empty()) {
    v.where = "it carries none and names no corpus";
  } else if (!fs::is_regular_file(path)) {
    if (!data.empty()) failf("--data {}: no such corpus file", path);
    v.where = fmt::format("it carries none and its corpus {} is not there", path);
  } else {
    v.vocabulary = data::CorpusFile::open(path).vocabulary();
  }
  return v;
}

std::vector<int32_t> parse_ids(const std::string& text, int64_t n_token) {
  std::vector<int32_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size()) failf("--prompt_ids: '{}' is not a token id", item);
    if (v < 0 || v >= n_token) failf("--prompt_ids: id {} is outside the vocabulary [0, {})", v, n_token);
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) fail("--prompt_ids: the prompt is empty");
  return ids;
}

std::vector<int32_t> encode_prompt(const data::Vocabulary& vocab, const std::string& text) {
  const bool words = vocab.rules().unit == data::SymbolUnit::kWord && vocab.bpe() == nullptr;
  // As txl_eval --manual: Moses + WikiText conventions for word vocabularies.
  const std::string tokens = words ? data::tokenize_like_wikitext(text) : text;
  std::vector<int32_t> ids;
  try {
    ids = vocab.encode(tokens);
  } catch (const Error& e) {
    failf("prompt: {}", e.what());
  }
  // A prompt that does not end its line continues it: no line-end symbol after it.
  const int32_t line_end = vocab.rules().line_end.empty() ? -1 : vocab.find(vocab.rules().line_end);
  if (!ids.empty() && ids.back() == line_end && (text.empty() || (text.back() != '\n' && text.back() != '\r')))
    ids.pop_back();
  std::set<int32_t> markers{line_end};
  if (!vocab.rules().sentence_begin.empty()) markers.insert(vocab.find(vocab.rules().sentence_begin));
  if (!vocab.rules().sentence_end.empty()) markers.insert(vocab.find(vocab.rules().sentence_end));
  int64_t words_seen = 0, unknown = 0;
  for (int32_t id : ids) {
    if (markers.count(id)) continue;
    ++words_seen;
    if (id == vocab.unk_id()) ++unknown;
  }
  if (words_seen == 0) fail("prompt: the prompt is empty (no tokens after tokenisation)");
  if (unknown == words_seen)
    failf("prompt: none of its {} token(s) is in the vocabulary (all would be {})", words_seen, vocab.rules().unk);
  return ids;
}

// Prints one sample's tokens as text (or ids without a vocabulary), token by token.
class TextPrinter {
 public:
  explicit TextPrinter(const data::Vocabulary* vocab) : vocab_(vocab) {
    if (vocab_) words_ = vocab_->rules().unit == data::SymbolUnit::kWord && vocab_->bpe() == nullptr;
    if (vocab_) detok_ = WikiTextDetokenizer(vocab_->rules().line_end.empty() ? "<eos>" : vocab_->rules().line_end);
  }
  // The text of `id` following what was printed so far.
  std::string push(int32_t id) {
    if (!vocab_) {
      std::string s = (first_ ? "" : " ") + std::to_string(id);
      first_ = false;
      return s;
    }
    std::string s;
    if (words_) {
      s = detok_.push(vocab_->symbol(id));
    } else if (vocab_->bpe()) {
      // Byte-level BPE: decode the whole sequence, print what is new (a character may
      // need several tokens).
      ids_.push_back(id);
      const std::string all = vocab_->decode(ids_);
      s = all.size() > printed_ ? all.substr(printed_) : "";
      printed_ = all.size();
    } else {
      s = vocab_->decode({id});
    }
    return s;
  }
  std::string push_prompt_text(const std::string& raw) {
    if (words_) detok_ = WikiTextDetokenizer(vocab_->rules().line_end.empty() ? "<eos>" : vocab_->rules().line_end);
    // The continuation follows the raw text: the detokeniser sees it as one word.
    if (words_ && !raw.empty()) {
      if (raw.back() == '\n' || raw.back() == '\r') detok_.start_line();
      else detok_.push("x");
    }
    first_ = false;
    return raw;
  }

 private:
  const data::Vocabulary* vocab_;
  bool words_ = false;
  bool first_ = true;
  WikiTextDetokenizer detok_;
  std::vector<int32_t> ids_;
  size_t printed_ = 0;
};

}  // namespace

int run_generate_program(const std::vector<std::string>& args, std::ostream& out, std::ostream& log) {
  Options o;
  CLI::App app{"txl_generate: text from a Transformer-XL checkpoint (docs/generate.md)"};
  app.add_option("--model", o.model, "checkpoint (.h5, a recipe .pt, or a work dir)");
  app.add_option("--prompt", o.prompt, "raw text, tokenised as txl_eval --manual does");
  app.add_option("--prompt_file", o.prompt_file, "file holding the raw prompt text");
  app.add_option("--prompt_ids", o.prompt_ids, "token ids, comma-separated (a checkpoint without vocabulary)");
  app.add_option("--data", o.data, "corpus file whose vocabulary to use (default: the checkpoint's, or its corpus)");
  app.add_option("--max_tokens", o.max_tokens, "tokens to generate per sample")->capture_default_str();
  app.add_option("--temperature", o.sampling.temperature, "softmax temperature")->capture_default_str();
  app.add_option("--top_k", o.sampling.top_k, "sample among the k most probable tokens (0: all)")->capture_default_str();
  app.add_option("--top_p", o.sampling.top_p, "nucleus: the most probable tokens of this total mass, in (0, 1]")
      ->capture_default_str();
  app.add_flag("--greedy", o.sampling.greedy, "always the most probable token");
  app.add_option("--seed", o.sampling.seed, "random seed (same seed, same text)")->capture_default_str();
  app.add_option("--num_samples", o.num_samples, "independent samples of the same prompt")->capture_default_str();
  app.add_option("--batch_size", o.batch_size, "samples decoded together (does not change the text)")
      ->capture_default_str();
  app.add_option("--tgt_len", o.tgt_len, "segment length: the memory rolls every tgt_len tokens (default: eval's)");
  app.add_option("--mem_len", o.mem_len, "memory length (default: the checkpoint's evaluation setting)");
  app.add_option("--clamp_len", o.clamp_len, "clamp relative distances (<= 0: none; default: eval's)");
  app.add_flag("--same_length", o.same_length, "every position attends to the same number of keys");
  app.add_option("--device", o.device, "cpu or cuda")->capture_default_str();
  app.add_option("--json", o.json, "also write the samples and settings to this JSON file");
  app.add_option("--stop", o.stop, "stop a sample at this token (repeatable; a symbol, or an id without vocabulary)");
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e, out, log);
    fail(e.what());
  }
  const int prompt_sources = (app.count("--prompt") > 0) + (app.count("--prompt_file") > 0) +
                             (app.count("--prompt_ids") > 0);
  if (o.model.empty()) fail("--model is required (a checkpoint file or work dir)");
  if (prompt_sources != 1) fail("give exactly one of --prompt, --prompt_file and --prompt_ids");
  check_sampling_settings(o.sampling);
  if (o.max_tokens < 0) failf("--max_tokens {} must be >= 0", o.max_tokens);
  if (o.num_samples < 1) failf("--num_samples {} must be >= 1", o.num_samples);
  if (o.batch_size < 1) failf("--batch_size {} must be >= 1", o.batch_size);
  if (o.device != "cpu" && o.device != "cuda") failf("--device '{}' is unknown (cpu or cuda)", o.device);

  const std::string ckpt_path = resolve_checkpoint_path(o.model);
  const TrainingCheckpoint ckpt = TrainingCheckpoint::open(ckpt_path);
  const CheckpointInfo info = ckpt.info();
  ModelConfig mc = read_model_config(ckpt.file());
  if (mc.sampled()) failf("{}: a model trained with sample_softmax is not supported by txl_generate", ckpt_path);
  const VocabularySource vs = find_vocabulary(ckpt, info, o.data);
  const data::Vocabulary* vocab = vs.vocabulary ? &*vs.vocabulary : nullptr;
  if (vocab && vocab->size() != mc.n_token)
    failf("{}: the vocabulary has {} symbols but the model {} tokens", ckpt_path, vocab->size(), mc.n_token);

  // The prompt.
  std::string raw;
  std::vector<int32_t> prompt;
  if (app.count("--prompt_ids")) {
    prompt = parse_ids(o.prompt_ids, mc.n_token);
  } else {
    if (!vocab)
      failf("{}: no vocabulary ({}), so only --prompt_ids can give the prompt (or --data corpus.h5)", ckpt_path,
            vs.where);
    if (app.count("--prompt_file")) {
      std::ifstream in(o.prompt_file, std::ios::binary);
      if (!in) failf("--prompt_file {}: cannot read it", o.prompt_file);
      raw.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else {
      raw = o.prompt;
    }
    prompt = encode_prompt(*vocab, raw);
  }
  std::set<int32_t> stop_ids;
  for (const std::string& s : o.stop) {
    const int32_t id = vocab ? vocab->find(s) : -1;
    if (id >= 0) {
      stop_ids.insert(id);
      continue;
    }
    try {
      size_t used = 0;
      const long long v = std::stoll(s, &used);
      if (used == s.size() && v >= 0 && v < mc.n_token) {
        stop_ids.insert(static_cast<int32_t>(v));
        continue;
      }
    } catch (const std::exception&) {
    }
    failf("--stop '{}' is neither a symbol of the vocabulary nor a token id", s);
  }

  // Lengths: the checkpoint's evaluation settings unless given.
  EvalConfig eval;
  if (!info.eval_config_yaml.empty())
    apply_section(eval, eval_config_keys(), YAML::Load(info.eval_config_yaml), ckpt_path + " [eval_config]");
  const int64_t tgt_len = o.tgt_len.value_or(eval.tgt_len), mem_len = o.mem_len.value_or(eval.mem_len);
  const int64_t clamp_len = o.clamp_len.value_or(eval.clamp_len);
  const bool same_length = app.count("--same_length") ? true : eval.same_length;

  auto ops = make_backend(o.device, "fp32", 0);
  mc.dropout = 0.0;
  mc.dropatt = 0.0;
  TransformerXL<float> model(mc, *ops);
  ckpt.load_model(model);
  try {
    model.set_lengths(tgt_len, 0, mem_len, same_length, clamp_len);
  } catch (const Error& e) {
    failf("length settings: {}", e.what());
  }
  IncrementalDecoder<float> decoder(model);
  AdaptiveSoftmaxDistribution<float> head(model.config());
  head.bind(model.params());
  std::vector<int64_t> bounds;
  for (int64_t c = 0; c <= mc.n_clusters(); ++c) bounds.push_back(mc.cluster_begin(c));
  bounds.push_back(mc.n_token);

  log << fmt::format("| txl_generate: {} | {} prompt tokens | tgt_len {} mem_len {} clamp_len {} same_length {} | "
                     "attn_type {} ({}) | backend {}\n",
                     ckpt_path, prompt.size(), tgt_len, mem_len, clamp_len, same_length, mc.attn_type,
                     decoder.one_row_steps() ? "one query row per token" : "pending tokens recomputed", ops->name());
  log.flush();

  nlohmann::ordered_json samples = nlohmann::ordered_json::array();
  const auto start = std::chrono::steady_clock::now();
  int64_t generated = 0;
  const int64_t P = static_cast<int64_t>(prompt.size());
  for (int64_t first = 0; first < o.num_samples; first += o.batch_size) {
    const int64_t B = std::min(o.batch_size, o.num_samples - first);
    const bool live = B == 1;  // one stream: print as it goes
    std::vector<std::vector<int32_t>> tokens(static_cast<size_t>(B));
    std::vector<std::string> texts(static_cast<size_t>(B));
    std::vector<TextPrinter> printers;
    std::vector<bool> done(static_cast<size_t>(B), false);
    for (int64_t b = 0; b < B; ++b) {
      printers.emplace_back(vocab);
      TextPrinter& p = printers.back();
      std::string head_text;
      if (!raw.empty()) {
        head_text = p.push_prompt_text(raw);
      } else {
        for (int32_t id : prompt) head_text += p.push(id);
      }
      texts[static_cast<size_t>(b)] = head_text;
    }
    if (live) {
      if (o.num_samples > 1) out << fmt::format("=== sample {} ===\n", first);
      out << texts[0];
      out.flush();
    }
    decoder.reset(B);
    std::vector<int32_t> ids(static_cast<size_t>(P * B));
    for (int64_t t = 0; t < P; ++t)
      for (int64_t b = 0; b < B; ++b) ids[static_cast<size_t>(t * B + b)] = prompt[static_cast<size_t>(t)];
    const Tensor<float>* hidden = &decoder.feed(ids.data(), P);
    std::vector<int32_t> next(static_cast<size_t>(B), 0);
    for (int64_t step = 0; step < o.max_tokens; ++step) {
      const std::vector<double>& head_logp = head.compute_head(*ops, model.params(), *hidden);
      const int64_t HS = head.head_size();
      bool all_done = true;
      for (int64_t b = 0; b < B; ++b) {
        if (done[static_cast<size_t>(b)]) continue;
        ClusteredLogProbs d(bounds,
                            std::vector<double>(head_logp.begin() + b * HS, head_logp.begin() + (b + 1) * HS),
                            [&, b](int64_t c) { return head.tail_log_probs(*ops, model.params(), b, c); });
        const int32_t tok = choose_token(d, o.sampling, static_cast<uint64_t>(first + b), static_cast<uint64_t>(P + step));
        next[static_cast<size_t>(b)] = tok;
        tokens[static_cast<size_t>(b)].push_back(tok);
        ++generated;
        const std::string piece = printers[static_cast<size_t>(b)].push(tok);
        texts[static_cast<size_t>(b)] += piece;
        if (live) {
          out << piece;
          out.flush();
        }
        if (stop_ids.count(tok)) done[static_cast<size_t>(b)] = true;
        all_done = all_done && done[static_cast<size_t>(b)];
      }
      if (all_done || step + 1 == o.max_tokens) break;
      hidden = &decoder.feed(next.data(), 1);
    }
    for (int64_t b = 0; b < B; ++b) {
      if (!live) {
        if (o.num_samples > 1) out << fmt::format("=== sample {} ===\n", first + b);
        out << texts[static_cast<size_t>(b)];
      }
      out << "\n";
      samples.push_back({{"index", first + b}, {"ids", tokens[static_cast<size_t>(b)]},
                         {"text", texts[static_cast<size_t>(b)]}});
    }
    out.flush();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log << fmt::format("| generated {} tokens in {:.2f} s ({:.1f} tokens/s, prompt included in the time)\n", generated,
                     seconds, seconds > 0 ? static_cast<double>(generated) / seconds : 0.0);
  if (!o.json.empty()) {
    nlohmann::ordered_json j = {
        {"model", ckpt_path},
        {"prompt_ids", prompt},
        {"settings",
         {{"max_tokens", o.max_tokens}, {"temperature", o.sampling.temperature}, {"top_k", o.sampling.top_k},
          {"top_p", o.sampling.top_p}, {"greedy", o.sampling.greedy}, {"seed", o.sampling.seed},
          {"num_samples", o.num_samples}, {"batch_size", o.batch_size}, {"tgt_len", tgt_len}, {"mem_len", mem_len},
          {"clamp_len", clamp_len}, {"same_length", same_length}, {"device", o.device}}},
        {"samples", samples},
        {"seconds", seconds},
        {"tokens_per_s", seconds > 0 ? static_cast<double>(generated) / seconds : 0.0}};
    std::ofstream f(o.json);
    if (!f) failf("--json {}: cannot write it", o.json);
    f << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace txl::generate
