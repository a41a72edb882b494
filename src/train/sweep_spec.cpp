// sweep.h: reading a sweep file and expanding it into named trials (grid axes, zip
// groups, seeded random samples, constraints).
// Must not: resolve train configs beyond what a constraint needs, or write files
// (sweep_plan.cpp does).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "zeroth/error.h"
#include "zeroth/config.h"
#include "zeroth/sweep.h"

namespace zeroth {

namespace fs = std::filesystem;

std::vector<std::string> SweepTrial::overrides() const {
  std::vector<std::string> out;
  for (const auto& p : params) out.push_back(p.first + "=" + p.second.yaml);
  return out;
}

namespace {

bool parse_double(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  const double x = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(x)) return false;
  *out = x;
  return true;
}

SweepValue value_of(const ConfigNode& node) {
  SweepValue v;
  v.yaml = emit_config_flow(node);
  if (node.kind == ConfigNode::Kind::Scalar) {
    v.label = node.scalar;
    if (!node.quoted) {
      v.is_number = parse_double(node.scalar, &v.number);
      v.is_bool = node.scalar == "true" || node.scalar == "false";
      if (v.is_bool) v.number = node.scalar == "true";
    }
  } else {
    v.label = v.yaml;
  }
  return v;
}

// Shortest "%.*g" text that reads back as x.
std::string shortest(double x) {
  for (int p = 1; p <= 17; ++p) {
    std::string s = strformat("%.*g", p, x);
    if (std::strtod(s.c_str(), nullptr) == x) return s;
  }
  return strformat("%.17g", x);
}

SweepValue number_value(double x) {
  SweepValue v;
  v.is_number = true;
  v.number = x;
  v.yaml = shortest(x);
  // A YAML float must not look like an integer where the field is a float: "1" reads as a
  // float fine in zeroth's config, so no ".0" is needed.
  v.label = v.yaml;
  return v;
}

double read_number(const ConfigNode& node, const std::string& key) {
  double x = 0;
  if (node.kind != ConfigNode::Kind::Scalar || node.quoted || !parse_double(node.scalar, &x))
    config_fail(node.pos, key, "expected a number, found " + describe_found(node));
  return x;
}

std::vector<ConfigNode> read_list(const ConfigNode& node, const std::string& key) {
  if (node.kind != ConfigNode::Kind::List || node.items.empty())
    config_fail(node.pos, key, "expected a non-empty list of values, found " + describe_found(node));
  return node.items;
}

void check_keys(const ConfigNode& map, const std::string& path, const std::vector<std::string>& allowed) {
  for (const auto& e : map.entries) {
    bool ok = false;
    for (const auto& a : allowed) ok = ok || a == e.key;
    if (!ok) {
      const std::string near = nearest_key(e.key, allowed);
      std::string what = "unknown key";
      if (!near.empty()) {
        what += "; did you mean '" + near + "'?";
      } else {
        what += "; expected one of";
        for (const auto& a : allowed) what += " '" + a + "'";
      }
      config_fail(e.key_pos, path.empty() ? e.key : path + "." + e.key, what);
    }
  }
}

const ConfigNode& expect_map(const ConfigNode& node, const std::string& key) {
  if (node.kind != ConfigNode::Kind::Map) config_fail(node.pos, key, "expected a map, found " + describe_found(node));
  return node;
}

void check_config_key(const ConfigNode::Entry& e, const std::string& section) {
  if (e.key.empty() || e.key.find('=') != std::string::npos || e.key.find(' ') != std::string::npos)
    config_fail(e.key_pos, section, "expected a config key such as 'grpo.kl_coef', found '" + e.key + "'");
}

// Path components "a.b[1].c" -> {"a", "b[1]", "c"}.
std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : key) {
    if (c == '.') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// The node at "a.b[1].c" in a config tree, or null.
const ConfigNode* find_path(const ConfigNode& root, const std::string& key) {
  const ConfigNode* node = &root;
  for (std::string comp : split_key(key)) {
    std::vector<size_t> indices;
    size_t br = comp.find('[');
    std::string name = comp.substr(0, br);
    while (br != std::string::npos) {
      const size_t close = comp.find(']', br);
      if (close == std::string::npos) return nullptr;
      indices.push_back(std::strtoul(comp.c_str() + br + 1, nullptr, 10));
      br = comp.find('[', close);
    }
    const ConfigNode::Entry* e = node->find(name);
    if (!e) return nullptr;
    node = &e->value;
    for (size_t i : indices) {
      if (node->kind != ConfigNode::Kind::List || i >= node->items.size()) return nullptr;
      node = &node->items[i];
    }
  }
  return node;
}

bool expr_value(const SweepValue& v, SweepExprValue* out) {
  if (v.is_bool) {
    out->kind = SweepExprValue::Kind::Bool;
    out->boolean = v.number != 0;
  } else if (v.is_number) {
    out->kind = SweepExprValue::Kind::Number;
    out->number = v.number;
  } else {
    out->kind = SweepExprValue::Kind::String;
    out->text = v.label;
  }
  return true;
}

// Filesystem-safe: letters, digits and . _ , = + - stay; everything else becomes '_'.
std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ',' ||
                    c == '=' || c == '+' || c == '-';
    out += ok ? c : '_';
  }
  return out;
}

}  // namespace

