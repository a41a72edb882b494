// Tests of the RL prompt data (prompt_data.h): gold-answer extractors, loading JSONL with
// a field mapping (inline fixtures and the first lines of ../shared/data), errors naming
// file:line and the field, the `prompts:` config section and configs/data/*.yaml, the
// eval split, the prompt-length filter, the sampler's cursor resume and data-parallel
// sharding.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "zeroth/config.h"
#include "zeroth/error.h"
#include "zeroth/prompt.h"
#include "zeroth/prompt_data.h"
#include "zeroth/tokenizer.h"

using namespace zeroth;
namespace fs = std::filesystem;

static const std::string kSrc = ZEROTH_SOURCE_DIR;
static const std::string kShared = ZEROTH_SHARED_DATA_DIR;

static std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("zeroth_test_prompt_data_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

static std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// n math prompts "TAG i" with answer i, as JSONL.
static std::string numbered_prompts(const std::string& tag, int n) {
  std::string text;
  for (int i = 0; i < n; ++i)
    text += "{\"prompt\": \"" + tag + " " + std::to_string(i) + "\", \"answer\": \"" + std::to_string(i) + "\"}\n";
  return text;
}

// A config with only the `prompts:` section, as `zeroth train` will hold it.
struct PromptsOnly {
  PromptDataConfig prompts;
  template <class V>
  void visit(V& v) {
    v.field("prompts", prompts, "RL prompts");
  }
};

static PromptDataConfig parse_prompts(const std::string& yaml) {
  PromptsOnly c;
  read_config_tree(parse_config_yaml(yaml, "test.yaml"), c);
  return c.prompts;
}

static std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_CASE("gold-answer extractors: none, gsm8k, boxed") {
  CHECK(extract_gold_answer("  42 \n", "none") == "42");
  CHECK(extract_gold_answer("a\n#### 7\nb\n#### 1,234\n", "gsm8k") == "1234");
  CHECK(extract_gold_answer("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72", "gsm8k") == "72");
  CHECK(extract_gold_answer("no marker here", "gsm8k").empty());
  CHECK(extract_gold_answer("first \\boxed{3} then \\boxed{\\frac{1}{2}}.", "boxed") == "\\frac{1}{2}");
  CHECK(extract_gold_answer("so $\\boxed{x^{2}+1}$", "boxed") == "x^{2}+1");
  CHECK(extract_gold_answer("nothing boxed", "boxed").empty());
}

TEST_CASE("prompt sources load math and code records with their field mapping") {
  const std::string dir = temp_dir("load");
  SECTION("gsm8k-style: the answer after ####, other fields kept for the template") {
    PromptSourceConfig s;
    s.path = write_file(dir, "g.jsonl",
                        "{\"question\": \"How many?\", \"answer\": \"2+3=5\\n#### 5\", \"level\": 2}\n"
                        "\n"
                        "{\"question\": \"Big?\", \"answer\": \"#### 1,000\"}\n");
    s.prompt_field = "question";
    s.answer_extractor = "gsm8k";
    const PromptDataset ds = load_prompt_source(s, "prompts.sources[0]");
    REQUIRE(ds.size() == 2);
    CHECK(ds.records[0].prompt == "How many?");
    CHECK(ds.records[0].gold == "5");
    CHECK(ds.records[0].kind == RewardKind::Math);
    CHECK(ds.records[0].where == s.path + ":1");
    CHECK(ds.records[0].fields.at("prompt") == "How many?");
    CHECK(ds.records[0].fields.at("level") == "2");
    CHECK(ds.records[1].gold == "1000");
    CHECK(ds.records[1].where == s.path + ":3");
    CHECK(ds.stats.read == 2);
  }
  SECTION("boxed solutions, numeric answers, dropped empty answers and limit") {
    PromptSourceConfig s;
    s.path = write_file(dir, "m.jsonl",
                        "{\"problem\": \"p1\", \"solution\": \"so \\\\boxed{\\\\frac{3}{4}}\"}\n"
                        "{\"problem\": \"p2\", \"solution\": \"no box\"}\n"
                        "{\"problem\": \"p3\", \"solution\": \"\\\\boxed{7}\"}\n"
                        "{\"problem\": \"p4\", \"solution\": \"\\\\boxed{8}\"}\n");
    s.prompt_field = "problem";
    s.answer_field = "solution";
    s.answer_extractor = "boxed";
    s.limit = 3;
    const PromptDataset ds = load_prompt_source(s, "prompts.sources[0]");
    REQUIRE(ds.size() == 2);
    CHECK(ds.records[0].gold == "\\frac{3}{4}");
    CHECK(ds.records[1].gold == "7");
    CHECK(ds.stats.read == 3);
    CHECK(ds.stats.no_answer == 1);

    s.path = write_file(dir, "n.jsonl", "{\"prompt\": \"q\", \"answer\": 12.5}\n");
    s.prompt_field = "prompt";
    s.answer_field = "answer";
    s.answer_extractor = "none";
    s.limit = 0;
    CHECK(load_prompt_source(s, "k").records.at(0).gold == "12.5");
  }
  SECTION("code: MBPP test_list + setup, tests in the prompt, or a reward-schema tests object") {
    PromptSourceConfig s;
    s.kind = "code";
    s.prompt_field = "text";
    s.tests_in_prompt = true;
    s.path = write_file(dir, "c.jsonl",
                        "{\"text\": \"Write f.\", \"test_list\": [\"assert f(1) == 2\", \"assert f(2) == 3\"], "
                        "\"test_setup_code\": \"import math\"}\n");
    PromptDataset ds = load_prompt_source(s, "k");
    REQUIRE(ds.size() == 1);
    const PromptRecord& r = ds.records[0];
    CHECK(r.kind == RewardKind::Code);
    CHECK(r.problem.asserts == std::vector<std::string>{"assert f(1) == 2", "assert f(2) == 3"});
    CHECK(r.problem.test_setup_code == "import math");
    CHECK(r.prompt == "Write f.\nYour code should pass these tests:\n\nassert f(1) == 2\nassert f(2) == 3");
    CHECK(r.gold.empty());

    s.tests_in_prompt = false;
    s.tests_field = "tests";
    s.path = write_file(dir, "c2.jsonl",
                        "{\"text\": \"Echo.\", \"tests\": {\"stdio\": [{\"input\": \"1\\n\", \"output\": \"1\"}], "
                        "\"language\": \"cpp\"}}\n");
    ds = load_prompt_source(s, "k");
    REQUIRE(ds.size() == 1);
    CHECK(ds.records[0].problem.language == CodeLanguage::Cpp);
    REQUIRE(ds.records[0].problem.stdio_cases.size() == 1);
    CHECK(ds.records[0].problem.stdio_cases[0].expected_output == "1");
    CHECK(ds.records[0].prompt == "Echo.");
  }
}

TEST_CASE("prompt loading errors are DataErrors naming file:line and the field") {
  const std::string dir = temp_dir("errors");
  PromptSourceConfig s;
  s.prompt_field = "question";
  auto load = [&](const std::string& text) {
    s.path = write_file(dir, "e.jsonl", text);
    return error_of([&] { load_prompt_source(s, "prompts.sources[0]"); });
  };
  const std::string ok = "{\"question\": \"q\", \"answer\": \"1\"}\n";
  std::string e = load(ok + "{\"question\": \"q\", \"answer\": \n");
  CHECK_THAT(e, Catch::Contains("e.jsonl:2: invalid JSON"));
  e = load(ok + ok + "{\"prompt\": \"q\", \"answer\": \"1\"}\n");
  CHECK_THAT(e, Catch::Contains("e.jsonl:3: field \"question\" (prompts.sources[0].prompt_field)"));
  CHECK_THAT(e, Catch::Contains("no such key"));
  e = load("{\"question\": \"q\", \"answer\": [1]}\n");
  CHECK_THAT(e, Catch::Contains("e.jsonl:1: field \"answer\" (prompts.sources[0].answer_field): expected a "
                                "string or a number, found a array"));
  e = load("{\"question\": \"  \", \"answer\": \"1\"}\n");
  CHECK_THAT(e, Catch::Contains("expected a non-empty string"));
  e = load("[1, 2]\n");
  CHECK_THAT(e, Catch::Contains("e.jsonl:1: expected a JSON object, found a array"));
  // A number out of range and nesting that would overflow the stack: invalid JSON too.
  e = load("{\"question\": \"q\", \"answer\": 1e999}\n");
  CHECK_THAT(e, Catch::Contains("e.jsonl:1: invalid JSON: ") && Catch::Contains("number overflow"));
  e = load("{\"question\": \"q\", \"answer\": \"1\", \"x\": " + std::string(100000, '[') + std::string(100000, ']') + "}\n");
  CHECK_THAT(e, Catch::Contains("e.jsonl:1: invalid JSON: nested deeper than 256 levels"));
  e = load("{\"question\": \"q\", \"answer\": \"1\", \"x\": " + std::string(200, '[') + std::string(200, ']') + "}\n");
  CHECK(e == "(no error)");
  // A key given twice: the parser would keep one of them silently.
  e = load("{\"question\": \"q\", \"answer\": \"1\", \"question\": \"other\"}\n");
  CHECK_THAT(e, Catch::Contains("e.jsonl:1: invalid JSON: key \"question\" given twice in one object"));
  e = load("{\"question\": \"q\", \"answer\": \"1\", \"meta\": {\"a\": 1, \"b\": {\"a\": 2}}, \"a\": 3}\n");
  CHECK(e == "(no error)");  // the same key in different objects is fine

  s.kind = "code";
  e = load("{\"question\": \"q\", \"test_list\": \"assert f()\"}\n");
  CHECK_THAT(e, Catch::Contains("e.jsonl:1: field \"test_list\" (prompts.sources[0].tests_field)"));
  e = load("{\"question\": \"q\", \"test_list\": [\"assert 1\", 5]}\n");
  CHECK_THAT(e, Catch::Contains("field \"test_list[1]\""));
  s.tests_field = "tests";
  e = load("{\"question\": \"q\", \"tests\": {\"asserts\": [\"a\"], \"stdio\": []}}\n");
  CHECK_THAT(e, Catch::Contains("e.jsonl:1: \"tests\": expected exactly one of"));

  s.path = dir + "/missing.jsonl";
  CHECK_THAT(error_of([&] { load_prompt_source(s, "prompts.sources[0]"); }),
             Catch::Contains("missing.jsonl: cannot open the prompt file (prompts.sources[0].path)"));
  CHECK_THROWS_AS(load_prompt_source(s, "k"), DataError);
}

TEST_CASE("the prompts: section parses, names bad keys, and rejects two eval sets") {
  const PromptDataConfig c = parse_prompts(
      "prompts:\n"
      "  sources:\n"
      "    - {path: a.jsonl, prompt_field: question, answer_extractor: gsm8k}\n"
      "  eval_count: 10\n");
  REQUIRE(c.sources.size() == 1);
  CHECK(c.sources[0].prompt_field == "question");
  CHECK(c.sources[0].answer_extractor == "gsm8k");
  CHECK(c.eval_count == 10);
  CHECK(c.shuffle);

  CHECK_THAT(error_of([] { parse_prompts("prompts:\n  sources:\n    - {path: a, answer_extractor: hash}\n"); }),
             Catch::Contains("prompts.sources[0].answer_extractor"));
  CHECK_THAT(error_of([] { parse_prompts("prompts:\n  sources:\n    - {kind: math}\n"); }),
             Catch::Contains("prompts.sources[0].path"));
  CHECK_THAT(error_of([] { parse_prompts("prompts:\n  eval_cout: 3\n"); }), Catch::Contains("eval_count"));
  const std::string e = error_of([] { parse_prompts("prompts:\n  eval_count: 3\n  eval_fraction: 0.1\n"); });
  CHECK_THAT(e, Catch::Contains("key 'prompts.eval_fraction': expected at most one of"));
  CHECK_THROWS_AS(parse_prompts("prompts:\n  eval_count: 3\n  eval_fraction: 0.1\n"), ConfigError);
  CHECK_THROWS_AS(load_prompt_data(PromptDataConfig{}), ConfigError);  // no sources
}

TEST_CASE("the eval split holds out a seeded subset disjoint from training and eval files drop overlaps") {
  const std::string dir = temp_dir("split");
  std::string text;
  for (int i = 0; i < 50; ++i) text += "{\"prompt\": \"problem " + std::to_string(i) + "\", \"answer\": \"" +
                                       std::to_string(i) + "\"}\n";
  PromptDataConfig c;
  c.sources.resize(1);
  c.sources[0].path = write_file(dir, "all.jsonl", text);
  c.eval_count = 10;
  const PromptData a = load_prompt_data(c);
  CHECK(a.eval.size() == 10);
  CHECK(a.train.size() == 40);
  std::set<std::string> eval_prompts, train_prompts;
  for (const auto& r : a.eval.records) eval_prompts.insert(r.prompt);
  for (const auto& r : a.train.records) train_prompts.insert(r.prompt);
  CHECK(eval_prompts.size() == 10);
  CHECK(train_prompts.size() == 40);
  for (const auto& p : eval_prompts) CHECK(train_prompts.count(p) == 0);
  // The training prompts keep their file order; the eval set is not just the first ten.
  CHECK(a.train.records.front().prompt != "problem 10");
  // Same split_seed, same split (whatever the run seed); another split_seed, another split.
  CHECK(load_prompt_data(c).eval.fingerprint() == a.eval.fingerprint());
  c.split_seed = 99;
  CHECK(load_prompt_data(c).eval.fingerprint() != a.eval.fingerprint());

  c.eval_count = 0;
  c.eval_fraction = 0.2;
  CHECK(load_prompt_data(c).eval.size() == 10);
  c.eval_fraction = 0;
  c.eval_count = 50;
  CHECK_THROWS_AS(load_prompt_data(c), DataError);

  c.eval_count = 0;
  c.eval_sources.resize(1);
  c.eval_sources[0].path = write_file(dir, "eval.jsonl",
                                      "{\"prompt\": \"problem 3\", \"answer\": \"3\"}\n"
                                      "{\"prompt\": \"problem 77\", \"answer\": \"77\"}\n"
                                      "{\"prompt\": \"problem 4 \", \"answer\": \"4\"}\n");
  c.eval_limit = 2;
  const PromptData b = load_prompt_data(c);
  CHECK(b.eval.size() == 2);
  CHECK(b.train.size() == 48);
  CHECK(b.train.stats.overlap_dropped == 2);
}

TEST_CASE("prompt sources are named for per-source metrics and every record knows its source") {
  // Default names: the file name without .jsonl/.json, odd characters as '_'.
  PromptSourceConfig s;
  s.path = "data/gsm8k/test.jsonl";
  CHECK(prompt_source_name(s) == "test");
  s.path = "math 500.json";
  CHECK(prompt_source_name(s) == "math_500");
  s.path = "dir/aime.2024";
  CHECK(prompt_source_name(s) == "aime.2024");
  s.name = "aime";
  CHECK(prompt_source_name(s) == "aime");

  // Two sources with one name, and a name metrics cannot carry, are config errors.
  CHECK_THAT(error_of([] {
               parse_prompts("prompts:\n  sources:\n    - {path: a/train.jsonl}\n    - {path: b/train.jsonl}\n");
             }),
             Catch::Contains("prompts.sources[1].name") && Catch::Contains("'train'") &&
                 Catch::Contains("prompts.sources[0]"));
  CHECK_THAT(error_of([] {
               parse_prompts("prompts:\n  sources:\n    - {path: a.jsonl}\n  eval_sources:\n"
                             "    - {path: b.jsonl, name: 'gsm 8k'}\n");
             }),
             Catch::Contains("prompts.eval_sources[0].name") && Catch::Contains("'gsm 8k'"));
  CHECK(parse_prompts("prompts:\n  sources:\n    - {path: a/train.jsonl}\n    - {path: b/train.jsonl, name: b}\n")
            .sources[1]
            .name == "b");

  const std::string dir = temp_dir("names");
  PromptDataConfig c;
  c.sources.resize(2);
  c.sources[0].path = write_file(dir, "first.jsonl", numbered_prompts("first", 30));
  c.sources[1].path = write_file(dir, "second.jsonl", numbered_prompts("second", 20));
  c.sources[1].name = "two";
  c.eval_count = 10;
  const PromptData held = load_prompt_data(c);
  CHECK(held.train.source_names == std::vector<std::string>{"first", "two"});
  CHECK(held.eval.source_names == held.train.source_names);  // held out of the training sources
  for (const PromptDataset* ds : {&held.train, &held.eval})
    for (const PromptRecord& r : ds->records)
      CHECK(r.source == (r.prompt.rfind("first", 0) == 0 ? 0 : 1));
  const std::vector<int64_t> counts = prompts_per_source(held.train, -1);
  CHECK(counts[0] + counts[1] == 40);
  CHECK(prompts_per_source(held.train, 3) == std::vector<int64_t>{3, 0});
  CHECK(prompts_per_source(PromptDataset{}, -1).empty());

  c.eval_count = 0;
  c.eval_sources.resize(2);
  c.eval_sources[0].path = write_file(dir, "eval_a.jsonl", numbered_prompts("eval a", 4));
  c.eval_sources[1].path = write_file(dir, "eval_b.jsonl", numbered_prompts("eval b", 3));
  const PromptData files = load_prompt_data(c);
  CHECK(files.eval.source_names == std::vector<std::string>{"eval_a", "eval_b"});
  CHECK(prompts_per_source(files.eval, -1) == std::vector<int64_t>{4, 3});
  CHECK(warn_unevaluated_sources(files.eval, 4, "eval.max_prompts"));  // none of eval_b
  CHECK_FALSE(warn_unevaluated_sources(files.eval, 5, "eval.max_prompts"));
  // eval_limit keeps the first prompts (here only eval_a's): per-source limits spread it.
  c.eval_limit = 4;
  CHECK(prompts_per_source(load_prompt_data(c).eval, -1) == std::vector<int64_t>{4, 0});
}

TEST_CASE("weighted sources: each epoch mixes them by weight, every prompt comes round, and a cursor resumes the mix") {
  CHECK(mix_quotas({1, 3}, 10) == std::vector<int64_t>{3, 7});  // 2.5 / 7.5: the tie to the first
  CHECK(mix_quotas({1, 1, 1}, 10) == std::vector<int64_t>{4, 3, 3});
  CHECK(mix_quotas({0.2, 0.8}, 36) == std::vector<int64_t>{7, 29});  // 7.2 / 28.8

  const std::string dir = temp_dir("mix");
  PromptDataConfig c;
  c.sources.resize(2);
  c.sources[0].path = write_file(dir, "big.jsonl", numbered_prompts("big", 30));
  c.sources[1].path = write_file(dir, "small.jsonl", numbered_prompts("small", 6));
  const PromptData plain = load_prompt_data(c);
  CHECK_FALSE(plain.train.weighted());
  c.sources[0].weight = 1.0;
  c.sources[1].weight = 1.0;
  const PromptData mixed = load_prompt_data(c);
  const PromptDataset& ds = mixed.train;
  REQUIRE(ds.weighted());
  CHECK(ds.size() == 36);
  CHECK(ds.fingerprint() != plain.train.fingerprint());  // a resume notices changed weights
  c.sources[1].weight = 2.0;
  CHECK(load_prompt_data(c).train.fingerprint() != ds.fingerprint());
  c.sources[1].weight = 1.0;

  for (bool shuffle : {true, false}) {
    INFO("shuffle " << shuffle);
    PromptSampler sampler(ds, 5, shuffle);
    // 18 of each source an epoch: the 30 big prompts cut back, the 6 small ones 3 times each.
    std::map<int64_t, int> big_seen;
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      const std::vector<int64_t> served = sampler.next_indices(36);
      CHECK(served == sampler.mixed_epoch(epoch));
      std::map<int64_t, int> count;
      int big = 0;
      for (int64_t i : served) {
        ++count[i];
        big += ds.records[size_t(i)].source == 0;
        if (ds.records[size_t(i)].source == 0) ++big_seen[i];
      }
      CHECK(big == 18);
      for (const auto& [i, n] : count) CHECK(n == (ds.records[size_t(i)].source == 1 ? 3 : 1));
      if (epoch == 1) CHECK(big_seen.size() == 30);  // 36 draws: every big prompt by the second epoch
    }
    // Three epochs draw 54 big prompts: every one once or twice (one full pass and 24 more).
    for (const auto& [i, n] : big_seen) CHECK((n == 1 || n == 2));
    CHECK(sampler.cursor().epoch == 3);
  }

  // A sampler made with a saved cursor (mid-epoch) serves what the uninterrupted one serves.
  PromptSampler whole(ds, 9, true);
  std::vector<int64_t> first = whole.next_indices(50);  // into the second epoch
  PromptSampler part(ds, 9, true);
  part.next_indices(23);
  PromptSampler resumed(ds, 9, true, part.cursor());
  std::vector<int64_t> tail = resumed.next_indices(27);
  CHECK(std::vector<int64_t>(first.begin() + 23, first.end()) == tail);
  CHECK(whole.next_indices(40) == resumed.next_indices(40));

  // Without weights the sampler serves the dataset's plain seeded order, as before weights.
  PromptSampler unweighted(plain.train, 9, true);
  BatchSampler order(plain.train.size(), rng_stream_key(9, "prompts"), true);
  CHECK(unweighted.next_indices(80) == order.next(80));

  // Weights on some sources only, or on an eval source, are config errors.
  CHECK_THAT(error_of([] {
               parse_prompts("prompts:\n  sources:\n    - {path: a.jsonl, weight: 2}\n    - {path: b.jsonl}\n");
             }),
             Catch::Contains("prompts.sources[1].weight") && Catch::Contains("on every source or on none"));
  CHECK_THAT(error_of([] {
               parse_prompts("prompts:\n  sources:\n    - {path: a.jsonl}\n    - {path: b.jsonl, weight: 2}\n");
             }),
             Catch::Contains("prompts.sources[0].weight"));
  CHECK_THAT(error_of([] {
               parse_prompts("prompts:\n  sources:\n    - {path: a.jsonl}\n  eval_sources:\n"
                             "    - {path: b.jsonl, weight: 1}\n");
             }),
             Catch::Contains("prompts.eval_sources[0].weight"));
  CHECK_THAT(error_of([] { parse_prompts("prompts:\n  sources:\n    - {path: a.jsonl, weight: -1}\n"); }),
             Catch::Contains("prompts.sources[0].weight"));

  // A weighted source that the filters emptied cannot be sampled.
  c.sources[1].path = write_file(dir, "no_answers.jsonl", "{\"prompt\": \"x\", \"answer\": \"no marker\"}\n");
  c.sources[1].answer_extractor = "gsm8k";
  const PromptData empty_second = load_prompt_data(c);
  CHECK_THAT(error_of([&] { PromptSampler bad(empty_second.train, 1, true); }),
             Catch::Contains("prompts.sources[1]") && Catch::Contains("no training prompt left"));
}

