#include "train_test_util.h"

#include <fcntl.h>
#include <spawn.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>

#include "txl/data/prep/corpus_writer.h"
#include "txl/data/prep/prep.h"
#include "txl/io/h5file.h"

extern char** environ;

namespace txl::test {
namespace fs = std::filesystem;

namespace {

const fs::path& temp_root() {
  static const fs::path root = [] {
    fs::path p = fs::temp_directory_path() / ("txl_test_train_" + std::to_string(::getpid()));
    fs::create_directories(p);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(fs::temp_directory_path() / ("txl_test_train_" + std::to_string(::getpid())), ec);
    });
    return p;
  }();
  return root;
}

void collect_datasets(const h5::File& f, const std::string& group, std::vector<std::string>& out) {
  for (const std::string& child : f.list(group)) {
    const std::string path = (group == "/" ? "" : group) + "/" + child;
    try {
      f.list(path);  // a group
      collect_datasets(f, path, out);
    } catch (const Error&) {
      out.push_back(path);
    }
  }
}

}  // namespace

const std::string& wt2_corpus() {
  static const std::string path = [] {
    data::prep::PrepOptions o;
    o.dataset = "wt2";
    o.data = std::string(TXL_SOURCE_DIR) + "/data_prep/samples/wikitext-2";
    o.out = (temp_root() / "wt2.h5").string();
    o.progress.enabled = false;
    data::prep::prepare_corpus(o);
    return o.out;
  }();
  return path;
}

const std::string& wt2_train_vocabulary_corpus() {
  static const std::string path = [] {
    data::prep::PrepOptions o;
    o.dataset = "generic";
    o.eos = true;
    o.vocab_splits = "train";
    o.data = std::string(TXL_SOURCE_DIR) + "/data_prep/samples/wikitext-2";
    o.out = (temp_root() / "wt2_train_vocab.h5").string();
    o.progress.enabled = false;
    data::prep::prepare_corpus(o);
    return o.out;
  }();
  return path;
}

const std::string& other_corpus() {
  static const std::string path = [] {
    const fs::path dir = temp_root() / "other_text";
    fs::create_directories(dir);
    for (const char* split : {"train", "valid", "test"}) {
      std::ofstream out(dir / (std::string(split) + ".txt"));
      for (int i = 0; i < 200; ++i) out << "alpha beta gamma delta " << (i % 7) << " epsilon\n";
    }
    data::prep::PrepOptions o;
    o.dataset = "generic";
    o.eos = true;
    o.data = dir.string();
    o.out = (temp_root() / "other.h5").string();
    o.progress.enabled = false;
    data::prep::prepare_corpus(o);
    return o.out;
  }();
  return path;
}

std::string random_corpus(const std::string& dir, int vocab) {
  fs::create_directories(dir);
  const std::string path = (fs::path(dir) / "corpus.h5").string();
  std::mt19937 gen(42);
  std::uniform_int_distribution<int32_t> id(0, vocab - 1);
  std::vector<data::prep::SplitContent> splits;
  for (auto [name, n] : {std::pair<std::string, int>{"train", 400}, {"valid", 130}}) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = id(gen);
    splits.push_back({name, t, {}, {}});
  }
  std::vector<std::string> symbols;
  for (int i = 0; i < vocab; ++i) symbols.push_back(fmt::format("w{}", i));
  data::prep::CorpusDescription d;
  d.dataset = "generic";
  data::prep::write_corpus_file(path, d, symbols, std::vector<int64_t>(static_cast<size_t>(vocab), 1), splits);
  return path;
}

std::string fresh_dir(const std::string& name) {
  const fs::path p = temp_root() / name;
  fs::remove_all(p);
  return p.string();
}

TrainConfig tiny_train_config(const std::string& work_dir) {
  TrainConfig c;
  c.data = wt2_corpus();
  c.work_dir = work_dir;
  c.model.n_layer = 2;
  c.model.d_model = 32;
  c.model.n_head = 2;
  c.model.d_head = 16;
  c.model.d_inner = 64;
  c.adaptive = true;
  c.model.cutoffs = {1000, 4000};
  c.model.div_val = 2;
  c.model.dropout = 0.1;
  c.model.dropatt = 0.1;
  c.model.tgt_len = 16;
  c.model.mem_len = 16;
  c.eval_tgt_len = 16;
  c.batch_size = 8;
  c.batch_chunk = 2;
  c.eval_batch_size = 64;  // few, wide validation batches: the final test pass stays short
  c.optim = "lamb";
  c.lr = 0.01;
  c.warmup_step = 3;
  c.max_step = 12;
  c.max_step_scheduler = 400;
  c.log_interval = 2;
  c.eval_interval = 4;
  c.eval_max_steps = 3;
  c.roll = true;
  c.seed = 7;
  return c;
}

std::string write_preset_file(const TrainConfig& cfg, const std::string& path) {
  YAML::Node root;
  root["default"]["train"] = config_to_yaml(cfg, train_config_keys());
  root["default"]["eval"]["tgt_len"] = 16;
  root["default"]["eval"]["mem_len"] = 16;
  root["default"]["eval"]["clamp_len"] = -1;
  root["default"]["eval"]["same_length"] = false;
  root["default"]["eval"]["batch_size"] = 64;
  std::ofstream(path) << yaml_to_text(root);
  return path;
}

std::string compare_checkpoint_tensors(const std::string& a, const std::string& b) {
  const h5::File fa = h5::File::open(a), fb = h5::File::open(b);
  std::vector<std::string> da, db;
  for (const char* g : {"/model", "/optim", "/memory"}) {
    if (fa.exists(g)) collect_datasets(fa, g, da);
    if (fb.exists(g)) collect_datasets(fb, g, db);
  }
  if (da != db) return "the checkpoints hold different tensors";
  if (da.empty()) return "no tensors";
  for (const std::string& d : da) {
    Shape sa, sb;
    const std::vector<float> va = fa.read<float>(d, &sa), vb = fb.read<float>(d, &sb);
    if (sa != sb) return d + ": shapes differ";
    for (size_t i = 0; i < va.size(); ++i)
      if (std::memcmp(&va[i], &vb[i], sizeof(float)) != 0)
        return fmt::format("{}: element {} differs ({} vs {})", d, i, va[i], vb[i]);
  }
  return "";
}

std::string binary_path(const std::string& name) { return std::string(TXL_BINARY_DIR) + "/bin/" + name; }

pid_t start_binary(const std::string& name, const std::vector<std::string>& args, const std::string& log_path) {
  const std::string exe = binary_path(name);
  if (!fs::exists(exe)) throw Error(exe + " is not built (build the whole project before the tests)");
  std::vector<std::string> all{exe};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : all) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw Error("cannot start " + exe);
  return pid;
}

int wait_binary(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

int run_binary(const std::string& name, const std::vector<std::string>& args, std::string* output) {
  const std::string log = (temp_root() / ("run_" + name + ".log")).string();
  const int rc = wait_binary(start_binary(name, args, log));
  if (output) {
    std::ifstream in(log);
    *output = std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  return rc;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace txl::test
