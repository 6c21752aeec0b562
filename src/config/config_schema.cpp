#include "txl/config/config_schema.h"

#include <charconv>
#include <cmath>

namespace txl {

const char* key_type_name(KeyType type) {
  switch (type) {
    case KeyType::kInt: return "an integer";
    case KeyType::kFloat: return "a number";
    case KeyType::kBool: return "true or false";
    case KeyType::kString: return "a string";
    case KeyType::kIntList: return "a list of integers";
    case KeyType::kFloatList: return "a list of numbers";
    case KeyType::kBoolList: return "a list of true/false";
    case KeyType::kStringList: return "a list of strings";
  }
  return "?";
}

bool is_list_type(KeyType type) {
  return type == KeyType::kIntList || type == KeyType::kFloatList || type == KeyType::kBoolList ||
         type == KeyType::kStringList;
}

namespace {

[[noreturn]] void type_error(const YAML::Node& v, const std::string& key, const std::string& where, KeyType type) {
  std::string got = v.IsScalar() ? "'" + v.Scalar() + "'" : v.IsSequence() ? "a list" : "a mapping";
  failf("{}: key '{}' expects {}, got {}", where, key, key_type_name(type), got);
}

bool parse_int(const std::string& s, int64_t* out) {
  const char* begin = s.data();
  const char* end = s.data() + s.size();
  if (begin != end && *begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, *out);
  return ec == std::errc() && ptr == end && begin != end;
}

bool parse_float(const std::string& s, double* out) {
  if (s == ".inf" || s == "inf") return *out = INFINITY, true;
  if (s == "-.inf" || s == "-inf") return *out = -INFINITY, true;
  const char* begin = s.data();
  const char* end = s.data() + s.size();
  if (begin != end && *begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, *out);
  return ec == std::errc() && ptr == end && begin != end && std::isfinite(*out);
}

bool parse_bool(const std::string& s, bool* out) {
  static const char* const kTrue[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On", "1"};
  static const char* const kFalse[] = {"false", "False", "FALSE", "no", "No", "off", "Off", "0"};
  for (const char* t : kTrue)
    if (s == t) return *out = true, true;
  for (const char* f : kFalse)
    if (s == f) return *out = false, true;
  return false;
}

template <typename T, typename Parse>
std::vector<T> parse_list(const YAML::Node& v, const std::string& key, const std::string& where, KeyType type,
                          Parse parse) {
  std::vector<T> out;
  if (v.IsScalar()) {  // one value is a list of one
    if (v.Scalar().empty()) return out;
    T x;
    if (!parse(v.Scalar(), &x)) type_error(v, key, where, type);
    out.push_back(x);
    return out;
  }
  if (!v.IsSequence()) type_error(v, key, where, type);
  for (const auto& item : v) {
    T x;
    if (!item.IsScalar() || !parse(item.Scalar(), &x)) type_error(item, key, where, type);
    out.push_back(x);
  }
  return out;
}

}  // namespace

int64_t yaml_to_int(const YAML::Node& v, const std::string& key, const std::string& where) {
  int64_t x = 0;
  if (!v.IsScalar() || !parse_int(v.Scalar(), &x)) type_error(v, key, where, KeyType::kInt);
  return x;
}

double yaml_to_float(const YAML::Node& v, const std::string& key, const std::string& where) {
  double x = 0;
  if (!v.IsScalar() || !parse_float(v.Scalar(), &x)) type_error(v, key, where, KeyType::kFloat);
  return x;
}

bool yaml_to_bool(const YAML::Node& v, const std::string& key, const std::string& where) {
  bool x = false;
  if (!v.IsScalar() || !parse_bool(v.Scalar(), &x)) type_error(v, key, where, KeyType::kBool);
  return x;
}

std::string yaml_to_string(const YAML::Node& v, const std::string& key, const std::string& where) {
  if (!v.IsScalar()) type_error(v, key, where, KeyType::kString);
  return v.Scalar();
}

std::vector<int64_t> yaml_to_int_list(const YAML::Node& v, const std::string& key, const std::string& where) {
  return parse_list<int64_t>(v, key, where, KeyType::kIntList, parse_int);
}

std::vector<double> yaml_to_float_list(const YAML::Node& v, const std::string& key, const std::string& where) {
  return parse_list<double>(v, key, where, KeyType::kFloatList, parse_float);
}

std::vector<bool> yaml_to_bool_list(const YAML::Node& v, const std::string& key, const std::string& where) {
  std::vector<bool> out;
  for (int b : parse_list<int>(v, key, where, KeyType::kBoolList, [](const std::string& s, int* x) {
         bool b = false;
         if (!parse_bool(s, &b)) return false;
         *x = b ? 1 : 0;
         return true;
       }))
    out.push_back(b != 0);
  return out;
}

std::vector<std::string> yaml_to_string_list(const YAML::Node& v, const std::string& key, const std::string& where) {
  return parse_list<std::string>(v, key, where, KeyType::kStringList, [](const std::string& s, std::string* x) {
    *x = s;
    return true;
  });
}

std::string shortest_text(double x) {
  if (std::isinf(x)) return x > 0 ? ".inf" : "-.inf";
  return fmt::format("{}", x);
}

YAML::Node command_line_value(KeyType type, const std::string& text) {
  if (!is_list_type(type)) return YAML::Node(text);
  if (!text.empty() && text.front() == '[') {
    try {
      return YAML::Load(text);
    } catch (const YAML::Exception& e) {
      failf("command line: cannot parse list '{}': {}", text, e.msg);
    }
  }
  if (type == KeyType::kStringList) {
    YAML::Node seq(YAML::NodeType::Sequence);
    seq.push_back(text);
    return seq;
  }
  YAML::Node seq(YAML::NodeType::Sequence);
  size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(start, comma - start);
    // trim spaces
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    seq.push_back(item);
    start = comma + 1;
  }
  return seq;
}

std::string unknown_key_message(const std::string& where, const std::string& name,
                                const std::vector<std::string>& known) {
  const std::string closest = closest_name(name, known);
  if (closest.empty()) return fmt::format("{}: unknown key '{}'", where, name);
  return fmt::format("{}: unknown key '{}' (closest known key: '{}')", where, name, closest);
}

std::string yaml_to_text(const YAML::Node& node) {
  YAML::Emitter out;
  out << node;
  return std::string(out.c_str()) + "\n";
}

std::string yaml_inline(const YAML::Node& node) {
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

}  // namespace txl
