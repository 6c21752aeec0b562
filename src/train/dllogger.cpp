#include "txl/train/dllogger.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "txl/core/error.h"
#include "txl/io/h5file.h"

namespace txl {

using json = nlohmann::ordered_json;  // keys in the order the recipe writes them

std::string python_float_text(double v) { return python_float_repr(v); }  // str(float) is repr(float)

std::string python_float_repr(double v) {
  if (std::isnan(v)) return "NaN";  // json.dumps(allow_nan=True), DLLogger's default
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  // repr: the shortest round-trip digits, positional for exponents -5 < e < 16, else
  // d.ddde+XX with at least two exponent digits.
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  (void)ec;
  const std::string sci(buf, end);
  const size_t e_at = sci.find('e');
  const int exponent = std::stoi(sci.substr(e_at + 1));
  std::string digits = sci.substr(0, e_at);
  const bool negative = digits[0] == '-';
  if (negative) digits.erase(0, 1);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());  // d.ddd -> dddd
  std::string out;
  if (exponent < -4 || exponent >= 16) {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  } else if (exponent < 0) {
    out = "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
  } else {
    const size_t int_digits = static_cast<size_t>(exponent) + 1;
    if (digits.size() <= int_digits) out = digits + std::string(int_digits - digits.size(), '0') + ".0";
    else out = digits.substr(0, int_digits) + "." + digits.substr(int_digits);
  }
  return negative ? "-" + out : out;
}

std::string python_json_text(const json& j) {
  switch (j.type()) {
    case json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        out += json(it.key()).dump(-1, ' ', /*ensure_ascii=*/true) + ": " + python_json_text(it.value());
      }
      return out + "}";
    }
    case json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < j.size(); ++i) out += (i ? ", " : "") + python_json_text(j[i]);
      return out + "]";
    }
    case json::value_t::number_float: return python_float_repr(j.get<double>());
    default: return j.dump(-1, ' ', /*ensure_ascii=*/true);  // strings (\uXXXX like Python), integers, bools, null
  }
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
  file_.write_line("DLLL " + python_json_text(r));
}

void DlLogger::metadata(const std::string& metric, const std::string& unit) {
  if (!active()) return;
  json r = record_head("METADATA");
  r["metric"] = metric;
  r["metadata"] = {{"unit", unit.empty() ? json(nullptr) : json(unit)}};
  file_.write_line("DLLL " + python_json_text(r));
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
