// Tests of the CPU demo's data (prompt_data.h, `zeroth demo-data`): determinism, sizes,
// correct gold answers, held-out problems disjoint from the train prompts and from the
// pretraining corpus, and the corpus free of the R1-Zero template text and tags (with a
// check that the forbidden-text scan does find planted violations).
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "zeroth/error.h"
#include "zeroth/prompt.h"
#include "zeroth/prompt_data.h"

namespace zeroth {
namespace cli {
int cmd_demo_data(const std::vector<std::string>& args);
}  // namespace cli
}  // namespace zeroth

using namespace zeroth;
namespace fs = std::filesystem;

static std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

static std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("zeroth_test_demo_data_" + name);
  fs::remove_all(p);
  return p.string();
}

// The default options, generated once for the whole file (about 1 s).
static const DemoData& default_data() {
  static const DemoData d = generate_demo_data(DemoDataOptions{});
  return d;
}

TEST_CASE("demo data: sizes, and every gold answer is the result of its worked steps") {
  const DemoData& d = default_data();
  const DemoDataOptions o;
  CHECK(int64_t(d.train.size()) == o.train_prompts);
  CHECK(int64_t(d.eval.size()) == o.eval_prompts);
  CHECK(int64_t(d.corpus.size()) >= o.corpus_bytes);
  CHECK(int64_t(d.corpus.size()) < o.corpus_bytes + 4096);
  CHECK(d.corpus_doc_kinds.size() == 4);  // drill, story, qa, instruction
  for (const auto& [kind, n] : d.corpus_doc_kinds) CHECK(n * 20 > d.corpus_documents);  // each >= 5%
  // One document per line, no empty line, no line longer than a demo sequence.
  size_t lines = 0, longest = 0, at = 0;
  while (at < d.corpus.size()) {
    const size_t nl = d.corpus.find('\n', at);
    REQUIRE(nl != std::string::npos);
    CHECK(nl > at);
    longest = std::max(longest, nl - at);
    ++lines;
    at = nl + 1;
  }
  CHECK(int64_t(lines) == d.corpus_documents);
  CHECK(longest < 900);
  // "a op b = c." chains: the last result is the answer, and each step is right.
  auto check_steps = [](const DemoProblem& p) {
    std::istringstream in(p.steps);
    int64_t a = 0, b = 0, c = 0, last = -1;
    char op = 0;
    std::string eq;
    while (in >> a >> op >> b >> eq >> c) {
      const int64_t want = op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : a / b;
      if (want != c || (op == '/' && a % b != 0) || eq != "=") return false;
      last = c;
      in.ignore(1);  // the '.'
    }
    return last == p.answer && p.answer >= 0;
  };
  for (const auto& p : d.train) CHECK(check_steps(p));
  for (const auto& p : d.eval) CHECK(check_steps(p));
  // The eval set covers every family.
  std::set<std::string> families;
  for (const auto& p : d.eval) families.insert(p.key.substr(0, p.key.find(':')));
  CHECK(families.size() == 8);
}

TEST_CASE("demo data: held-out problems are disjoint from the train prompts and the corpus") {
  const DemoData& d = default_data();
  std::set<std::string> eval_keys, eval_questions;
  for (const auto& p : d.eval) {
    eval_keys.insert(p.key);
    eval_questions.insert(p.question);
  }
  CHECK(eval_keys.size() == d.eval.size());
  for (const auto& p : d.train) {
    CHECK(eval_keys.count(p.key) == 0);
    CHECK(eval_questions.count(p.question) == 0);
  }
  REQUIRE(d.corpus_keys.size() > 5000);
  for (const auto& k : d.corpus_keys) CHECK(eval_keys.count(k) == 0);
  // By text as well: no eval question appears in the corpus.
  for (const auto& p : d.eval) CHECK(d.corpus.find(p.question) == std::string::npos);
  // The corpus does contain word problems and worked facts (the check above can fail).
  CHECK(d.corpus.find("How many ") != std::string::npos);
  CHECK(d.corpus.find(" + ") != std::string::npos);
}

TEST_CASE("demo corpus: no R1-Zero template text or tags, and the scan finds planted ones") {
  const DemoData& d = default_data();
  const std::vector<std::string> templates = {kR1ZeroTemplate};
  const auto found = find_forbidden_text(d.corpus, templates);
  for (const auto& f : found) INFO(f);
  CHECK(found.empty());
  for (const char* s : {"<think>", "</think>", "<answer>", "</answer>", "reasoning process",
                        "A conversation between", "The reasoning process and answer are enclosed"})
    CHECK(d.corpus.find(s) == std::string::npos);
  // The corpus does teach copying markup from an instruction into the reply.
  CHECK(d.corpus.find("Put the working inside <") != std::string::npos);
  CHECK(d.corpus.find("User: ") != std::string::npos);
  CHECK(find_forbidden_text("x <think> y", templates).size() == 1);
  CHECK(find_forbidden_text("x </answer>", templates).size() == 1);
  const auto planted = find_forbidden_text("aa The assistant first thinks about the reasoning bb", templates);
  REQUIRE(!planted.empty());
  CHECK_THAT(planted[0], Catch::Contains("at byte 2"));
  // Text around a field does not join across it: "{prompt}. Assistant:" is 12 bytes.
  CHECK(find_forbidden_text("User: 1+1. Assistant: 2", templates).empty());
}

