#include <filesystem>
#include <iostream>

#include "txl/dist/world.h"
#include "txl/train/eval_config.h"
#include "txl/train/preset_file.h"
#include "txl/train/programs.h"
#include "txl/train/step_plan.h"
#include "txl/train/trainer.h"

namespace txl {
namespace {

namespace fs = std::filesystem;

// The last value given on the command line for `key` ("" when absent).
std::string override_value(const CommandLine& cl, const std::string& key) {
  std::string v;
  for (const auto& [name, text] : cl.overrides)
    if (name == key) v = text;
  return v;
}

std::string last_checkpoint_in(const std::string& work_dir) {
  return (fs::path(work_dir) / "checkpoint_last.h5").string();
}

template <typename Cfg>
std::string key_table(const std::vector<ConfigKey<Cfg>>& keys) {
  std::string out;
  const Cfg defaults{};
  for (const auto& k : keys)
    out += fmt::format("  --{:<20} {} (default: {})\n", k.name, k.help, yaml_inline(k.value(defaults)));
  return out;
}

}  // namespace

std::string train_usage() {
  return "usage: txl_train [CONFIG.yaml] [--config PRESET] [--key value ...]\n"
         "  CONFIG.yaml holds presets {name: {train: {...}, eval: {...}}}; --config picks one (default: default).\n"
         "  --restart DIR_OR_FILE continues a run (without CONFIG.yaml: with the checkpoint's configuration).\n"
         "  --plan prints the traffic and memory model of one training step instead of training (docs/gpu.md):\n"
         "    --plan_device h100|h200|a100, --plan_memory_gb N, --plan_ranks N, --plan_n_token N,\n"
         "    --plan_storage fp32|bf16 (bf16: the modelled mixed-precision storage design)\n"
         "keys (docs/training.md):\n" +
         key_table(train_config_keys());
}

TrainInvocation resolve_train_invocation(const CommandLine& cl, int world) {
  TrainInvocation inv;
  TrainConfig& cfg = inv.cfg;
  const std::string cl_restart = override_value(cl, "restart");
  if (!cl.config_file.empty()) {
    const PresetFile file = PresetFile::load(cl.config_file);
    apply_section(cfg, train_config_keys(), file.section(cl.preset, "train"), file.where(cl.preset, "train"));
    const YAML::Node eval = file.section(cl.preset, "eval");
    EvalConfig probe;  // checks the eval section's keys and types now, not at txl_eval time
    apply_section(probe, eval_config_keys(), eval, file.where(cl.preset, "eval"));
    if (eval && !eval.IsNull()) inv.eval_config_yaml = yaml_to_text(eval);
  } else if (cl.preset_given) {
    failf("command line: --config {} names a preset, but no configuration file was given", cl.preset);
  } else if (!cl_restart.empty()) {
    // Continuing without the configuration file: the checkpoint's resolved configuration.
    std::string path;
    if (cl_restart == "auto") {
      const std::string wd = override_value(cl, "work_dir");
      if (wd.empty()) fail("command line: --restart auto without CONFIG.yaml needs --work_dir");
      path = last_checkpoint_in(wd);
      if (!fs::exists(path)) failf("restart: auto: {} holds no checkpoint_last.h5 and no CONFIG.yaml was given", wd);
    } else {
      path = resolve_checkpoint_path(cl_restart);
    }
    const CheckpointInfo info = TrainingCheckpoint::open(path).info();
    apply_section(cfg, train_config_keys(), YAML::Load(info.config_yaml), path + " [config]");
    inv.eval_config_yaml = info.eval_config_yaml;
  }
  apply_overrides(cfg, train_config_keys(), cl);
  cfg.finalize(world);

  const std::string last = last_checkpoint_in(cfg.work_dir);
  if (cfg.restart == "auto") {
    if (fs::exists(last)) inv.restart_path = last;
  } else if (!cfg.restart.empty()) {
    inv.restart_path = resolve_checkpoint_path(cfg.restart);
  } else if (fs::exists(last)) {
    failf("work_dir: {} already holds checkpoint_last.h5 of an earlier run; continue it with --restart {} "
          "(or --restart auto), or choose another work_dir",
          cfg.work_dir, cfg.work_dir);
  }
  if (!inv.restart_path.empty()) {
    // The new checkpoints go to work_dir; the one we continue from must not be a
    // temporary or another kind of file.
    TrainingCheckpoint::open(inv.restart_path);
  }
  return inv;
}

int run_train_program(const std::vector<std::string>& all_args, Communicator& comm) {
  std::vector<std::string> args = all_args;
  PlanOptions plan;
  plan.ranks = comm.size();
  const bool planning = take_plan_options(args, plan);
  const CommandLine cl = parse_command_line(args, option_types(train_config_keys()));
  if (planning && !cl.help) return comm.rank() == 0 ? run_plan_program(plan, cl, std::cout) : kExitOk;
  if (cl.help) {
    if (comm.rank() == 0) std::cout << train_usage();
    return kExitOk;
  }
  const TrainInvocation inv = resolve_train_invocation(cl, comm.size());
  require_same_on_all_ranks(comm, "configuration", yaml_to_text(config_to_yaml(inv.cfg, train_config_keys())));
  Trainer trainer(inv.cfg, inv.eval_config_yaml, inv.restart_path, comm);
  return trainer.run().exit_code;
}

}  // namespace txl
