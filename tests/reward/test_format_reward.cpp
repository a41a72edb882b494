// Tests for the R1-Zero format rewards and the language-consistency reward.
#include <catch2/catch.hpp>

#include <string>

#include "zeroth/format_reward.h"

using namespace zeroth;

TEST_CASE("strict format: exactly think then answer, nothing else", "[reward][format]") {
  REQUIRE(format_reward_strict("<think>2+2 is 4</think><answer>4</answer>") == 1.0);
  REQUIRE(format_reward_strict("  <think>\nreason\n</think>\n<answer> 4 </answer>\n") == 1.0);
  // Missing, empty, repeated or out-of-order parts.
  REQUIRE(format_reward_strict("<think>r</think>") == 0.0);
  REQUIRE(format_reward_strict("<answer>4</answer>") == 0.0);
  REQUIRE(format_reward_strict("<think> </think><answer>4</answer>") == 0.0);
  REQUIRE(format_reward_strict("<think>r</think><answer>  </answer>") == 0.0);
  REQUIRE(format_reward_strict("<answer>4</answer><think>r</think>") == 0.0);
  REQUIRE(format_reward_strict("<think>r</think><think>s</think><answer>4</answer>") == 0.0);
  REQUIRE(format_reward_strict("<think>r</think><answer>4</answer> trailing") == 0.0);
  REQUIRE(format_reward_strict("lead <think>r</think><answer>4</answer>") == 0.0);
  REQUIRE(format_reward_strict("<think>r</think> x <answer>4</answer>") == 0.0);
  REQUIRE(format_reward_strict("<think>r<answer>4</answer></think>") == 0.0);
  REQUIRE(format_reward_strict("") == 0.0);
}

TEST_CASE("lenient format tolerates surrounding text", "[reward][format]") {
  REQUIRE(format_reward_lenient("Sure. <think>r</think> so <answer>4</answer> done") == 1.0);
  REQUIRE(format_reward_lenient("<answer>4</answer><think>r</think>") == 0.0);
  REQUIRE(format_reward_lenient("<think>r</think><answer></answer>") == 0.0);
  REQUIRE(format_reward_lenient("<think>r</think><answer>4") == 0.0);
}

TEST_CASE("the opening think tag may come from the prompt", "[reward][format]") {
  FormatTags t;
  t.think_open_in_prompt = true;
  REQUIRE(format_reward_strict("reasoning</think><answer>4</answer>", t) == 1.0);
  REQUIRE(format_reward_strict("<think>reasoning</think><answer>4</answer>", t) == 0.0);
  REQUIRE(format_reward_lenient("reasoning</think> <answer>4</answer>", t) == 1.0);
  REQUIRE(tag_count_reward("reasoning</think><answer>4</answer>", t) == 1.0);
}

TEST_CASE("custom tags", "[reward][format]") {
  FormatTags t;
  t.think_open = "<reasoning>";
  t.think_close = "</reasoning>";
  REQUIRE(format_reward_strict("<reasoning>r</reasoning><answer>4</answer>", t) == 1.0);
  REQUIRE(format_reward_strict("<think>r</think><answer>4</answer>", t) == 0.0);
}

TEST_CASE("tag count gives a quarter per tag present exactly once", "[reward][format]") {
  REQUIRE(tag_count_reward("<think>r</think><answer>4</answer>") == 1.0);
  REQUIRE(tag_count_reward("<think>r</think>") == 0.5);
  REQUIRE(tag_count_reward("<think>r</think></think><answer>4") == 0.5);
  REQUIRE(tag_count_reward("nothing") == 0.0);
}

