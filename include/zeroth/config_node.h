// Configuration trees: YAML files read into a plain tree that remembers where every
// key and value came from, `defaults:` chains merged, `--set` overrides applied.
//
// Owns: reading and writing YAML (yaml-cpp stays inside src/config), the merge rules,
// the source positions every config error starts with, and "did you mean" suggestions.
// Must not: know any section or key, or convert values to C++ types; typed parsing
// lives in config_reflect.h and the sections in config.h.
//
// Merge rules: maps merge key by key (recursively); lists, scalars and null replace.
// A file's `defaults: [a.yaml, b.yaml]` (paths relative to that file, applied
// recursively) are merged in order, then the file itself, then each --set in order.
#pragma once

#include <string>
#include <vector>

namespace zeroth {

// Where a key or value came from: a file with 1-based line and column, or an
// override (file is "--set a.b=v", line 0).
struct SourcePos {
  std::string file;
  int line = 0;
  int column = 0;
  // "file:line:col", or just "file" when there is no line.
  std::string str() const;
};

// One node of a configuration tree.
struct ConfigNode {
  enum class Kind { Null, Scalar, List, Map };
  struct Entry;

  Kind kind = Kind::Null;
  std::string scalar;             // Scalar: the text as written
  bool quoted = false;            // Scalar: written (or to be written) in quotes
  std::vector<ConfigNode> items;  // List
  std::vector<Entry> entries;     // Map, in file order, keys unique
  SourcePos pos;                  // where this value starts

  static ConfigNode make_map(const SourcePos& pos);
  static ConfigNode make_scalar(const std::string& text, bool quoted, const SourcePos& pos);

  // The entry named `key` of a map, or null (also when this is not a map).
  const Entry* find(const std::string& key) const;
  Entry* find(const std::string& key);
  // Adds or replaces the entry `key` of a map.
  void set(const std::string& key, const SourcePos& key_pos, ConfigNode value);
};

struct ConfigNode::Entry {
  std::string key;
  SourcePos key_pos;  // where the key is written
  ConfigNode value;
};

// "a map", "a list", "null", a scalar's text ('abc' quoted unless it is a number or
// boolean): what an error message says it found.
std::string describe_found(const ConfigNode& node);

// Parses YAML text (the first document); `file` names it in positions and errors.
// Throws ConfigError "file:line:col: YAML syntax error: ..." on bad YAML and on a
// key given twice in one map.
ConfigNode parse_config_yaml(const std::string& text, const std::string& file);

// Reads `path`, merging the files its `defaults:` key names (recursively, relative to
// the naming file) in order and then the file itself. The result has no `defaults`
// key. Throws ConfigError on unreadable files, bad YAML, a malformed `defaults` value
// and cycles (naming the chain a.yaml -> b.yaml -> a.yaml).
ConfigNode load_config_tree(const std::string& path);

// Deep merge of `over` into `base`: maps merge key by key, everything else replaces.
void merge_config_tree(ConfigNode& base, const ConfigNode& over);

// Applies one override "a.b.c=value" (also "a.list[2].key=value"). The value is
// parsed as YAML (scalar or flow: 0.01, [1, 0.1], {k: v}, null); its position is
// "--set <spec>". Missing maps on the path are created. Throws ConfigError on a
// malformed spec or a list index that does not exist.
void apply_config_override(ConfigNode& root, const std::string& spec);

// The tree as block YAML (lists of scalars in flow style), ending with a newline.
std::string emit_config_yaml(const ConfigNode& root);
// The tree as one line of flow YAML (for docs tables).
std::string emit_config_flow(const ConfigNode& node);

// Optimal-string-alignment (Damerau-Levenshtein) distance.
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate closest to `key` when it is close enough to be a likely typo, else "".
std::string nearest_key(const std::string& key, const std::vector<std::string>& candidates);

// Throws ConfigError "<pos>: <what>".
[[noreturn]] void config_fail_at(const SourcePos& pos, const std::string& what);
// Throws ConfigError "<pos>: key '<key_path>': <what>".
[[noreturn]] void config_fail(const SourcePos& pos, const std::string& key_path,
                              const std::string& what);

}  // namespace zeroth
