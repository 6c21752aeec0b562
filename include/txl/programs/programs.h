// The txl_train and txl_eval programs after the job's communicator exists: command-line
// and configuration resolution, then training or evaluation (tests call these directly),
// and the main() they share (run_program_main: the world, threads, errors).
#pragma once
#include <string>
#include <vector>

#include "txl/dist/communicator.h"
#include "txl/config/command_line.h"
#include "txl/config/train_config.h"

namespace txl {

// A txl_train command line resolved for `world` ranks: the configuration (defaults <
// CONFIG.yaml preset `train:` section, or on --restart without a file the checkpoint's
// stored configuration < --key value), the preset's `eval:` section (validated) and the
// checkpoint to continue from ("" for a fresh run). Reads files, writes none. Refuses a
// fresh run into a work_dir that already holds checkpoint_last.h5.
// A work dir restart continues from its newest intact checkpoint; `restart_notes` says
// what was passed over, `corrupt_checkpoints` which files failed verification (the
// program renames them to *.corrupt once it holds the work dir's lock).
// `data: DIR` (a raw corpus directory) resolves to the corpus file inside it, and
// `corpus_directory` says that run_train_program must prepare it first. `start_time`
// names the folder append_time adds (empty: now).
struct TrainInvocation {
  TrainConfig cfg;
  std::string eval_config_yaml;
  std::string restart_path;
  std::vector<std::string> restart_notes;
  std::vector<std::string> corrupt_checkpoints;
  std::string corpus_directory;
};
TrainInvocation resolve_train_invocation(const CommandLine& cl, int world, const std::string& start_time = "");
// txl_train's options: the keys, the recipe's aliases, a bare --multi_gpu (ddp).
CommandLine parse_train_command_line(const std::vector<std::string>& args);

std::string train_usage();
std::string eval_usage();

// Exit code of the program (0 ok, 1 benchmark target missed, as the recipe). Bad input throws txl::Error.
int run_train_program(const std::vector<std::string>& args, Communicator& comm);
int run_eval_program(const std::vector<std::string>& args, Communicator& comm);

// main() of a program that runs on every rank of the job (txl_train, txl_eval): the world,
// OpenMP threads per rank unless OMP_NUM_THREADS is set, then `body` with the arguments
// after argv[0]. An error ends the job with one line (exit_after_error).
using ProgramBody = int (*)(const std::vector<std::string>& args, Communicator& comm);
int run_program_main(int argc, char** argv, ProgramBody body);

}  // namespace txl
