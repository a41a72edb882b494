// `zeroth generate` (src/cli/cmd_generate.cpp, compiled into this test): a tiny random
// model with the byte tokenizer in a temporary HF directory; prompt lines rendered with
// a template from a YAML `rollout:` section, ids lines, the output schema and order,
// determinism across num_slots, and the errors (bad line, bad key, KV cap too small,
// no tokenizer).
// Must not: depend on the zeroth binary (the function is called directly).
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "zeroth/backend.h"
#include "zeroth/error.h"
#include "zeroth/model.h"
#include "zeroth/model_params.h"
#include "zeroth/tokenizer.h"

namespace zeroth {
namespace cli {
int cmd_generate(const std::vector<std::string>& args);
}
}  // namespace zeroth

using namespace zeroth;
namespace fs = std::filesystem;

namespace {

// The byte tokenizer that `zeroth ckpt init --tokenizer bytes` writes (ids 256-258).
const char kByteTokenizer[] =
    R"({"version": "1.0", "model": {"type": "ZerothBytes", "special_tokens": ["<|bos|>", "<|eos|>",
    "<|pad|>"], "bos_token": "<|bos|>", "eos_token": "<|eos|>", "pad_token": "<|pad|>",
    "add_bos": true, "add_eos": false}})";

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream f(p);
  f << text;
  REQUIRE(f.good());
}

