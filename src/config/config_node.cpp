// config_node.h: YAML text <-> ConfigNode trees, `defaults:` chains, merging,
// --set overrides and key suggestions. The only file that talks to yaml-cpp.
// Must not: interpret values as C++ types (config_reflect.cpp does).
#include "zeroth/config_node.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "zeroth/error.h"

namespace fs = std::filesystem;

namespace zeroth {

std::string SourcePos::str() const {
  if (line <= 0) return file;
  return strformat("%s:%d:%d", file.c_str(), line, column);
}

ConfigNode ConfigNode::make_map(const SourcePos& pos) {
  ConfigNode n;
  n.kind = Kind::Map;
  n.pos = pos;
  return n;
}

ConfigNode ConfigNode::make_scalar(const std::string& text, bool quoted, const SourcePos& pos) {
  ConfigNode n;
  n.kind = Kind::Scalar;
  n.scalar = text;
  n.quoted = quoted;
  n.pos = pos;
  return n;
}

const ConfigNode::Entry* ConfigNode::find(const std::string& key) const {
  for (const auto& e : entries)
    if (e.key == key) return &e;
  return nullptr;
}

ConfigNode::Entry* ConfigNode::find(const std::string& key) {
  for (auto& e : entries)
    if (e.key == key) return &e;
  return nullptr;
}

void ConfigNode::set(const std::string& key, const SourcePos& key_pos, ConfigNode value) {
  ZT_ASSERT(kind == Kind::Map, "set('%s') on a node that is not a map", key.c_str());
  if (Entry* e = find(key)) {
    e->key_pos = key_pos;
    e->value = std::move(value);
    return;
  }
  entries.push_back(Entry{key, key_pos, std::move(value)});
}

static bool looks_like_number(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  std::strtod(s.c_str(), &end);
  // strtod also reads "nan", "inf" and hex floats, which YAML does not take as numbers.
  return end == s.c_str() + s.size() && !std::isspace(static_cast<unsigned char>(s[0])) &&
         s.find_first_of("xXnNiI") == std::string::npos;
}

std::string describe_found(const ConfigNode& node) {
  switch (node.kind) {
    case ConfigNode::Kind::Null: return "null";
    case ConfigNode::Kind::List: return "a list";
    case ConfigNode::Kind::Map: return "a map";
    case ConfigNode::Kind::Scalar: break;
  }
  const std::string& s = node.scalar;
  if (!node.quoted && (looks_like_number(s) || s == "true" || s == "false")) return s;
  return "'" + s + "'";
}

// ---- YAML -> tree ----

static SourcePos mark_pos(const YAML::Mark& m, const std::string& file, const SourcePos& fallback) {
  if (m.is_null() || m.line < 0) return fallback;
  return SourcePos{file, m.line + 1, m.column + 1};
}

static std::string join_key(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

// The most nodes one YAML document may expand to: aliases share nodes in yaml-cpp, and a
// few hundred bytes of nested aliases ("billion laughs") expand to billions when copied.
constexpr size_t kMaxConfigNodes = 100000;

static ConfigNode from_yaml(const YAML::Node& n, const std::string& file, const SourcePos& fallback,
                            const std::string& path, size_t& nodes) {
  if (++nodes > kMaxConfigNodes)
    config_fail_at(mark_pos(n.Mark(), file, fallback),
                   strformat("expected at most %zu YAML values in a config file, found more (nested aliases "
                             "expanding?)", kMaxConfigNodes));
  ConfigNode out;
  out.pos = mark_pos(n.Mark(), file, fallback);
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out.kind = ConfigNode::Kind::Null;
      // An empty value ("key:" alone) is marked where the next token starts: use the key's.
      if (out.pos.line != fallback.line) out.pos = fallback;
      break;
    case YAML::NodeType::Scalar:
      out.kind = ConfigNode::Kind::Scalar;
      out.scalar = n.Scalar();
      out.quoted = n.Tag() == "!";  // yaml-cpp tags quoted scalars "!", plain ones "?"
      break;
    case YAML::NodeType::Sequence: {
      out.kind = ConfigNode::Kind::List;
      size_t i = 0;
      for (const auto& item : n)
        out.items.push_back(from_yaml(item, file, out.pos, strformat("%s[%zu]", path.c_str(), i++), nodes));
      break;
    }
    case YAML::NodeType::Map:
      out.kind = ConfigNode::Kind::Map;
      for (const auto& kv : n) {
        SourcePos key_pos = mark_pos(kv.first.Mark(), file, out.pos);
        if (!kv.first.IsScalar())
          config_fail_at(key_pos, strformat("expected a plain key in %s, found %s",
                                            path.empty() ? "the top-level map" : ("'" + path + "'").c_str(),
                                            kv.first.IsMap() ? "a map" : kv.first.IsSequence() ? "a list" : "null"));
        std::string key = kv.first.Scalar();
        if (const ConfigNode::Entry* prev = out.find(key))
          config_fail(key_pos, join_key(path, key),
                      strformat("key given twice (first at line %d)", prev->key_pos.line));
        ConfigNode value = from_yaml(kv.second, file, key_pos, join_key(path, key), nodes);
        out.entries.push_back(ConfigNode::Entry{key, key_pos, std::move(value)});
      }
      break;
  }
  return out;
}

ConfigNode parse_config_yaml(const std::string& text, const std::string& file) {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    SourcePos pos = mark_pos(e.mark, file, SourcePos{file, 0, 0});
    config_fail_at(pos, "YAML syntax error: " + e.msg);
  }
  size_t nodes = 0;
  return from_yaml(doc, file, SourcePos{file, 1, 1}, "", nodes);
}

