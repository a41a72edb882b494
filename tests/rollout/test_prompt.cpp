// Prompt templates (R1-Zero default, custom {field}s, errors, BOS through the
// tokenizer), stop rules on decoded text (stop strings kept or cut, stop ids, length),
// and `zeroth tokenize` (cli::cmd_tokenize compiled in): encode / decode round trips and
// errors naming file:line.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "zeroth/error.h"
#include "zeroth/prompt.h"
#include "zeroth/rollout.h"
#include "zeroth/tokenizer.h"

namespace zeroth {
namespace cli {
int cmd_tokenize(const std::vector<std::string>& args);  // src/cli/cmd_tokenize.cpp
}  // namespace cli
}  // namespace zeroth

using namespace zeroth;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<Tokenizer> bytes_tokenizer(bool add_bos) {
  ByteTokenizerConfig c;
  c.special_tokens = {"<bos>", "<eos>"};
  c.bos_token = "<bos>";
  c.eos_token = "<eos>";
  c.add_bos = add_bos;
  return make_byte_tokenizer(c);
}

std::vector<int32_t> bytes(const std::string& s) {
  std::vector<int32_t> v;
  for (unsigned char c : s) v.push_back(int32_t(c));
  return v;
}

std::string temp_dir(const char* tag) {
  fs::path d = fs::temp_directory_path() /
               ("zeroth_rollout_" + std::string(tag) + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> v;
  std::string line;
  while (std::getline(in, line)) v.push_back(nlohmann::json::parse(line));
  return v;
}

}  // namespace

TEST_CASE("prompt: the R1-Zero template renders as in DeepSeek-R1 Table 1", "[rollout][prompt]") {
  PromptTemplate t;
  CHECK(t.fields() == std::vector<std::string>{"prompt"});
  CHECK(t.render({{"prompt", "What is 2+3?"}, {"answer", "5"}}, "gsm8k.jsonl:1") ==
        "A conversation between User and Assistant. The user asks a question, and the Assistant "
        "solves it. The assistant first thinks about the reasoning process in the mind and then "
        "provides the user with the answer. The reasoning process and answer are enclosed within "
        "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning "
        "process here </think> <answer> answer here </answer>. User: What is 2+3?. Assistant:");
}

TEST_CASE("prompt: custom templates, literal braces and errors", "[rollout][prompt]") {
  PromptTemplate t("Q: {question}\nTests: {tests} {{not a field}} {question}", "cfg.yaml");
  CHECK(t.fields() == std::vector<std::string>{"question", "tests"});
  CHECK(t.render({{"question", "sum?"}, {"tests", "assert f()"}}, "x") ==
        "Q: sum?\nTests: assert f() {not a field} sum?");
  CHECK_THROWS_WITH(t.render({{"question", "q"}}, "data.jsonl:12"),
                    Catch::Contains("data.jsonl:12") && Catch::Contains("'tests'") &&
                        Catch::Contains("[question]"));
  CHECK_THROWS_AS(PromptTemplate("{open", "cfg.yaml"), ConfigError);
  CHECK_THROWS_WITH(PromptTemplate("a } b", "cfg.yaml"),
                    Catch::Contains("cfg.yaml") && Catch::Contains("offset 2"));
  CHECK_THROWS_AS(PromptTemplate("{}", "cfg.yaml"), ConfigError);
  CHECK_THROWS_AS(PromptTemplate("{two words}", "cfg.yaml"), ConfigError);
  // No field: every prompt would be the same text.
  CHECK_THROWS_WITH(PromptTemplate("Hello {{prompt}}", "cfg.yaml"),
                    Catch::Contains("cfg.yaml: expected at least one {field}"));
  CHECK_THROWS_AS(PromptTemplate("", "cfg.yaml"), ConfigError);
}

TEST_CASE("prompt: special tokens come from the tokenizer", "[rollout][prompt]") {
  auto with_bos = bytes_tokenizer(true);
  CHECK(encode_prompt(*with_bos, "hi", true, "x") == std::vector<int32_t>{256, 'h', 'i'});
  CHECK(encode_prompt(*with_bos, "hi", false, "x") == std::vector<int32_t>{'h', 'i'});
  CHECK_THROWS_AS(encode_prompt(*with_bos, "", false, "x"), DataError);
  // DeepSeek-V3's tokenizer adds BOS (tokenizer_config.json: add_bos_token).
  const std::string dir = ZEROTH_SHARED_DATA_DIR "/tokenizers/";
  if (fs::exists(dir + "deepseek-v3/tokenizer.json")) {
    auto ds = load_tokenizer(dir + "deepseek-v3");
    const std::vector<int32_t> a = encode_prompt(*ds, "User: 1+1. Assistant:", true, "x");
    const std::vector<int32_t> b = encode_prompt(*ds, "User: 1+1. Assistant:", false, "x");
    REQUIRE(a.size() == b.size() + 1);
    CHECK(a[0] == ds->special_ids().bos);
    CHECK(std::vector<int32_t>(a.begin() + 1, a.end()) == b);
  }
}

