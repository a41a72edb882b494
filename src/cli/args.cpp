// cli.h: flag parsing shared by every subcommand.
#include <algorithm>

#include "cli/cli.h"
#include "zeroth/error.h"

namespace zeroth {
namespace cli {

static bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

Args::Args(const std::string& command, const std::vector<std::string>& argv,
           const std::vector<std::string>& known, const std::vector<std::string>& boolean,
           const std::vector<std::string>& repeatable)
    : command_(command) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "-h" || a == "--help") {
      help_ = true;
      continue;
    }
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      positional_.push_back(a);
      continue;
    }
    std::string key = a.substr(2), value;
    bool has_value = false;
    size_t eq = key.find('=');
    if (eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
      has_value = true;
    }
    if (!contains(known, key) && !contains(boolean, key))
      throw UsageError(strformat("unknown option '--%s' (see 'zeroth %s --help')", key.c_str(),
                                 command.c_str()));
    if (contains(boolean, key)) {
      if (has_value)
        throw UsageError(strformat("option '--%s' takes no value", key.c_str()));
    } else if (!has_value) {
      if (i + 1 >= argv.size())
        throw UsageError(strformat("option '--%s' needs a value", key.c_str()));
      value = argv[++i];
    }
    auto& slot = values_[key];
    if (!slot.empty() && !contains(repeatable, key))
      throw UsageError(strformat("option '--%s' given twice", key.c_str()));
    slot.push_back(value);
  }
}

bool Args::has(const std::string& key) const { return values_.count(key) > 0; }

std::string Args::get(const std::string& key, const std::string& fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second.back();
}

std::string Args::required(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end())
    throw UsageError(strformat("missing required option '--%s'", key.c_str()));
  return it->second.back();
}

const std::vector<std::string>& Args::all(const std::string& key) const {
  static const std::vector<std::string> empty;
  auto it = values_.find(key);
  return it == values_.end() ? empty : it->second;
}

int64_t parse_int_flag(const std::string& name, const std::string& v, int64_t min) {
  size_t pos = 0;
  long long x = 0;
  try {
    x = std::stoll(v, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (v.empty() || pos != v.size() || x < min)
    throw UsageError(strformat("--%s: expected an integer >= %lld, found '%s'", name.c_str(),
                               (long long)min, v.c_str()));
  return x;
}

}  // namespace cli
}  // namespace zeroth
