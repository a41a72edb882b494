// The `rewards:` section (rewards.h): cross-field validation and the mapping onto the
// verifiers' own option structs. Must not: parse YAML (config_reflect.h does, from the
// structs' visit lists) or score anything.
#include <cctype>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "zeroth/error.h"
#include "zeroth/rewards.h"

namespace zeroth {

RewardsLimitsConfig RewardsLimitsConfig::from(const SandboxLimits& l) {
  RewardsLimitsConfig c;
  c.wall_seconds = l.wall_seconds;
  c.cpu_seconds = l.cpu_seconds;
  c.memory_bytes = l.memory_bytes;
  c.max_processes = l.max_processes;
  c.file_size_bytes = l.file_size_bytes;
  c.open_files = l.open_files;
  c.tmp_bytes = l.tmp_bytes;
  c.output_bytes = l.output_bytes;
  return c;
}

SandboxLimits RewardsLimitsConfig::to_limits() const {
  SandboxLimits l;
  l.wall_seconds = wall_seconds;
  l.cpu_seconds = cpu_seconds;
  l.memory_bytes = memory_bytes;
  l.max_processes = max_processes;
  l.file_size_bytes = file_size_bytes;
  l.open_files = open_files;
  l.tmp_bytes = tmp_bytes;
  l.output_bytes = output_bytes;
  return l;
}

void RewardsConfig::validate() const {
  if (functions.empty())
    throw ConfigError("key 'rewards.functions': expected at least one reward function, found none (every "
                      "completion would score 0)");
  bool any_weight = false;
  for (const RewardFunctionConfig& f : functions) any_weight = any_weight || f.weight != 0.0;
  if (!any_weight)
    throw ConfigError("key 'rewards.functions': expected a non-zero weight on at least one function, found all 0 "
                      "(every completion would score 0)");
  std::set<std::string> seen;
  for (size_t i = 0; i < functions.size(); ++i) {
    const RewardFunctionConfig& f = functions[i];
    const std::string key = strformat("key 'rewards.functions[%zu]", i);
    if (!seen.insert(f.name).second)
      throw ConfigError(strformat("%s.name': expected each function once, found '%s' again (its "
                                  "components would share one name)", key.c_str(), f.name.c_str()));
    if (!std::isfinite(f.weight))
      throw ConfigError(strformat("%s.weight': expected a finite number, found %g", key.c_str(), f.weight));
    if (f.name == "cosine") {
      const std::pair<const char*, double> ends[] = {{"correct_short", f.correct_short},
                                                     {"correct_long", f.correct_long},
                                                     {"wrong_short", f.wrong_short},
                                                     {"wrong_long", f.wrong_long}};
      for (const auto& e : ends)
        if (!std::isfinite(e.second))
          throw ConfigError(strformat("%s.%s': expected a finite number, found %g", key.c_str(), e.first, e.second));
    }
    Script script;
    if (f.name == "language" && !parse_script(f.script, &script))
      throw ConfigError(strformat("%s.script': expected one of en/latin, zh/han, ru/cyrillic, ar/arabic, "
                                  "hi/devanagari, ko/hangul, ja/kana, found '%s'",
                                  key.c_str(), f.script.c_str()));
  }
  if (has_python()) {
    if (python.path.empty())
      throw ConfigError("key 'rewards.python.path': expected the Python file that defines the reward function "
                        "(the `python` entry of rewards.functions needs it), found none");
    if (python.function.empty())
      throw ConfigError("key 'rewards.python.function': expected a function name, found ''");
    std::set<std::string> keys;
    for (size_t i = 0; i < python.metrics.size(); ++i) {
      const std::string& k = python.metrics[i];
      if (k.empty() || k == "score" || k == "correct" || !keys.insert(k).second)
        throw ConfigError(strformat("key 'rewards.python.metrics[%zu]': expected a key of the returned dict other "
                                    "than score and correct, each once, found '%s'", i, k.c_str()));
    }
    if (!(python.timeout_seconds > 0) || !std::isfinite(python.timeout_seconds))
      throw ConfigError(strformat("key 'rewards.python.timeout_seconds': expected a positive number of seconds, "
                                  "found %g", python.timeout_seconds));
  }
  try {
    validate_math_verify_options(math_options());
  } catch (const ConfigError& e) {
    throw ConfigError(std::string("key 'rewards.math': ") + e.what());
  }
  const std::pair<const char*, const std::string*> tags[] = {
      {"think_open", &format.think_open}, {"think_close", &format.think_close},
      {"answer_open", &format.answer_open}, {"answer_close", &format.answer_close}};
  std::set<std::string> distinct;
  for (const auto& t : tags) {
    if (t.second->empty())
      throw ConfigError(strformat("key 'rewards.format.%s': expected a non-empty tag, found ''", t.first));
    if (!distinct.insert(*t.second).second)
      throw ConfigError(strformat("key 'rewards.format.%s': expected four distinct tags, found '%s' twice",
                                  t.first, t.second->c_str()));
  }
  const std::pair<const char*, const RewardsLimitsConfig*> limits[] = {{"limits", &code.limits},
                                                                       {"compile_limits", &code.compile_limits}};
  for (const auto& l : limits)
    if (!(l.second->wall_seconds > 0) || !std::isfinite(l.second->wall_seconds))
      throw ConfigError(strformat("key 'rewards.code.%s.wall_seconds': expected a positive number of "
                                  "seconds, found %g", l.first, l.second->wall_seconds));
}

void RewardsConfig::resolve_lengths(int64_t max_new_tokens) {
  for (RewardFunctionConfig& f : functions)
    if (f.name == "cosine" && f.max_len == 0) f.max_len = max_new_tokens;
}

bool RewardsConfig::needs_num_tokens() const {
  for (const RewardFunctionConfig& f : functions)
    if (f.name == "cosine" || f.name == "length_penalty") return true;
  return false;
}

std::string RewardsPythonConfig::kwargs_json() const {
  nlohmann::json o = nlohmann::json::object();
  for (const auto& [key, text] : kwargs) {
    nlohmann::json v = text;  // a string, unless the YAML scalar is a number, a bool or null
    if (text == "true" || text == "false" || text == "null") {
      v = nlohmann::json::parse(text);
    } else if (text == "~") {
      v = nullptr;
    } else if (!text.empty() && (std::isdigit((unsigned char)text[0]) || text[0] == '-' || text[0] == '.')) {
      const nlohmann::json n = nlohmann::json::parse(text, nullptr, false);
      if (n.is_number()) v = n;
    }
    o[key] = v;
  }
  return o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool RewardsConfig::has_python() const {
  for (const RewardFunctionConfig& f : functions)
    if (f.name == "python") return true;
  return false;
}

CosineLengthParams RewardFunctionConfig::cosine_params() const {
  CosineLengthParams p;
  p.correct_short = correct_short;
  p.correct_long = correct_long;
  p.wrong_short = wrong_short;
  p.wrong_long = wrong_long;
  p.max_len = max_len;
  return p;
}

MathVerifyOptions RewardsConfig::math_options() const {
  MathVerifyOptions o;
  o.extractors = math.extractors;
  o.rel_tol = math.rel_tol;
  o.abs_tol = math.abs_tol;
  o.ordered_lists = math.ordered_lists;
  return o;
}

FormatTags RewardsConfig::format_tags() const {
  FormatTags t;
  t.think_open = format.think_open;
  t.think_close = format.think_close;
  t.answer_open = format.answer_open;
  t.answer_close = format.answer_close;
  t.think_open_in_prompt = format.think_open_in_prompt;
  return t;
}

SandboxConfig RewardsConfig::sandbox_config() const {
  SandboxConfig s;
  bool ok = parse_sandbox_mode(code.sandbox, &s.mode);
  ZT_ASSERT(ok, "sandbox mode '%s' passed one_of", code.sandbox.c_str());
  s.max_concurrent = code.max_concurrent;
  s.limits = code.limits.to_limits();
  return s;
}

CodeRewardConfig RewardsConfig::code_reward_config() const {
  CodeRewardConfig c;
  c.fractional = code.fractional;
  c.accept_unlabelled = code.accept_unlabelled;
  c.run_limits = code.limits.to_limits();
  c.compile_limits = code.compile_limits.to_limits();
  return c;
}

bool parse_reward_kind(const std::string& s, RewardKind* out) {
  if (s == "math") *out = RewardKind::Math;
  else if (s == "code") *out = RewardKind::Code;
  else return false;
  return true;
}

const char* reward_kind_name(RewardKind kind) { return kind == RewardKind::Math ? "math" : "code"; }

}  // namespace zeroth
