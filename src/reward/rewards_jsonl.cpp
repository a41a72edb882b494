// The reward JSONL schema (rewards.h parse_reward_sample, docs/rewards.md): one line
// -> one RewardSample, with DataErrors naming the line and the key. Shared by
// `zeroth reward` and dataset loaders. Must not: score anything or read files.
#include <nlohmann/json.hpp>

#include "io/io_util.h"
#include "zeroth/error.h"
#include "zeroth/rewards.h"

namespace zeroth {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& where, const std::string& key, const std::string& expected,
                       const json* found) {
  std::string f = found == nullptr ? "nothing (missing key)" : std::string("a ") + found->type_name();
  if (found != nullptr && found->is_string()) f = "the string " + found->dump().substr(0, 60);
  throw DataError(strformat("%s: \"%s\": expected %s, found %s", where.c_str(), key.c_str(),
                            expected.c_str(), f.c_str()));
}

const json* find(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string get_string(const json& obj, const char* key, const std::string& where, const std::string& path) {
  const json* v = find(obj, key);
  if (v == nullptr || !v->is_string()) fail(where, path, "a string", v);
  return v->get<std::string>();
}

std::vector<std::string> get_strings(const json& obj, const char* key, const std::string& where,
                                     const std::string& path) {
  const json* v = find(obj, key);
  if (v == nullptr || !v->is_array()) fail(where, path, "a list of strings", v);
  std::vector<std::string> out;
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string()) fail(where, path + "[" + std::to_string(i) + "]", "a string", &(*v)[i]);
    out.push_back((*v)[i].get<std::string>());
  }
  return out;
}

CodeProblem parse_tests(const json& t, const std::string& where, CodeLanguage default_language) {
  if (!t.is_object()) fail(where, "tests", "an object with \"asserts\" or \"stdio\"", &t);
  const bool asserts = t.contains("asserts"), stdio = t.contains("stdio");
  if (asserts == stdio)
    throw DataError(strformat("%s: \"tests\": expected exactly one of \"asserts\" and \"stdio\", found %s",
                              where.c_str(), asserts ? "both" : "neither"));
  for (const auto& item : t.items()) {
    static const char* const kKnown[] = {"asserts", "setup", "imports", "stdio", "language"};
    bool known = false;
    for (const char* k : kKnown) known = known || item.key() == k;
    if (!known)
      throw DataError(strformat("%s: \"tests\": unknown key \"%s\" (expected asserts, setup, imports, stdio, "
                                "language)", where.c_str(), item.key().c_str()));
  }
  CodeProblem p;
  p.language = default_language;
  if (const json* lang = find(t, "language")) {
    if (!lang->is_string() || !parse_code_language(lang->get<std::string>(), &p.language))
      fail(where, "tests.language", "\"python\" or \"cpp\"", lang);
  }
  if (asserts) {
    if (find(t, "language") != nullptr && p.language != CodeLanguage::Python)
      throw DataError(strformat("%s: \"tests.language\": assert-style tests are Python, found \"cpp\"",
                                where.c_str()));
    p.language = CodeLanguage::Python;
    p.asserts = get_strings(t, "asserts", where, "tests.asserts");
    if (p.asserts.empty()) fail(where, "tests.asserts", "a non-empty list", find(t, "asserts"));
    if (t.contains("setup")) p.test_setup_code = get_string(t, "setup", where, "tests.setup");
    if (t.contains("imports")) p.test_imports = get_strings(t, "imports", where, "tests.imports");
    return p;
  }
  if (t.contains("setup") || t.contains("imports"))
    throw DataError(strformat("%s: \"tests\": \"setup\" and \"imports\" belong to assert-style tests, found "
                              "them with \"stdio\"", where.c_str()));
  const json& cases = t["stdio"];
  if (!cases.is_array() || cases.empty()) fail(where, "tests.stdio", "a non-empty list of {input, output}", &cases);
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string path = "tests.stdio[" + std::to_string(i) + "]";
    if (!cases[i].is_object()) fail(where, path, "an object {\"input\": ..., \"output\": ...}", &cases[i]);
    StdioCase c;
    c.input = get_string(cases[i], "input", where, path + ".input");
    c.expected_output = get_string(cases[i], "output", where, path + ".output");
    p.stdio_cases.push_back(std::move(c));
  }
  return p;
}

}  // namespace

RewardSample parse_reward_sample(const std::string& json_line, const std::string& where,
                                 CodeLanguage default_language) {
  const json obj = io::parse_json_input<json>(json_line, where);
  if (!obj.is_object())
    throw DataError(strformat("%s: expected a JSON object, found a %s", where.c_str(), obj.type_name()));
  RewardSample s;
  const json* kind = find(obj, "kind");
  if (kind == nullptr || !kind->is_string() || !parse_reward_kind(kind->get<std::string>(), &s.kind))
    fail(where, "kind", "\"math\" or \"code\"", kind);
  s.completion = get_string(obj, "completion", where, "completion");
  if (s.kind == RewardKind::Math) {
    const json* gold = find(obj, "gold");
    if (gold != nullptr && gold->is_string()) s.gold = gold->get<std::string>();
    else if (gold != nullptr && gold->is_number()) s.gold = gold->dump();
    else fail(where, "gold", "a string or a number (math samples)", gold);
  } else {
    const json* tests = find(obj, "tests");
    if (tests == nullptr) fail(where, "tests", "an object with \"asserts\" or \"stdio\" (code samples)", tests);
    s.problem = parse_tests(*tests, where, default_language);
  }
  if (const json* tokens = find(obj, "tokens")) {
    if (!tokens->is_number_integer() || tokens->get<int64_t>() < 0)
      fail(where, "tokens", "a non-negative integer (the completion's token count)", tokens);
    s.num_tokens = tokens->get<int64_t>();
  }
  // What a python reward function receives besides (the rollout dumps write these).
  if (const json* source = find(obj, "source")) {
    if (!source->is_string()) fail(where, "source", "a string (the prompt's source name)", source);
    s.source = source->get<std::string>();
  }
  if (const json* prompt = find(obj, "prompt")) {
    if (!prompt->is_string()) fail(where, "prompt", "a string (the text the model continued)", prompt);
    s.prompt = prompt->get<std::string>();
  }
  if (const json* extra = find(obj, "extra_info"))
    s.extra_info = extra->dump(-1, ' ', false, json::error_handler_t::replace);
  return s;
}

std::string code_tests_json(const CodeProblem& p) {
  json t = json::object();
  if (!p.asserts.empty()) {
    t["asserts"] = p.asserts;
    if (!p.test_setup_code.empty()) t["setup"] = p.test_setup_code;
    if (!p.test_imports.empty()) t["imports"] = p.test_imports;
  } else {
    json cases = json::array();
    for (const StdioCase& c : p.stdio_cases) cases.push_back({{"input", c.input}, {"output", c.expected_output}});
    t["stdio"] = cases;
  }
  t["language"] = code_language_name(p.language);
  return t.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace zeroth
