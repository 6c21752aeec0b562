#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "txl/convert/checkpoint_vocabulary.h"
#include "txl/data/corpus.h"
#include "txl/data/moses_tokenizer.h"
#include "txl/model/model_checkpoint.h"
#include "txl/train/backend.h"
#include "txl/train/dllogger.h"
#include "txl/config/eval_arguments.h"
#include "txl/config/eval_config.h"
#include "txl/train/evaluator.h"
#include "txl/config/preset_file.h"
#include "txl/programs/programs.h"
#include "txl/data/token_vector_iterator.h"
#include "txl/train/train_log.h"
#include "txl/train/trainer.h"
#include "txl/train/training_checkpoint.h"

namespace txl {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string checkpoint_of(const EvalConfig& e) {
  if (!e.model.empty()) return e.model;
  if (!e.work_dir.empty()) return (fs::path(e.work_dir) / "checkpoint_best.h5").string();
  fail("eval config: model: no checkpoint given (--model FILE or --work_dir DIR)");
}

struct SplitReport {
  std::string name;
  EvalResult result;                 // of the last repetition
  std::vector<double> latencies_ms;  // every batch of every repetition (this rank)
  double seconds = 0.0;              // all repetitions
  int64_t tokens_processed = 0;      // all repetitions
};

// eval.py's progress lines: means over each log_interval batches (counted across the
// repetitions of one split), the throughput summed over ranks.
class IntervalLog {
 public:
  IntervalLog(int64_t interval, RunLog& log, DlLogger& dllog, Communicator& comm)
      : interval_(interval), log_(log), dllog_(dllog), comm_(comm) {}
  void operator()(const EvalBatch& b) {
    if (interval_ <= 0) return;
    ++step_;
    double tok_per_s = static_cast<double>(b.tokens) / b.seconds;
    comm_.allreduce_sum(&tok_per_s, 1);
    latency_ += b.seconds;
    throughput_ += tok_per_s;
    loss_ += b.mean_loss;
    if (step_ % interval_ != 0) return;
    const double n = static_cast<double>(interval_);
    const double ms = 1000.0 * latency_ / n, tps = throughput_ / n, loss = loss_ / n;
    log_.line(format_eval_interval_line(step_, b.index + 1, b.n_batch, ms, tps, loss));
    dllog_.log(step_, {{"eval_latency", ms}, {"eval_throughput", tps}, {"eval_loss", loss},
                       {"eval_perplexity", perplexity(loss)}});
    latency_ = throughput_ = loss_ = 0.0;
  }

 private:
  int64_t interval_, step_ = 0;
  double latency_ = 0.0, throughput_ = 0.0, loss_ = 0.0;
  RunLog& log_;
  DlLogger& dllog_;
  Communicator& comm_;
};

// eval.py options that txl accepts but that change nothing here, when they were set.
std::string without_effect(const EvalConfig& e) {
  const EvalConfig d{};
  std::vector<std::string> set;
  if (e.seed != d.seed) set.push_back(fmt::format("seed {}", e.seed));
  if (e.affinity != d.affinity) set.push_back("affinity " + e.affinity);
  if (e.local_rank != d.local_rank) set.push_back(fmt::format("local_rank {}", e.local_rank));
  if (e.no_env) set.push_back("no_env");
  if (!e.manual_config.empty()) set.push_back("manual_config (the checkpoint carries the model configuration)");
  if (e.manual_vocab != d.manual_vocab) set.push_back("manual_vocab " + e.manual_vocab);
  if (set.empty()) return "";
  std::string out = "| eval.py options accepted without effect in txl:";
  for (size_t i = 0; i < set.size(); ++i) out += (i ? ", " : " ") + set[i];
  return out + " (docs/recipe-users.md)";
}

// What a txl_eval command line resolves to: the configuration (defaults < the checkpoint's
// stored eval section < the preset file's eval section < --key value), the checkpoint, and
// the corpus (none for --manual with a converted checkpoint's own vocabulary).
struct EvalInvocation {
  EvalConfig e;
  std::string ckpt_path, data_path;
  std::optional<TrainingCheckpoint> ckpt;
  CheckpointInfo info;
  std::optional<CheckpointVocabulary> own_vocab;
  std::optional<data::CorpusFile> corpus;

