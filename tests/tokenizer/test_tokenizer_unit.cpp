// Unit tests of the tokenizer parts that need no real vocabulary: UTF-8 repair, NFC,
// the Oniguruma \s translation, Split behaviours, and the byte tokenizer.
#include <catch2/catch.hpp>

#include <deque>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"
#include "zeroth/error.h"
#include "zeroth/tokenizer.h"

using namespace zeroth;

namespace {

std::string lossy(const std::string& s) {
  std::string out;
  tok::utf8_append_lossy(s, &out);
  return out;
}

std::string nfc(const std::string& s) {
  std::string out;
  tok::nfc_normalize(s, &out);
  return out;
}

std::vector<std::string> pretokenize(const nlohmann::json& j, const std::string& text) {
  tok::PreTokenizer pre(j, "test.json");
  std::vector<std::string_view> pieces;
  std::deque<std::string> arena;
  pre.split(text, &pieces, &arena);
  return std::vector<std::string>(pieces.begin(), pieces.end());
}

nlohmann::json split_step(const std::string& regex, const std::string& behavior, bool invert) {
  return {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", behavior}, {"invert", invert}};
}

using Pieces = std::vector<std::string>;
const std::string kFffd = "\xEF\xBF\xBD";

}  // namespace

TEST_CASE("UTF-8 validation and lossy repair follow the maximal-subpart rule", "[tokenizer]") {
  CHECK(tok::utf8_find_invalid("plain ascii") == std::string::npos);
  CHECK(tok::utf8_find_invalid("caf\xC3\xA9 \xF0\x9F\x98\x80") == std::string::npos);
  CHECK(tok::utf8_find_invalid("a\xC0\x80") == 1);            // overlong
  CHECK(tok::utf8_find_invalid("ab\xF4\x90\x80\x80") == 2);  // above U+10FFFF
  CHECK(lossy("a\xE2\x82z") == "a" + kFffd + "z");            // truncated 3-byte: one U+FFFD
  CHECK(lossy("\xF0\x9F\x98") == kFffd);
  CHECK(lossy("\x80\x80") == kFffd + kFffd);                  // lone continuations: one each
  CHECK(lossy("\xE0\x80\x80") == kFffd + kFffd + kFffd);      // E0 80: invalid second byte
  CHECK(lossy("\xED\xA0\x80") == kFffd + kFffd + kFffd);      // surrogate
  CHECK(lossy("ok\xC3\xA9") == "ok\xC3\xA9");
  CHECK(tok::utf8_complete_prefix("ab\xE2\x82") == 2);
  CHECK(tok::utf8_complete_prefix("ab\xE2\x82\xAC") == 5);
  CHECK(tok::utf8_complete_prefix("ab\x80") == 3);  // can never complete: emit now
  CHECK(tok::utf8_complete_prefix("\xF0\x9F\x98") == 0);
}

TEST_CASE("Byte-level map is the GPT-2 bijection", "[tokenizer]") {
  CHECK(tok::byte_to_unicode('A') == 'A');
  CHECK(tok::byte_to_unicode(' ') == 0x120);   // Ġ
  CHECK(tok::byte_to_unicode('\n') == 0x10A);  // Ċ
  CHECK(tok::byte_to_unicode(0xAD) == 0x143);
  for (int b = 0; b < 256; ++b) CHECK(tok::unicode_to_byte(tok::byte_to_unicode(uint8_t(b))) == b);
  CHECK(tok::unicode_to_byte(0x4E2D) == -1);
}

TEST_CASE("NFC composes, reorders and keeps exclusions", "[tokenizer]") {
  CHECK(nfc("plain") == "plain");
  CHECK(nfc("e\xCC\x81") == "\xC3\xA9");                    // e + U+0301 -> é
  CHECK(nfc("\xC3\xA9") == "\xC3\xA9");
  CHECK(nfc("o\xCC\x9B\xCC\xA3") == "\xE1\xBB\xA3");        // o + horn + dot below -> ợ
  CHECK(nfc("o\xCC\xA3\xCC\x9B") == "\xE1\xBB\xA3");        // other order, same result
  CHECK(nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8") == "\xEA\xB0\x81");  // jamo -> 각
  CHECK(nfc("\xE2\x84\xAB") == "\xC3\x85");                 // Angstrom sign -> Å (singleton)
  CHECK(nfc("\xE0\xA4\x95\xE0\xA4\xBC") == "\xE0\xA4\x95\xE0\xA4\xBC");  // excluded from composition
  CHECK(nfc("\xCC\x81" "a") == "\xCC\x81" "a");             // leading combining mark stays
}

TEST_CASE("Regex backslash-s follows Oniguruma's White_Space set", "[tokenizer]") {
  const std::string t = tok::translate_onig_pattern("\\s+(?!\\S)|[^\\s\\p{L}]", "test");
  CHECK(t.find("\\s") == std::string::npos);
  CHECK(t.find("\\S") == std::string::npos);
  CHECK(tok::translate_onig_pattern("[\\]\\s]", "test").find("\\x{85}") != std::string::npos);
  CHECK_THROWS_AS(tok::translate_onig_pattern("[\\S]", "test"), DataError);
  tok::Regex re("\\s+", "test");
  size_t b, e;
  // U+0085 (NEL) is White_Space for Oniguruma (JavaScript disagrees); U+FEFF is not.
  REQUIRE(re.find("a\xC2\x85z", 0, &b, &e));
  CHECK(b == 1);
  CHECK(e == 3);
  CHECK_FALSE(re.find("a\xEF\xBB\xBFz", 0, &b, &e));
  CHECK_THROWS_AS(tok::Regex("(unclosed", "test.json: key"), DataError);
}

TEST_CASE("Split behaviours and invert match Hugging Face", "[tokenizer]") {
  const std::string text = "ab--cd-e";
  CHECK(pretokenize(split_step("-", "Isolated", false), text) == Pieces{"ab", "-", "-", "cd", "-", "e"});
  CHECK(pretokenize(split_step("-", "Removed", false), text) == Pieces{"ab", "cd", "e"});
  CHECK(pretokenize(split_step("-", "MergedWithPrevious", false), text) == Pieces{"ab-", "-", "cd-", "e"});
  CHECK(pretokenize(split_step("-", "MergedWithNext", false), text) == Pieces{"ab", "-", "-cd", "-e"});
  CHECK(pretokenize(split_step("-", "Contiguous", false), text) == Pieces{"ab", "--", "cd", "-", "e"});
  CHECK(pretokenize(split_step("-", "Removed", true), text) == Pieces{"-", "-", "-"});
  CHECK(pretokenize(split_step("\\p{N}{1,3}", "Isolated", false), "x12345y") ==
        Pieces{"x", "123", "45", "y"});
  nlohmann::json literal = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Removed"}};
  CHECK(pretokenize(literal, " a  b ") == Pieces{"a", "b"});
  // ByteLevel with add_prefix_space and the GPT-2 regex.
  nlohmann::json bl = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  CHECK(pretokenize(bl, "Hello world's  end") == Pieces{" Hello", " world", "'s", " ", " end"});
  // Contractions are case-insensitive in Qwen's (?i:...) group.
  CHECK(pretokenize(split_step("(?i:'s|'ll)|\\p{L}+", "Isolated", false), "IT'S we'LL") ==
        Pieces{"IT", "'S", " ", "we", "'LL"});
  CHECK(pretokenize(nlohmann::json(), "any thing") == Pieces{"any thing"});  // no steps: one piece
  CHECK_THROWS_AS(pretokenize({{"type", "Whitespace"}}, "x"), DataError);
  CHECK_THROWS_AS(pretokenize(split_step("-", "Sideways", false), "x"), DataError);
  CHECK_THROWS_WITH(pretokenize({{"type", "Sequence"}, {"pretokenizers", {bl, split_step("-", "Isolated", false)}}}, "x"),
                    Catch::Contains("must be the last"));
}

TEST_CASE("Byte tokenizer encodes bytes and named special tokens", "[tokenizer]") {
  ByteTokenizerConfig c;
  c.special_tokens = {"<|bos|>", "<|eos|>", "<|pad|>", "<|eos|>x"};
  c.bos_token = "<|bos|>";
  c.eos_token = "<|eos|>";
  c.pad_token = "<|pad|>";
  c.add_bos = true;
  auto tok = make_byte_tokenizer(c);
  CHECK(tok->vocab_size() == 260);
  CHECK(tok->special_ids().bos == 256);
  CHECK(tok->special_ids().eos == 257);
  CHECK(tok->special_ids().pad == 258);
  CHECK(tok->encode("", false).empty());
  CHECK(tok->encode("", true) == std::vector<int32_t>{256});
  CHECK(tok->encode("hi", true) == std::vector<int32_t>{256, 'h', 'i'});
  const std::string text = "a<|eos|>b<|eos|>x\xC3\xA9<|pad";
  const auto ids = tok->encode(text, false);
  CHECK(ids == std::vector<int32_t>{'a', 257, 'b', 259, 0xC3, 0xA9, '<', '|', 'p', 'a', 'd'});
  CHECK(tok->decode(ids, false) == text);
  CHECK(tok->decode(ids, true) == "ab\xC3\xA9<|pad");
  CHECK(tok->is_special(257));
  CHECK_FALSE(tok->is_special(255));
  CHECK(tok->token_to_id("<|pad|>") == 258);
  CHECK(tok->token_to_id("A") == 65);
  CHECK(tok->id_to_token(259) == "<|eos|>x");
  CHECK(tok->decode({0xC3}, false) == kFffd);
  CHECK(tok->decode_bytes({0xC3}, false) == "\xC3");
  CHECK_THROWS_AS(tok->encode("\xC3", false), DataError);
  ByteTokenizerConfig bad;
  bad.special_tokens = {"<a>"};
  bad.bos_token = "<b>";
  CHECK_THROWS_AS(make_byte_tokenizer(bad), DataError);
  bad.bos_token.clear();
  bad.add_eos = true;
  CHECK_THROWS_AS(make_byte_tokenizer(bad), DataError);
}
