// The JSON stream of NVIDIA's DLLogger, as the recipe writes it (`train_log.json`,
// `eval_log.json`): one line per record, "DLLL " followed by a JSON object with
// `timestamp` and `elapsedtime` (strings: seconds since the epoch / since the logger
// started, as Python's str(float) prints them), `datetime` (UTC, as Python's
// str(datetime) prints it), `type` ("LOG" or "METADATA") and, for LOG records, `step`
// ([train_step], an integer, "PARAMETER" for the argument dump, [] for the summary) and
// `data`; METADATA records have `metric` and `metadata` instead. Tools that read
// DLLogger files (strip "DLLL ", parse each line) read txl's unchanged.
#pragma once
#include <chrono>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>  // ordered_json

#include "txl/config/config_schema.h"
#include "txl/train/train_log.h"

namespace txl {

class DlLogger {
 public:
  DlLogger() = default;  // writes nothing (ranks other than 0)
  explicit DlLogger(const std::string& path);
  bool active() const { return file_.is_open(); }
  // A LOG record. `step`: a JSON array ([train_step] or []), an integer or "PARAMETER".
  void log(const nlohmann::ordered_json& step, const nlohmann::ordered_json& data);
  // A METADATA record: {"unit": unit} for `metric` (a null unit when `unit` is empty).
  void metadata(const std::string& metric, const std::string& unit);

 private:
  nlohmann::ordered_json record_head(const char* type) const;
  AppendFile file_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// The data of the "PARAMETER" record: every configuration key with its typed value.
template <typename Cfg>
nlohmann::ordered_json parameter_data(const std::vector<ConfigKey<Cfg>>& keys, const Cfg& cfg) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& k : keys) k.visit(cfg, [&](const auto& v) { out[k.name] = v; });
  return out;
}

// Python's str(float): the shortest text that reads back as `v`, with ".0" on integral
// values ("27747.0", "6e-06", "1796186055.36778").
std::string python_float_text(double v);
// Python's repr(float), as json.dumps writes numbers: "614.0031141255516", "27747.0",
// "6e-06", "1e+16", "NaN", "Infinity".
std::string python_float_repr(double v);
// json.dumps(value) with its defaults, as DLLogger writes each record: ", " and ": "
// separators, keys in the object's order, non-ASCII escaped as \uXXXX, floats by repr.
std::string python_json_text(const nlohmann::ordered_json& value);
// Python's str(datetime) of a UTC time: "2026-12-02 04:34:15.367780+00:00" (without the
// fraction when the microseconds are 0).
std::string python_utc_datetime(std::chrono::system_clock::time_point t);

// Removes the LOG records of a DLLogger file whose step is [s] with s > `step` (and a
// torn last line), so a resumed run continues the file without duplicates.
void truncate_dllogger_after(const std::string& path, int64_t step);

}  // namespace txl
