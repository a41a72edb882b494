// Prompt JSONL -> PromptRecords (prompt_data.h): the field mapping, gold-answer
// extractors, code tests, the eval split, overlap removal and the prompt-length filter.
// Must not: order or shard prompts (prompt_data_sampler.cpp) or generate data
// (prompt_data_demo.cpp).
#include <algorithm>
#include <fstream>
#include <numeric>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/io_util.h"
#include "zeroth/error.h"
#include "zeroth/log.h"
#include "zeroth/math_verify.h"
#include "zeroth/prompt.h"
#include "zeroth/prompt_data.h"
#include "zeroth/tokenizer.h"

namespace zeroth {
namespace {

using json = nlohmann::json;

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string found_text(const json* v) {
  if (v == nullptr) return "no such key";
  if (v->is_string()) return "the string " + v->dump().substr(0, 60);
  return std::string("a ") + v->type_name();
}

[[noreturn]] void field_fail(const std::string& where, const std::string& field, const char* config_key,
                             const std::string& expected, const json* found) {
  throw DataError(strformat("%s: field \"%s\" (%s): expected %s, found %s", where.c_str(), field.c_str(),
                            config_key, expected.c_str(), found_text(found).c_str()));
}

const json* find(const json& obj, const std::string& key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// Code tests: a list of assert strings, or a reward-schema tests object (parsed by the
// reward JSONL reader, so both schemas give the same errors).
CodeProblem read_tests(const json& obj, const PromptSourceConfig& src, const std::string& where,
                       const std::string& key) {
  const json* t = find(obj, src.tests_field);
  CodeProblem p;
  if (t != nullptr && t->is_object()) {
    json line = {{"kind", "code"}, {"completion", ""}, {"tests", *t}};
    try {
      p = parse_reward_sample(line.dump(), where).problem;
    } catch (const DataError& e) {
      throw DataError(strformat("%s (field \"%s\", %s.tests_field)", e.what(), src.tests_field.c_str(),
                                key.c_str()));
    }
  } else {
    if (t == nullptr || !t->is_array() || t->empty())
      field_fail(where, src.tests_field, (key + ".tests_field").c_str(),
                 "a non-empty list of assert statements or a tests object", t);
    for (size_t i = 0; i < t->size(); ++i) {
      if (!(*t)[i].is_string())
        field_fail(where, src.tests_field + "[" + std::to_string(i) + "]", (key + ".tests_field").c_str(),
                   "a string", &(*t)[i]);
      p.asserts.push_back((*t)[i].get<std::string>());
    }
    p.language = CodeLanguage::Python;
  }
  if (const json* s = find(obj, src.setup_field); s != nullptr && !s->is_null()) {
    if (!s->is_string()) field_fail(where, src.setup_field, (key + ".setup_field").c_str(), "a string", s);
    if (!s->get_ref<const std::string&>().empty()) {
      if (!p.stdio_cases.empty())
        throw DataError(strformat("%s: field \"%s\" (%s.setup_field): setup code belongs to assert-style "
                                  "tests, found it with stdio tests", where.c_str(), src.setup_field.c_str(),
                                  key.c_str()));
      p.test_setup_code = s->get<std::string>();
    }
  }
  return p;
}

void append_hash(uint64_t& h, const std::string& s) {
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  h ^= 0xff;  // separator
  h *= 0x100000001b3ull;
}

}  // namespace

std::string extract_gold_answer(const std::string& text, const std::string& extractor) {
  if (extractor == "none") return trim(text);
  if (extractor == "gsm8k") {
    const size_t at = text.rfind("#### ");
    if (at == std::string::npos) return "";
    size_t end = text.find('\n', at);
    std::string a = text.substr(at + 5, end == std::string::npos ? std::string::npos : end - at - 5);
    a.erase(std::remove(a.begin(), a.end(), ','), a.end());
    return trim(a);
  }
  ZT_ASSERT(extractor == "boxed", "unknown answer extractor '%s'", extractor.c_str());
  MathVerifyOptions opts;
  opts.extractors = {"boxed"};
  const auto a = extract_answer(text, opts);
  return a ? trim(*a) : "";
}

PromptDataset load_prompt_source(const PromptSourceConfig& src, const std::string& key) {
  RewardKind kind = RewardKind::Math;
  if (!parse_reward_kind(src.kind, &kind))
    throw ConfigError(strformat("key '%s.kind': expected 'math' or 'code', found '%s'", key.c_str(),
                                src.kind.c_str()));
  io::check_input_file(src.path, strformat("a JSONL prompt file (%s.path)", key.c_str()));
  std::ifstream in(src.path, std::ios::binary);
  if (!in)
    throw DataError(strformat("%s: cannot open the prompt file (%s.path) for reading", src.path.c_str(),
                              key.c_str()));
  PromptDataset ds;
  std::string line;
  for (long long lineno = 1; std::getline(in, line); ++lineno) {
    if (src.limit > 0 && ds.stats.read >= src.limit) break;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = strformat("%s:%lld", src.path.c_str(), lineno);
    const json obj = io::parse_json_input<json>(line, where);
    if (!obj.is_object())
      throw DataError(strformat("%s: expected a JSON object, found a %s", where.c_str(), obj.type_name()));
    ++ds.stats.read;
    PromptRecord r;
    r.where = where;
    r.kind = kind;
    const json* p = find(obj, src.prompt_field);
    if (p == nullptr || !p->is_string() || trim(p->get<std::string>()).empty())
      field_fail(where, src.prompt_field, (key + ".prompt_field").c_str(), "a non-empty string", p);
    r.prompt = p->get<std::string>();
    if (kind == RewardKind::Math) {
      const json* a = find(obj, src.answer_field);
      std::string text;
      if (a != nullptr && a->is_string()) text = a->get<std::string>();
      else if (a != nullptr && a->is_number()) text = a->dump();
      else field_fail(where, src.answer_field, (key + ".answer_field").c_str(), "a string or a number", a);
      r.gold = extract_gold_answer(text, src.answer_extractor);
      if (r.gold.empty()) {
        ++ds.stats.no_answer;
        continue;
      }
    } else {
      r.problem = read_tests(obj, src, where, key);
      if (src.tests_in_prompt) {
        if (r.problem.asserts.empty())
          throw DataError(strformat("%s: %s.tests_in_prompt needs assert-style tests, found stdio tests",
                                    where.c_str(), key.c_str()));
        r.prompt += "\nYour code should pass these tests:\n";
        for (const auto& t : r.problem.asserts) r.prompt += "\n" + t;
      }
    }
    for (const auto& item : obj.items()) {
      if (item.value().is_string()) r.fields[item.key()] = item.value().get<std::string>();
      else if (item.value().is_number() || item.value().is_boolean()) r.fields[item.key()] = item.value().dump();
    }
    r.fields["prompt"] = r.prompt;
    r.record_json = obj.dump();
    ds.records.push_back(std::move(r));
  }
  if (in.bad()) throw DataError(strformat("%s: read error", src.path.c_str()));
  return ds;
}

bool PromptDataset::weighted() const {
  for (double w : source_weights)
    if (w > 0) return true;
  return false;
}

uint64_t PromptDataset::fingerprint() const {
  uint64_t h = 0xcbf29ce484222325ull;
  if (weighted())  // (an unweighted set keeps the fingerprint it had before weights existed)
    for (double w : source_weights) append_hash(h, strformat("weight %.17g", w));
  for (const auto& r : records) {
    append_hash(h, reward_kind_name(r.kind));
    append_hash(h, r.prompt);
    append_hash(h, r.gold);
    append_hash(h, r.problem.test_setup_code);
    for (const auto& a : r.problem.asserts) append_hash(h, a);
    for (const auto& c : r.problem.stdio_cases) {
      append_hash(h, c.input);
      append_hash(h, c.expected_output);
    }
  }
  return h;
}

std::vector<int64_t> prompts_per_source(const PromptDataset& ds, int64_t n) {
  std::vector<int64_t> counts(ds.source_names.size(), 0);
  if (counts.empty()) return counts;  // a dataset built without sources (tests)
  const int64_t end = n < 0 ? ds.size() : std::min(n, ds.size());
  for (int64_t i = 0; i < end; ++i) {
    const int32_t s = ds.records[size_t(i)].source;
    ZT_ASSERT(s >= 0 && size_t(s) < counts.size(), "prompt source %d of %zu", int(s), counts.size());
    ++counts[size_t(s)];
  }
  return counts;
}

bool warn_unevaluated_sources(const PromptDataset& ds, int64_t n, const char* key) {
  const std::vector<int64_t> all = prompts_per_source(ds, -1), first = prompts_per_source(ds, n);
  std::string names;
  for (size_t s = 0; s < all.size(); ++s)
    if (all[s] > 0 && first[s] == 0) names += (names.empty() ? "" : ", ") + ds.source_names[s];
  if (names.empty()) return false;
  ZT_LOG_WARN("%s %lld keeps the first %lld eval prompts, none of source(s) %s: give each eval source a `limit` "
              "instead to evaluate a part of every one",
              key, (long long)n, (long long)n, names.c_str());
  return true;
}

static PromptDataset load_pooled(const std::vector<PromptSourceConfig>& sources, const char* key) {
  PromptDataset pool;
  for (size_t i = 0; i < sources.size(); ++i) {
    PromptDataset one = load_prompt_source(sources[i], strformat("prompts.%s[%zu]", key, i));
    pool.stats.read += one.stats.read;
    pool.stats.no_answer += one.stats.no_answer;
    pool.source_names.push_back(prompt_source_name(sources[i]));
    pool.source_weights.push_back(sources[i].weight);
    for (auto& r : one.records) {
      r.source = int32_t(i);
      pool.records.push_back(std::move(r));
    }
  }
  return pool;
}

static void filter_long(PromptDataset& ds, int64_t max_tokens, const Tokenizer& tok, const PromptTemplate& tmpl,
                        bool add_special, int64_t max_len) {
  std::vector<PromptRecord> kept;
  for (auto& r : ds.records) {
    const int64_t n = int64_t(encode_prompt(tok, tmpl.render(r.fields, r.where), add_special, r.where).size());
    if (max_tokens > 0 && n > max_tokens) {
      ++ds.stats.too_long;
      continue;
    }
    if (max_len > 0 && (n < 1 || n > max_len - 1))
      throw DataError(strformat("%s: the rendered prompt has %lld tokens; rollout.max_len %lld leaves room for 1 to "
                                "%lld (the prompt and at least one new token): raise rollout.max_len, or set "
                                "prompts.max_prompt_tokens to drop longer prompts",
                                r.where.c_str(), (long long)n, (long long)max_len, (long long)(max_len - 1)));
    ds.stats.max_prompt_tokens_seen = std::max(ds.stats.max_prompt_tokens_seen, n);
    kept.push_back(std::move(r));
  }
  ds.records = std::move(kept);
}

PromptData load_prompt_data(const PromptDataConfig& config, const Tokenizer* tokenizer, const PromptTemplate* tmpl,
                            bool add_special_tokens, int64_t max_len) {
  config.validate();
  if (config.sources.empty())
    throw ConfigError("key 'prompts.sources': expected at least one prompt file, found none");
  PromptData out;
  out.train = load_pooled(config.sources, "sources");
  if (!config.eval_sources.empty()) {
    out.eval = load_pooled(config.eval_sources, "eval_sources");
  } else if (config.eval_count > 0 || config.eval_fraction > 0) {
    const int64_t n = int64_t(out.train.records.size());
    const int64_t held = config.eval_count > 0 ? config.eval_count : int64_t(config.eval_fraction * double(n));
    if (held == 0)
      ZT_LOG_WARN("prompts.eval_fraction %g of %lld prompts rounds down to 0: no eval set", config.eval_fraction,
                  (long long)n);
    if (held >= n)
      throw DataError(strformat("prompts.eval_count: holding out %lld of the %lld training prompts leaves "
                                "none to train on", (long long)held, (long long)n));
    // The first `held` of a seeded permutation are eval; the rest keep their file order.
    BatchSampler perm(n, rng_stream_key(config.split_seed, "eval_split"), true);
    std::vector<int64_t> order = perm.epoch_order(0);
    std::vector<char> is_eval(size_t(n), 0);
    for (int64_t i = 0; i < held; ++i) is_eval[size_t(order[size_t(i)])] = 1;
    std::sort(order.begin(), order.begin() + held);
    std::vector<PromptRecord> train;
    out.eval.source_names = out.train.source_names;
    for (int64_t i = 0; i < held; ++i) out.eval.records.push_back(out.train.records[size_t(order[size_t(i)])]);
    for (int64_t i = 0; i < n; ++i)
      if (!is_eval[size_t(i)]) train.push_back(std::move(out.train.records[size_t(i)]));
    out.train.records = std::move(train);
  }
  if (!out.eval.records.empty()) {  // a training prompt never equals an eval prompt
    std::unordered_set<std::string> eval_prompts;
    for (const auto& r : out.eval.records) eval_prompts.insert(trim(r.prompt));
    std::vector<PromptRecord> train;
    for (auto& r : out.train.records) {
      if (eval_prompts.count(trim(r.prompt))) ++out.train.stats.overlap_dropped;
      else train.push_back(std::move(r));
    }
    out.train.records = std::move(train);
  }
  const int64_t eval_before = int64_t(out.eval.records.size());
  if (tokenizer != nullptr && tmpl != nullptr) {
    filter_long(out.train, config.max_prompt_tokens, *tokenizer, *tmpl, add_special_tokens, max_len);
    filter_long(out.eval, config.max_prompt_tokens, *tokenizer, *tmpl, add_special_tokens, max_len);
  } else {
    ZT_ASSERT(config.max_prompt_tokens == 0, "max_prompt_tokens needs a tokenizer and a template");
  }
  if (config.eval_limit > 0 && out.eval.size() > config.eval_limit) {
    warn_unevaluated_sources(out.eval, config.eval_limit, "prompts.eval_limit");
    out.eval.records.resize(size_t(config.eval_limit));
  }
  if (out.train.records.empty())
    throw DataError(strformat("prompts.sources: expected at least one training prompt, found none (%lld read, "
                              "%lld without an answer, %lld equal to an eval prompt, %lld over "
                              "max_prompt_tokens = %lld)",
                              (long long)out.train.stats.read, (long long)out.train.stats.no_answer,
                              (long long)out.train.stats.overlap_dropped, (long long)out.train.stats.too_long,
                              (long long)config.max_prompt_tokens));
  // An eval set that was asked for and had prompts, but that the filters emptied.
  if (out.eval.records.empty() && (eval_before > 0 || !config.eval_sources.empty()))
    throw DataError(strformat("prompts: the eval set is empty (%lld prompt(s) held out or read, %lld without an "
                              "answer, %lld over max_prompt_tokens = %lld)",
                              (long long)std::max<int64_t>(eval_before, out.eval.stats.read),
                              (long long)out.eval.stats.no_answer, (long long)out.eval.stats.too_long,
                              (long long)config.max_prompt_tokens));
  return out;
}

}  // namespace zeroth