TEST_CASE("skipped prompts are never served, a cursor with the skip set resumes, and all skipped clears the set") {
  const std::string dir = temp_dir("skip");
  PromptDataConfig c;
  c.sources.resize(1);
  c.sources[0].path = write_file(dir, "p.jsonl", numbered_prompts("p", 12));
  const PromptData d = load_prompt_data(c);
  for (bool weighted : {false, true}) {
    INFO("weighted " << weighted);
    PromptDataset ds = d.train;
    if (weighted) ds.source_weights = {1.0};
    PromptSampler a(ds, 3, true);
    a.next_indices(5);
    for (int64_t r : {2, 7, 7, 11}) a.skip(r);
    CHECK(a.skipped_count() == 3);
    CHECK(a.skipped() == std::vector<int64_t>{2, 7, 11});
    PromptSampler b(ds, 3, true, a.cursor());  // a resume: the cursor and the skip set
    b.set_skipped(a.skipped());
    const std::vector<int64_t> served = a.next_indices(40);
    CHECK(b.next_indices(40) == served);
    for (int64_t i : served) CHECK((i != 2 && i != 7 && i != 11));
    std::set<int64_t> distinct(served.begin(), served.end());
    CHECK(distinct.size() == 9);  // every other prompt still comes
    // The same cursor without the skips serves them again.
    PromptSampler plain(ds, 3, true, b.cursor());
    std::set<int64_t> all;
    for (int64_t i : plain.next_indices(24)) all.insert(i);
    CHECK(all.size() == 12);
    // Every prompt skipped: the set is cleared before the next draw.
    for (int64_t r = 0; r < 12; ++r) a.skip(r);
    CHECK(a.skipped_count() == 12);
    CHECK(a.next_indices(3).size() == 3);
    CHECK(a.skipped_count() == 0);
  }
}