  const data::Vocabulary& vocabulary() const { return corpus ? corpus->vocabulary() : own_vocab->vocabulary; }
  bool char_level() const { return corpus ? corpus->char_level() : own_vocab->vocab_kind == "char"; }
};

EvalInvocation resolve_eval_invocation(const CommandLine& cl, Communicator& comm) {
  EvalInvocation inv;
  // Find the checkpoint first: its stored eval section supplies defaults.
  YAML::Node file_section;
  std::string file_where;
  if (!cl.config_file.empty()) {
    const PresetFile file = PresetFile::load(cl.config_file);
    file_section = file.section(cl.preset, "eval");
    file_where = file.where(cl.preset, "eval");
  } else if (cl.preset_given) {
    failf("command line: --config {} names a preset, but no configuration file was given", cl.preset);
  }
  EvalConfig probe;
  apply_section(probe, eval_config_keys(), file_section, file_where);
  apply_overrides(probe, eval_config_keys(), cl);
  const std::string ckpt_path = inv.ckpt_path = checkpoint_of(probe);
  const TrainingCheckpoint& ckpt = inv.ckpt.emplace(TrainingCheckpoint::open(ckpt_path));
  const CheckpointInfo& info = inv.info = ckpt.info();

  EvalConfig& e = inv.e;
  if (!info.eval_config_yaml.empty())
    apply_section(e, eval_config_keys(), YAML::Load(info.eval_config_yaml), ckpt_path + " [eval_config]");
  apply_section(e, eval_config_keys(), file_section, file_where);
  apply_overrides(e, eval_config_keys(), cl);
  e.model = ckpt_path;
  e.finalize(comm.size());
  if (!e.manual.empty() && comm.size() > 1) fail("eval config: manual: evaluating raw text runs on one process only");

  TrainConfig trained;
  apply_section(trained, train_config_keys(), YAML::Load(info.config_yaml), ckpt_path + " [config]");
  std::string& data_path = inv.data_path = e.data.empty() ? trained.data : e.data;
  // A converted recipe checkpoint carries its vocabulary, so --manual needs no corpus.
  std::optional<CheckpointVocabulary>& own_vocab = inv.own_vocab;
  if (has_checkpoint_vocabulary(ckpt.file())) own_vocab = read_checkpoint_vocabulary(ckpt.file());
  if (data_path.empty() && !(own_vocab && !e.manual.empty()))
    fail("eval config: data: no corpus given and the checkpoint names none");
  if (!data_path.empty() && fs::is_directory(data_path)) {  // eval.py's --data DIR: the file txl_train --data DIR prepared
    const std::string file = (fs::path(data_path) / fmt::format("txl_{}.h5", info.dataset)).string();
    if (!fs::is_regular_file(file))
      failf("eval config: data: {} is a directory without {} (txl_train --data {} prepares it; or give a txl_prep "
            "corpus file)",
            data_path, file, data_path);
    data_path = file;
  }
  std::optional<data::CorpusFile>& corpus = inv.corpus;
  if (!data_path.empty()) {
    corpus.emplace(data::CorpusFile::open(data_path));
    if (info.corpus_checksum.empty() && own_vocab)
      check_same_symbols(own_vocab->vocabulary, corpus->vocabulary(), ckpt_path + " vocabulary", data_path);
    else if (corpus->checksum() != info.corpus_checksum)
      failf("{}: the model was trained on another corpus (checksum {}) than {} ({}); its vocabulary may differ",
            ckpt_path, info.corpus_checksum, data_path, corpus->checksum());
    if (!e.dataset.empty() && e.dataset != corpus->dataset())
      failf("eval config: dataset: '{}' but {} holds the '{}' corpus", e.dataset, data_path, corpus->dataset());
  }
  if (e.manual.empty())
    for (const std::string& s : e.splits())
      if (!corpus->has_split(s)) failf("{}: the corpus has no '{}' split", data_path, s);
  return inv;
}

// The logs as eval.py writes them, and their header: the resolved configuration and
// DLLogger's parameter dump and metadata.
struct EvalLogs {
  RunLog log;
  DlLogger dllog;
  void say(const std::string& line) { log.line(line); }
};

void open_eval_logs(const EvalConfig& e, Communicator& comm, EvalLogs& logs) {
  RunLog& log = logs.log;
  DlLogger& dllog = logs.dllog;
  // Logs as eval.py writes them: eval_log.log (Python logging's prefix) and the DLLogger
  // file in work_dir, unless --debug or no work_dir.
  const bool writer = comm.rank() == 0;
  if (!e.work_dir.empty() && !e.debug) {
    if (writer) {
      std::error_code ec;
      fs::create_directories(e.work_dir, ec);
      if (ec) failf("work_dir: cannot create {}: {}", e.work_dir, ec.message());
    }
    comm.barrier();
    if (e.log_all_ranks)  // every rank (0 too), as eval.py
      log = RunLog((fs::path(e.work_dir) / fmt::format("eval_log_rank_{}.log", comm.rank())).string(), "", true,
                   comm.rank());
    else if (writer)
      log = RunLog((fs::path(e.work_dir) / "eval_log.log").string(), "", true);
    if (writer) dllog = DlLogger((fs::path(e.work_dir) / e.dllog_file).string());
  } else if (writer) {
    log = RunLog("", "", true);
  }
  auto say = [&](const std::string& line) { log.line(line); };
  say(std::string(100, '='));
  say("| txl_eval: resolved configuration");
  for (const auto& key : eval_config_keys())
    say(fmt::format("|     {} : {}", key.name, yaml_inline(key.value(e))));
  say(std::string(100, '='));
  dllog.log("PARAMETER", parameter_data(eval_config_keys(), e));
  for (const auto& [metric, unit] : std::vector<std::pair<std::string, std::string>>{{"eval_throughput", "tokens/s"},
                                                                                    {"eval_loss", ""},
                                                                                    {"eval_perplexity", ""},
                                                                                    {"eval_latency", "ms"},
                                                                                    {"eval_avg_latency", "ms"}})
    dllog.metadata(metric, unit);
  for (double p : e.percentiles) dllog.metadata(fmt::format("eval_{}%_latency", p), "ms");
  if (const std::string line = without_effect(e); !line.empty()) say(line);
}

// Every split asked for (or the --manual text), each `repeat` times.
std::vector<SplitReport> evaluate_splits(const EvalInvocation& inv, TransformerXL<float>& model, EvalStep<float>& step,
                                         EvalSettings& s, EvalLogs& logs, Communicator& comm) {
  const EvalConfig& e = inv.e;
  RunLog& log = logs.log;
  DlLogger& dllog = logs.dllog;
  auto say = [&](const std::string& line) { log.line(line); };
  std::vector<SplitReport> reports;
  const std::vector<std::string> names = e.manual.empty() ? e.splits() : std::vector<std::string>{"manual"};
  for (const std::string& name : names) {
    SplitReport rep;
    rep.name = name;
    std::unique_ptr<data::BatchIterator> it;
    int64_t batch_global = e.batch_size;
    if (name == "manual") {
      // As eval.py: Moses-tokenised with WikiText's conventions (word-level corpora).
      const data::Vocabulary& vocabulary = inv.vocabulary();
      const bool words = vocabulary.rules().unit == data::SymbolUnit::kWord;
      const std::string text = words ? data::tokenize_like_wikitext(e.manual) : e.manual;
      if (words) say("| manual text as tokens: " + text);
      std::vector<int32_t> tokens = vocabulary.encode(text);
      batch_global = 1;  // the text is one stream
      it = std::make_unique<data::TokenVectorIterator>(std::move(tokens), 1, e.tgt_len, e.ext_len);
    } else {
      data::IteratorOptions opt;
      opt.warmup_mem_len = e.mem_len;
      opt.ext_len = e.ext_len;
      it = data::make_batch_iterator(*inv.corpus, name, e.batch_size, comm.size(), comm.rank(), e.tgt_len, opt);
    }
    IntervalLog interval(e.log_interval, log, dllog, comm);
    s.on_batch = std::ref(interval);
    for (int64_t r = 0; r < e.repeat; ++r) {
      rep.result = evaluate(model, *it, s, batch_global, comm, &step);
      for (double l : rep.result.latencies) rep.latencies_ms.push_back(1000.0 * l);
      rep.seconds += rep.result.seconds;
      rep.tokens_processed += rep.result.tokens_processed;
    }
    s.on_batch = nullptr;
    if (rep.result.batches > 0) say(format_eval_time_line(rep.seconds, rep.result.batches));
    TXL_CHECK(rep.result.tokens > 0, "{}: no tokens were evaluated (split too short for batch_size {}?)", name,
              e.batch_size);
    reports.push_back(std::move(rep));
  }
  return reports;
}

// The result lines of eval.py per split, DLLogger's summary, the benchmark targets (the
// exit code) and the --json document.
int report_eval_results(const EvalInvocation& inv, const std::vector<SplitReport>& reports, bool graph,
                        const EvalStep<float>& step, EvalLogs& logs, Communicator& comm, json& out) {
  const EvalConfig& e = inv.e;
  const bool char_level = inv.char_level();
  DlLogger& dllog = logs.dllog;
  auto say = [&](const std::string& line) { logs.say(line); };
  int exit_code = kExitOk;
  out = {{"model", inv.ckpt_path}, {"data", inv.data_path}, {"batch_size", e.batch_size}, {"tgt_len", e.tgt_len},
              {"ext_len", e.ext_len}, {"mem_len", e.mem_len}, {"clamp_len", e.clamp_len},
              {"same_length", e.same_length}, {"device", e.device}, {"precision", e.precision},
              {"type", graph ? "graph" : "eager"},
              {"world", comm.size()}, {"results", json::object()}};
  for (const SplitReport& rep : reports) {
    const double loss = rep.result.loss();
    const double throughput = static_cast<double>(rep.tokens_processed) / rep.seconds;
    double mean_ms = 0.0;
    for (double l : rep.latencies_ms) mean_ms += l;
    mean_ms /= static_cast<double>(rep.latencies_ms.size());
    say(std::string(100, '='));
    say(format_split_line(rep.name, loss, char_level));
    say(std::string(100, '='));
    say(fmt::format("Throughput Avg: {:.2f} tok/s", throughput));
    if (step.graphed())
      say(fmt::format("Graph: decoder layers replayed in {} of {} batches ({} recorded ops)", rep.result.graph_replays,
                      rep.result.batches, step.graph_nodes()));
    say(fmt::format("Latency Avg: {:.2f} ms", mean_ms));
    json pct = json::object();
    nlohmann::ordered_json summary = {{"eval_loss", loss}, {"eval_ppl", perplexity(loss)},
                                      {"eval_throughput", throughput}, {"eval_avg_latency", mean_ms}};
    for (double p : e.percentiles) {
      const double v = percentile(rep.latencies_ms, p);
      say(fmt::format("Latency {}%: {:.2f} ms", p, v));
      pct[fmt::format("{}", p)] = v;
      summary[fmt::format("eval_{}%_latency", p)] = v;
    }
    say(std::string(100, '='));
    if (reports.size() > 1) summary["split"] = rep.name;
    dllog.log(nlohmann::ordered_json::array(), summary);
    json r = {{"loss", loss}, {"tokens", rep.result.tokens}, {"batches", rep.result.batches},
              {"throughput_tok_s", throughput}, {"latency_avg_ms", mean_ms}, {"latency_percentiles_ms", pct},
              {"repeat", e.repeat}, {"seconds", rep.seconds}, {"graph_replays", rep.result.graph_replays}};
    const LossMetric metric = loss_metric(loss, char_level);
    r[metric.name] = metric.value;
    out["results"][rep.name] = r;
    // eval.py's benchmark: exp(loss) against target_perplexity (character corpora too),
    // the mean throughput against target_throughput, in its lines.
    if (e.target_perplexity > 0) {
      const bool passed = perplexity(loss) <= e.target_perplexity;
      say(fmt::format("Perplexity achieved: {:.2f} target: {:.2f}", perplexity(loss), e.target_perplexity));
      say(passed ? "Perplexity test passed" : "Perplexity test failed");
      if (!passed) exit_code = kExitTargetMissed;
    }
    if (e.target_throughput > 0) {
      const bool passed = throughput >= e.target_throughput;
      say(fmt::format("Throughput achieved: {:.2f} target: {:.2f}", throughput, e.target_throughput));
      say(passed ? "Throughput test passed" : "Throughput test failed");
      if (!passed) exit_code = kExitTargetMissed;
    }
  }
  return exit_code;
}

// --save_data (one latency per batch) and --json, written by rank 0.
void write_eval_files(const EvalConfig& e, const std::vector<SplitReport>& reports, const json& out) {
  if (!e.save_data.empty()) {
    const std::string path = e.save_data_path();
    std::ofstream f(path);
    if (!f) failf("save_data: cannot write {}", path);
    f << "# split latency_ms (one line per batch, every repetition)\n";
    for (const SplitReport& rep : reports)
      for (double l : rep.latencies_ms) f << rep.name << ' ' << fmt::format("{:.6f}", l) << '\n';
  }
  if (!e.json.empty()) {
    std::ofstream f(e.json);
    if (!f) failf("json: cannot write {}", e.json);
    f << out.dump(2) << '\n';
  }
}

}  // namespace

