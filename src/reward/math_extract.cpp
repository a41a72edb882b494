// Answer extraction for the math verifier: the extractors named in math_verify.h.
//
// Owns: linear scans of a completion for \boxed{}/\fbox{}, <answer> tags, "the answer
// is ...", GSM8K's "#### x" and the last number, plus validate_math_verify_options.
// Must not: interpret the answer (math_clean/math_equal do), use regular expressions,
// or scan more than opts.max_completion_bytes.
#include <cctype>
#include <cstring>

#include "reward/math_internal.h"
#include "zeroth/error.h"

namespace zeroth {
namespace {

using math_detail::trim;

// Position of the last occurrence of `needle` in `s` (case-insensitive when asked).
size_t rfind_text(std::string_view s, std::string_view needle, bool icase) {
  if (needle.empty() || s.size() < needle.size()) return std::string_view::npos;
  for (size_t i = s.size() - needle.size() + 1; i > 0; --i) {
    size_t p = i - 1;
    size_t k = 0;
    for (; k < needle.size(); ++k) {
      char a = s[p + k], b = needle[k];
      if (icase) {
        a = static_cast<char>(std::tolower(static_cast<unsigned char>(a)));
        b = static_cast<char>(std::tolower(static_cast<unsigned char>(b)));
      }
      if (a != b) break;
    }
    if (k == needle.size()) return p;
  }
  return std::string_view::npos;
}

std::optional<std::string> extract_boxed(std::string_view s, const MathVerifyOptions& opts) {
  size_t pb = rfind_text(s, "\\boxed", false);
  size_t pf = rfind_text(s, "\\fbox", false);
  size_t p;
  size_t len;
  if (pb != std::string_view::npos && (pf == std::string_view::npos || pb > pf)) {
    p = pb;
    len = 6;
  } else if (pf != std::string_view::npos) {
    p = pf;
    len = 5;
  } else {
    return std::nullopt;
  }
  size_t i = p + len;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n')) ++i;
  if (i >= s.size()) return std::nullopt;
  if (s[i] == '{') {
    int depth = 0;
    size_t limit = std::min(s.size(), i + opts.max_answer_bytes + 2);
    for (size_t j = i; j < limit; ++j) {
      if (s[j] == '\\' && j + 1 < limit) {  // \{ and \} do not count
        ++j;
        continue;
      }
      if (s[j] == '{') ++depth;
      else if (s[j] == '}' && --depth == 0) return std::string(trim(s.substr(i + 1, j - i - 1)));
    }
    return std::nullopt;
  }
  if (i == p + len) return std::nullopt;  // "\boxedx": not a box
  size_t e = i;
  while (e < s.size() && s[e] != ' ' && s[e] != '$' && s[e] != '\n' && e - i < 64) ++e;
  std::string_view a = s.substr(i, e - i);
  while (!a.empty() && (a.back() == '.' || a.back() == ',')) a.remove_suffix(1);
  if (a.empty()) return std::nullopt;
  return std::string(a);
}

std::optional<std::string> extract_answer_tag(std::string_view s, const MathVerifyOptions& opts) {
  size_t p = rfind_text(s, "<answer>", true);
  if (p == std::string_view::npos) return std::nullopt;
  std::string_view rest = s.substr(p + 8);
  size_t e = rfind_text(rest, "</answer>", true);
  std::string_view content = trim(e == std::string_view::npos ? rest : rest.substr(0, e));
  if (content.empty() || content.size() > opts.max_answer_bytes * 4) return std::nullopt;
  if (auto b = extract_boxed(content, opts)) return b;
  if (content.size() > opts.max_answer_bytes) return std::nullopt;
  return std::string(content);
}

std::optional<std::string> extract_the_answer_is(std::string_view s, const MathVerifyOptions& opts) {
  size_t p = rfind_text(s, "answer is", true);
  size_t skip = 9;
  size_t p2 = rfind_text(s, "answer:", true);
  if (p2 != std::string_view::npos && (p == std::string_view::npos || p2 > p)) {
    p = p2;
    skip = 7;
  }
  if (p == std::string_view::npos) return std::nullopt;
  size_t i = p + skip;
  while (i < s.size() && (s[i] == ' ' || s[i] == ':')) ++i;
  size_t e = i;
  bool in_math = false;
  while (e < s.size() && s[e] != '\n' && e - i <= opts.max_answer_bytes) {
    if (s[e] == '$') in_math = !in_math;
    // A sentence ends at ". " or at the end; "3.5" and periods inside $...$ do not end it.
    if (s[e] == '.' && !in_math && (e + 1 == s.size() || s[e + 1] == ' ' || s[e + 1] == '\n'))
      break;
    ++e;
  }
  std::string_view a = trim(s.substr(i, e - i));
  if (a.empty() || e - i > opts.max_answer_bytes) return std::nullopt;
  return std::string(a);
}

std::optional<std::string> extract_gsm8k(std::string_view s, const MathVerifyOptions& opts) {
  size_t p = rfind_text(s, "####", false);
  if (p == std::string_view::npos) return std::nullopt;
  size_t i = p + 4, e = i;
  while (e < s.size() && s[e] != '\n') ++e;
  std::string_view a = trim(s.substr(i, e - i));
  if (a.empty() || a.size() > opts.max_answer_bytes) return std::nullopt;
  return std::string(a);
}

std::optional<std::string> extract_last_number(std::string_view s) {
  size_t e = s.size();
  while (e > 0 && !std::isdigit(static_cast<unsigned char>(s[e - 1]))) --e;
  if (e == 0) return std::nullopt;
  size_t b = e;
  while (b > 0) {
    char c = s[b - 1];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      --b;
    } else if ((c == '.' || c == ',') && b >= 2 &&
               std::isdigit(static_cast<unsigned char>(s[b - 2]))) {
      --b;
    } else {
      break;
    }
  }
  if (b > 0 && s[b - 1] == '-') --b;
  return std::string(s.substr(b, e - b));
}

constexpr const char* kExtractors[] = {"boxed", "answer_tag", "the_answer_is", "gsm8k",
                                       "last_number"};

}  // namespace

