// Shared fixtures of the trainer tests: the bundled WikiText-2 sample prepared once per
// test process, temporary work dirs, small model configurations, checkpoint comparison,
// and running the txl_train / txl_eval binaries.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "txl/config/train_config.h"

namespace txl::test {

// The bundled corpus (data_prep/samples/wikitext-2) as a wt2 corpus file.
const std::string& wt2_corpus();
// The same bundled text as a generic word corpus whose vocabulary is counted over the
// training split only (<eos> at line ends; valid/test words unseen in train are <unk>).
const std::string& wt2_train_vocabulary_corpus();
// A small generic corpus with another vocabulary (another checksum than wt2_corpus()).
const std::string& other_corpus();
// A corpus of random ids in [0, vocab) (train 400 tokens, valid 130, no test split),
// written as DIR/corpus.h5 (DIR is created); returns its path.
std::string random_corpus(const std::string& dir, int vocab);
// A fresh empty directory under this process's temporary root (removed at exit).
std::string fresh_dir(const std::string& name);
// A small model that steps in milliseconds: 2 layers, d_model 32, adaptive softmax,
// batch 8 in 2 chunks, dropout and dropatt on, LAMB, roll.
TrainConfig tiny_train_config(const std::string& work_dir);
// The same settings as a YAML preset file (`default:` with a train section).
std::string write_preset_file(const TrainConfig& cfg, const std::string& path);

// Every dataset under /model, /optim and /memory of two checkpoints has equal bytes.
// Returns "" or a description of the first difference.
std::string compare_checkpoint_tensors(const std::string& a, const std::string& b);

// Runs a program of the build (bin/<name>) with `args`; returns its exit status (or
// 128 + signal) and, in `output`, its stdout and stderr.
int run_binary(const std::string& name, const std::vector<std::string>& args, std::string* output = nullptr);
// Starts it in the background (stdout/stderr to `log_path`); returns the pid.
pid_t start_binary(const std::string& name, const std::vector<std::string>& args, const std::string& log_path);
// Waits for a started program: exit status, or 128 + signal.
int wait_binary(pid_t pid);
std::string binary_path(const std::string& name);

// Lines of a text file.
std::vector<std::string> read_lines(const std::string& path);
// Files in a directory (names), sorted.
std::vector<std::string> list_dir(const std::string& dir);

}  // namespace txl::test