std::string eval_usage() {
  std::string out =
      "usage: txl_eval [CONFIG.yaml] [--config PRESET] --model CKPT [--data corpus.h5] [--split valid|test|all]\n"
      "                [--manual \"raw text\"] [--key value ...]\n"
      "keys (docs/training.md):\n";
  const EvalConfig defaults{};
  for (const auto& k : eval_config_keys())
    out += fmt::format("  --{:<20} {} (default: {})\n", k.name, k.help, yaml_inline(k.value(defaults)));
  return out;
}

int run_eval_program(const std::vector<std::string>& raw_args, Communicator& comm) {
  const std::vector<std::string> args = recipe_eval_arguments(raw_args);
  const CommandLine cl = parse_command_line(args, option_types(eval_config_keys()));
  if (cl.help) {
    if (comm.rank() == 0) std::cout << eval_usage();
    return kExitOk;
  }
  const EvalInvocation inv = resolve_eval_invocation(cl, comm);
  const EvalConfig& e = inv.e;
  EvalLogs logs;
  open_eval_logs(e, comm, logs);
  auto say = [&](const std::string& line) { logs.say(line); };
  say("Loading checkpoint from " + inv.ckpt_path);

  const bool graph = e.graphed();
  auto ops = make_backend(e.device, e.precision, comm.local_rank(), graph);
  ModelConfig mc = read_model_config(inv.ckpt->file());
  mc.dropout = 0.0;  // evaluation: no dropout (also not applied with ctx.train = false)
  mc.dropatt = 0.0;
  TransformerXL<float> model(mc, *ops);
  inv.ckpt->load_model(model);
  // Lengths this model cannot use (e.g. attn_type 1 with clamp_len beyond its r_emb rows)
  // fail here, before any data is read.
  try {
    model.set_lengths(e.tgt_len, e.ext_len, e.mem_len, e.same_length, e.clamp_len);
  } catch (const Error& err) {
    failf("eval config: {}", err.what());
  }
  EvalStep<float> step(model, graph ? make_step_graph(*ops) : nullptr);

  // eval.py names the runtimes pytorch (txl's eager) and torchscript (txl's graph).
  say(fmt::format("Evaluating with: math {} type {} bsz {} tgt_len {} ext_len {} mem_len {} clamp_len {}", e.precision,
                  graph ? "torchscript" : "pytorch", e.batch_size, e.tgt_len, e.ext_len, e.mem_len, e.clamp_len));
  say(fmt::format("| same_length {} | corpus {} ({}) | backend {} | {} forward passes", e.same_length, inv.data_path,
                  inv.corpus ? inv.corpus->dataset() : std::string("checkpoint vocabulary"), ops->name(), graph ? "graphed" : "eager"));
  EvalSettings s;
  s.tgt_len = e.tgt_len;
  s.ext_len = e.ext_len;
  s.mem_len = e.mem_len;
  s.same_length = e.same_length;
  s.clamp_len = e.clamp_len;
  s.max_batches = e.max_size;

  const std::vector<SplitReport> reports = evaluate_splits(inv, model, step, s, logs, comm);
  json out;
  const int exit_code = report_eval_results(inv, reports, graph, step, logs, comm, out);
  if (comm.rank() == 0) write_eval_files(e, reports, out);
  return exit_code;
}

}  // namespace txl
