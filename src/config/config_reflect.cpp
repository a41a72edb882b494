// config_reflect.h: scalar conversions with their error messages, the per-section
// key checks (unknown keys with suggestions, required keys) and the docs renderer.
// Must not: know any section; read files (config_node.cpp does).
#include "zeroth/config_reflect.h"

#include <cctype>
#include <cerrno>
#include <climits>
#include <cfloat>
#include <cmath>
#include <cstdlib>

namespace zeroth {
namespace config_detail {

static std::string format_number(double v) {
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  if (std::isnan(v)) return ".nan";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return strformat("%.0f", v);
  std::string s;
  for (int prec = 1; prec <= 17; ++prec) {  // the shortest text that reads back exactly
    s = strformat("%.*g", prec, v);
    if (std::strtod(s.c_str(), nullptr) == v) break;
  }
  return s;
}

static std::string range_suffix(const FieldConstraints& c) {
  if (c.has_min && c.has_max)
    return std::string(" in ") + (c.min_exclusive ? "(" : "[") + format_number(c.min) + ", " +
           format_number(c.max) + "]";
  if (c.has_min) return (c.min_exclusive ? " > " : " >= ") + format_number(c.min);
  if (c.has_max) return " <= " + format_number(c.max);
  return "";
}

static std::string quoted_list(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", '" : "'") + v[i] + "'";
  return s;
}

std::string expect_bool(bool plural) { return plural ? "booleans (true or false)" : "true or false"; }

std::string expect_integer(const FieldConstraints& c, bool plural) {
  return (plural ? "integers" : "an integer") + range_suffix(c);
}

std::string expect_number(const FieldConstraints& c, bool plural) {
  return (plural ? "numbers" : "a number") + range_suffix(c);
}

std::string expect_string(const FieldConstraints& c, bool plural) {
  if (c.one_of.empty()) return plural ? "strings" : "a string";
  return (plural ? "strings, each one of " : "one of ") + quoted_list(c.one_of);
}

[[noreturn]] static void fail_expected(const ConfigNode& node, const std::string& path,
                                       const std::string& expected_text) {
  config_fail(node.pos, path, "expected " + expected_text + ", found " + describe_found(node));
}

static bool in_range(long double v, const FieldConstraints& c) {
  const long double lo = c.min, hi = c.max;
  return !(c.has_min && (c.min_exclusive ? v <= lo : v < lo)) && !(c.has_max && v > hi);
}

void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints&, bool& out) {
  const std::string& s = node.scalar;
  if (node.kind == ConfigNode::Kind::Scalar && (s == "true" || s == "True" || s == "TRUE")) {
    out = true;
  } else if (node.kind == ConfigNode::Kind::Scalar && (s == "false" || s == "False" || s == "FALSE")) {
    out = false;
  } else {
    fail_expected(node, path, expect_bool(false));
  }
}

// Reads an integer scalar into `out` (exact for every int64 and uint64 value), checking
// the type's range [lo, hi] (written out as `type_range`) and the field's constraints.
static void read_integer(const ConfigNode& node, const std::string& path, const FieldConstraints& c,
                         long double lo, long double hi, const char* type_range, long double* out) {
  const std::string& s = node.scalar;
  size_t digits_at = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  bool ok = node.kind == ConfigNode::Kind::Scalar && s.size() > digits_at;
  for (size_t i = digits_at; ok && i < s.size(); ++i) ok = std::isdigit(static_cast<unsigned char>(s[i])) != 0;
  if (!ok) fail_expected(node, path, expect_integer(c, false));
  errno = 0;
  long double v = s[0] == '-' ? static_cast<long double>(std::strtoll(s.c_str(), nullptr, 10))
                              : static_cast<long double>(std::strtoull(s.c_str(), nullptr, 10));
  if (errno == ERANGE || v < lo || v > hi)
    fail_expected(node, path, std::string("an integer in ") + type_range);
  if (!in_range(v, c)) fail_expected(node, path, expect_integer(c, false));
  *out = v;
}

void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints& c, int& out) {
  long double v;
  read_integer(node, path, c, INT_MIN, INT_MAX, "[-2147483648, 2147483647]", &v);
  out = static_cast<int>(v);
}

void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints& c, int64_t& out) {
  long double v;
  read_integer(node, path, c, static_cast<long double>(INT64_MIN), static_cast<long double>(INT64_MAX),
               "[-9223372036854775808, 9223372036854775807]", &v);
  out = static_cast<int64_t>(v);
}

void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints& c, uint64_t& out) {
  long double v;
  read_integer(node, path, c, 0, static_cast<long double>(UINT64_MAX), "[0, 18446744073709551615]", &v);
  out = static_cast<uint64_t>(v);
}

