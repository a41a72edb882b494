// Config reflection: a section is a plain struct whose one `visit` member lists its
// fields once; that list drives parsing (with errors naming file:line, key, expected
// and found), writing back to YAML, and the docs reference table.
//
//   struct GrpoConfig {
//     double kl_coef = 0.001;
//     template <class V> void visit(V& v) {
//       v.field("kl_coef", kl_coef, "Weight of the KL penalty").min(0);
//     }
//     void validate() const;  // optional: cross-field checks; throws ConfigError whose
//                             // message starts "key 'grpo.kl_coef': " to point at that key
//     void finalize();        // optional: fills derived defaults after reading
//   };
//
// Field types: bool, int, int64_t, uint64_t, double, std::string (enums: a string with
// .one_of), std::optional<T> (YAML null), std::vector<scalar>, nested sections
// (structs with visit) and std::vector<section>. Constraints: .min(x), .gt(x) (exclusive) and .max(x) on
// numbers (and their lists), .one_of({...}) on strings, .required() on any field.
//
// Owns: the field list, type conversions and the generic load/dump/docs templates.
// Must not: read files or know any particular section (config.h lists those).
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "zeroth/config_node.h"
#include "zeroth/error.h"

namespace zeroth {

// Constraints on one field, set by chaining onto `field()`.
struct FieldConstraints {
  bool has_min = false, has_max = false;
  bool min_exclusive = false;  // .gt(x): min is excluded
  double min = 0, max = 0;
  std::vector<std::string> one_of;  // allowed strings; empty = any
  bool required = false;            // must be given (the default is not used)
};

class FieldSpec {
 public:
  FieldSpec& min(double v) { c_.has_min = true; c_.min = v; return *this; }
  FieldSpec& gt(double v) { c_.has_min = true; c_.min_exclusive = true; c_.min = v; return *this; }
  FieldSpec& max(double v) { c_.has_max = true; c_.max = v; return *this; }
  FieldSpec& one_of(std::vector<std::string> allowed) { c_.one_of = std::move(allowed); return *this; }
  FieldSpec& required() { c_.required = true; return *this; }
  const FieldConstraints& constraints() const { return c_; }

 private:
  FieldConstraints c_;
};

// A row of the docs reference.
struct ConfigDocRow {
  std::string key, type, default_value, allowed, description;
  bool is_section = false;  // a nested section, described by its own table
};

// One table of the docs reference: a section (path "run", "grpo.clip", "rewards.functions[]").
struct ConfigDocTable {
  std::string path;
  std::vector<ConfigDocRow> rows;
};

// One field of a section, bound to a member of one struct instance.
struct ConfigField {
  std::string name, description, type;
  FieldSpec spec;
  bool is_section = false;  // a nested struct: read even when absent, for its required keys
  // Reads `node` into the member; `path` is the field's full dotted key.
  std::function<void(const ConfigNode& node, const std::string& path)> read;
  // Reads a section that is absent (checks required keys, runs validate()).
  std::function<void(const SourcePos& parent_pos, const std::string& path)> read_absent;
  std::function<ConfigNode()> write;
  // Appends the docs tables of a section-typed field (null for other fields).
  std::function<void(std::vector<ConfigDocTable>& out, const std::string& path)> doc_children;
};

// The visitor every `visit` is called with: collects the struct's fields.
class FieldCollector {
 public:
  template <class T>
  FieldSpec& field(const char* name, T& value, const char* description);
  std::list<ConfigField> fields;  // a list: the FieldSpec& returned stays valid
};

namespace config_detail {

inline std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

template <class S, class = void>
struct is_section : std::false_type {};
template <class S>
struct is_section<S, std::void_t<decltype(std::declval<S&>().visit(std::declval<FieldCollector&>()))>>
    : std::true_type {};

// "an integer >= 0", "a number in [0, 1]", "one of 'cpu', 'cuda'": the expected value
// in error messages. `plural` gives "integers >= 0" for list elements.
std::string expect_bool(bool plural);
std::string expect_integer(const FieldConstraints& c, bool plural);
std::string expect_number(const FieldConstraints& c, bool plural);
std::string expect_string(const FieldConstraints& c, bool plural);
inline std::string expected(const bool*, const FieldConstraints&, bool plural) { return expect_bool(plural); }
inline std::string expected(const int*, const FieldConstraints& c, bool plural) { return expect_integer(c, plural); }
inline std::string expected(const int64_t*, const FieldConstraints& c, bool plural) { return expect_integer(c, plural); }
inline std::string expected(const uint64_t*, const FieldConstraints& c, bool plural) { return expect_integer(c, plural); }
inline std::string expected(const double*, const FieldConstraints& c, bool plural) { return expect_number(c, plural); }
inline std::string expected(const std::string*, const FieldConstraints& c, bool plural) { return expect_string(c, plural); }
template <class S, std::enable_if_t<is_section<S>::value, int> = 0>
std::string expected(const S*, const FieldConstraints&, bool plural) { return plural ? "maps" : "a map"; }
template <class T>
std::string expected(const std::optional<T>*, const FieldConstraints& c, bool plural) {
  return expected(static_cast<const T*>(nullptr), c, plural) + (plural ? " or nulls" : " or null");
}
template <class T>
std::string expected(const std::vector<T>*, const FieldConstraints& c, bool plural) {
  return (plural ? "lists of " : "a list of ") + expected(static_cast<const T*>(nullptr), c, true);
}
template <class T>
std::string expected(const std::map<std::string, T>*, const FieldConstraints& c, bool plural) {
  return (plural ? "maps of " : "a map of ") + expected(static_cast<const T*>(nullptr), c, true);
}

// Type names for the docs.
inline std::string type_name(const bool*) { return "bool"; }
inline std::string type_name(const int*) { return "int"; }
inline std::string type_name(const int64_t*) { return "int64"; }
inline std::string type_name(const uint64_t*) { return "uint64"; }
inline std::string type_name(const double*) { return "float"; }
inline std::string type_name(const std::string*) { return "string"; }
template <class S, std::enable_if_t<is_section<S>::value, int> = 0>
std::string type_name(const S*) { return "section"; }
template <class T>
std::string type_name(const std::optional<T>*) { return type_name(static_cast<const T*>(nullptr)) + " or null"; }
template <class T>
std::string type_name(const std::vector<T>*) { return "list of " + type_name(static_cast<const T*>(nullptr)); }
template <class T>
std::string type_name(const std::map<std::string, T>*) { return "map of " + type_name(static_cast<const T*>(nullptr)); }

// Scalars (config_reflect.cpp). Each throws ConfigError at node.pos naming `path`.
void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints& c, bool& out);
void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints& c, int& out);
void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints& c, int64_t& out);
void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints& c, uint64_t& out);
void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints& c, double& out);
void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints& c, std::string& out);
ConfigNode write_value(bool v);
ConfigNode write_value(int v);
ConfigNode write_value(int64_t v);
ConfigNode write_value(uint64_t v);
ConfigNode write_value(double v);
ConfigNode write_value(const std::string& v);