TEST_CASE("max_prompt_tokens drops prompts whose rendered template is too long") {
  const std::string dir = temp_dir("maxlen");
  PromptDataConfig c;
  c.sources.resize(1);
  c.sources[0].path = write_file(dir, "p.jsonl",
                                 "{\"prompt\": \"short\", \"answer\": \"1\"}\n"
                                 "{\"prompt\": \"a much longer problem text\", \"answer\": \"2\"}\n");
  const auto tok = make_byte_tokenizer(zeroth_byte_tokenizer_config());
  const PromptTemplate tmpl("Q: {prompt} A:");
  c.max_prompt_tokens = 18;  // BOS + "Q: short A:" = 12 tokens fit; the other takes 33
  const PromptData d = load_prompt_data(c, tok.get(), &tmpl, true);
  REQUIRE(d.train.size() == 1);
  CHECK(d.train.records[0].prompt == "short");
  CHECK(d.train.stats.too_long == 1);
  CHECK(d.train.stats.max_prompt_tokens_seen == 1 + 11);
  c.max_prompt_tokens = 5;
  CHECK_THAT(error_of([&] { load_prompt_data(c, tok.get(), &tmpl, true); }),
             Catch::Contains("2 over max_prompt_tokens = 5"));
  // rollout.max_len: a kept prompt that leaves no room for a token is a DataError at load
  // (naming file:line), not a failure at the step that samples it.
  c.max_prompt_tokens = 0;
  CHECK(load_prompt_data(c, tok.get(), &tmpl, true, 34).train.size() == 2);  // 33 tokens + 1 new
  CHECK_THAT(error_of([&] { load_prompt_data(c, tok.get(), &tmpl, true, 33); }),
             Catch::Contains("p.jsonl:2: the rendered prompt has 33 tokens; rollout.max_len 33 leaves room for 1 to 32"));
  c.max_prompt_tokens = 18;  // dropped first, so it no longer matters
  CHECK(load_prompt_data(c, tok.get(), &tmpl, true, 33).train.size() == 1);
  c.max_prompt_tokens = 0;
  c.eval_sources.resize(1);
  c.eval_sources[0].path = write_file(dir, "e.jsonl", "{\"prompt\": \"an eval problem that is long\", \"answer\": \"3\"}\n");
  CHECK_THAT(error_of([&] { load_prompt_data(c, tok.get(), &tmpl, true, 34); }),
             Catch::Contains("e.jsonl:1: the rendered prompt has 35 tokens"));
  // An eval set that max_prompt_tokens empties is an error, not a run that evaluates nothing.
  c.max_prompt_tokens = 18;
  CHECK_THAT(error_of([&] { load_prompt_data(c, tok.get(), &tmpl, true, 64); }),
             Catch::Contains("the eval set is empty (1 prompt(s) held out or read, 0 without an answer, 1 over max_prompt_tokens = 18)"));
  // An eval_fraction that rounds down to 0 prompts is no eval set (a warning), not an error.
  c.eval_sources.clear();
  c.eval_fraction = 0.1;  // of 2 prompts
  CHECK(load_prompt_data(c, tok.get(), &tmpl, true, 64).eval.size() == 0);
}