// ---- defaults chains ----

// The largest config file read (a config is a few KB; this stops /dev/zero or a data
// file named by mistake from filling memory).
constexpr size_t kMaxConfigBytes = size_t(16) << 20;

static bool read_text(const std::string& path, std::string* text, std::string* why) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    *why = "is a directory";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *why = std::strerror(errno);
    return false;
  }
  text->clear();
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text->append(buf, size_t(in.gcount()));
    if (text->size() > kMaxConfigBytes) {
      *why = strformat("larger than %zu MiB (expected a YAML config file)", kMaxConfigBytes >> 20);
      return false;
    }
  }
  if (in.bad()) {
    *why = std::strerror(errno);
    return false;
  }
  return true;
}

static ConfigNode load_tree(const std::string& path, const SourcePos* named_at,
                            std::vector<std::string>& chain_ids, std::vector<std::string>& chain_names) {
  std::error_code ec;
  fs::path canon = fs::weakly_canonical(fs::absolute(path, ec), ec);
  std::string id = ec ? path : canon.string();
  auto again = std::find(chain_ids.begin(), chain_ids.end(), id);
  if (again != chain_ids.end()) {
    std::string chain;
    for (size_t i = static_cast<size_t>(again - chain_ids.begin()); i < chain_names.size(); ++i)
      chain += chain_names[i] + " -> ";
    chain += path;
    config_fail_at(*named_at, "defaults cycle: " + chain);
  }
  std::string text, why;
  if (!read_text(path, &text, &why)) {
    if (named_at) config_fail(*named_at, "defaults", strformat("cannot read '%s': %s", path.c_str(), why.c_str()));
    throw ConfigError(strformat("cannot read config file '%s': %s", path.c_str(), why.c_str()));
  }
  ConfigNode file = parse_config_yaml(text, path);
  if (file.kind == ConfigNode::Kind::Null) file = ConfigNode::make_map(SourcePos{path, 1, 1});
  if (file.kind != ConfigNode::Kind::Map)
    config_fail_at(file.pos, "expected a map of sections at the top level, found " + describe_found(file));

  ConfigNode result = ConfigNode::make_map(file.pos);
  auto it = std::find_if(file.entries.begin(), file.entries.end(),
                         [](const ConfigNode::Entry& e) { return e.key == "defaults"; });
  if (it != file.entries.end()) {
    ConfigNode::Entry defaults = *it;
    file.entries.erase(it);
    std::vector<const ConfigNode*> names;
    if (defaults.value.kind == ConfigNode::Kind::Scalar) names.push_back(&defaults.value);
    else if (defaults.value.kind == ConfigNode::Kind::List)
      for (const auto& item : defaults.value.items) names.push_back(&item);
    else if (defaults.value.kind != ConfigNode::Kind::Null)
      config_fail(defaults.value.pos, "defaults",
                  "expected a list of file names, found " + describe_found(defaults.value));
    chain_ids.push_back(id);
    chain_names.push_back(path);
    for (const ConfigNode* name : names) {
      if (name->kind != ConfigNode::Kind::Scalar || name->scalar.empty())
        config_fail(name->pos, "defaults", "expected a file name, found " + describe_found(*name));
      fs::path child(name->scalar);
      if (child.is_relative()) child = fs::path(path).parent_path() / child;
      ConfigNode base = load_tree(child.lexically_normal().string(), &name->pos, chain_ids, chain_names);
      merge_config_tree(result, base);
    }
    chain_ids.pop_back();
    chain_names.pop_back();
  }
  merge_config_tree(result, file);
  return result;
}

