#include <array>
#include <algorithm>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <iostream>

#include <fmt/ranges.h>

#include "txl/dist/world.h"
#include "txl/train/backend.h"
#include "txl/programs/corpus_directory.h"
#include "txl/train/cpu_affinity.h"
#include "txl/config/eval_config.h"
#include "txl/config/preset_file.h"
#include "txl/programs/programs.h"
#include "txl/train/step_plan.h"
#include "txl/train/trainer.h"
#include "txl/train/work_dir_lock.h"

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

// The checkpoint to continue from for --restart FILE_OR_DIR: a file as given; a directory's
// newest intact checkpoint (choose_restart_checkpoint), with what it passed over noted.
std::string restart_checkpoint(const std::string& file_or_dir, TrainInvocation& inv) {
  if (!fs::is_directory(file_or_dir)) return resolve_checkpoint_path(file_or_dir);
  std::optional<RestartChoice> choice = choose_restart_checkpoint(file_or_dir);
  if (!choice) return resolve_checkpoint_path(file_or_dir);  // a recipe checkpoint_last.pt, or the error
  inv.restart_notes = choice->notes;
  inv.corrupt_checkpoints = choice->corrupt;
  return choice->path;
}

// The options of the recipe's eval.py. A training preset's `eval:` section is checked
// with txl_eval's keys; one of these that txl_eval does not know is left for txl_eval
// to judge, so the recipe's files load (docs/recipe-users.md).
const std::vector<std::string>& recipe_eval_options() {
  static const std::vector<std::string> names = {
      "work_dir", "debug", "data", "manual", "dataset", "split", "affinity", "type", "batch_size", "tgt_len",
      "ext_len", "mem_len", "seed", "clamp_len", "cuda", "model", "manual_config", "manual_vocab", "fp16",
      "log_all_ranks", "dllog_file", "same_length", "no_env", "log_interval", "target_perplexity",
      "target_throughput", "save_data", "repeat", "max_size", "percentiles", "save_torchscript",
      "load_torchscript", "local_rank"};
  return names;
}

void check_eval_section(const YAML::Node& section, const std::string& where) {
  if (!section || section.IsNull()) return;
  if (!section.IsMap()) failf("{}: expected a mapping of key: value", where);
  EvalConfig probe;
  const auto& recipe = recipe_eval_options();
  for (const auto& kv : section) {
    const std::string name = kv.first.Scalar();
    if (const auto* key = find_key(eval_config_keys(), name)) {
      key->assign(probe, kv.second, where);
    } else if (std::find(recipe.begin(), recipe.end(), name) == recipe.end()) {
      std::vector<std::string> known = key_names(eval_config_keys());
      known.insert(known.end(), recipe.begin(), recipe.end());
      fail(unknown_key_message(where, name, known));
    }
  }
}

// Local time as the recipe names work-dir subfolders (YYYYmmdd-HHMMSS).
std::string local_timestamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y%m%d-%H%M%S", &tm);
  return text;
}

template <typename Cfg>
std::string key_table(const std::vector<ConfigKey<Cfg>>& keys) {
  std::string out;
  const Cfg defaults{};
  for (const auto& k : keys)
    out += fmt::format("  --{:<20} {} (default: {})\n", k.name, k.help, yaml_inline(k.value(defaults)));
  return out;
}

// Rank 0's `problem` ("" for none) becomes the same txl::Error on every rank. Collective.
void agree_on_error(Communicator& comm, const std::string& problem) {
  if (comm.size() == 1) {
    if (!problem.empty()) fail(problem);
    return;
  }
  std::array<char, 2048> text{};
  if (comm.rank() == 0) problem.copy(text.data(), text.size() - 1);
  comm.broadcast(text.data(), text.size(), 0);
  if (text[0] != '\0') fail(text.data());
}

}  // namespace