// The reply's delimiters, e.g. "<qofu>" of "... inside <qofu> </qofu> ... Teacher: <qofu> 7 </qofu>".
static std::vector<std::string> angle_tags(const std::string& s) {
  std::vector<std::string> tags;
  for (size_t at = s.find('<'); at != std::string::npos; at = s.find('<', at + 1)) {
    const size_t end = s.find('>', at);
    if (end == std::string::npos) break;
    const std::string name = s.substr(at + 1, end - at - 1);
    if (!name.empty() && name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") ==
                             std::string::npos)
      tags.push_back(name);
  }
  return tags;
}

TEST_CASE("demo corpus, copy-forcing: only copying predicts made-up tag names and repeated lists") {
  DemoDataOptions o;
  o.copy_forcing = true;
  o.corpus_bytes = 1000000;
  const DemoData d = generate_demo_data(o);
  CHECK(d.corpus_doc_kinds.size() == 5);  // drill, story, qa, repeat, instruction
  for (const auto& [kind, n] : d.corpus_doc_kinds) CHECK(n * 20 > d.corpus_documents);  // each >= 5%
  CHECK(find_forbidden_text(d.corpus, {kR1ZeroTemplate}).empty());
  std::map<std::string, int> tag_docs;  // opening-tag name -> documents using it
  int64_t repeats = 0;
  std::vector<std::string> reply_tags;
  size_t at = 0;
  while (at < d.corpus.size()) {
    const size_t nl = d.corpus.find('\n', at);
    const std::string doc = d.corpus.substr(at, nl - at);
    at = nl + 1;
    if (doc.rfind("Repeat after me: ", 0) == 0) {  // "Repeat after me: L. L." (maybe ". And again: L.")
      ++repeats;
      const std::string rest = doc.substr(17);
      const size_t dot = rest.find(". ");
      REQUIRE(dot != std::string::npos);
      const std::string list = rest.substr(0, dot);
      CHECK(rest.compare(dot + 2, list.size() + 1, list + ".") == 0);
    }
    std::set<std::string> names;
    for (const auto& t : angle_tags(doc)) names.insert(t);
    for (const auto& n : names) ++tag_docs[n];
    // An instruction's reply opens with a tag its rule named.
    const size_t reply = doc.rfind(": <");
    if (reply != std::string::npos && doc.find("inside <") != std::string::npos) {
      const std::vector<std::string> before = angle_tags(doc.substr(0, reply)), after = angle_tags(doc.substr(reply));
      if (!after.empty()) {  // not "<< 5 >>" or "|> 5 <|"
        CHECK(std::find(before.begin(), before.end(), after[0]) != before.end());
        reply_tags.push_back(after[0]);
      }
    }
  }
  CHECK(repeats > 50);
  // Most tag names occur in one document only: nothing but the instruction predicts them.
  int64_t once = 0;
  for (const auto& [name, n] : tag_docs) once += n == 1;
  CHECK(once * 2 > int64_t(tag_docs.size()));
  int64_t made_up_replies = 0;
  for (const auto& t : reply_tags) made_up_replies += tag_docs[t] == 1;
  CHECK(made_up_replies * 2 > int64_t(reply_tags.size()));
  CHECK(reply_tags.size() > 200);
}

TEST_CASE("zeroth demo-data writes the same bytes for the same seed, and loads as prompts") {
  const std::string a = temp_dir("a"), b = temp_dir("b"), c = temp_dir("c");
  const std::vector<std::string> small = {"--train", "500", "--eval", "50", "--corpus-bytes", "200000"};
  auto run = [&](const std::string& dir, const std::string& seed) {
    std::vector<std::string> args = {"--out", dir, "--seed", seed};
    args.insert(args.end(), small.begin(), small.end());
    return cli::cmd_demo_data(args);
  };
  REQUIRE(run(a, "5") == 0);
  REQUIRE(run(b, "5") == 0);
  REQUIRE(run(c, "6") == 0);
  for (const char* f : {"pretrain.txt", "train.jsonl", "eval.jsonl"}) {
    const std::string fa = read_all(a + "/" + f);
    CHECK(!fa.empty());
    CHECK(fa == read_all(b + "/" + f));
    CHECK(fa != read_all(c + "/" + f));
  }
  CHECK(read_all(a + "/pretrain.txt").size() >= 200000);
  // Same options in-process, same bytes as the command wrote.
  DemoDataOptions o;
  o.seed = 5, o.train_prompts = 500, o.eval_prompts = 50, o.corpus_bytes = 200000;
  CHECK(generate_demo_data(o).corpus == read_all(a + "/pretrain.txt"));

  // The files load with configs/data/demo.yaml's mapping.
  PromptDataConfig cfg;
  cfg.sources.resize(1);
  cfg.sources[0].path = a + "/train.jsonl";
  cfg.eval_sources.resize(1);
  cfg.eval_sources[0].path = a + "/eval.jsonl";
  const PromptData data = load_prompt_data(cfg);
  CHECK(data.train.size() == 500);
  CHECK(data.eval.size() == 50);
  CHECK(data.train.stats.overlap_dropped == 0);
  CHECK_THAT(data.eval.records[0].prompt, Catch::EndsWith("?"));
  CHECK(std::stoll(data.eval.records[0].gold) >= 0);

  CHECK_THROWS_AS(cli::cmd_demo_data({"--out", a, "--train", "0"}), UsageError);
  CHECK_THROWS_AS(cli::cmd_demo_data({"--seed", "1"}), UsageError);
}