SweepSpec load_sweep_spec(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(strformat("%s: cannot read the sweep file", path.c_str()));
  std::stringstream text;
  text << in.rdbuf();
  const ConfigNode root = parse_config_yaml(text.str(), path);
  SweepSpec spec;
  spec.path = path;
  if (root.kind != ConfigNode::Kind::Map)
    config_fail_at(root.pos, "expected a sweep file (a map with base:, axes:, ...), found " + describe_found(root));
  check_keys(root, "", {"base", "description", "set", "axes", "zip", "random", "constraints", "metric", "mode",
                        "executor"});
  std::set<std::string> seen;  // every key set or swept, once
  auto claim = [&](const ConfigNode::Entry& e, const std::string& section) {
    check_config_key(e, section);
    if (!seen.insert(e.key).second)
      config_fail(e.key_pos, section + "." + e.key, "this key is already set or swept elsewhere in the sweep file");
  };

  const ConfigNode::Entry* base = root.find("base");
  if (!base) config_fail_at(root.pos, "missing required key 'base' (the train config the trials start from)");
  if (base->value.kind != ConfigNode::Kind::Scalar || base->value.scalar.empty())
    config_fail(base->value.pos, "base", "expected a path to a train config, found " + describe_found(base->value));
  fs::path b = base->value.scalar;
  if (b.is_relative()) b = fs::path(path).parent_path() / b;
  spec.base = b.lexically_normal().string();
  if (!fs::exists(spec.base))
    config_fail(base->value.pos, "base", "file '" + spec.base + "' does not exist (relative to the sweep file)");

  if (const auto* set = root.find("set")) {
    for (const auto& e : expect_map(set->value, "set").entries) {
      claim(e, "set");
      spec.fixed.push_back(e.key + "=" + emit_config_flow(e.value));
    }
  }
  if (const auto* axes = root.find("axes")) {
    for (const auto& e : expect_map(axes->value, "axes").entries) {
      claim(e, "axes");
      SweepSpec::Axis axis;
      axis.keys.push_back(e.key);
      axis.values.emplace_back();
      for (const auto& item : read_list(e.value, "axes." + e.key)) axis.values[0].push_back(value_of(item));
      spec.axes.push_back(std::move(axis));
    }
  }
  if (const auto* zip = root.find("zip")) {
    std::vector<const ConfigNode*> groups;
    if (zip->value.kind == ConfigNode::Kind::Map) {
      groups.push_back(&zip->value);
    } else if (zip->value.kind == ConfigNode::Kind::List) {
      for (const auto& g : zip->value.items) groups.push_back(&expect_map(g, "zip[]"));
    } else {
      config_fail(zip->value.pos, "zip", "expected a list of maps {key: [values...]}, found " + describe_found(zip->value));
    }
    for (const ConfigNode* g : groups) {
      SweepSpec::Axis axis;
      for (const auto& e : g->entries) {
        claim(e, "zip");
        std::vector<SweepValue> vals;
        for (const auto& item : read_list(e.value, "zip." + e.key)) vals.push_back(value_of(item));
        if (!axis.values.empty() && vals.size() != axis.size())
          config_fail(e.value.pos, "zip." + e.key,
                      strformat("expected %zu values (as many as '%s' in this zip group), found %zu", axis.size(),
                                axis.keys[0].c_str(), vals.size()));
        axis.keys.push_back(e.key);
        axis.values.push_back(std::move(vals));
      }
      if (axis.keys.empty()) config_fail_at(g->pos, "an empty zip group");
      spec.axes.push_back(std::move(axis));
    }
  }
  if (const auto* random = root.find("random")) {
    const ConfigNode& r = expect_map(random->value, "random");
    check_keys(r, "random", {"count", "seed", "params"});
    const auto* count = r.find("count");
    if (!count) config_fail_at(r.pos, "key 'random': missing required key 'random.count'");
    const double c = read_number(count->value, "random.count");
    if (c < 1 || c != std::floor(c) || c > 100000)
      config_fail(count->value.pos, "random.count", "expected an integer in [1, 100000], found " + count->value.scalar);
    spec.random_count = static_cast<int64_t>(c);
    if (const auto* seed = r.find("seed")) {
      const double s = read_number(seed->value, "random.seed");
      if (s < 0 || s != std::floor(s))
        config_fail(seed->value.pos, "random.seed", "expected an integer >= 0, found " + seed->value.scalar);
      spec.random_seed = std::strtoull(seed->value.scalar.c_str(), nullptr, 10);
    }
    const auto* params = r.find("params");
    if (!params) config_fail_at(r.pos, "key 'random': missing required key 'random.params'");
    for (const auto& e : expect_map(params->value, "random.params").entries) {
      claim(e, "random.params");
      const std::string key = "random.params." + e.key;
      const ConfigNode& d = expect_map(e.value, key);
      if (d.entries.size() != 1)
        config_fail(d.pos, key, "expected one of {uniform: [lo, hi]}, {log_uniform: [lo, hi]}, "
                                "{randint: [lo, hi]}, {choice: [values...]}");
      check_keys(d, key, {"uniform", "log_uniform", "randint", "choice"});
      SweepSpec::RandomParam p;
      p.key = e.key;
      p.kind = d.entries[0].key;
      const ConfigNode& args = d.entries[0].value;
      const std::string akey = key + "." + p.kind;
      if (p.kind == "choice") {
        for (const auto& item : read_list(args, akey)) p.choices.push_back(value_of(item));
      } else {
        const auto lohi = read_list(args, akey);
        if (lohi.size() != 2) config_fail(args.pos, akey, strformat("expected [lo, hi], found %zu values", lohi.size()));
        p.lo = read_number(lohi[0], akey);
        p.hi = read_number(lohi[1], akey);
        if (!(p.lo <= p.hi)) config_fail(args.pos, akey, "expected lo <= hi");
        if (p.kind == "log_uniform" && p.lo <= 0) config_fail(args.pos, akey, "expected 0 < lo <= hi");
        if (p.kind == "randint" && (p.lo != std::floor(p.lo) || p.hi != std::floor(p.hi)))
          config_fail(args.pos, akey, "expected integer bounds");
      }
      spec.random.push_back(std::move(p));
    }
    if (spec.random.empty()) config_fail_at(params->value.pos, "key 'random.params': expected at least one parameter");
  }
  if (const auto* cons = root.find("constraints")) {
    std::vector<ConfigNode> items;
    if (cons->value.kind == ConfigNode::Kind::Scalar) {
      items.push_back(cons->value);
    } else {
      items = read_list(cons->value, "constraints");
    }
    for (const auto& c : items) {
      if (c.kind != ConfigNode::Kind::Scalar)
        config_fail(c.pos, "constraints", "expected an expression such as 'grpo.clip_high >= grpo.clip_low', found " +
                                              describe_found(c));
      spec.constraints.push_back({c.scalar, c.pos});
    }
  }
  if (const auto* m = root.find("metric")) {
    if (m->value.kind != ConfigNode::Kind::Scalar || m->value.scalar.empty())
      config_fail(m->value.pos, "metric", "expected a metric name such as 'eval_accuracy', found " + describe_found(m->value));
    spec.metric = m->value.scalar;
  }
  if (const auto* m = root.find("mode")) {
    if (m->value.scalar != "max" && m->value.scalar != "min")
      config_fail(m->value.pos, "mode", "expected one of 'max', 'min', found " + describe_found(m->value));
    spec.mode = m->value.scalar;
  }
  if (const auto* ex = root.find("executor")) {
    const ConfigNode& x = expect_map(ex->value, "executor");
    check_keys(x, "executor", {"name", "parallel", "np", "sbatch"});
    if (const auto* n = x.find("name")) {
      const std::string& s = n->value.scalar;
      if (s != "local" && s != "mpirun" && s != "slurm")
        config_fail(n->value.pos, "executor.name", "expected one of 'local', 'mpirun', 'slurm', found " +
                                                       describe_found(n->value));
      spec.executor.name = s;
    }
    if (const auto* n = x.find("parallel")) {
      const double v = read_number(n->value, "executor.parallel");
      if (v < 0 || v != std::floor(v)) config_fail(n->value.pos, "executor.parallel", "expected an integer >= 0");
      spec.executor.parallel = static_cast<int>(v);
    }
    if (const auto* n = x.find("np")) {
      const double v = read_number(n->value, "executor.np");
      if (v < 1 || v != std::floor(v)) config_fail(n->value.pos, "executor.np", "expected an integer >= 1");
      spec.executor.np = static_cast<int>(v);
    }
    if (const auto* n = x.find("sbatch")) {
      for (const auto& item : read_list(n->value, "executor.sbatch")) {
        if (item.kind != ConfigNode::Kind::Scalar || item.scalar.compare(0, 2, "--") != 0)
          config_fail(item.pos, "executor.sbatch", "expected an sbatch option such as '--nodes=4', found " +
                                                       describe_found(item));
        spec.executor.sbatch.push_back(item.scalar);
      }
    }
  }
  return spec;
}

