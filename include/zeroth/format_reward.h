// Format rewards of R1-Zero: does a completion follow
//   <think> reasoning </think> <answer> answer </answer>
// and is its reasoning written in the target language?
//
// Owns: the strict and lenient format checks, the tag-count reward and the
// language-consistency reward (DeepSeek-R1, sec. 2.3.3: the share of the reasoning's
// words written in the target language), and the n-gram repetition rate. Each returns a
// value in [0, 1]; weights and
// composition with the accuracy reward belong to the reward composer, not here.
// Never throws; bounded time (linear in the completion's length).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zeroth {

struct FormatTags {
  std::string think_open = "<think>";
  std::string think_close = "</think>";
  std::string answer_open = "<answer>";
  std::string answer_close = "</answer>";
  // The prompt template already ends with think_open (some R1-Zero templates do), so
  // the completion starts inside the reasoning and must not repeat the opening tag.
  bool think_open_in_prompt = false;
};

// 1 when the whole completion is exactly: optional whitespace, think_open, reasoning
// (non-blank, no tags), think_close, optional whitespace, answer_open, answer (non-blank,
// no tags), answer_close, optional whitespace; 0 otherwise. Each tag appears exactly once.
double format_reward_strict(std::string_view completion, const FormatTags& tags = {});

// 1 when a think block (think_open ... think_close) is followed somewhere later by an
// answer block (answer_open ... answer_close) with non-blank content; text around them
// and repeated tags are tolerated. 0 otherwise.
double format_reward_lenient(std::string_view completion, const FormatTags& tags = {});

// 0.25 for each of the four tags that appears exactly once (open-r1's tag-count
// reward): a dense signal early in training. With think_open_in_prompt the opening
// think tag counts as present when it does not appear in the completion.
double tag_count_reward(std::string_view completion, const FormatTags& tags = {});

// Scripts the language-consistency reward can target.
enum class Script { Latin, Han, Cyrillic, Arabic, Devanagari, Hangul, Kana };

// Parses "latin"/"en", "han"/"zh", "cyrillic"/"ru", "arabic"/"ar", "devanagari"/"hi",
// "hangul"/"ko", "kana"/"ja"; false for anything else.
bool parse_script(const std::string& name, Script* out);

// Share of the reasoning's words written in `target`. Words are maximal runs of letters
// of one script; each Han, Kana or Hangul character counts as one word (those scripts
// do not separate words with spaces). Digits, punctuation, math and symbols are not
// words. The reasoning is the think block when there is one, else the whole completion.
// A reasoning with no words scores 0.
double language_consistency_reward(std::string_view completion, Script target,
                                   const FormatTags& tags = {});

// Share of the completion's word n-grams that repeat an earlier one: 1 - distinct / total
// over its `n`-grams (Yeo et al. 2025; open-r1's repetition penalty), in [0, 1). Words
// are whitespace-separated runs, ASCII letters lower-cased; each Han, Kana or Hangul
// character is a word of its own. Fewer than `n` words (or n < 1) scores 0. Allocates;
// linear in the completion's length times n.
double repetition_rate(std::string_view completion, int n);

// Whether `text` contains one of `phrases` as a whole word or phrase, ASCII letters
// compared case-insensitively: the match may not continue a word (no ASCII letter or
// digit right before or after it), so "wait" matches "Wait," but not "awaits". Empty
// phrases never match. For counting self-reflection in completions (rl.reflection_words).
bool contains_phrase(std::string_view text, const std::vector<std::string>& phrases);

// Content between the last `open` and the first `close` after it; nullopt if absent.
std::optional<std::string_view> last_tag_content(std::string_view text, std::string_view open,
                                                 std::string_view close);

}  // namespace zeroth
