// Format, language-consistency and repetition rewards (format_reward.h). Plain scanning
// with string_view::find; no regular expressions, no allocation in the format checks.
#include "zeroth/format_reward.h"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace zeroth {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

bool is_blank(std::string_view s) {
  for (char c : s)
    if (!is_space(c)) return false;
  return true;
}

std::string_view trim_left(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && is_space(s[i])) ++i;
  return s.substr(i);
}

size_t count_occurrences(std::string_view text, std::string_view tag) {
  if (tag.empty()) return 0;
  size_t n = 0;
  for (size_t pos = text.find(tag); pos != std::string_view::npos; pos = text.find(tag, pos + tag.size())) ++n;
  return n;
}

bool contains(std::string_view text, std::string_view tag) { return !tag.empty() && text.find(tag) != std::string_view::npos; }

// Consumes `tag` at the start of *s (after optional whitespace when skip_ws).
bool consume(std::string_view* s, std::string_view tag, bool skip_ws) {
  std::string_view t = skip_ws ? trim_left(*s) : *s;
  if (t.substr(0, tag.size()) != tag) return false;
  *s = t.substr(tag.size());
  return true;
}

// Decodes one UTF-8 code point at s[*i]; advances *i. Invalid bytes yield U+FFFD
// and advance by one.
uint32_t next_code_point(std::string_view s, size_t* i) {
  unsigned char c = static_cast<unsigned char>(s[*i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (len == 0 || *i + size_t(len) > s.size()) {
    ++*i;
    return 0xfffd;
  }
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1fu) : len == 3 ? (c & 0x0fu) : (c & 0x07u);
  for (int k = 1; k < len; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[*i + size_t(k)]);
    if ((cc >> 6) != 0x2) {
      ++*i;
      return 0xfffd;
    }
    cp = (cp << 6) | (cc & 0x3fu);
  }
  *i += size_t(len);
  return cp;
}

enum class CharClass { Other, Latin, Han, Cyrillic, Arabic, Devanagari, Hangul, Kana };

CharClass classify(uint32_t cp) {
  if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::Latin;
  if (cp < 0x80) return CharClass::Other;
  if ((cp >= 0xc0 && cp <= 0x24f && cp != 0xd7 && cp != 0xf7) || (cp >= 0x1e00 && cp <= 0x1eff))
    return CharClass::Latin;
  if (cp >= 0x400 && cp <= 0x52f) return CharClass::Cyrillic;
  if ((cp >= 0x600 && cp <= 0x6ff && !(cp >= 0x660 && cp <= 0x669)) || (cp >= 0x750 && cp <= 0x77f))
    return CharClass::Arabic;
  if (cp >= 0x900 && cp <= 0x97f && !(cp >= 0x966 && cp <= 0x96f)) return CharClass::Devanagari;
  if ((cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0xf900 && cp <= 0xfaff) ||
      (cp >= 0x20000 && cp <= 0x2ebef))
    return CharClass::Han;
  if ((cp >= 0x3041 && cp <= 0x309f) || (cp >= 0x30a0 && cp <= 0x30ff)) return CharClass::Kana;
  if ((cp >= 0xac00 && cp <= 0xd7af) || (cp >= 0x1100 && cp <= 0x11ff)) return CharClass::Hangul;
  return CharClass::Other;
}

bool unspaced(CharClass c) { return c == CharClass::Han || c == CharClass::Kana || c == CharClass::Hangul; }

CharClass to_class(Script s) {
  switch (s) {
    case Script::Latin: return CharClass::Latin;
    case Script::Han: return CharClass::Han;
    case Script::Cyrillic: return CharClass::Cyrillic;
    case Script::Arabic: return CharClass::Arabic;
    case Script::Devanagari: return CharClass::Devanagari;
    case Script::Hangul: return CharClass::Hangul;
    case Script::Kana: return CharClass::Kana;
  }
  return CharClass::Other;
}

}  // namespace

std::optional<std::string_view> last_tag_content(std::string_view text, std::string_view open,
                                                 std::string_view close) {
  if (open.empty() || close.empty()) return std::nullopt;
  size_t o = text.rfind(open);
  if (o == std::string_view::npos) return std::nullopt;
  size_t start = o + open.size();
  size_t c = text.find(close, start);
  if (c == std::string_view::npos) return std::nullopt;
  return text.substr(start, c - start);
}

double format_reward_strict(std::string_view s, const FormatTags& t) {
  // Every tag exactly once (the opening think tag: zero times when the prompt has it).
  size_t want_think_open = t.think_open_in_prompt ? 0 : 1;
  if (count_occurrences(s, t.think_open) != want_think_open || count_occurrences(s, t.think_close) != 1 ||
      count_occurrences(s, t.answer_open) != 1 || count_occurrences(s, t.answer_close) != 1)
    return 0.0;
  std::string_view rest = s;
  if (!t.think_open_in_prompt && !consume(&rest, t.think_open, true)) return 0.0;
  size_t tc = rest.find(t.think_close);
  std::string_view reasoning = rest.substr(0, tc);
  if (is_blank(reasoning)) return 0.0;
  rest = rest.substr(tc + t.think_close.size());
  if (!consume(&rest, t.answer_open, true)) return 0.0;
  size_t ac = rest.find(t.answer_close);
  if (ac == std::string_view::npos) return 0.0;
  std::string_view answer = rest.substr(0, ac);
  if (is_blank(answer)) return 0.0;
  rest = rest.substr(ac + t.answer_close.size());
  return is_blank(rest) ? 1.0 : 0.0;
}

