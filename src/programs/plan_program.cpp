#include <filesystem>
#include <iostream>

#include "txl/data/corpus.h"
#include "txl/programs/programs.h"
#include "txl/train/step_plan.h"
#include "txl/config/train_config.h"

namespace txl {
namespace {

// "--name value" or "--name=value" at args[i]; removes it and stores the value.
bool take_value(std::vector<std::string>& args, size_t i, const std::string& name, std::string& value) {
  const std::string flag = "--" + name;
  if (args[i] == flag) {
    if (i + 1 >= args.size()) failf("command line: {} needs a value", flag);
    value = args[i + 1];
    args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
    return true;
  }
  if (args[i].rfind(flag + "=", 0) == 0) {
    value = args[i].substr(flag.size() + 1);
    args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
    return true;
  }
  return false;
}

double positive_number(const std::string& text, const char* flag) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !(v > 0)) failf("command line: --{} {}: expected a positive number", flag, text);
  return v;
}

}  // namespace

bool take_plan_options(std::vector<std::string>& args, PlanOptions& o) {
  bool any = false;
  for (size_t i = 0; i < args.size();) {
    std::string v;
    if (args[i] == "--plan") {
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
      o.plan = any = true;
    } else if (take_value(args, i, "plan_device", v)) {
      if (!find_plan_device(v)) failf("command line: --plan_device {}: unknown GPU (h100 | h200 | a100)", v);
      o.device = v;
      any = true;
    } else if (take_value(args, i, "plan_memory_gb", v)) {
      o.memory_gb = positive_number(v, "plan_memory_gb");
      any = true;
    } else if (take_value(args, i, "plan_ranks", v)) {
      o.ranks = static_cast<int>(positive_number(v, "plan_ranks"));
      any = true;
    } else if (take_value(args, i, "plan_storage", v)) {
      parse_plan_storage(v);
      o.storage = v;
      any = true;
    } else if (take_value(args, i, "plan_n_token", v)) {
      o.n_token = static_cast<int64_t>(positive_number(v, "plan_n_token"));
      any = true;
    } else {
      ++i;
    }
  }
  if (any && !o.plan)
    fail("command line: --plan_device, --plan_memory_gb, --plan_ranks and --plan_n_token need --plan");
  return o.plan;
}

int run_plan_program(const PlanOptions& o, const CommandLine& cl, std::ostream& out) {
  namespace fs = std::filesystem;
  // The configuration exactly as txl_train would resolve it (recipe files and spellings too).
  const TrainConfig cfg = resolve_train_invocation(cl, o.ranks).cfg;
  int64_t n_token = o.n_token;
  std::vector<int64_t> cutoffs;
  std::string kind = cfg.dataset;
  if (n_token == 0) {
    if (!fs::exists(cfg.data))
      failf("--plan: the corpus {} does not exist; give its vocabulary size with --plan_n_token N", cfg.data);
    const data::CorpusFile corpus = data::CorpusFile::open(cfg.data);
    n_token = corpus.n_token();
    cutoffs = corpus.cutoffs();
    kind = corpus.dataset();
  }
  if (cfg.adaptive && cfg.model.cutoffs.empty() && cutoffs.empty())
    fail("--plan: adaptive: true needs cutoffs (--cutoffs a,b,c) when the corpus is not there to recommend them");
  StepPlanRequest rq;
  rq.model = cfg.model_config(n_token, cutoffs, kind);
  rq.chunk_batch = cfg.chunk_batch(o.ranks);
  rq.batch_chunk = cfg.batch_chunk;
  rq.precision = parse_plan_precision(cfg.precision);
  rq.storage = parse_plan_storage(o.storage);
  rq.optim = cfg.optim == "jitlamb" ? "lamb" : cfg.optim;
  rq.label = fmt::format("{}{}, {} rank{}", cl.config_file.empty() ? "" : cl.config_file + " ",
                         cl.config_file.empty() ? "defaults" : cl.preset, o.ranks, o.ranks == 1 ? "" : "s");
  const StepPlan plan = plan_training_step(rq);
  out << format_step_plan(plan);
  const DeviceSpec* dev = find_plan_device(o.device);
  const double bytes = o.memory_gb > 0 ? o.memory_gb * 1e9 : dev->memory_bytes;
  out << format_memory_fit(plan, bytes, o.memory_gb > 0 ? fmt::format("{} GB", o.memory_gb) : std::string(dev->name));
  return 0;
}

}  // namespace txl
