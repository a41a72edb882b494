// `zeroth reward`: score completions with the configured rewards (rewards.h).
//   batch:  --input FILE.jsonl --output OUT.jsonl   each line (docs/rewards.md schema)
//           written back with "reward", "verdict", "components" (and "extracted" for
//           math); prints per-verdict counts and the mean reward and components.
//   single: --completion TEXT --gold ANSWER         one math check, printed.
// --group-by KEYS makes lines with equal values of those keys one group (length_penalty
// is relative to the group); the rollout dumps of zeroth train score again as they are.
// The rewards come from --config (a file with a top-level `rewards:` section; a full run
// config works too, its other sections are ignored here), --set rewards.<key>=<value>,
// and the shortcuts --extractors and --format.
// Must not: contain reward logic (RewardComposer does) or the line schema
// (parse_reward_sample does). Errors: a bad input line is a DataError naming file:line;
// every line is checked before anything runs.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/io_util.h"
#include "cli/cli.h"
#include "zeroth/config_node.h"
#include "zeroth/config_reflect.h"
#include "zeroth/error.h"
#include "zeroth/rewards.h"
#include "zeroth/rollout_config.h"

namespace zeroth {
namespace cli {

int cmd_reward(const std::vector<std::string>& args);

static const char kRewardUsage[] =
    "usage: zeroth reward --input FILE.jsonl --output OUT.jsonl [options]\n"
    "       zeroth reward --completion TEXT --gold ANSWER [options]\n"
    "\n"
    "  --input FILE       JSONL, one sample per line:\n"
    "                       {\"kind\": \"math\", \"completion\": ..., \"gold\": ...}\n"
    "                       {\"kind\": \"code\", \"completion\": ..., \"tests\": {\"asserts\": [...], \"setup\": ...}}\n"
    "                       {\"kind\": \"code\", \"completion\": ..., \"tests\": {\"stdio\": [{\"input\": ...,\n"
    "                        \"output\": ...}], \"language\": \"python\"|\"cpp\"}}\n"
    "  --output OUT       JSONL: each input line plus \"reward\", \"verdict\", \"components\"\n"
    "                     (and \"extracted\" for math)\n"
    "                     Optional \"tokens\": the completion's token count (cosine and\n"
    "                     length_penalty need it). The rollout dumps (rollouts/*.jsonl) are inputs.\n"
    "  --group-by KEYS    comma-separated keys: lines with equal values form one group, the\n"
    "                     completions of one prompt (length_penalty compares within it), e.g.\n"
    "                     round,prompt_index for rollouts/step_N.jsonl; default: no groups\n"
    "  --completion TEXT  score one math completion against --gold ANSWER\n"
    "  --tokens N         the completion's token count (with --completion)\n"
    "  --config FILE      YAML with a `rewards:` section (default: R1-Zero, accuracy 1 + format 1);\n"
    "                     a cosine max_len of 0 is its rollout.max_new_tokens\n"
    "  --set KEY=VALUE    override a key, e.g. --set rewards.code.fractional=true (repeatable)\n"
    "  --extractors LIST  math answer extractors in order, e.g. boxed,answer_tag,last_number\n"
    "  --format MODE      format reward: strict, lenient or none (removes it)\n"
    "\n"
    "docs/rewards.md describes the schema, the reward functions and the verdicts.\n";

namespace {

// A rewards-only config: `rewards:` at the top level.
struct RewardCliConfig {
  RewardsConfig rewards;
  template <class V>
  void visit(V& v) {
    v.field("rewards", rewards, "Reward functions, math verifier, format tags, code sandbox");
  }
};

// rollout.max_new_tokens of a full run config (what a cosine max_len of 0 means there),
// else the rollout section's default.
int64_t rollout_max_new_tokens(const ConfigNode& root) {
  int64_t value = RolloutConfig().max_new_tokens;
  const ConfigNode::Entry* rollout = root.kind == ConfigNode::Kind::Map ? root.find("rollout") : nullptr;
  const ConfigNode::Entry* e = rollout != nullptr ? rollout->value.find("max_new_tokens") : nullptr;
  if (e == nullptr) return value;
  char* end = nullptr;
  const long long v = e->value.kind == ConfigNode::Kind::Scalar ? std::strtoll(e->value.scalar.c_str(), &end, 10) : 0;
  if (end == nullptr || *end != '\0' || e->value.scalar.empty() || v < 1)
    throw ConfigError(strformat("%s: key 'rollout.max_new_tokens': expected a positive integer, found %s",
                                e->value.pos.str().c_str(), describe_found(e->value).c_str()));
  return int64_t(v);
}

RewardsConfig load_rewards(const Args& args) {
  ConfigNode root;
  if (args.has("config")) {
    root = load_config_tree(args.get("config"));
  } else {
    root = ConfigNode::make_map(SourcePos{"<command line>", 0, 0});
  }
  std::vector<std::string> overrides = args.all("set");
  if (args.has("extractors")) {
    std::string list = args.get("extractors");
    overrides.push_back("rewards.math.extractors=[" + list + "]");
  }
  for (const auto& o : overrides) {
    if (o.compare(0, 8, "rewards.") != 0)
      throw UsageError(strformat("--set %s: expected a key under rewards. (zeroth reward reads only the "
                                 "rewards section)", o.c_str()));
    apply_config_override(root, o);
  }
  // Keep only the rewards section, so a full run config can be given.
  ConfigNode only = ConfigNode::make_map(root.pos);
  if (root.kind == ConfigNode::Kind::Map)
    if (const ConfigNode::Entry* e = root.find("rewards")) only.set("rewards", e->key_pos, e->value);
  RewardCliConfig cfg;
  read_config_tree(only, cfg);
  cfg.rewards.resolve_lengths(rollout_max_new_tokens(root));

  if (args.has("format")) {
    const std::string mode = args.get("format");
    if (mode != "strict" && mode != "lenient" && mode != "none")
      throw UsageError(strformat("--format: expected strict, lenient or none, found '%s'", mode.c_str()));
    auto& fns = cfg.rewards.functions;
    auto it = fns.begin();
    while (it != fns.end() && it->name != "format") ++it;
    if (mode == "none") {
      if (it != fns.end()) fns.erase(it);
    } else if (it != fns.end()) {
      it->variant = mode;
    } else {
      fns.push_back(RewardFunctionConfig{"format", 1.0, mode, "en"});
    }
  }
  return cfg.rewards;
}

nlohmann::ordered_json components_json(const RewardResult& r) {
  nlohmann::ordered_json c = nlohmann::ordered_json::object();
  for (const auto& comp : r.components) c[comp.name] = comp.value;
  return c;
}

int64_t parse_tokens_flag(const std::string& text) {
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < 0)
    throw UsageError(strformat("--tokens: expected a non-negative integer, found '%s'", text.c_str()));
  return int64_t(v);
}

// --group-by: the group id of each line (lines with equal values of the keys share one).
std::vector<int64_t> group_ids(const std::vector<nlohmann::ordered_json>& objs, const std::string& keys_arg,
                               const std::vector<std::string>& wheres) {
  std::vector<std::string> keys;
  for (size_t start = 0;;) {
    const size_t comma = keys_arg.find(',', start);
    keys.push_back(keys_arg.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (keys.back().empty())
      throw UsageError(strformat("--group-by: expected comma-separated keys, found '%s'", keys_arg.c_str()));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  std::map<std::string, int64_t> ids;
  std::vector<int64_t> out;
  for (size_t i = 0; i < objs.size(); ++i) {
    std::string id;
    for (const std::string& k : keys) {
      auto it = objs[i].find(k);
      if (it == objs[i].end())
        throw DataError(strformat("%s: \"%s\": expected a value to group by (--group-by), found nothing "
                                  "(missing key)", wheres[i].c_str(), k.c_str()));
      id += it->dump() + '\n';
    }
    out.push_back(ids.emplace(id, int64_t(ids.size())).first->second);
  }
  return out;
}

int run_single(const Args& args, const RewardComposer& composer) {
  RewardSample s;
  s.kind = RewardKind::Math;
  s.completion = args.get("completion");
  s.gold = args.required("gold");
  if (args.has("tokens")) s.num_tokens = parse_tokens_flag(args.get("tokens"));
  RewardResult r = composer.score(s);
  std::printf("verdict    %s\n", r.verdict.c_str());
  std::printf("extracted  %s\n", r.extracted.empty() ? "(none)" : r.extracted.c_str());
  std::printf("format_ok  %s\n", r.format_ok ? "true" : "false");
  for (const auto& c : r.components)
    std::printf("%-10s %g (weight %g)\n", c.name.c_str(), c.value, c.weight);
  std::printf("reward     %g\n", r.reward);
  return 0;
}

int run_batch(const Args& args, const RewardComposer& composer) {
  const std::string input = args.required("input");
  const std::string output = args.required("output");
  io::check_input_file(input, "a JSONL file");
  io::check_output_file(output, "output");
  CodeLanguage default_lang = CodeLanguage::Python;
  bool ok = parse_code_language(composer.config().code.language, &default_lang);
  ZT_ASSERT(ok, "code.language passed one_of");

  std::ifstream in(input);
  if (!in) throw DataError(strformat("%s: cannot open for reading", input.c_str()));
  std::vector<nlohmann::ordered_json> objs;
  std::vector<RewardSample> samples;
  std::vector<std::string> wheres;
  std::string text;
  for (long long lineno = 1; std::getline(in, text); ++lineno) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    wheres.push_back(strformat("%s:%lld", input.c_str(), lineno));
    samples.push_back(parse_reward_sample(text, wheres.back(), default_lang));
    objs.push_back(io::parse_json_input<nlohmann::ordered_json>(text, wheres.back()));
    if (samples.back().num_tokens < 0 && composer.config().needs_num_tokens())
      throw DataError(strformat("%s: \"tokens\": expected the completion's token count (the cosine and "
                                "length_penalty rewards need it), found nothing (missing key)",
                                wheres.back().c_str()));
  }
  if (in.bad()) throw DataError(strformat("%s: read failed", input.c_str()));

  const std::vector<int64_t> groups =
      args.has("group-by") ? group_ids(objs, args.get("group-by"), wheres) : std::vector<int64_t>{};
  std::vector<RewardResult> results = composer.score_batch(samples, groups);

  io::write_file_atomic(output, [&](std::ostream& out) {
    for (size_t i = 0; i < results.size(); ++i) {
      nlohmann::ordered_json& o = objs[i];
      o["reward"] = results[i].reward;
      o["verdict"] = results[i].verdict;
      o["components"] = components_json(results[i]);
      if (samples[i].kind == RewardKind::Math) o["extracted"] = results[i].extracted;
      // (a dump scored again: a reward_error or python_extra it has is the old config's)
      o.erase("reward_error");
      o.erase("python_extra");
      if (!results[i].reward_error.empty()) o["reward_error"] = results[i].reward_error;
      if (!results[i].python_extra.empty()) o["python_extra"] = results[i].python_extra;
      out << o.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
    }
  });

  // Summary: counts per kind and verdict, mean reward and components.
  std::map<std::string, int64_t> counts;
  double total = 0.0;
  std::vector<double> comp_sum(composer.config().functions.size(), 0.0);
  for (size_t i = 0; i < results.size(); ++i) {
    ++counts[std::string(reward_kind_name(samples[i].kind)) + "." + results[i].verdict];
    if (!results[i].reward_error.empty()) ++counts["python.failed_calls"];
    total += results[i].reward;
    for (size_t k = 0; k < comp_sum.size(); ++k) comp_sum[k] += results[i].components[k].value;
  }
  const double n = results.empty() ? 1.0 : double(results.size());
  std::printf("%zu samples -> %s\n", results.size(), output.c_str());
  for (const auto& c : counts)
    std::printf("  %-22s %8lld  %5.1f%%\n", c.first.c_str(), (long long)c.second, 100.0 * double(c.second) / n);
  std::printf("mean reward %.4f", total / n);
  for (size_t k = 0; k < comp_sum.size(); ++k)
    std::printf("  %s %.4f", composer.config().functions[k].name.c_str(), comp_sum[k] / n);
  std::printf("\n");
  return 0;
}

}  // namespace

int cmd_reward(const std::vector<std::string>& argv) {
  Args args("reward", argv,
            {"input", "output", "completion", "gold", "tokens", "group-by", "config", "set", "extractors", "format"},
            {}, {"set"});
  if (args.help()) {
    std::printf("%s", kRewardUsage);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(strformat("unexpected argument '%s' (see 'zeroth reward --help')",
                               args.positional()[0].c_str()));
  const bool single = args.has("completion"), batch = args.has("input") || args.has("output");
  if (single == batch)
    throw UsageError(single ? "expected either --completion/--gold or --input/--output, found both"
                            : "expected --input FILE --output OUT, or --completion TEXT --gold ANSWER "
                              "(see 'zeroth reward --help')");
  if (!single && args.has("gold"))
    throw UsageError("--gold goes with --completion; batch gold answers are in the input lines");
  if (!single && args.has("tokens"))
    throw UsageError("--tokens goes with --completion; batch token counts are the lines' \"tokens\"");
  if (single && args.has("group-by")) throw UsageError("--group-by goes with --input (batch mode)");
  RewardComposer composer(load_rewards(args));
  return single ? run_single(args, composer) : run_batch(args, composer);
}

}  // namespace cli
}  // namespace zeroth
