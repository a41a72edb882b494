// Tests that load tokenizer.json files written on the fly: a tiny byte-level BPE with
// hand-checked merges, added-token flags (lstrip, rstrip, single_word, normalized),
// TemplateProcessing and ignore_merges; the ZerothBytes format; and malformed or
// unsupported files, which must be DataErrors naming the file.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"
#include "zeroth/error.h"

using nlohmann::json;
using zeroth_test::write_file;

namespace {

std::string bl(const std::string& raw) {  // raw bytes -> byte-level vocabulary string
  std::string out;
  for (unsigned char c : raw) zeroth::tok::utf8_append(zeroth::tok::byte_to_unicode(c), &out);
  return out;
}

// A byte-level BPE over 256 byte tokens (id = byte value) plus merges given as raw pairs.
json tiny_bpe(const std::vector<std::pair<std::string, std::string>>& merges, bool pair_form) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[bl(std::string(1, char(b)))] = b;
  json m = json::array();
  int next = 256;
  for (const auto& p : merges) {
    if (!vocab.contains(bl(p.first + p.second))) vocab[bl(p.first + p.second)] = next++;
    if (pair_form) m.push_back({bl(p.first), bl(p.second)});
    else m.push_back(bl(p.first) + " " + bl(p.second));
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"post_processor", {{"type", "ByteLevel"}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}}};
}

std::unique_ptr<zeroth::Tokenizer> load(const json& j, const std::string& name) {
  return zeroth::load_tokenizer(write_file(name, j.dump()));
}

// Reference BPE: merge the lowest-rank adjacent pair, leftmost first, until none is left.
std::vector<std::string> reference_bpe(const std::string& word,
                                       const std::vector<std::pair<std::string, std::string>>& merges) {
  std::vector<std::string> s;
  for (char c : word) s.push_back(std::string(1, c));
  while (true) {
    size_t best = s.size(), best_rank = merges.size();
    for (size_t i = 0; i + 1 < s.size(); ++i)
      for (size_t r = 0; r < best_rank; ++r)
        if (merges[r].first == s[i] && merges[r].second == s[i + 1]) {
          best = i;
          best_rank = r;
          break;
        }
    if (best == s.size()) return s;
    s[best] += s[best + 1];
    s.erase(s.begin() + best + 1);
  }
}

}  // namespace

TEST_CASE("Tiny BPE: merge order, both merge forms, long words", "[tokenizer]") {
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"a", "b"}, {"b", "c"}, {"ab", "c"}, {"a", "a"}, {"aa", "b"}, {"c", "c"}, {"abc", "abc"},
      {"cc", "a"}, {"b", "b"}, {"bb", "a"}};
  for (bool pair_form : {false, true}) {
    auto tok = load(tiny_bpe(merges, pair_form), "tiny.json");
    CHECK(tok->encode("abc", false) == std::vector<int32_t>{tok->token_to_id("abc")});
    CHECK(tok->encode("aaa", false) == (std::vector<int32_t>{tok->token_to_id("aa"), 'a'}));
    // Random words, short (vector loop) and long (heap loop), against the reference.
    std::mt19937 rng(pair_form ? 7 : 11);
    for (int trial = 0; trial < 60; ++trial) {
      const size_t len = trial < 30 ? 1 + rng() % 40 : 97 + rng() % 300;
      std::string word;
      for (size_t i = 0; i < len; ++i) word += "abc"[rng() % 3];
      std::vector<int32_t> expected;
      for (const std::string& piece : reference_bpe(word, merges)) expected.push_back(tok->token_to_id(bl(piece)));
      INFO("word " << word);
      CHECK(tok->encode(word, false) == expected);
      CHECK(tok->decode(expected, false) == word);
    }
  }
}

TEST_CASE("Tiny BPE: added tokens honour lstrip, rstrip, single_word and normalized", "[tokenizer]") {
  json j = tiny_bpe({{"h", "e"}}, false);
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}}}};
  auto added = [](int id, const std::string& content, bool special, bool lstrip, bool rstrip,
                  bool single_word, bool normalized) {
    return json{{"id", id}, {"content", content}, {"special", special}, {"lstrip", lstrip},
                {"rstrip", rstrip}, {"single_word", single_word}, {"normalized", normalized}};
  };
  j["added_tokens"] = {added(300, "<s>", true, false, false, false, false),
                       added(301, "</s>", true, false, false, false, false),
                       added(302, "<mask>", true, true, false, false, false),
                       added(303, "[R]", false, false, true, false, false),
                       added(304, "word", false, false, false, true, false),
                       added(305, "\xC3\xA9", false, false, false, false, true),
                       added(306, "\xC3\xB1", false, false, false, false, false)};
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                  {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                  {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}}},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {300}}, {"tokens", {"<s>"}}}},
                          {"</s>", {{"id", "</s>"}, {"ids", {301}}, {"tokens", {"</s>"}}}}}}};
  auto tok = load(j, "added.json");
  using V = std::vector<int32_t>;
  CHECK(tok->vocab_size() == 307);
  CHECK(tok->encode("he", true) == V{300, 256, 301});  // "he" is the one merge (id 256)
  CHECK(tok->encode("a <mask> b", false) == V{'a', 302, ' ', 'b'});  // lstrip ate the space
  CHECK(tok->encode("x[R]  y", false) == V{'x', 303, 'y'});          // rstrip ate both
  CHECK(tok->encode("word words aword word", false) ==
        V{304, ' ', 'w', 'o', 'r', 'd', 's', ' ', 'a', 'w', 'o', 'r', 'd', ' ', 304});
  // Normalized token matches after NFC; the non-normalized one only matches as written.
  CHECK(tok->encode("e\xCC\x81", false) == V{305});
  CHECK(tok->encode("\xC3\xA9", false) == V{305});
  CHECK(tok->encode("\xC3\xB1", false) == V{306});
  CHECK(tok->encode("n\xCC\x83", false) == V{0xC3, 0xB1});  // NFC'd to ñ but not matched
  CHECK(tok->decode({300, 256, 302, 301}, true) == "he");
  CHECK(tok->decode({300, 256, 302, 301}, false) == "<s>he<mask></s>");
}