void validate_math_verify_options(const MathVerifyOptions& opts) {
  ZT_THROW_IF_NOT(!opts.extractors.empty(), ConfigError,
                  "expected at least one math extractor (boxed, answer_tag, the_answer_is, gsm8k, last_number), "
                  "found none (no answer would ever be extracted)");
  for (const std::string& name : opts.extractors) {
    bool known = false;
    for (const char* k : kExtractors) known = known || name == k;
    ZT_THROW_IF_NOT(known, ConfigError,
                    "unknown math extractor '%s'; expected one of boxed, answer_tag, "
                    "the_answer_is, gsm8k, last_number",
                    name.c_str());
  }
  ZT_THROW_IF_NOT(opts.rel_tol > 0 && opts.rel_tol < 1, ConfigError,
                  "math verifier rel_tol must be in (0, 1), found %g", opts.rel_tol);
  ZT_THROW_IF_NOT(opts.abs_tol >= 0, ConfigError,
                  "math verifier abs_tol must be >= 0, found %g", opts.abs_tol);
  ZT_THROW_IF_NOT(opts.max_answer_bytes > 0 && opts.max_completion_bytes > 0 &&
                      opts.max_depth > 0 && opts.max_nodes > 0 && opts.max_exponent >= 0 &&
                      opts.num_points > 0,
                  ConfigError, "math verifier limits must be positive");
}

std::optional<std::string> extract_answer(std::string_view completion,
                                          const MathVerifyOptions& opts) {
  if (completion.size() > opts.max_completion_bytes) return std::nullopt;
  for (const std::string& name : opts.extractors) {
    std::optional<std::string> a;
    if (name == "boxed") a = extract_boxed(completion, opts);
    else if (name == "answer_tag") a = extract_answer_tag(completion, opts);
    else if (name == "the_answer_is") a = extract_the_answer_is(completion, opts);
    else if (name == "gsm8k") a = extract_gsm8k(completion, opts);
    else if (name == "last_number") a = extract_last_number(completion);
    if (a && !a->empty()) return a;
  }
  return std::nullopt;
}

namespace math_detail {
// Used by math_equal: the content of the last box when a side contains one.
std::optional<std::string> boxed_content(std::string_view s, const MathVerifyOptions& opts) {
  return extract_boxed(s, opts);
}
}  // namespace math_detail

}  // namespace zeroth
