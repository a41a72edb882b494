// Golden tests against Hugging Face (transformers.js 4.3.1 ids in data/, made by
// scripts/tokenizer-golden/make_golden.mjs): exact ids for the whole corpus on DeepSeek-V3
// and Qwen3, decode round trips, streaming decode, and special-token behaviour.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tokenizer_test_util.h"
#include "zeroth/error.h"

using zeroth_test::read_jsonl;
using zeroth_test::real_tokenizer;

namespace {

struct GoldenCase {
  std::string name, text, decoded;
  std::vector<int32_t> ids;
};

std::vector<GoldenCase> load_golden(const std::string& file) {
  const std::string dir = std::string(ZEROTH_TEST_DATA_DIR) + "/tokenizer/data/";
  const auto corpus = read_jsonl(dir + "corpus.jsonl");
  const auto golden = read_jsonl(dir + file);
  REQUIRE(golden.size() == corpus.size() + 1);  // header line first
  REQUIRE(golden[0]["package"] == "@huggingface/transformers");
  std::vector<GoldenCase> cases;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const auto& g = golden[i + 1];
    REQUIRE(g["name"] == corpus[i]["name"]);
    GoldenCase c;
    c.name = corpus[i]["name"].get<std::string>();
    c.text = corpus[i]["text"].get<std::string>();
    c.ids = g["ids"].get<std::vector<int32_t>>();
    c.decoded = g.contains("decoded") ? g["decoded"].get<std::string>() : c.text;
    cases.push_back(c);
  }
  REQUIRE(cases.size() > 100);
  return cases;
}

void check_golden(const std::string& tokenizer, const std::string& file) {
  const zeroth::Tokenizer* tok = real_tokenizer(tokenizer);
  if (!tok) return;
  size_t total_ids = 0;
  for (const GoldenCase& c : load_golden(file)) {
    INFO(tokenizer << " case " << c.name);
    CHECK(tok->encode(c.text, false) == c.ids);
    CHECK(tok->decode(c.ids, false) == c.decoded);
    // Streaming decode gives the same text, one id at a time.
    zeroth::TokenStreamDecoder stream(*tok, false);
    std::string streamed;
    for (int32_t id : c.ids) streamed += stream.push(id);
    streamed += stream.finish();
    CHECK(streamed == c.decoded);
    total_ids += c.ids.size();
  }
  CHECK(total_ids > 10000);
}

}  // namespace

TEST_CASE("DeepSeek-V3 tokenizer matches Hugging Face ids on the corpus", "[tokenizer]") {
  check_golden("deepseek-v3", "golden_deepseek_v3.jsonl");
}

TEST_CASE("Qwen3 tokenizer matches Hugging Face ids on the corpus", "[tokenizer]") {
  check_golden("qwen3", "golden_qwen3.jsonl");
}

TEST_CASE("DeepSeek-V3 special tokens, BOS and vocabulary", "[tokenizer]") {
  const zeroth::Tokenizer* tok = real_tokenizer("deepseek-v3");
  if (!tok) return;
  CHECK(tok->special_ids().bos == 0);
  CHECK(tok->special_ids().eos == 1);
  CHECK(tok->special_ids().pad == 1);
  CHECK(tok->vocab_size() == 128815);
  CHECK(tok->encode("", false).empty());
  CHECK(tok->encode("", true) == std::vector<int32_t>{0});  // add_bos_token: true
  const auto with_bos = tok->encode("Hello world", true);
  const auto without = tok->encode("Hello world", false);
  REQUIRE(with_bos.size() == without.size() + 1);
  CHECK(with_bos[0] == 0);
  CHECK(std::vector<int32_t>(with_bos.begin() + 1, with_bos.end()) == without);
  CHECK(tok->token_to_id("<｜User｜>") == 128803);
  CHECK(tok->id_to_token(128803) == "<｜User｜>");
  CHECK(tok->is_special(0));
  CHECK_FALSE(tok->is_special(128803));  // <｜User｜> is an added, non-special token
  CHECK(tok->token_to_id("Ġthe") >= 0);
  CHECK(tok->id_to_token(tok->token_to_id("Ġthe")) == "Ġthe");
  CHECK(tok->token_to_id("no such token") == -1);
  CHECK(tok->id_to_token(-5).empty());
  CHECK(tok->id_to_token(129000).empty());
  // skip_special_tokens drops BOS/EOS but keeps non-special added tokens.
  const auto ids = tok->encode("<｜begin▁of▁sentence｜>Hi<｜User｜>x<｜end▁of▁sentence｜>", false);
  CHECK(ids.front() == 0);
  CHECK(ids.back() == 1);
  CHECK(tok->decode(ids, true) == "Hi<｜User｜>x");
  // Ids without a token (the embedding is padded past the vocabulary) decode to nothing.
  CHECK(tok->decode({129279, 128900}, false).empty());
}