TEST_CASE("configs/data snippets load the first lines of the real GSM8K, MATH and MBPP files") {
  if (!fs::exists(kShared + "/gsm8k_train.jsonl") || !fs::exists(kShared + "/math_train.jsonl") ||
      !fs::exists(kShared + "/mbpp_train.jsonl")) {
    WARN("skipped: " << kShared << " lacks gsm8k_train.jsonl / math_train.jsonl / mbpp_train.jsonl");
    return;
  }
  // The snippets name ../shared/data relative to the repository root.
  auto load_snippet = [](const std::string& name, int64_t limit) {
    PromptsOnly c;
    read_config_tree(load_config_tree(kSrc + "/configs/data/" + name), c);
    for (auto* list : {&c.prompts.sources, &c.prompts.eval_sources})
      for (auto& s : *list) {
        s.path = kSrc + "/" + s.path;
        if (limit > 0) s.limit = limit;  // 0: the config's own limits
      }
    c.prompts.eval_count = std::min<int64_t>(c.prompts.eval_count, 5);
    return c.prompts;
  };
  {
    const PromptData d = load_prompt_data(load_snippet("gsm8k.yaml", 40));
    CHECK(d.eval.size() == 5);
    CHECK(d.train.size() == 35);
    CHECK(d.train.stats.read == 40);
    CHECK(d.train.stats.no_answer == 0);
    const PromptDataset first = load_prompt_source(load_snippet("gsm8k.yaml", 3).sources[0], "gsm8k");
    REQUIRE(first.size() == 3);
    CHECK_THAT(first.records[0].prompt, Catch::StartsWith("Natalia sold clips to 48 of her friends"));
    CHECK(first.records[0].gold == "72");
    CHECK(first.records[1].gold == "10");
    CHECK(first.records[2].gold == "5");
  }
  {
    const PromptDataset first = load_prompt_source(load_snippet("math.yaml", 4).sources[0], "math");
    REQUIRE(first.size() == 4);
    CHECK_THAT(first.records[0].prompt, Catch::StartsWith("Let \\[f(x) = \\left\\{"));
    CHECK(first.records[0].gold == "0");
    CHECK(first.records[1].gold == "98");
    CHECK(first.records[3].gold == "17");
    CHECK(first.records[0].fields.at("level") == "Level 5");
  }
  {
    // The whole weighted mix (every line of both files: the counts its comment gives).
    const PromptData mix = load_prompt_data(load_snippet("math-mbpp.yaml", 0));
    CHECK(mix.train.source_names == std::vector<std::string>{"math", "mbpp"});
    CHECK(mix.eval.source_names == mix.train.source_names);
    CHECK(prompts_per_source(mix.eval, -1) == std::vector<int64_t>{500, 90});
    CHECK(prompts_per_source(mix.train, -1) == std::vector<int64_t>{6998, 374});
    CHECK(mix_quotas(mix.train.source_weights, mix.train.size()) == std::vector<int64_t>{5160, 2212});
    PromptSampler sampler(mix.train, 1, true);
    int64_t code = 0;
    for (const PromptRecord* r : sampler.next_batch(mix.train.size())) code += r->kind == RewardKind::Code;
    CHECK(code == 2212);
  }
  {
    const PromptData both = load_prompt_data(load_snippet("gsm8k-math.yaml", 10));
    CHECK(both.train.size() + both.eval.size() == 20);
    CHECK(both.train.source_names == std::vector<std::string>{"gsm8k", "math"});
    CHECK(both.eval.source_names == both.train.source_names);
  }
  {
    const PromptData d = load_prompt_data(load_snippet("mbpp.yaml", 3));
    REQUIRE(d.train.size() == 3);
    REQUIRE(d.eval.size() == 3);
    const PromptRecord& r = d.train.records[0];
    CHECK(r.kind == RewardKind::Code);
    CHECK(r.problem.asserts.size() == 3);
    CHECK_THAT(r.problem.asserts[0], Catch::StartsWith("assert max_chain_length("));
    CHECK_THAT(r.prompt, Catch::Contains("Your code should pass these tests:"));
  }
  {  // the demo snippet parses (its files are written by zeroth demo-data; see test_prompt_data_demo)
    const PromptDataConfig c = load_snippet("demo.yaml", 0);
    CHECK(c.sources.size() == 1);
    CHECK(c.eval_sources.size() == 1);
  }
}