// Reads the fields of one section from `node` (a map, null, or absent); checks for
// unknown keys (with suggestions) and missing required keys.
void read_fields(const ConfigNode* node, const SourcePos& parent_pos, const std::string& path,
                 std::list<ConfigField>& fields);
ConfigNode write_fields(std::list<ConfigField>& fields);
ConfigDocRow doc_row(const ConfigField& f);
// Prefixes a ConfigError from validate() with a position: that of the key the message
// starts with ("key 'run.name': ..."), else the section's.
[[noreturn]] void rethrow_validate_error(const ConfigError& e, const ConfigNode* node,
                                         const SourcePos& parent_pos, const std::string& path);

template <class S>
auto call_validate(const S& s, int) -> decltype(s.validate(), void()) { s.validate(); }
template <class S>
void call_validate(const S&, long) {}
template <class S>
auto call_finalize(S& s, int) -> decltype(s.finalize(), void()) { s.finalize(); }
template <class S>
void call_finalize(S&, long) {}

template <class S, std::enable_if_t<is_section<S>::value, int> = 0>
void read_section(const ConfigNode* node, const SourcePos& parent_pos, const std::string& path, S& out) {
  FieldCollector fc;
  out.visit(fc);
  read_fields(node, parent_pos, path, fc.fields);
  call_finalize(out, 0);
  try {
    call_validate(static_cast<const S&>(out), 0);
  } catch (const ConfigError& e) {
    rethrow_validate_error(e, node, parent_pos, path);
  }
}

template <class S, std::enable_if_t<is_section<S>::value, int> = 0>
void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints&, S& out) {
  read_section(&node, node.pos, path, out);
}

template <class T>
void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints& c,
                std::optional<T>& out) {
  if (node.kind == ConfigNode::Kind::Null) {
    out.reset();
    return;
  }
  T v{};
  read_value(node, path, c, v);
  out = std::move(v);
}

template <class T>
void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints& c,
                std::vector<T>& out) {
  if (node.kind != ConfigNode::Kind::List)
    config_fail(node.pos, path,
                "expected " + expected(static_cast<const std::vector<T>*>(nullptr), c, false) +
                    ", found " + describe_found(node));
  std::vector<T> v(node.items.size());
  for (size_t i = 0; i < v.size(); ++i)
    read_value(node.items[i], path + "[" + std::to_string(i) + "]", c, v[i]);
  out = std::move(v);
}

