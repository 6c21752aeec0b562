#include "txl/train/training_curves.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "txl/core/error.h"

namespace txl {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

double number(const json& r, const char* key) {
  const auto it = r.find(key);
  return it != r.end() && it->is_number() ? it->get<double>() : 0.0;
}

// Later records of a step replace earlier ones (a resumed run repeats steps).
std::vector<CurvePoint> by_step(const std::map<int64_t, CurvePoint>& points, double tokens_per_step) {
  std::vector<CurvePoint> out;
  for (auto [step, p] : points) {
    p.tokens = static_cast<double>(step) * tokens_per_step;
    out.push_back(p);
  }
  return out;
}

TrainingCurves read_metrics(const std::string& path) {
  TrainingCurves c;
  std::map<int64_t, CurvePoint> train, valid;
  double tokens_per_step = 0.0;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const json r = json::parse(line, nullptr, false);
    if (r.is_discarded() || !r.is_object()) continue;  // a torn last line
    const std::string type = r.value("type", "");
    if (type == "config" && r.contains("config_yaml")) {
      const YAML::Node cfg = YAML::Load(r["config_yaml"].get<std::string>());
      tokens_per_step = cfg["batch_size"].as<double>(0.0) * cfg["tgt_len"].as<double>(0.0);
      continue;
    }
    if (type != "train" && type != "eval") continue;
    CurvePoint p;
    p.step = r.value("step", int64_t{0});
    p.loss = number(r, "loss");
    c.char_level = r.contains("bpc");
    p.metric = c.char_level ? number(r, "bpc") : number(r, "ppl");
    p.tok_per_s = number(r, "tok_per_s");
    p.lr = number(r, "lr");
    (type == "train" ? train : valid)[p.step] = p;
  }
  c.train = by_step(train, tokens_per_step);
  c.valid = by_step(valid, tokens_per_step);
  return c;
}

TrainingCurves read_dllogger(const std::string& path) {
  TrainingCurves c;
  std::map<int64_t, CurvePoint> train, valid;
  double tokens_per_step = 0.0;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("DLLL ", 0) != 0) continue;
    const json r = json::parse(line.substr(5), nullptr, false);
    if (r.is_discarded() || r.value("type", "") != "LOG" || !r.contains("data")) continue;
    const json& d = r["data"];
    if (r["step"] == "PARAMETER") {
      tokens_per_step = number(d, "batch_size") * number(d, "tgt_len");
      continue;
    }
    if (!r["step"].is_array() || r["step"].size() != 1 || !r["step"][0].is_number_integer()) continue;
    CurvePoint p;
    p.step = r["step"][0].get<int64_t>();
    if (d.contains("train_loss")) {
      p.loss = number(d, "train_loss");
      c.char_level = d.contains("train_bits_per_character");
      p.metric = c.char_level ? number(d, "train_bits_per_character") : number(d, "train_perplexity");
      p.tok_per_s = number(d, "train_throughput");
      p.lr = number(d, "lr");
      train[p.step] = p;
    } else if (d.contains("valid_loss")) {
      p.loss = number(d, "valid_loss");
      p.metric = d.contains("valid_bits_per_character") ? number(d, "valid_bits_per_character")
                                                        : number(d, "valid_perplexity");
      valid[p.step] = p;
    }
  }
  c.train = by_step(train, tokens_per_step);
  c.valid = by_step(valid, tokens_per_step);
  return c;
}

// gnuplot string literal (single quotes; a quote is doubled).
std::string gnuplot_string(const std::string& s) {
  std::string out = "'";
  for (const char ch : s) {
    if (ch == '\'') out += "''";
    else out.push_back(ch);
  }
  return out + "'";
}

void write_series(const std::string& path, const std::vector<CurvePoint>& points) {
  std::ofstream f(path);
  if (!f) failf("txl_plot: cannot write {}", path);
  f << "# step tokens loss metric tok_per_s lr\n";
  for (const CurvePoint& p : points)
    f << fmt::format("{} {:.17g} {:.17g} {:.17g} {:.17g} {:.17g}\n", p.step, p.tokens, p.loss, p.metric, p.tok_per_s,
                     p.lr);
}

}  // namespace