static PromptDataset numbered(int n) {
  PromptDataset ds;
  for (int i = 0; i < n; ++i) {
    PromptRecord r;
    r.prompt = "p" + std::to_string(i);
    r.gold = std::to_string(i);
    ds.records.push_back(r);
  }
  return ds;
}

TEST_CASE("the prompt sampler serves epochs of a seeded order and resumes exactly from its cursor") {
  const PromptDataset ds = numbered(23);
  const uint64_t seed = 7;
  const int64_t B = 5;
  // Every epoch is a permutation, and epochs differ.
  PromptSampler s(ds, seed, true);
  std::vector<int64_t> e0 = s.next_indices(23), e1 = s.next_indices(23);
  CHECK(s.cursor().epoch == 2);
  CHECK(s.cursor().position == 0);
  CHECK(std::set<int64_t>(e0.begin(), e0.end()).size() == 23);
  CHECK(std::set<int64_t>(e1.begin(), e1.end()).size() == 23);
  CHECK(e0 != e1);
  // Named stream "prompts" of the run seed; another seed gives another order.
  CHECK(e0 == BatchSampler(23, rng_stream_key(seed, "prompts"), true).epoch_order(0));
  CHECK(e0 != PromptSampler(ds, seed + 1, true).next_indices(23));
  CHECK(rng_stream_key(seed, "prompts") != rng_stream_key(seed, "eval_split"));
  // Without shuffle: file order.
  CHECK(PromptSampler(ds, seed, false).next_indices(3) == std::vector<int64_t>{0, 1, 2});

  // Resume: save the cursor after k batches; a new sampler from it gives the same batches.
  for (int64_t k : {0, 1, 4, 9}) {
    PromptSampler full(ds, seed, true);
    DataCursor saved;
    std::vector<std::vector<const PromptRecord*>> after;
    for (int64_t step = 0; step < 14; ++step) {
      if (step == k) saved = full.cursor();
      auto b = full.next_batch(B);
      if (step >= k) after.push_back(b);
    }
    PromptSampler resumed(ds, seed, true, saved);
    for (const auto& expected : after) CHECK(resumed.next_batch(B) == expected);
    CHECK(resumed.cursor().epoch == full.cursor().epoch);
    CHECK(resumed.cursor().position == full.cursor().position);
  }
  // A cursor past the data (the data changed) is a CheckpointError.
  CHECK_THROWS_AS(PromptSampler(ds, seed, true, DataCursor{0, 23}), CheckpointError);
  CHECK_THROWS_AS(PromptSampler(PromptDataset{}, seed, true), DataError);
}

