// Typed configuration keys. A configuration struct (TrainConfig, EvalConfig) lists its
// keys once, as (name, member pointer or member path, help); parsing YAML sections and command-line
// overrides, type errors, "did you mean" for unknown keys and writing the resolved
// configuration back as YAML all come from that one table.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "txl/core/error.h"
#include "txl/config/closest_name.h"

namespace txl {

// Order matches the alternatives of ConfigKey::Field.
enum class KeyType { kInt, kFloat, kBool, kString, kIntList, kFloatList, kBoolList, kStringList };
bool is_list_type(KeyType type);
const char* key_type_name(KeyType type);  // "an integer", "a number", ...

// Scalar/list readers. `where` names the source ("configs/tiny.yaml [default.train]",
// "command line"); every failure names the key and the expected type.
int64_t yaml_to_int(const YAML::Node& v, const std::string& key, const std::string& where);
double yaml_to_float(const YAML::Node& v, const std::string& key, const std::string& where);
bool yaml_to_bool(const YAML::Node& v, const std::string& key, const std::string& where);
std::string yaml_to_string(const YAML::Node& v, const std::string& key, const std::string& where);
std::vector<int64_t> yaml_to_int_list(const YAML::Node& v, const std::string& key, const std::string& where);
std::vector<double> yaml_to_float_list(const YAML::Node& v, const std::string& key, const std::string& where);
std::vector<bool> yaml_to_bool_list(const YAML::Node& v, const std::string& key, const std::string& where);
std::vector<std::string> yaml_to_string_list(const YAML::Node& v, const std::string& key, const std::string& where);

// The shortest decimal text that reads back as exactly `x` ("0.1", not 0.10000000000000001).
std::string shortest_text(double x);

// A command-line value as a YAML node of the key's type: lists may be written "1,2,3"
// or "[1, 2, 3]" (a list of strings is never split at commas); everything else stays a
// plain string scalar (so "a: b" is text).
YAML::Node command_line_value(KeyType type, const std::string& text);

// Where a key's value lives in Cfg: a member (`&Cfg::data`, converted implicitly) or a
// member of a member, any depth (`member_path<&Cfg::model, &ModelConfig::n_layer>`), so a
// field of a nested struct is declared once, in that struct.
template <typename Cfg, typename T>
class FieldRef {
 public:
  FieldRef(T Cfg::*member) : member_(member) {}  // NOLINT(google-explicit-constructor): table syntax
  constexpr FieldRef(T& (*get)(Cfg&), const T& (*get_const)(const Cfg&)) : get_(get), get_const_(get_const) {}

  T& of(Cfg& cfg) const { return member_ ? cfg.*member_ : get_(cfg); }
  const T& of(const Cfg& cfg) const { return member_ ? cfg.*member_ : get_const_(cfg); }

 private:
  // Exactly one of the two ways is set: a direct member pointer (known only at run time
  // in a table line), or accessors instantiated for a member path at compile time.
  T Cfg::*member_ = nullptr;
  T& (*get_)(Cfg&) = nullptr;
  const T& (*get_const_)(const Cfg&) = nullptr;
};

namespace detail {
template <typename M>
struct member_class;
template <typename C, typename T>
struct member_class<T C::*> {
  using type = C;
};
}  // namespace detail

// The FieldRef of cfg.*First.*Next..., e.g. member_path<&TrainConfig::model, &ModelConfig::init,
// &InitSpec::init_std> for cfg.model.init.init_std.
template <auto First, auto... Rest>
inline constexpr auto member_path = [] {
  using Cfg = typename detail::member_class<decltype(First)>::type;
  using T = std::remove_reference_t<decltype(((std::declval<Cfg&>().*First) .* ... .* Rest))>;
  return FieldRef<Cfg, T>([](Cfg& c) -> T& { return ((c.*First) .* ... .* Rest); },
                          [](const Cfg& c) -> const T& { return ((c.*First) .* ... .* Rest); });
}();

template <typename Cfg>
struct ConfigKey {
  using Field = std::variant<FieldRef<Cfg, int64_t>, FieldRef<Cfg, double>, FieldRef<Cfg, bool>,
                             FieldRef<Cfg, std::string>, FieldRef<Cfg, std::vector<int64_t>>,
                             FieldRef<Cfg, std::vector<double>>, FieldRef<Cfg, std::vector<bool>>,
                             FieldRef<Cfg, std::vector<std::string>>>;
  std::string name;
  Field field;
  std::string help;