TEST_CASE("Tiny BPE: ignore_merges takes whole words from the vocabulary", "[tokenizer]") {
  json j = tiny_bpe({{"a", "b"}}, true);
  j["model"]["vocab"]["abc"] = 400;
  auto plain = load(j, "nomerge.json");
  CHECK(plain->encode("abc", false) == std::vector<int32_t>{256, 'c'});
  j["model"]["ignore_merges"] = true;
  auto ignoring = load(j, "ignoremerge.json");
  CHECK(ignoring->encode("abc", false) == std::vector<int32_t>{400});
  CHECK(ignoring->encode("abd", false) == std::vector<int32_t>{256, 'd'});
}

TEST_CASE("ZerothBytes tokenizer.json loads from a model directory", "[tokenizer]") {
  const std::string dir = zeroth_test::scratch_dir() + "/bytemodel";
  mkdir(dir.c_str(), 0755);
  json j = {{"model", {{"type", "ZerothBytes"}, {"special_tokens", {"<bos>", "<eos>"}},
                       {"bos_token", "<bos>"}, {"eos_token", "<eos>"}, {"add_bos", true}}}};
  zeroth_test::write_file("bytemodel/tokenizer.json", j.dump());
  auto tok = zeroth::load_tokenizer(dir);
  CHECK(tok->vocab_size() == 258);
  CHECK(tok->encode("A<eos>", true) == std::vector<int32_t>{256, 'A', 257});
  j["model"]["colour"] = "red";
  CHECK_THROWS_WITH(load(j, "bytebad.json"), Catch::Contains("colour"));
}

TEST_CASE("Malformed or unsupported tokenizer files are DataErrors naming the file", "[tokenizer]") {
  const json good = tiny_bpe({{"a", "b"}}, false);
  auto expect_error = [](const std::string& content, const std::string& name, const std::string& what) {
    const std::string path = write_file(name, content);
    INFO(name);
    CHECK_THROWS_AS(zeroth::load_tokenizer(path), zeroth::DataError);
    CHECK_THROWS_WITH(zeroth::load_tokenizer(path), Catch::Contains(name) && Catch::Contains(what));
  };
  expect_error("{\"model\": ", "truncated.json", "not valid JSON");
  json j = good;
  j["model"]["type"] = "WordPiece";
  expect_error(j.dump(), "wordpiece.json", "WordPiece");
  j = good;
  j["model"].erase("merges");
  expect_error(j.dump(), "nomerges.json", "model.merges");
  j = good;
  j["model"]["merges"].push_back("zz qq");
  expect_error(j.dump(), "badmerge.json", "merges[1]");
  j = good;
  j["model"]["merges"].push_back("a b c");
  expect_error(j.dump(), "threemerge.json", "merges[1]");
  j = good;
  j["normalizer"] = {{"type", "Lowercase"}};
  expect_error(j.dump(), "lower.json", "Lowercase");
  j = good;
  j.erase("decoder");
  expect_error(j.dump(), "nodecoder.json", "decoder");
  j = good;
  j["truncation"] = {{"max_length", 5}};
  expect_error(j.dump(), "trunc.json", "truncation");
  j = good;
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(("}}}, {"behavior", "Isolated"}};
  expect_error(j.dump(), "badregex.json", "does not compile");
  j = good;
  j["pre_tokenizer"] = nullptr;
  expect_error(j.dump(), "nobytelevel.json", "ByteLevel");
  j = good;
  j["model"]["vocab"].erase(bl("\n"));
  expect_error(j.dump(), "missingbyte.json", "0x0A");
  j = good;
  j["model"]["continuing_subword_prefix"] = "##";
  expect_error(j.dump(), "prefix.json", "continuing_subword_prefix");
  j = good;
  j["added_tokens"] = {{{"id", 1}, {"content", "<x>"}, {"special", true}}};
  expect_error(j.dump(), "clash.json", "added_tokens[0]");
  CHECK_THROWS_WITH(zeroth::load_tokenizer(zeroth_test::scratch_dir() + "/no/such/file.json"),
                    Catch::Contains("cannot open"));
  CHECK_THROWS_WITH(zeroth::load_tokenizer(zeroth_test::scratch_dir()), Catch::Contains("no tokenizer.json"));
}
