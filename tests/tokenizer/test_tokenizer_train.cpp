// train_bpe_tokenizer: merges computed by hand on tiny corpora, the file it writes loads
// and round-trips, special tokens, determinism, and bad options / input.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "tokenizer_test_util.h"
#include "zeroth/error.h"
#include "zeroth/tokenizer.h"

using namespace zeroth;

namespace {

std::string fresh_dir(const std::string& name) {
  const std::string d = zeroth_test::scratch_dir() + "/" + name;
  mkdir(d.c_str(), 0755);
  return d;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("train_bpe_tokenizer learns the merges a hand count gives", "[tokenizer][train]") {
  // Pre-tokens: "abab" x2, " " x2, "ab" x1. Pair counts: (a,b) 5, (b,a) 2, so "a b" first;
  // then (ab,ab) 2 -> "ab ab"; then no pair is left.
  const std::string dir = fresh_dir("hand");
  BpeTrainOptions opt;
  opt.vocab_size = 1000;
  const BpeTrainResult r = train_bpe_tokenizer({"abab abab ab"}, opt, dir);
  CHECK(r.merges == 2);
  CHECK(r.vocab_size == 256 + 2 + 3);
  CHECK(r.distinct_pretokens == 3);
  CHECK(r.pretokens == 5);
  const nlohmann::json j = nlohmann::json::parse(slurp(dir + "/tokenizer.json"));
  REQUIRE(j["model"]["merges"].size() == 2);
  CHECK(j["model"]["merges"][0] == "a b");
  CHECK(j["model"]["merges"][1] == "ab ab");
  CHECK(j["model"]["vocab"]["abab"] == 257);

  auto tok = load_tokenizer(dir);
  CHECK(tok->vocab_size() == 261);
  CHECK(tok->encode("abab", false) == std::vector<int32_t>{257});
  CHECK(tok->encode("ab", false) == std::vector<int32_t>{256});
  CHECK(tok->encode("aba", false) == std::vector<int32_t>{256, 'a'});
}

TEST_CASE("train_bpe_tokenizer breaks count ties by the older symbols", "[tokenizer][train]") {
  // (x,y) and (a,b) both occur twice: the pair of smaller ids, (a,b), is merged first.
  const std::string dir = fresh_dir("ties");
  BpeTrainOptions opt;
  opt.vocab_size = 256 + 1 + 3;
  train_bpe_tokenizer({"xy ab", "ab xy"}, opt, dir);
  const nlohmann::json j = nlohmann::json::parse(slurp(dir + "/tokenizer.json"));
  REQUIRE(j["model"]["merges"].size() == 1);
  CHECK(j["model"]["merges"][0] == "a b");
}

TEST_CASE("min_frequency stops the merges at rare pairs", "[tokenizer][train]") {
  const std::string dir = fresh_dir("minfreq");
  BpeTrainOptions opt;
  opt.min_frequency = 3;
  const BpeTrainResult r = train_bpe_tokenizer({"abab abab ab"}, opt, dir);
  CHECK(r.merges == 1);  // (a,b) 5 passes, (ab,ab) 2 does not
}

TEST_CASE("a trained tokenizer round-trips any text and treats its special tokens as special",
          "[tokenizer][train]") {
  std::vector<std::string> docs;
  for (int i = 0; i < 200; ++i)
    docs.push_back("Tom has " + std::to_string(i) + " apples. Put the work inside <calc> </calc> and "
                   "think it through. The answer is " + std::to_string(i * 7 % 100) + ".");
  const std::string dir = fresh_dir("roundtrip");
  BpeTrainOptions opt;
  opt.vocab_size = 1000;  // more than the corpus's pairs give: every repeated word merges
  const BpeTrainResult r = train_bpe_tokenizer(docs, opt, dir);
  CHECK(r.vocab_size < 1000);
  CHECK(r.vocab_size == 256 + r.merges + 3);
  auto tok = load_tokenizer(dir);
  REQUIRE(tok->vocab_size() == r.vocab_size);
  const int32_t bos = r.vocab_size - 3, eos = r.vocab_size - 2, pad = r.vocab_size - 1;
  // Frequent words are single tokens, with or without a space before them.
  for (const char* w : {"apples", "think", "answer", "calc"}) {
    INFO(w);
    CHECK(tok->token_to_id(w) >= 256);
    CHECK(tok->encode(w, false).size() == 1);
  }
  CHECK(tok->encode("<think>", false).size() == 3);  // "<", "think", ">"
  // Digits stay single (the default pattern splits numbers into digits).
  CHECK(tok->encode("1234", false).size() == 4);
  // Anything round-trips, including text the corpus never had (bytes are base tokens).
  for (const std::string& text :
       {docs[17], std::string("Ünïcödé 漢字 🙂 \t\n  tabs"), std::string("<|eos|> inside text")}) {
    INFO(text);
    CHECK(tok->decode(tok->encode(text, false), false) == text);
  }
  // Special tokens: the last ids, in order, recognised in text, BOS prepended.
  CHECK(tok->token_to_id("<|bos|>") == bos);
  CHECK(tok->token_to_id("<|eos|>") == eos);
  CHECK(tok->token_to_id("<|pad|>") == pad);
  CHECK(tok->is_special(eos));
  CHECK(tok->special_ids().bos == bos);
  CHECK(tok->special_ids().eos == eos);
  CHECK(tok->special_ids().pad == pad);
  const std::vector<int32_t> ids = tok->encode("apples<|eos|>", true);
  REQUIRE(ids.size() == 3);
  CHECK(ids[0] == bos);
  CHECK(ids[2] == eos);
}

TEST_CASE("training is deterministic", "[tokenizer][train]") {
  std::vector<std::string> docs;
  for (int i = 0; i < 300; ++i)
    docs.push_back("doc " + std::to_string(i) + ": the quick brown fox " + std::string(size_t(i % 7), 'z') +
                   " jumps over the lazy dog number " + std::to_string(i * 31));
  BpeTrainOptions opt;
  opt.vocab_size = 350;
  const std::string a = fresh_dir("det_a"), b = fresh_dir("det_b");
  train_bpe_tokenizer(docs, opt, a);
  train_bpe_tokenizer(docs, opt, b);
  CHECK(slurp(a + "/tokenizer.json") == slurp(b + "/tokenizer.json"));
  CHECK(slurp(a + "/tokenizer_config.json") == slurp(b + "/tokenizer_config.json"));
}

TEST_CASE("bad training options and input are clear errors", "[tokenizer][train]") {
  const std::string dir = fresh_dir("bad");
  BpeTrainOptions small;
  small.vocab_size = 258;  // below 256 + 3 special tokens
  CHECK_THROWS_AS(train_bpe_tokenizer({"abc"}, small, dir), ConfigError);
  BpeTrainOptions role;
  role.bos_token = "<s>";  // not among the special tokens
  CHECK_THROWS_AS(train_bpe_tokenizer({"abc"}, role, dir), ConfigError);
  BpeTrainOptions twice;
  twice.special_tokens = {"<a>", "<a>"};
  twice.bos_token = twice.eos_token = twice.pad_token = "";
  CHECK_THROWS_AS(train_bpe_tokenizer({"abc"}, twice, dir), ConfigError);
  BpeTrainOptions bad_regex;
  bad_regex.pattern = "(unclosed";
  CHECK_THROWS_AS(train_bpe_tokenizer({"abc"}, bad_regex, dir), DataError);
  CHECK_THROWS_AS(train_bpe_tokenizer({std::string("ok"), std::string("\xff\xfe")}, BpeTrainOptions(), dir),
                  DataError);
}