double format_reward_lenient(std::string_view s, const FormatTags& t) {
  size_t think_end;
  if (t.think_open_in_prompt) {
    think_end = s.find(t.think_close);
    if (think_end == std::string_view::npos || is_blank(s.substr(0, think_end))) return 0.0;
  } else {
    size_t to = s.find(t.think_open);
    if (to == std::string_view::npos) return 0.0;
    size_t body = to + t.think_open.size();
    think_end = s.find(t.think_close, body);
    if (think_end == std::string_view::npos || is_blank(s.substr(body, think_end - body))) return 0.0;
  }
  std::string_view after = s.substr(think_end + t.think_close.size());
  size_t ao = after.find(t.answer_open);
  if (ao == std::string_view::npos) return 0.0;
  size_t body = ao + t.answer_open.size();
  size_t ac = after.find(t.answer_close, body);
  if (ac == std::string_view::npos) return 0.0;
  return is_blank(after.substr(body, ac - body)) ? 0.0 : 1.0;
}

double tag_count_reward(std::string_view s, const FormatTags& t) {
  double r = 0.0;
  if (t.think_open_in_prompt) {
    if (!contains(s, t.think_open)) r += 0.25;
  } else if (count_occurrences(s, t.think_open) == 1) {
    r += 0.25;
  }
  if (count_occurrences(s, t.think_close) == 1) r += 0.25;
  if (count_occurrences(s, t.answer_open) == 1) r += 0.25;
  if (count_occurrences(s, t.answer_close) == 1) r += 0.25;
  return r;
}

bool parse_script(const std::string& n, Script* out) {
  if (n == "latin" || n == "en") *out = Script::Latin;
  else if (n == "han" || n == "zh") *out = Script::Han;
  else if (n == "cyrillic" || n == "ru") *out = Script::Cyrillic;
  else if (n == "arabic" || n == "ar") *out = Script::Arabic;
  else if (n == "devanagari" || n == "hi") *out = Script::Devanagari;
  else if (n == "hangul" || n == "ko") *out = Script::Hangul;
  else if (n == "kana" || n == "ja") *out = Script::Kana;
  else return false;
  return true;
}

double language_consistency_reward(std::string_view s, Script target, const FormatTags& t) {
  std::string_view reasoning = s;
  if (t.think_open_in_prompt) {
    size_t c = s.find(t.think_close);
    if (c != std::string_view::npos) reasoning = s.substr(0, c);
  } else if (auto r = last_tag_content(s, t.think_open, t.think_close)) {
    reasoning = *r;
  }
  CharClass want = to_class(target);
  size_t words = 0, in_target = 0;
  CharClass run = CharClass::Other;  // script of the word being read
  size_t i = 0;
  while (i < reasoning.size()) {
    CharClass c = classify(next_code_point(reasoning, &i));
    if (c == CharClass::Other) {
      run = CharClass::Other;
      continue;
    }
    // A new word starts at a script change, and at every character of unspaced scripts.
    if (c != run || unspaced(c)) {
      ++words;
      if (c == want) ++in_target;
    }
    run = c;
  }
  return words == 0 ? 0.0 : double(in_target) / double(words);
}

double repetition_rate(std::string_view s, int n) {
  if (n < 1) return 0.0;
  std::unordered_map<std::string, int32_t> ids;  // word -> id
  std::vector<int32_t> words;
  std::string word;
  auto end_word = [&] {
    if (word.empty()) return;
    words.push_back(ids.emplace(word, int32_t(ids.size())).first->second);
    word.clear();
  };
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    const uint32_t cp = next_code_point(s, &i);
    if (cp < 0x80 && is_space(char(cp))) {
      end_word();
    } else if (unspaced(classify(cp))) {
      end_word();
      word.assign(s.substr(start, i - start));
      end_word();
    } else if (cp >= 'A' && cp <= 'Z') {
      word.push_back(char(cp - 'A' + 'a'));
    } else {
      word.append(s.substr(start, i - start));
    }
  }
  end_word();
  if (words.size() < size_t(n)) return 0.0;
  const size_t total = words.size() - size_t(n) + 1;
  std::unordered_set<std::string> distinct;  // an n-gram as the bytes of its word ids
  distinct.reserve(total);
  for (size_t k = 0; k < total; ++k)
    distinct.emplace(reinterpret_cast<const char*>(&words[k]), size_t(n) * sizeof(int32_t));
  return 1.0 - double(distinct.size()) / double(total);
}

bool contains_phrase(std::string_view text, const std::vector<std::string>& phrases) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
  auto word_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  for (const std::string& phrase : phrases) {
    const size_t n = phrase.size();
    if (n == 0 || n > text.size()) continue;
    for (size_t at = 0; at + n <= text.size(); ++at) {
      size_t k = 0;
      while (k < n && lower(text[at + k]) == lower(phrase[k])) ++k;
      if (k < n) continue;
      const bool starts = at == 0 || !word_char(text[at - 1]) || !word_char(phrase.front());
      const bool ends = at + n == text.size() || !word_char(text[at + n]) || !word_char(phrase.back());
      if (starts && ends) return true;
    }
  }
  return false;
}

}  // namespace zeroth