void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints& c, double& out) {
  const std::string& s = node.scalar;
  if (node.kind != ConfigNode::Kind::Scalar || s.empty() || std::isspace(static_cast<unsigned char>(s[0])))
    fail_expected(node, path, expect_number(c, false));
  double v;
  if (s == ".inf" || s == "+.inf" || s == ".Inf" || s == "+.Inf") {
    v = HUGE_VAL;
  } else if (s == "-.inf" || s == "-.Inf") {
    v = -HUGE_VAL;
  } else {
    char* end = nullptr;
    errno = 0;
    v = std::strtod(s.c_str(), &end);
    // strtod also takes "inf", "nan" and hex floats; YAML numbers are decimal.
    bool decimal = s.find_first_of("xXnN") == std::string::npos;
    if (end != s.c_str() + s.size() || !decimal || (errno == ERANGE && std::isinf(v)))
      fail_expected(node, path, expect_number(c, false));
  }
  // Every float key is finite and fits a float (several are used as one): .inf or 1e300
  // would pass a ">= 0" and poison the run.
  if (!(std::fabs(v) <= double(FLT_MAX))) fail_expected(node, path, "a finite " + expect_number(c, false).substr(2));
  if (!in_range(v, c)) fail_expected(node, path, expect_number(c, false));
  out = v;
}

void read_value(const ConfigNode& node, const std::string& path, const FieldConstraints& c, std::string& out) {
  if (node.kind != ConfigNode::Kind::Scalar) fail_expected(node, path, expect_string(c, false));
  if (!c.one_of.empty()) {
    bool ok = false;
    for (const auto& a : c.one_of) ok = ok || a == node.scalar;
    if (!ok) {
      std::string near = nearest_key(node.scalar, c.one_of);
      config_fail(node.pos, path,
                  "expected " + expect_string(c, false) + ", found " + describe_found(node) +
                      (near.empty() ? "" : "; did you mean '" + near + "'?"));
    }
  }
  out = node.scalar;
}

ConfigNode write_value(bool v) { return ConfigNode::make_scalar(v ? "true" : "false", false, {}); }
ConfigNode write_value(int v) { return ConfigNode::make_scalar(std::to_string(v), false, {}); }
ConfigNode write_value(int64_t v) { return ConfigNode::make_scalar(std::to_string(v), false, {}); }
ConfigNode write_value(uint64_t v) { return ConfigNode::make_scalar(std::to_string(v), false, {}); }

ConfigNode write_value(double v) {
  std::string s = format_number(v);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // reads as a float: 1.0, not 1
  return ConfigNode::make_scalar(s, false, {});
}