TEST_CASE("Qwen3 special tokens and no BOS", "[tokenizer]") {
  const zeroth::Tokenizer* tok = real_tokenizer("qwen3");
  if (!tok) return;
  CHECK(tok->special_ids().bos == -1);
  CHECK(tok->special_ids().eos == 151645);
  CHECK(tok->special_ids().pad == 151643);
  CHECK(tok->vocab_size() == 151669);
  CHECK(tok->encode("", true).empty());
  CHECK(tok->encode("Hello", true) == tok->encode("Hello", false));
  const auto ids = tok->encode("<|im_start|>user\nhi<|im_end|><think>x</think>", false);
  CHECK(ids.front() == 151644);
  CHECK(tok->decode(ids, true) == "user\nhi<think>x</think>");
  CHECK(tok->decode(ids, false) == "<|im_start|>user\nhi<|im_end|><think>x</think>");
  // A special token is never split, even glued to letters on both sides.
  const auto glued = tok->encode("a<|endoftext|>b", false);
  REQUIRE(glued.size() == 3);
  CHECK(glued[1] == 151643);
}

TEST_CASE("Decoding a cut inside a character gives U+FFFD, decode_bytes gives raw bytes",
          "[tokenizer]") {
  const zeroth::Tokenizer* tok = real_tokenizer("qwen3");
  if (!tok) return;
  // The byte-level tokens of 0xE4 and 0xBD (a cut-off 3-byte character).
  const int32_t e4 = tok->token_to_id("ä"), bd = tok->token_to_id("½");
  REQUIRE(e4 >= 0);
  REQUIRE(bd >= 0);
  CHECK(tok->decode_bytes({e4, bd}, false) == "\xE4\xBD");
  CHECK(tok->decode({e4, bd}, false) == "\xEF\xBF\xBD");  // one maximal subpart -> one U+FFFD
  CHECK(tok->decode({bd, e4}, false) == "\xEF\xBF\xBD\xEF\xBF\xBD");
  zeroth::TokenStreamDecoder stream(*tok, false);
  CHECK(stream.push(e4).empty());       // held back: may still complete
  CHECK(stream.push(bd).empty());
  CHECK(stream.push(tok->token_to_id("ł")) == "\xE4\xBD\xA0");  // 0xA0 completes 你
  CHECK(stream.push(e4).empty());
  CHECK(stream.finish() == "\xEF\xBF\xBD");
}

TEST_CASE("Invalid UTF-8 input is a DataError", "[tokenizer]") {
  const zeroth::Tokenizer* tok = real_tokenizer("deepseek-v3");
  if (!tok) return;
  CHECK_THROWS_AS(tok->encode("ok \xFF bad", false), zeroth::DataError);
  CHECK_THROWS_WITH(tok->encode("ab\xE4\xBD", false), Catch::Contains("offset 2"));
  CHECK_THROWS_AS(tok->encode("\xED\xA0\x80", false), zeroth::DataError);  // surrogate
}