TEST_CASE("data-parallel shards split a global batch into whole prompts, balanced and in order") {
  for (int64_t global = 0; global <= 13; ++global)
    for (int world = 1; world <= 5; ++world) {
      int64_t next = 0;
      for (int rank = 0; rank < world; ++rank) {
        const PromptShard s = prompt_shard(global, rank, world);
        CHECK(s.begin == next);
        CHECK((s.count == global / world || s.count == global / world + 1));
        next += s.count;
      }
      CHECK(next == global);
    }
  const std::vector<int> batch = {10, 11, 12, 13, 14, 15, 16};
  CHECK(take_shard(batch, 0, 3) == std::vector<int>{10, 11, 12});
  CHECK(take_shard(batch, 1, 3) == std::vector<int>{13, 14});
  CHECK(take_shard(batch, 2, 3) == std::vector<int>{15, 16});
  // Every rank draws the same global batch from the same cursor and keeps its part.
  const PromptDataset ds = numbered(11);
  PromptSampler whole(ds, 3, true);
  const auto global = whole.next_batch(6);
  std::vector<const PromptRecord*> joined;
  for (int rank = 0; rank < 4; ++rank) {
    PromptSampler mine(ds, 3, true);
    const auto part = take_shard(mine.next_batch(6), rank, 4);
    joined.insert(joined.end(), part.begin(), part.end());
    CHECK(mine.cursor().position == whole.cursor().position);
  }
  CHECK(joined == global);
}