// Quotes strings a YAML reader would take for null, a boolean or a number.
static bool needs_quotes(const std::string& s) {
  static const char* const kSpecial[] = {"", "~", "null", "Null", "NULL", "true", "True", "TRUE",
                                         "false", "False", "FALSE", "yes", "Yes", "YES", "no", "No",
                                         "NO", "on", "On", "ON", "off", "Off", "OFF", ".inf", "-.inf",
                                         ".nan"};
  for (const char* k : kSpecial)
    if (s == k) return true;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

ConfigNode write_value(const std::string& v) { return ConfigNode::make_scalar(v, needs_quotes(v), {}); }

void read_fields(const ConfigNode* node, const SourcePos& parent_pos, const std::string& path,
                 std::list<ConfigField>& fields) {
  if (node && node->kind == ConfigNode::Kind::Null) node = nullptr;  // "run:" alone: an empty section
  const SourcePos& where = node ? node->pos : parent_pos;
  if (node && node->kind != ConfigNode::Kind::Map) {
    if (path.empty()) config_fail_at(node->pos, "expected a map of sections at the top level, found " + describe_found(*node));
    fail_expected(*node, path, "a map (a section)");
  }
  std::vector<std::string> names;
  for (const auto& f : fields) names.push_back(f.name);
  if (node) {
    for (const auto& e : node->entries) {
      bool known = false;
      for (const auto& n : names) known = known || n == e.key;
      if (known) continue;
      std::string near = nearest_key(e.key, names), hint;
      if (!near.empty()) {
        hint = "; did you mean '" + near + "'?";
      } else {
        hint = path.empty() ? "; sections are: " : "; keys of '" + path + "' are: ";
        for (size_t i = 0; i < names.size(); ++i) hint += (i ? ", " : "") + names[i];
      }
      config_fail(e.key_pos, join(path, e.key), "unknown key" + hint);
    }
  }
  for (auto& f : fields) {
    std::string key = join(path, f.name);
    const ConfigNode::Entry* e = node ? node->find(f.name) : nullptr;
    if (e) {
      f.read(e->value, key);
    } else if (f.spec.constraints().required) {
      config_fail_at(where, "missing required key '" + key + "'");
    } else if (f.is_section) {
      f.read_absent(where, key);
    }
  }
}

ConfigNode write_fields(std::list<ConfigField>& fields) {
  ConfigNode n = ConfigNode::make_map({});
  for (auto& f : fields) n.set(f.name, {}, f.write());
  return n;
}

ConfigDocRow doc_row(const ConfigField& f) {
  ConfigDocRow row;
  const FieldConstraints& c = f.spec.constraints();
  row.key = f.name;
  row.type = f.type;
  row.description = f.description;
  row.is_section = f.is_section;
  if (c.required) row.default_value = "(required)";
  else if (!f.is_section) row.default_value = "`" + emit_config_flow(f.write()) + "`";
  std::string range = range_suffix(c);
  if (!range.empty()) row.allowed = range.substr(1);
  for (size_t i = 0; i < c.one_of.size(); ++i) row.allowed += (i ? ", `" : "`") + c.one_of[i] + "`";
  return row;
}

// The last node under `n` (itself included) that a --set override of `key` or of a key
// inside it wrote (its position, "--set K=V", names the override), or null.
static const ConfigNode* find_override(const ConfigNode& n, const std::string& key) {
  if (n.pos.line == 0 && n.pos.file.compare(0, 6, "--set ") == 0) {
    const std::string set_key = n.pos.file.substr(6, n.pos.file.find('=') - 6);
    const bool inside = set_key.compare(0, key.size(), key) == 0 &&
                        (set_key.size() == key.size() || set_key[key.size()] == '.' || set_key[key.size()] == '[');
    if (inside) return &n;
  }
  const ConfigNode* found = nullptr;
  for (const ConfigNode& item : n.items)
    if (const ConfigNode* f = find_override(item, key)) found = f;
  for (const ConfigNode::Entry& e : n.entries)
    if (const ConfigNode* f = find_override(e.value, key)) found = f;
  return found;
}

void rethrow_validate_error(const ConfigError& e, const ConfigNode* node, const SourcePos& parent_pos,
                            const std::string& path) {
  SourcePos pos = node ? node->pos : parent_pos;
  const std::string msg = e.what(), prefix = "key '" + join(path, "");
  if (node && node->kind == ConfigNode::Kind::Map && msg.compare(0, prefix.size(), prefix) == 0) {
    // Follow the key the message names ('rewards.math.rel_tol') as deep as the tree goes.
    const ConfigNode* at = node;
    size_t start = prefix.size();
    bool resolved = false;  // the whole key found
    while (at->kind == ConfigNode::Kind::Map) {
      const size_t end = msg.find_first_of(".['", start);
      const std::string key = msg.substr(start, end == std::string::npos ? std::string::npos : end - start);
      const ConfigNode::Entry* entry = at->find(key);
      if (!entry) break;
      at = &entry->value;
      pos = at->pos;
      if (end == std::string::npos || msg[end] != '.') {
        resolved = true;
        break;
      }
      start = end + 1;
    }
    // A cross-key check on a section ('rewards.math'): when a --set changed a key in it,
    // that override is the likelier cause than the file line where the section starts.
    if (resolved && at->kind == ConfigNode::Kind::Map) {
      const size_t end = msg.find('\'', prefix.size());
      if (const ConfigNode* o = find_override(*at, msg.substr(5, end - 5))) pos = o->pos;
    }
  }
  config_fail_at(pos, msg);
}

}  // namespace config_detail

static std::string cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

std::string render_config_docs(const std::vector<ConfigDocTable>& tables) {
  std::string out;
  for (const auto& t : tables) {
    bool has_keys = false;
    for (const auto& r : t.rows) has_keys = has_keys || !r.is_section;
    if (!has_keys) continue;  // only sub-sections: each has its own table
    if (!out.empty()) out += "\n";
    out += "### `" + (t.path.empty() ? std::string("(top level)") : t.path) + "`\n\n";
    out += "| key | type | default | allowed | description |\n";
    out += "|---|---|---|---|---|\n";
    for (const auto& r : t.rows) {
      std::string desc = r.description;
      if (r.is_section) desc += " (section `" + config_detail::join(t.path, r.key) + "`)";
      else if (r.type.find("section") != std::string::npos)
        desc += " (items: section `" + config_detail::join(t.path, r.key) + "[]`)";
      out += "| `" + cell(r.key) + "` | " + cell(r.type) + " | " + cell(r.default_value) + " | " +
             cell(r.allowed) + " | " + cell(desc) + " |\n";
    }
  }
  return out;
}

}  // namespace zeroth