std::string train_usage() {
  return "usage: txl_train [CONFIG.yaml | --config_file CONFIG.yaml] [--config PRESET] [--key value ...]\n"
         "  CONFIG.yaml holds presets {name: {train: {...}, eval: {...}}}; --config picks one (default: default).\n"
         "  --restart DIR_OR_FILE continues a run (without CONFIG.yaml: with the checkpoint's configuration).\n"
         "  The recipe's spellings --cuda (device: cuda) and --not_tied (tie_weight: false) are accepted too\n"
         "  (docs/recipe-users.md).\n"
         "  --plan prints the traffic and memory model of one training step instead of training (docs/gpu.md):\n"
         "    --plan_device h100|h200|a100, --plan_memory_gb N, --plan_ranks N, --plan_n_token N,\n"
         "    --plan_storage fp32|bf16 (bf16: the modelled mixed-precision storage design)\n"
         "keys (docs/training.md):\n" +
         key_table(train_config_keys());
}

TrainInvocation resolve_train_invocation(const CommandLine& cl, int world, const std::string& start_time) {
  TrainInvocation inv;
  TrainConfig& cfg = inv.cfg;
  const std::string cl_restart = override_value(cl, "restart");
  if (!cl.config_file.empty()) {
    const PresetFile file = PresetFile::load(cl.config_file);
    apply_train_section(cfg, file.section(cl.preset, "train"), file.where(cl.preset, "train"));
    const YAML::Node eval = file.section(cl.preset, "eval");
    check_eval_section(eval, file.where(cl.preset, "eval"));  // now, not at txl_eval time
    if (eval && !eval.IsNull()) inv.eval_config_yaml = yaml_to_text(eval);
  } else if (cl.preset_given) {
    failf("command line: --config {} names a preset, but no configuration file was given", cl.preset);
  } else if (!cl_restart.empty()) {
    // Continuing without the configuration file: the checkpoint's resolved configuration.
    std::string path;
    if (cl_restart == "auto") {
      const std::string wd = override_value(cl, "work_dir");
      if (wd.empty()) fail("command line: --restart auto without CONFIG.yaml needs --work_dir");
      const std::string wd_last = last_checkpoint_in(wd);
      if (!fs::exists(wd_last) && !fs::exists(previous_checkpoint_path(wd_last)))
        failf("restart: auto: {} holds no checkpoint_last.h5 and no CONFIG.yaml was given", wd);
      path = restart_checkpoint(wd, inv);
    } else {
      path = restart_checkpoint(cl_restart, inv);
    }
    inv.restart_path = path;
    const CheckpointInfo info = TrainingCheckpoint::open(path).info();
    apply_train_section(cfg, YAML::Load(info.config_yaml), path + " [config]");
    inv.eval_config_yaml = info.eval_config_yaml;
  }
  apply_train_overrides(cfg, cl);
  cfg.finalize(world);

  // The recipe's --data DIR: the download, prepared once into a corpus file inside it.
  if (fs::is_directory(cfg.data)) {
    if (cfg.dataset.empty()) {
      cfg.dataset = "wt103";  // the recipe's default dataset
      cfg.notes.push_back(fmt::format("data: {} is a directory and no dataset was given: dataset wt103", cfg.data));
    }
    inv.corpus_directory = cfg.data;
    cfg.data = corpus_file_in_directory(cfg.data, cfg.dataset);
  }
  if (cfg.append_dataset) {
    const std::string dataset = cfg.dataset.empty() ? std::string("wt103") : cfg.dataset;
    cfg.work_dir = cfg.work_dir + "-" + dataset;
    cfg.append_dataset = false;  // applied (a restart from the stored configuration must not append again)
  }
  if (cfg.append_time) {
    cfg.work_dir = (fs::path(cfg.work_dir) / (start_time.empty() ? local_timestamp() : start_time)).string();
    cfg.append_time = false;
  }

  const std::string last = last_checkpoint_in(cfg.work_dir);
  const bool has_checkpoint = fs::exists(last) || fs::exists(previous_checkpoint_path(last));
  if (!inv.restart_path.empty() && cfg.restart == cl_restart &&
      (cl_restart != "auto" || cfg.work_dir == override_value(cl, "work_dir"))) {
    // Chosen (and verified) above, for the configuration.
  } else if (cfg.restart == "auto") {
    if (has_checkpoint) inv.restart_path = restart_checkpoint(cfg.work_dir, inv);
  } else if (!cfg.restart.empty()) {
    inv.restart_path = restart_checkpoint(cfg.restart, inv);
  } else if (has_checkpoint && !cfg.debug) {
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

CommandLine parse_train_command_line(const std::vector<std::string>& args) {
  // A bare --multi_gpu is how the recipe's enwik8/text8/lm1b scripts spell data parallelism.
  return parse_command_line(args, train_option_types(), {{"multi_gpu", "ddp"}});
}

int run_train_program(const std::vector<std::string>& all_args, Communicator& comm) {
  std::vector<std::string> args = all_args;
  PlanOptions plan;
  plan.ranks = comm.size();
  const bool planning = take_plan_options(args, plan);
  const CommandLine cl = parse_train_command_line(args);
  if (planning && !cl.help) return comm.rank() == 0 ? run_plan_program(plan, cl, std::cout) : kExitOk;
  if (cl.help) {
    if (comm.rank() == 0) std::cout << train_usage();
    return kExitOk;
  }
  char start_time[32] = {};  // rank 0's clock, so every rank appends the same folder name
  if (comm.rank() == 0) local_timestamp().copy(start_time, sizeof(start_time) - 1);
  comm.broadcast(start_time, sizeof(start_time), 0);
  TrainInvocation inv = resolve_train_invocation(cl, comm.size(), start_time);
  // Bound before any worker thread exists: threads started later inherit the binding.
  if (inv.cfg.affinity != "disabled") {
    std::vector<int> cores;
    if (inv.cfg.device == "cuda") {  // the cores and NUMA node of the rank's own GPU
      const GpuAffinity a = gpu_affinity_for_rank(gpu_bus_ids_of_local_ranks(comm.local_size()), inv.cfg.affinity,
                                                  comm.local_rank(), usable_cpus());
      cores = a.cores;
      inv.cfg.notes.push_back(bind_to_cores(a.cores, inv.cfg.affinity, comm.rank()) + "; near its GPU " +
                              a.gpu.pci_address + " (CPUs " + cpu_list_string(a.gpu.cpus) + "): " +
                              prefer_numa_node(a.gpu.numa_node));
    } else {
      cores = cores_for_rank(read_cpu_topology(), inv.cfg.affinity, comm.local_rank(), comm.local_size());
      inv.cfg.notes.push_back(bind_to_cores(cores, inv.cfg.affinity, comm.rank()));
    }
    // train.py prints the binding to the console as a Python set: "0: thread affinity: {0, 2}".
    std::cout << fmt::format("{}: thread affinity: {{{}}}", comm.local_rank(), fmt::join(cores, ", ")) << std::endl;
  }
  if (!inv.corpus_directory.empty())
    inv.cfg.notes.push_back(prepare_corpus_directory(inv.corpus_directory, inv.cfg.dataset, comm));
  require_same_on_all_ranks(comm, "configuration", yaml_to_text(config_to_yaml(inv.cfg, train_config_keys())));
  // Before anything is written: rank 0 takes the work dir's lock; every rank stops when it
  // cannot.
  std::unique_ptr<WorkDirLock> lock;
  std::vector<std::string> notes;
  std::string problem;
  if (comm.rank() == 0 && !inv.cfg.debug) {  // debug mode writes nothing
    try {
      std::string note;
      lock = WorkDirLock::acquire(inv.cfg.work_dir, lock_options_from_environment(), &note);
      if (!note.empty()) notes.push_back(note);
      notes.insert(notes.end(), inv.restart_notes.begin(), inv.restart_notes.end());
      for (const std::string& corrupt : inv.corrupt_checkpoints) {
        set_aside_corrupt_checkpoint(corrupt);
        notes.push_back(fmt::format("restart: renamed the corrupt {} to {}.corrupt", corrupt, corrupt));
      }
    } catch (const Error& e) {
      problem = e.what();
    }
  }
  agree_on_error(comm, problem);
  if (comm.rank() == 0)
    for (const std::string& n : notes) std::cerr << n << std::endl;
  Trainer trainer(inv.cfg, inv.eval_config_yaml, inv.restart_path, comm);
  for (const std::string& n : notes) trainer.add_start_note(n);
  return trainer.run().exit_code;
}

}  // namespace txl
