#include "txl/train/dllogger.h"

#include <ctime>
#include <filesystem>
#include <fstream>

#include "txl/core/error.h"
#include "txl/io/h5file.h"

namespace txl {

using json = nlohmann::ordered_json;  // keys in the order the recipe writes them

std::string python_float_text(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eni") == std::string::npos) s += ".0";  // not 1e+16, nan, inf
  return s;
}

std::string python_utc_datetime(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(us / 1000000);
  const int64_t frac = us % 1000000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::string s = fmt::format("{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                              tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (frac != 0) s += fmt::format(".{:06d}", frac);
  return s + "+00:00";
}

DlLogger::DlLogger(const std::string& path) : file_(path) {}

json DlLogger::record_head(const char* type) const {
  const auto now = std::chrono::system_clock::now();
  const double since_epoch = std::chrono::duration<double>(now.time_since_epoch()).count();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  json r = json::object();
  r["timestamp"] = python_float_text(since_epoch);
  r["datetime"] = python_utc_datetime(now);
  r["elapsedtime"] = python_float_text(elapsed);
  r["type"] = type;
  return r;
}

void DlLogger::log(const json& step, const json& data) {
  if (!active()) return;
  json r = record_head("LOG");
  r["step"] = step;
  r["data"] = data;
  file_.write_line("DLLL " + r.dump());
}

void DlLogger::metadata(const std::string& metric, const std::string& unit) {
  if (!active()) return;
  json r = record_head("METADATA");
  r["metric"] = metric;
  r["metadata"] = {{"unit", unit.empty() ? json(nullptr) : json(unit)}};
  file_.write_line("DLLL " + r.dump());
}

void truncate_dllogger_after(const std::string& path, int64_t step) {
  if (!std::filesystem::exists(path)) return;
  std::ifstream in(path);
  std::string kept, line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // a last line without "\n" is torn
    if (line.rfind("DLLL ", 0) != 0) continue;
    const json r = json::parse(line.substr(5), nullptr, /*allow_exceptions=*/false);
    if (r.is_discarded()) continue;
    const json* s = r.contains("step") ? &r["step"] : nullptr;
    if (s && s->is_array() && s->size() == 1 && (*s)[0].is_number_integer() && (*s)[0].get<int64_t>() > step) continue;
    kept += line + "\n";
  }
  in.close();
  const std::string tmp = h5::temporary_path_for(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << kept;
    if (!out) {
      h5::remove_quietly(tmp);
      failf("{}: cannot write", tmp);
    }
  }
  h5::commit_temporary(tmp, path);
}

}  // namespace txl