TEST_CASE("stop rules: stop strings kept or cut, stop ids, length", "[rollout][stop]") {
  auto tok = bytes_tokenizer(false);
  StopParams p;
  p.max_new_tokens = 100;
  p.stop_strings = {"</answer>", "STOP"};
  p.stop_token_ids = {257};
  auto run = [&](const StopParams& sp, const std::vector<int32_t>& ids, int64_t* used) {
    StopChecker s(sp, tok.get());
    int64_t n = 0;
    for (int32_t id : ids) {
      ++n;
      if (s.push(id)) break;
    }
    *used = n;
    return s;
  };
  int64_t used = 0;
  {
    StopChecker s = run(p, bytes("<answer>4</answer> trailing"), &used);
    CHECK(s.finished());
    CHECK(s.reason() == FinishReason::kStop);
    CHECK(s.text() == "<answer>4</answer>");
    CHECK(s.matched_stop() == "</answer>");
    CHECK(used == 18);  // the token that completed the match is the last one
  }
  {
    StopParams cut = p;
    cut.keep_stop_string = false;
    StopChecker s = run(cut, bytes("<answer>4</answer> trailing"), &used);
    CHECK(s.text() == "<answer>4");
  }
  {
    // The earliest match wins, even when a longer string completes on the same token.
    StopChecker s = run(p, bytes("xxSTOP</answer>"), &used);
    CHECK(s.text() == "xxSTOP");
    CHECK(s.matched_stop() == "STOP");
  }
  {
    std::vector<int32_t> ids = bytes("ab");
    ids.push_back(257);  // <eos>: special, not in the text
    ids.push_back('c');
    StopChecker s = run(p, ids, &used);
    CHECK(used == 3);
    CHECK(s.reason() == FinishReason::kStop);
    CHECK(s.text() == "ab");
    CHECK(s.matched_stop().empty());
  }
  {
    StopParams len = p;
    len.max_new_tokens = 4;
    StopChecker s = run(len, bytes("abcdefg"), &used);
    CHECK(used == 4);
    CHECK(s.reason() == FinishReason::kLength);
    CHECK(s.text() == "abcd");
  }
  {
    // A stop string split across a multi-byte character's tokens still matches.
    StopParams u = p;
    u.stop_strings = {"\xC3\xA9!"};  // "é!"
    StopChecker s = run(u, bytes("caf\xC3\xA9! more"), &used);
    CHECK(s.text() == "caf\xC3\xA9!");
    CHECK(used == 6);
  }
  CHECK(std::string(finish_reason_name(FinishReason::kStop)) == "stop");
  CHECK(std::string(finish_reason_name(FinishReason::kLength)) == "length");
  RolloutConfig rc;
  rc.stop_token_ids = {5};
  StopParams sp = rc.stop_params(*tok);
  CHECK(sp.stop_token_ids == std::vector<int32_t>{5, 257});
  CHECK(sp.stop_strings == std::vector<std::string>{"</answer>"});
  rc.stop_token_ids = {9999};
  CHECK_THROWS_AS(rc.stop_params(*tok), ConfigError);
}