  KeyType type() const { return static_cast<KeyType>(field.index()); }

  // Calls f with a reference to the key's field in cfg (const when cfg is).
  template <typename C, typename F>
  decltype(auto) visit(C& cfg, F&& f) const {
    return std::visit([&](const auto& ref) -> decltype(auto) { return f(ref.of(cfg)); }, field);
  }

  // Sets the field from a YAML value; a null value keeps the current one.
  void assign(Cfg& cfg, const YAML::Node& v, const std::string& where) const {
    if (!v || v.IsNull()) return;
    visit(cfg, [&](auto& f) {
      using F = std::remove_reference_t<decltype(f)>;
      if constexpr (std::is_same_v<F, int64_t>) f = yaml_to_int(v, name, where);
      else if constexpr (std::is_same_v<F, double>) f = yaml_to_float(v, name, where);
      else if constexpr (std::is_same_v<F, bool>) f = yaml_to_bool(v, name, where);
      else if constexpr (std::is_same_v<F, std::string>) f = yaml_to_string(v, name, where);
      else if constexpr (std::is_same_v<F, std::vector<int64_t>>) f = yaml_to_int_list(v, name, where);
      else if constexpr (std::is_same_v<F, std::vector<double>>) f = yaml_to_float_list(v, name, where);
      else if constexpr (std::is_same_v<F, std::vector<bool>>) f = yaml_to_bool_list(v, name, where);
      else f = yaml_to_string_list(v, name, where);
    });
  }

  // The current value as YAML (for the resolved configuration).
  YAML::Node value(const Cfg& cfg) const {
    return visit(cfg, [&](const auto& f) {
      YAML::Node n;
      using F = std::remove_cvref_t<decltype(f)>;
      if constexpr (std::is_same_v<F, std::vector<bool>>) {
        n = YAML::Node(YAML::NodeType::Sequence);
        for (bool b : f) n.push_back(b);
      } else if constexpr (std::is_same_v<F, std::vector<int64_t>> || std::is_same_v<F, std::vector<std::string>>) {
        n = YAML::Node(YAML::NodeType::Sequence);
        for (auto x : f) n.push_back(x);
      } else if constexpr (std::is_same_v<F, std::vector<double>>) {
        n = YAML::Node(YAML::NodeType::Sequence);
        for (double x : f) n.push_back(shortest_text(x));
      } else if constexpr (std::is_same_v<F, double>) {
        n = shortest_text(f);
      } else {
        n = f;
      }
      return n;
    });
  }
};

template <typename Cfg>
std::vector<std::string> key_names(const std::vector<ConfigKey<Cfg>>& keys) {
  std::vector<std::string> names;
  for (const auto& k : keys) names.push_back(k.name);
  return names;
}

template <typename Cfg>
const ConfigKey<Cfg>* find_key(const std::vector<ConfigKey<Cfg>>& keys, const std::string& name) {
  for (const auto& k : keys)
    if (k.name == name) return &k;
  return nullptr;
}

// The message for an unknown key: names it and the closest known one.
std::string unknown_key_message(const std::string& where, const std::string& name,
                                const std::vector<std::string>& known);

template <typename Cfg>
const ConfigKey<Cfg>& require_key(const std::vector<ConfigKey<Cfg>>& keys, const std::string& name,
                                  const std::string& where) {
  const ConfigKey<Cfg>* k = find_key(keys, name);
  if (!k) fail(unknown_key_message(where, name, key_names(keys)));
  return *k;
}

// Applies every key of a YAML mapping (one preset section).
template <typename Cfg>
void apply_section(Cfg& cfg, const std::vector<ConfigKey<Cfg>>& keys, const YAML::Node& section,
                   const std::string& where) {
  if (!section || section.IsNull()) return;
  if (!section.IsMap()) failf("{}: expected a mapping of key: value", where);
  for (const auto& kv : section) {
    const std::string name = kv.first.Scalar();
    require_key(keys, name, where).assign(cfg, kv.second, where);
  }
}

// All keys and values, in table order.
template <typename Cfg>
YAML::Node config_to_yaml(const Cfg& cfg, const std::vector<ConfigKey<Cfg>>& keys) {
  YAML::Node out(YAML::NodeType::Map);
  for (const auto& k : keys) out[k.name] = k.value(cfg);
  return out;
}

std::string yaml_to_text(const YAML::Node& node);  // block style, ends with a newline
std::string yaml_inline(const YAML::Node& node);   // one line (flow style)

}  // namespace txl