TrainingCurves read_training_curves(const std::string& path) {
  std::string file = path;
  if (fs::is_directory(path)) {
    file = (fs::path(path) / "train_log.jsonl").string();
    if (!fs::exists(file)) file = (fs::path(path) / "train_log.json").string();
  }
  if (!fs::is_regular_file(file)) failf("txl_plot: {}: no train_log.jsonl or train_log.json", path);
  std::string first;
  {
    std::ifstream in(file);
    std::getline(in, first);
  }
  TrainingCurves c = first.rfind("DLLL ", 0) == 0 ? read_dllogger(file) : read_metrics(file);
  if (c.train.empty() && c.valid.empty()) failf("txl_plot: {}: no training or validation records", file);
  const fs::path p = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
  c.name = p.filename().string().empty() ? path : p.filename().string();
  return c;
}

std::string write_curves_script(const std::vector<TrainingCurves>& runs, const std::string& png_path,
                                const std::string& script_path) {
  TXL_CHECK(!runs.empty(), "txl_plot: no runs");
  const bool char_level = runs.front().char_level;
  const std::string metric = char_level ? "bpc" : "perplexity";
  const std::string base = fs::path(script_path).replace_extension("").string();
  std::vector<std::string> train_files, valid_files;
  for (size_t i = 0; i < runs.size(); ++i) {
    train_files.push_back(fmt::format("{}.run{}.train.dat", base, i));
    valid_files.push_back(fmt::format("{}.run{}.valid.dat", base, i));
    write_series(train_files.back(), runs[i].train);
    write_series(valid_files.back(), runs[i].valid);
  }
  // One panel: for each run its train series (lines) and, when asked, valid (points).
  auto panel = [&](const std::string& x, const std::string& y, bool with_valid) {
    std::string cmd = "plot ";
    for (size_t i = 0; i < runs.size(); ++i) {
      if (i) cmd += ", ";
      const int color = static_cast<int>(i) + 1;
      cmd += fmt::format("{} using {}:{} with lines lw 2 lc {} title {}", gnuplot_string(train_files[i]), x, y, color,
                         gnuplot_string(runs[i].name + " train"));
      if (with_valid && !runs[i].valid.empty())
        cmd += fmt::format(", {} using {}:{} with linespoints pt 7 ps 1.2 lw 2 dt 2 lc {} title {}",
                           gnuplot_string(valid_files[i]), x, y, color, gnuplot_string(runs[i].name + " valid"));
    }
    return cmd + "\n";
  };
  std::string s;
  s += "set terminal pngcairo noenhanced size 1600,1000 font 'sans,11'\n";
  s += "set output " + gnuplot_string(png_path) + "\n";
  s += "set datafile commentschars '#'\n";
  s += "set key below\nset grid\n";
  s += "set multiplot layout 2,2 title 'txl training curves'\n";
  s += "set title 'loss'\nset xlabel 'step'\nset ylabel 'loss (nats per token)'\n" + panel("1", "3", true);
  s += fmt::format("set title '{0}'\nset xlabel 'tokens'\nset ylabel '{0}'\nset format x '%.1s%c'\n", metric);
  if (!char_level) s += "set logscale y\n";
  s += panel("2", "4", true);
  s += "unset logscale y\nset format x '%g'\n";
  s += "set title 'throughput'\nset xlabel 'step'\nset ylabel 'tok/s'\n" + panel("1", "5", false);
  s += "set title 'learning rate'\nset xlabel 'step'\nset ylabel 'lr'\nset format y '%.1e'\n" + panel("1", "6", false);
  s += "unset multiplot\n";
  std::ofstream f(script_path);
  if (!f) failf("txl_plot: cannot write {}", script_path);
  f << s;
  return script_path;
}

}  // namespace txl