// A map with keys of the user's choosing (not a section: any key is accepted).
template <class T>
void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints& c,
                std::map<std::string, T>& out) {
  if (node.kind != ConfigNode::Kind::Map)
    config_fail(node.pos, path,
                "expected " + expected(static_cast<const std::map<std::string, T>*>(nullptr), c, false) +
                    ", found " + describe_found(node));
  std::map<std::string, T> m;
  for (const ConfigNode::Entry& e : node.entries) read_value(e.value, path + "." + e.key, c, m[e.key]);
  out = std::move(m);
}

template <class S, std::enable_if_t<is_section<S>::value, int> = 0>
ConfigNode write_value(const S& s) {
  S copy = s;  // visit() binds non-const references
  FieldCollector fc;
  copy.visit(fc);
  return write_fields(fc.fields);
}

template <class T>
ConfigNode write_value(const std::optional<T>& v) {
  if (v) return write_value(*v);
  return ConfigNode{};
}

template <class T>
ConfigNode write_value(const std::map<std::string, T>& m) {
  ConfigNode n = ConfigNode::make_map(SourcePos{});
  for (const auto& [key, value] : m) n.set(key, SourcePos{}, write_value(value));
  return n;
}

template <class T>
ConfigNode write_value(const std::vector<T>& v) {
  ConfigNode n;
  n.kind = ConfigNode::Kind::List;
  for (const auto& item : v) n.items.push_back(write_value(item));
  return n;
}

// Docs tables of section S (and its sub-sections) at `path`.
template <class S>
void doc_section(std::vector<ConfigDocTable>& out, const std::string& path) {
  S s{};
  FieldCollector fc;
  s.visit(fc);
  out.push_back(ConfigDocTable{path, {}});
  size_t mine = out.size() - 1;
  for (const auto& f : fc.fields) out[mine].rows.push_back(doc_row(f));
  for (const auto& f : fc.fields)
    if (f.doc_children) f.doc_children(out, join(path, f.name));
}

template <class T>
struct section_of {  // the section type a field's docs describe, if any
  using type = void;
};
template <class T>
struct section_of<std::vector<T>> {
  using type = std::conditional_t<is_section<T>::value, T, void>;
};

template <class T>
void set_doc_children(ConfigField& f) {
  if constexpr (is_section<T>::value) {
    f.doc_children = [](std::vector<ConfigDocTable>& out, const std::string& path) { doc_section<T>(out, path); };
  } else if constexpr (!std::is_void_v<typename section_of<T>::type>) {
    f.doc_children = [](std::vector<ConfigDocTable>& out, const std::string& path) {
      doc_section<typename section_of<T>::type>(out, path + "[]");
    };
  }
}

}  // namespace config_detail

template <class T>
FieldSpec& FieldCollector::field(const char* name, T& value, const char* description) {
  fields.emplace_back();
  ConfigField& f = fields.back();
  f.name = name;
  f.description = description;
  f.type = config_detail::type_name(static_cast<const T*>(nullptr));
  T* p = &value;
  const FieldSpec* spec = &f.spec;
  f.read = [p, spec](const ConfigNode& node, const std::string& path) {
    config_detail::read_value(node, path, spec->constraints(), *p);
  };
  f.write = [p]() { return config_detail::write_value(*p); };
  if constexpr (config_detail::is_section<T>::value) {
    f.is_section = true;
    f.read_absent = [p](const SourcePos& parent_pos, const std::string& path) {
      config_detail::read_section(nullptr, parent_pos, path, *p);
    };
  }
  config_detail::set_doc_children<T>(f);
  return f.spec;
}

// ---- the generic API: any section struct S can be a whole config ----

// Reads a merged tree (load_config_tree + overrides) into S, checking every key.
template <class S>
void read_config_tree(const ConfigNode& root, S& out) {
  config_detail::read_section(&root, root.pos, "", out);
}

// Loads `path` (with its defaults chain), applies `overrides` ("a.b=v", in order)
// and reads the result into S. Throws ConfigError.
template <class S>
S load_config_as(const std::string& path, const std::vector<std::string>& overrides) {
  ConfigNode root = load_config_tree(path);
  for (const auto& o : overrides) apply_config_override(root, o);
  S out{};
  read_config_tree(root, out);
  return out;
}

// Every key of S (defaults included) as block YAML; loading it gives S back.
template <class S>
std::string dump_config_as(const S& s) {
  return emit_config_yaml(config_detail::write_value(s));
}

// Markdown tables (key, type, default, allowed, description) for every section of S.
std::string render_config_docs(const std::vector<ConfigDocTable>& tables);
template <class S>
std::string config_docs_markdown_as() {
  std::vector<ConfigDocTable> tables;
  config_detail::doc_section<S>(tables, "");
  return render_config_docs(tables);
}

}  // namespace zeroth