ConfigNode load_config_tree(const std::string& path) {
  std::vector<std::string> ids, names;
  return load_tree(path, nullptr, ids, names);
}

void merge_config_tree(ConfigNode& base, const ConfigNode& over) {
  if (base.kind != ConfigNode::Kind::Map || over.kind != ConfigNode::Kind::Map) {
    base = over;
    return;
  }
  for (const auto& e : over.entries) {
    if (ConfigNode::Entry* b = base.find(e.key)) {
      merge_config_tree(b->value, e.value);
      b->key_pos = e.key_pos;
    } else {
      base.entries.push_back(e);
    }
  }
  base.pos = over.pos;
}

// ---- --set overrides ----

struct PathStep {
  std::string key;
  bool has_index = false;
  size_t index = 0;
};

static std::vector<PathStep> parse_override_path(const std::string& path, const std::string& spec) {
  std::vector<PathStep> steps;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string seg = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    PathStep step;
    size_t br = seg.find('[');
    if (br != std::string::npos) {
      std::string idx = seg.substr(br + 1);
      bool ok = idx.size() >= 2 && idx.back() == ']' &&
                std::all_of(idx.begin(), idx.end() - 1, [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
      if (!ok)
        throw ConfigError(strformat("--set %s: expected a list index like 'key[0]', found '%s'",
                                    spec.c_str(), seg.c_str()));
      step.has_index = true;
      step.index = std::strtoull(idx.c_str(), nullptr, 10);
      seg = seg.substr(0, br);
    }
    if (seg.empty())
      throw ConfigError(strformat("--set %s: expected section.key=value, found an empty key in '%s'",
                                  spec.c_str(), path.c_str()));
    step.key = seg;
    steps.push_back(step);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return steps;
}

void apply_config_override(ConfigNode& root, const std::string& spec) {
  size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(strformat("--set %s: expected section.key=value", spec.c_str()));
  std::string path = spec.substr(0, eq), text = spec.substr(eq + 1);
  std::vector<PathStep> steps = parse_override_path(path, spec);
  SourcePos pos{"--set " + spec, 0, 0};

  ConfigNode value;
  try {
    size_t nodes = 0;
    value = from_yaml(YAML::Load(text), pos.file, pos, path, nodes);
  } catch (const YAML::Exception& e) {
    throw ConfigError(strformat("--set %s: value is not valid YAML: %s", spec.c_str(), e.msg.c_str()));
  }
  // Every node of the value reports the override as its source.
  std::vector<ConfigNode*> stack{&value};
  while (!stack.empty()) {
    ConfigNode* n = stack.back();
    stack.pop_back();
    n->pos = pos;
    for (auto& item : n->items) stack.push_back(&item);
    for (auto& e : n->entries) {
      e.key_pos = pos;
      stack.push_back(&e.value);
    }
  }

  ConfigNode* cur = &root;
  std::string walked;
  for (size_t i = 0; i < steps.size(); ++i) {
    const PathStep& step = steps[i];
    bool last = i + 1 == steps.size();
    if (cur->kind != ConfigNode::Kind::Map) *cur = ConfigNode::make_map(pos);
    walked = join_key(walked, step.key);
    ConfigNode::Entry* e = cur->find(step.key);
    if (!step.has_index) {
      if (last) {
        if (e) {
          merge_config_tree(e->value, value);
          e->key_pos = pos;
        } else {
          cur->set(step.key, pos, value);
        }
        return;
      }
      if (!e) cur->set(step.key, pos, ConfigNode::make_map(pos));
      cur = &cur->find(step.key)->value;
      continue;
    }
    if (!e || e->value.kind != ConfigNode::Kind::List)
      throw ConfigError(strformat("--set %s: key '%s' is %s, not a list", spec.c_str(), walked.c_str(),
                                  e ? describe_found(e->value).c_str() : "not set"));
    if (step.index >= e->value.items.size())
      throw ConfigError(strformat("--set %s: index %zu is out of range for key '%s' (a list of %zu)",
                                  spec.c_str(), step.index, walked.c_str(), e->value.items.size()));
    walked += strformat("[%zu]", step.index);
    cur = &e->value.items[step.index];
    if (last) {
      merge_config_tree(*cur, value);
      return;
    }
  }
}

// ---- tree -> YAML ----

static bool is_leaf(const ConfigNode& n) {
  return n.kind == ConfigNode::Kind::Null || n.kind == ConfigNode::Kind::Scalar;
}

static void emit(YAML::Emitter& out, const ConfigNode& n, bool flow) {
  switch (n.kind) {
    case ConfigNode::Kind::Null:
      out << YAML::Null;
      break;
    case ConfigNode::Kind::Scalar:
      if (n.quoted) out << YAML::DoubleQuoted;
      out << n.scalar;
      break;
    case ConfigNode::Kind::List: {
      bool f = flow || std::all_of(n.items.begin(), n.items.end(), is_leaf);
      if (f) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const auto& item : n.items) emit(out, item, f);
      out << YAML::EndSeq;
      break;
    }
    case ConfigNode::Kind::Map:
      if (flow || n.entries.empty()) out << YAML::Flow;
      out << YAML::BeginMap;
      for (const auto& e : n.entries) {
        out << YAML::Key << e.key << YAML::Value;
        emit(out, e.value, flow);
      }
      out << YAML::EndMap;
      break;
  }
}

static std::string emit_with(const ConfigNode& node, bool flow) {
  YAML::Emitter out;
  out.SetNullFormat(YAML::LowerNull);
  emit(out, node, flow);
  ZT_ASSERT(out.good(), "yaml-cpp emitter failed: %s", out.GetLastError().c_str());
  return out.c_str();
}

std::string emit_config_yaml(const ConfigNode& root) { return emit_with(root, false) + "\n"; }

std::string emit_config_flow(const ConfigNode& node) { return emit_with(node, true); }

// ---- suggestions and errors ----

size_t edit_distance(const std::string& a, const std::string& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

static std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string nearest_key(const std::string& key, const std::vector<std::string>& candidates) {
  // A typo is at most 1 edit in a short key, 2 in a medium one, 3 in a long one.
  const size_t allowed = key.size() <= 3 ? 1 : key.size() <= 7 ? 2 : 3;
  std::string best;
  size_t best_d = allowed + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(lower(key), lower(c));
    if (d < best_d && d < std::max(key.size(), c.size())) {
      best = c;
      best_d = d;
    }
  }
  return best;
}

void config_fail_at(const SourcePos& pos, const std::string& what) {
  std::string where = pos.str();
  throw ConfigError(where.empty() ? what : where + ": " + what);
}

void config_fail(const SourcePos& pos, const std::string& key_path, const std::string& what) {
  config_fail_at(pos, "key '" + key_path + "': " + what);
}

}  // namespace zeroth