TEST_CASE("zeroth tokenize: encode and decode JSONL round trip", "[rollout][cli]") {
  const std::string dir = temp_dir("tokenize");
  {
    nlohmann::json j = {{"model",
                         {{"type", "ZerothBytes"},
                          {"special_tokens", {"<bos>", "<eos>"}},
                          {"bos_token", "<bos>"},
                          {"eos_token", "<eos>"},
                          {"add_bos", true}}}};
    std::ofstream(dir + "/tokenizer.json") << j.dump();
    std::ofstream in(dir + "/in.jsonl");
    in << nlohmann::json({{"id", 1}, {"text", "héllo <eos>"}}).dump() << "\n\n";
    in << nlohmann::json({{"text", ""}, {"keep", true}}).dump() << "\n";
  }
  using cli::cmd_tokenize;
  REQUIRE(cmd_tokenize({"--tokenizer", dir, "--input", dir + "/in.jsonl", "--output",
                        dir + "/ids.jsonl"}) == 0);
  auto enc = read_jsonl(dir + "/ids.jsonl");
  REQUIRE(enc.size() == 2);
  CHECK(enc[0]["id"] == 1);
  CHECK(enc[0]["ids"].get<std::vector<int>>() ==
        std::vector<int>{256, 'h', 0xC3, 0xA9, 'l', 'l', 'o', ' ', 257});
  CHECK(enc[1]["ids"].get<std::vector<int>>() == std::vector<int>{256});
  CHECK(enc[1]["keep"] == true);
  // --no-special: no BOS.
  REQUIRE(cmd_tokenize({"--tokenizer", dir + "/tokenizer.json", "--input", dir + "/in.jsonl",
                        "--output", dir + "/ids_plain.jsonl", "--no-special"}) == 0);
  CHECK(read_jsonl(dir + "/ids_plain.jsonl")[1]["ids"].empty());
  // Decode the ids alone back to text.
  {
    std::ofstream o(dir + "/only_ids.jsonl");
    for (const auto& e : read_jsonl(dir + "/ids_plain.jsonl"))
      o << nlohmann::json({{"ids", e["ids"]}}).dump() << "\n";
  }
  REQUIRE(cmd_tokenize({"--tokenizer", dir, "--input", dir + "/only_ids.jsonl", "--output",
                        dir + "/text.jsonl", "--decode"}) == 0);
  auto dec = read_jsonl(dir + "/text.jsonl");
  REQUIRE(dec.size() == 2);
  CHECK(dec[0]["text"] == "héllo <eos>");
  CHECK(dec[1]["text"] == "");
  REQUIRE(cmd_tokenize({"--tokenizer", dir, "--input", dir + "/only_ids.jsonl", "--output",
                        dir + "/text2.jsonl", "--decode", "--no-special"}) == 0);
  CHECK(read_jsonl(dir + "/text2.jsonl")[0]["text"] == "héllo ");

  // Errors name file:line; nothing is written.
  std::ofstream(dir + "/bad.jsonl") << "{\"text\": \"ok\"}\n{\"txt\": 1}\n";
  CHECK_THROWS_WITH(cmd_tokenize({"--tokenizer", dir, "--input", dir + "/bad.jsonl", "--output",
                                  dir + "/bad_out.jsonl"}),
                    Catch::Contains("bad.jsonl:2") && Catch::Contains("\"text\""));
  CHECK_FALSE(fs::exists(dir + "/bad_out.jsonl"));
  std::ofstream(dir + "/bad_ids.jsonl") << "{\"ids\": [1, 300]}\n";
  CHECK_THROWS_WITH(cmd_tokenize({"--tokenizer", dir, "--input", dir + "/bad_ids.jsonl",
                                  "--output", dir + "/o.jsonl", "--decode"}),
                    Catch::Contains("bad_ids.jsonl:1") && Catch::Contains("[0, 258)"));
  CHECK_THROWS_AS(cmd_tokenize({"--tokenizer", dir, "--input", dir + "/in.jsonl"}), UsageError);

  // The DeepSeek-V3 tokenizer round-trips text through ids.
  const std::string ds = ZEROTH_SHARED_DATA_DIR "/tokenizers/deepseek-v3";
  if (fs::exists(ds + "/tokenizer.json")) {
    std::ofstream(dir + "/math.jsonl")
        << nlohmann::json({{"text", "Solve $x^2 = 4$. <think> x = ±2 </think>"}}).dump() << "\n";
    REQUIRE(cmd_tokenize({"--tokenizer", ds, "--input", dir + "/math.jsonl", "--output",
                          dir + "/math_ids.jsonl", "--no-special"}) == 0);
    {
      std::ofstream o(dir + "/math_only.jsonl");
      o << nlohmann::json({{"ids", read_jsonl(dir + "/math_ids.jsonl")[0]["ids"]}}).dump() << "\n";
    }
    REQUIRE(cmd_tokenize({"--tokenizer", ds, "--input", dir + "/math_only.jsonl", "--output",
                          dir + "/math_text.jsonl", "--decode"}) == 0);
    CHECK(read_jsonl(dir + "/math_text.jsonl")[0]["text"] ==
          "Solve $x^2 = 4$. <think> x = ±2 </think>");
  }
  fs::remove_all(dir);
}