std::vector<nlohmann::json> read_jsonl(const fs::path& p) {
  std::ifstream f(p);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(f, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// A temporary directory with a tiny random model (the golden tiny config with a
// vocabulary of 259 byte-tokenizer ids) and its tokenizer.json.
struct TinyModelDir {
  fs::path root, model;
  TinyModelDir() {
    root = fs::temp_directory_path() / ("zeroth_generate_cli_" + std::to_string(::getpid()));
    fs::remove_all(root);
    model = root / "model";
    fs::create_directories(model);
    ModelConfig cfg = read_model_config(std::string(ZEROTH_TEST_DATA_DIR) + "/golden/tiny_yarn_aux");
    cfg.vocab_size = 259;
    cfg.bos_token_id = 256;
    cfg.eos_token_id = 257;
    cfg.pad_token_id = 258;
    auto be = make_cpu_backend(1);
    Model m(cfg, *be);
    init_params(cfg, m.params(), 5);
    save_hf_weights(model.string(), cfg, m.params());
    write_file(model / "tokenizer.json", kByteTokenizer);
  }
  ~TinyModelDir() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

}  // namespace

TEST_CASE("zeroth generate: prompts and ids in, one line per completion out", "[rollout][generate_cli]") {
  TinyModelDir d;
  const fs::path prompts = d.root / "prompts.jsonl", cfg = d.root / "rollout.yaml";
  write_file(prompts,
             "{\"prompt\": \"2+2\", \"gold\": \"4\", \"id\": 7}\n"
             "\n"
             "{\"ids\": [256, 104, 105], \"gold\": \"x\"}\n"
             "{\"prompt\": \"ab\", \"gold\": \"c\", \"id\": 8}\n");
  write_file(cfg,
             "run:\n  name: ignored\n"
             "rollout:\n  prompt_template: \"Q{id}: {prompt} A:\"\n  num_slots: 4\n  max_len: 64\n"
             "  stop: []\n  top_k: 20\n");
  const fs::path out = d.root / "out.jsonl";
  REQUIRE(cli::cmd_generate({"--model", d.model.string(), "--prompts", prompts.string(), "--output",
                             out.string(), "--config", cfg.string(), "--group-size", "2",
                             "--max-new-tokens", "6", "--seed", "9", "--threads", "1"}) == 0);
  const std::vector<nlohmann::json> lines = read_jsonl(out);
  REQUIRE(lines.size() == 6);
  std::unique_ptr<Tokenizer> tok = load_tokenizer(d.model.string());
  for (size_t i = 0; i < lines.size(); ++i) {
    const nlohmann::json& o = lines[i];
    CHECK(o["prompt_index"] == int64_t(i / 2));
    CHECK(o["sample_index"] == int64_t(i % 2));
    const std::vector<int32_t> ids = o["ids"].get<std::vector<int32_t>>();
    CHECK(o["logprobs"].size() == ids.size());
    CHECK(!ids.empty());
    CHECK(ids.size() <= 6);
    for (const auto& lp : o["logprobs"]) CHECK(lp.get<double>() <= 0.0);
    const std::string reason = o["finish_reason"];
    CHECK((reason == "stop" || reason == "length"));
    if (reason == "stop") CHECK(ids.back() == 257);  // EOS (stop_at_eos), no stop strings
    CHECK(o["completion"] == tok->decode(ids, true));
    CHECK(o["stop"] == "");
  }
  // The input record is kept; a prompt line is rendered with the template.
  CHECK(lines[0]["gold"] == "4");
  CHECK(lines[0]["prompt"] == "2+2");
  CHECK(lines[0]["prompt_text"] == "Q7: 2+2 A:");
  CHECK(lines[5]["prompt_text"] == "Q8: ab A:");
  // An ids line: its ids become prompt_ids, prompt_text is their decoding.
  CHECK(lines[2]["prompt_ids"] == nlohmann::json::array({256, 104, 105}));
  CHECK(lines[2]["prompt_text"] == "<|bos|>hi");
  CHECK(lines[2]["gold"] == "x");
  // The two samples of a prompt differ (seeded per sequence).
  CHECK(lines[0]["ids"] != lines[1]["ids"]);

  // Same tokens with another number of slots (continuous batching changes nothing but speed).
  const fs::path out2 = d.root / "out2.jsonl";
  REQUIRE(cli::cmd_generate({"--model", d.model.string(), "--prompts", prompts.string(), "--output",
                             out2.string(), "--config", cfg.string(), "--group-size", "2",
                             "--max-new-tokens", "6", "--seed", "9", "--set", "rollout.num_slots=2",
                             "--threads", "2"}) == 0);
  const std::vector<nlohmann::json> lines2 = read_jsonl(out2);
  REQUIRE(lines2.size() == lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    CHECK(lines2[i]["ids"] == lines[i]["ids"]);
    CHECK(lines2[i]["completion"] == lines[i]["completion"]);
    CHECK(lines2[i]["finish_reason"] == lines[i]["finish_reason"]);
  }
}

TEST_CASE("zeroth generate: errors name the line or key", "[rollout][generate_cli]") {
  TinyModelDir d;
  const fs::path out = d.root / "out.jsonl";
  auto run = [&](const std::string& prompts_text, std::vector<std::string> extra) {
    const fs::path prompts = d.root / "p.jsonl";
    write_file(prompts, prompts_text);
    // (the bare prompt: the R1-Zero template alone is longer than the tiny model's 128 positions)
    std::vector<std::string> a = {"--model", d.model.string(), "--prompts", prompts.string(),
                                  "--output", out.string(), "--threads", "1",
                                  "--set", "rollout.prompt_template='{prompt}'"};
    a.insert(a.end(), extra.begin(), extra.end());
    return cli::cmd_generate(a);
  };
  auto message = [&](const std::string& prompts_text, std::vector<std::string> extra) -> std::string {
    try {
      run(prompts_text, extra);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  const std::string ok = "{\"prompt\": \"x\"}\n";
  // Line 2 of the file has neither key; line 1 an id outside the vocabulary.
  CHECK_THROWS_AS(run(ok + "{\"text\": \"y\"}\n", {}), DataError);
  CHECK(message(ok + "{\"text\": \"y\"}\n", {}).find("p.jsonl:2") != std::string::npos);
  CHECK(message("{\"ids\": [1, 300]}\n", {}).find("p.jsonl:1: \"ids\"[1]") != std::string::npos);
  // A prompt longer than rollout.max_len.
  CHECK(message("{\"ids\": [1, 2, 3, 4, 5, 6]}\n", {"--set", "rollout.max_len=4", "--max-new-tokens", "2"})
            .find("rollout.max_len") != std::string::npos);
  // Only rollout keys; unknown keys are config errors with a suggestion.
  CHECK_THROWS_AS(run(ok, {"--set", "run.seed=1"}), UsageError);
  CHECK_THROWS_AS(run(ok, {"--set", "rollout.grop_size=2"}), ConfigError);
  CHECK(message(ok, {"--set", "rollout.grop_size=2"}).find("group_size") != std::string::npos);
  // A KV cap that cannot hold G slots.
  CHECK(message(ok, {"--set", "rollout.kv_cache_mb=0.01", "--group-size", "4"})
            .find("rollout.kv_cache_mb") != std::string::npos);
  // No tokenizer: prompt lines and stop strings cannot work; ids lines with stop=[] do.
  fs::remove(d.model / "tokenizer.json");
  CHECK_THROWS_AS(run("{\"ids\": [1, 2]}\n", {}), ConfigError);
  CHECK_THROWS_AS(run(ok, {"--set", "rollout.stop=[]"}), DataError);
  REQUIRE(run("{\"ids\": [1, 2]}\n", {"--set", "rollout.stop=[]", "--group-size", "1",
                                      "--max-new-tokens", "3"}) == 0);
  const std::vector<nlohmann::json> lines = read_jsonl(out);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["completion"] == "");
  CHECK(lines[0]["ids"].size() >= 1);
}