// Trial names: each swept key shortened to its last component ("kl_coef"), or to as many
// trailing components as make it unique among the swept keys ("clip.high", "ref.high").
static std::vector<std::string> short_keys(const std::vector<std::string>& keys) {
  std::vector<std::vector<std::string>> comps;
  for (const auto& k : keys) comps.push_back(split_key(k));
  std::vector<size_t> n(keys.size(), 1);
  auto suffix = [&](size_t i) {
    std::string s;
    const size_t m = std::min(n[i], comps[i].size());
    for (size_t j = comps[i].size() - m; j < comps[i].size(); ++j) s += (s.empty() ? "" : ".") + comps[i][j];
    return s;
  };
  for (bool changed = true; changed;) {
    changed = false;
    std::map<std::string, std::vector<size_t>> groups;
    for (size_t i = 0; i < keys.size(); ++i) groups[suffix(i)].push_back(i);
    for (const auto& g : groups) {
      if (g.second.size() < 2) continue;
      for (size_t i : g.second)
        if (n[i] < comps[i].size()) {
          ++n[i];
          changed = true;
        }
    }
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < keys.size(); ++i) out.push_back(suffix(i));
  return out;
}

std::vector<SweepTrial> expand_sweep(const SweepSpec& spec, int* rejected) {
  // Grid points: the cartesian product of the axes, first axis slowest.
  std::vector<std::vector<std::pair<std::string, SweepValue>>> points(1);
  for (const auto& axis : spec.axes) {
    std::vector<std::vector<std::pair<std::string, SweepValue>>> next;
    for (const auto& p : points)
      for (size_t i = 0; i < axis.size(); ++i) {
        auto q = p;
        for (size_t k = 0; k < axis.keys.size(); ++k) q.emplace_back(axis.keys[k], axis.values[k][i]);
        next.push_back(std::move(q));
      }
    points = std::move(next);
  }
  // Random samples, drawn in order from one seeded stream (4 significant digits, so the
  // value in the config is the one in the name).
  std::vector<std::vector<std::pair<std::string, SweepValue>>> samples(1);
  if (spec.random_count > 0) {
    samples.clear();
    std::mt19937_64 rng(spec.random_seed);
    auto uniform01 = [&rng] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };
    for (int64_t s = 0; s < spec.random_count; ++s) {
      std::vector<std::pair<std::string, SweepValue>> sample;
      for (const auto& p : spec.random) {
        const double u = uniform01();
        if (p.kind == "choice") {
          const size_t i = std::min(p.choices.size() - 1, static_cast<size_t>(u * p.choices.size()));
          sample.emplace_back(p.key, p.choices[i]);
        } else if (p.kind == "randint") {
          const double x = std::min(p.hi, p.lo + std::floor(u * (p.hi - p.lo + 1)));
          sample.emplace_back(p.key, number_value(x));
        } else {
          const double x = p.kind == "uniform" ? p.lo + u * (p.hi - p.lo)
                                               : std::exp(std::log(p.lo) + u * (std::log(p.hi) - std::log(p.lo)));
          sample.emplace_back(p.key, number_value(std::strtod(strformat("%.4g", x).c_str(), nullptr)));
        }
      }
      samples.push_back(std::move(sample));
    }
  }

  // Names of non-swept keys in constraints come from the base config with `set:` applied.
  bool have_base = false;
  ConfigNode base_tree;
  auto base_lookup = [&](const std::string& name, SweepExprValue* out) {
    if (!have_base) {
      base_tree = parse_config_yaml(dump_config_yaml(load_config(spec.base, spec.fixed)), spec.base);
      have_base = true;
    }
    const ConfigNode* n = find_path(base_tree, name);
    if (!n || n->kind != ConfigNode::Kind::Scalar) return false;
    return expr_value(value_of(*n), out);
  };

  std::vector<SweepTrial> trials;
  int dropped = 0;
  for (const auto& p : points)
    for (const auto& s : samples) {
      SweepTrial t;
      t.params = p;
      t.params.insert(t.params.end(), s.begin(), s.end());
      bool keep = true;
      for (const auto& c : spec.constraints) {
        auto lookup = [&](const std::string& name, SweepExprValue* out) {
          for (const auto& kv : t.params)
            if (kv.first == name) return expr_value(kv.second, out);
          return base_lookup(name, out);
        };
        try {
          keep = keep && eval_sweep_constraint(c.text, lookup);
        } catch (const ConfigError& e) {
          config_fail_at(c.pos, e.what());
        }
      }
      if (!keep) {
        ++dropped;
        continue;
      }
      t.index = static_cast<int>(trials.size());
      trials.push_back(std::move(t));
    }
  if (rejected) *rejected = dropped;
  if (trials.empty())
    throw ConfigError(strformat("%s: no trial is left (%d rejected by the constraints)", spec.path.c_str(), dropped));

  // Names.
  std::vector<std::string> keys;
  for (const auto& kv : trials[0].params) keys.push_back(kv.first);
  const std::vector<std::string> shorts = short_keys(keys);
  std::map<std::string, int> count;
  for (auto& t : trials) {
    std::string name;
    for (size_t i = 0; i < t.params.size(); ++i)
      name += (i ? "," : "") + shorts[i] + "=" + t.params[i].second.label;
    name = sanitize(name);
    if (name.empty()) name = "base";
    if (name.size() > 120) name = name.substr(0, 100) + strformat("~%d", t.index);
    if (name == "." || name == "..") name = "trial_" + name;
    t.name = name;
    ++count[name];
  }
  for (auto& t : trials)
    if (count[t.name] > 1) t.name += strformat("-t%d", t.index);
  return trials;
}

}  // namespace zeroth