TEST_CASE("language consistency: share of reasoning words in the target script", "[reward][format]") {
  REQUIRE(language_consistency_reward("<think>all english words here</think><answer>4</answer>", Script::Latin) == 1.0);
  // 2 Latin words, 2 Han characters (each a word).
  REQUIRE(language_consistency_reward("<think>the answer 答案</think><answer>4</answer>", Script::Latin) ==
          Approx(0.5));
  REQUIRE(language_consistency_reward("<think>the answer 答案</think>", Script::Han) == Approx(0.5));
  // Numbers and math are not words; the answer block is not reasoning.
  REQUIRE(language_consistency_reward("<think>x = 3 + 4 = 7</think><answer>答案</answer>", Script::Latin) == 1.0);
  REQUIRE(language_consistency_reward("<think>123 + 456</think>", Script::Latin) == 0.0);
  REQUIRE(language_consistency_reward("привет world", Script::Cyrillic) == Approx(0.5));
  // Invalid UTF-8 never crashes.
  std::string junk = "<think>ok \xff\xfe\xc3 word</think>";
  REQUIRE(language_consistency_reward(junk, Script::Latin) == 1.0);
  Script s;
  REQUIRE(parse_script("zh", &s));
  REQUIRE(s == Script::Han);
  REQUIRE_FALSE(parse_script("klingon", &s));
}

TEST_CASE("last_tag_content takes the last opening tag", "[reward][format]") {
  auto c = last_tag_content("<answer>1</answer> and <answer>2</answer>", "<answer>", "</answer>");
  REQUIRE(c);
  REQUIRE(*c == "2");
  REQUIRE_FALSE(last_tag_content("<answer>2", "<answer>", "</answer>"));
}

TEST_CASE("self-reflection phrases: whole words and phrases, ASCII case-insensitive", "[reward][format]") {
  const std::vector<std::string> words = {"wait", "double check", "re-check"};
  CHECK(contains_phrase("So 3 + 4 = 7. Wait, that is 8.", words));
  CHECK(contains_phrase("WAIT", words));
  CHECK(contains_phrase("<think>wait</think>", words));
  CHECK(contains_phrase("let me Double Check: 12", words));
  CHECK(contains_phrase("I re-check it", words));
  CHECK_FALSE(contains_phrase("it awaits the answer", words));  // inside a word
  CHECK_FALSE(contains_phrase("waiting", words));
  CHECK_FALSE(contains_phrase("double checked", words));
  CHECK_FALSE(contains_phrase("double  check", words));  // phrases match as written
  CHECK_FALSE(contains_phrase("", words));
  CHECK_FALSE(contains_phrase("wait", {}));
  CHECK_FALSE(contains_phrase("wait", {""}));
  CHECK(contains_phrase("x wait", {"wait"}));                 // at the end
  CHECK(contains_phrase("\xe7\xad\x89wait\xe4\xb8\x80", {"wait"}));  // non-ASCII neighbours end a word
  CHECK(contains_phrase("a+b", {"+"}));                        // a phrase of no letters matches anywhere
  CHECK(contains_phrase("7 is 0", {"0"}));
  CHECK_FALSE(contains_phrase("10", {"0"}));
}

TEST_CASE("repetition rate: share of word n-grams that repeat an earlier one", "[reward][format]") {
  // 6 words, 4 trigrams: abc bca cab abc -> 3 distinct: 1 - 3/4.
  CHECK(repetition_rate("a b c a b c", 3) == 0.25);
  CHECK(repetition_rate("one two three four five", 3) == 0.0);
  // Case folds (ASCII) and any whitespace separates; punctuation stays part of a word.
  CHECK(repetition_rate("Wait, wait,\n\tWAIT, wait,", 1) == 0.75);
  CHECK(repetition_rate("wait. wait,", 1) == 0.0);
  // Fewer words than n, an empty text, n < 1: 0.
  CHECK(repetition_rate("a b", 3) == 0.0);
  CHECK(repetition_rate("", 1) == 0.0);
  CHECK(repetition_rate("a a a", 0) == 0.0);
  // Every Han/Kana/Hangul character is a word: 4 unigrams, 2 distinct.
  CHECK(repetition_rate("\xe5\x9b\x9b\xe5\x9b\x9b\xe5\x9b\x9b\xe4\xba\x8c", 1) == 0.5);  // 四四四二
  // A loop that repeats one sentence approaches 1.
  std::string loop;
  for (int i = 0; i < 100; ++i) loop += "so the answer is 4 . ";
  CHECK(repetition_rate(loop, 3) > 0.98);
  CHECK(repetition_rate(loop, 3) < 1.0);
  // Invalid UTF-8 is bytes like any other.
  CHECK(repetition_rate(std::string("\xff \xff \xfe", 5), 1) == Approx(1.0 / 3.0));
}
