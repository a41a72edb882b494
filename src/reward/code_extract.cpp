// extract_last_code_block (code_reward.h): a line scanner for fenced blocks (``` and
// ~~~, CommonMark-like: an opening fence of 3+ characters indented at most 3 spaces,
// closed by a line of at least as many of the same character and nothing else).
// Must not: use regular expressions, or accept a block that is never closed.
#include <algorithm>
#include <cctype>

#include "zeroth/code_reward.h"

namespace zeroth {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// A fence line: up to 3 spaces, then 3+ of '`' or '~'. Sets the char, the run length
// and the rest of the line (the info string for an opening fence).
bool parse_fence(std::string_view line, char* ch, size_t* len, std::string_view* rest) {
  size_t i = 0;
  while (i < line.size() && i < 3 && line[i] == ' ') ++i;
  if (i >= line.size() || (line[i] != '`' && line[i] != '~')) return false;
  char c = line[i];
  size_t j = i;
  while (j < line.size() && line[j] == c) ++j;
  if (j - i < 3) return false;
  *ch = c;
  *len = j - i;
  *rest = line.substr(j);
  return true;
}

// The language an info string names: its first word, lower-cased, without a leading '{.'.
std::optional<CodeLanguage> info_language(std::string_view info, bool* unlabelled) {
  info = trim(info);
  *unlabelled = info.empty();
  if (info.empty()) return std::nullopt;
  size_t end = 0;
  while (end < info.size() && !std::isspace(static_cast<unsigned char>(info[end])) && info[end] != '{')
    ++end;
  std::string word = lower(info.substr(0, end));
  if (word == "python" || word == "py" || word == "python3") return CodeLanguage::Python;
  if (word == "cpp" || word == "c++" || word == "cc" || word == "cxx") return CodeLanguage::Cpp;
  return std::nullopt;
}

}  // namespace

std::optional<ExtractedCode> extract_last_code_block(std::string_view text, CodeLanguage want,
                                                     bool accept_unlabelled) {
  std::optional<ExtractedCode> found;
  bool in_block = false;
  char fence_char = 0;
  size_t fence_len = 0;
  bool block_wanted = false;
  size_t body_begin = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    size_t line_end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(pos, line_end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    char c;
    size_t len;
    std::string_view rest;
    if (!in_block) {
      if (parse_fence(line, &c, &len, &rest) && (c != '`' || rest.find('`') == std::string_view::npos)) {
        bool unlabelled = false;
        std::optional<CodeLanguage> lang = info_language(rest, &unlabelled);
        in_block = true;
        fence_char = c;
        fence_len = len;
        block_wanted = (lang && *lang == want) || (unlabelled && accept_unlabelled);
        body_begin = nl == std::string_view::npos ? text.size() : nl + 1;
      }
    } else if (parse_fence(line, &c, &len, &rest) && c == fence_char && len >= fence_len &&
               trim(rest).empty()) {
      in_block = false;
      if (block_wanted) {
        ExtractedCode code;
        code.language = want;
        code.code = std::string(text.substr(body_begin, pos - body_begin));
        found = std::move(code);
      }
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return found;
}

}  // namespace zeroth
