// Split / ByteLevel / Sequence pre-tokenizers over PCRE2 (see pretokenizer.h). The split
// behaviours follow Hugging Face `NormalizedString::split`; must not touch token ids.
#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

#include "tokenizer/unicode.h"
#include "zeroth/error.h"

namespace zeroth {
namespace tok {
namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0) return strformat("PCRE2 error %d", code);
  return reinterpret_cast<const char*>(buf);
}

// Checks a PCRE2 status code (negative = error).
#define ZT_CHECK_PCRE2(call) \
  ZT_CHECK_LIB("PCRE2", call, zt_status_ >= 0, ::zeroth::tok::pcre2_message(zt_status_))

// Oniguruma's \s in Unicode mode: the White_Space property.
const char kOnigSpaceClassBody[] =
    "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}";

// The GPT-2 pattern ByteLevel uses when use_regex is true.
const char kGpt2Pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// Per-thread PCRE2 match state, shared by every pattern (none is tied to a pattern).
struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  MatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    ZT_CHECK_LIB("PCRE2", data && context && stack, zt_status_, "out of memory creating match state");
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

std::string json_type(const nlohmann::json& j) { return j.type_name(); }

const nlohmann::json& require(const nlohmann::json& j, const char* key, const std::string& file,
                              const std::string& where) {
  auto it = j.find(key);
  ZT_THROW_IF_NOT(it != j.end(), DataError, "%s: %s: missing key '%s'", file.c_str(),
                  where.c_str(), key);
  return *it;
}

bool get_bool(const nlohmann::json& j, const char* key, bool dflt, const std::string& file,
              const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  ZT_THROW_IF_NOT(it->is_boolean(), DataError, "%s: %s.%s: expected a boolean, found %s",
                  file.c_str(), where.c_str(), key, json_type(*it).c_str());
  return it->get<bool>();
}

}  // namespace

std::string translate_onig_pattern(const std::string& p, const std::string& where) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  size_t class_start = 0;  // index in p just after '[' or '[^'
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char n = p[i + 1];
      ++i;
      if (n == 's') {
        if (in_class) {
          out += kOnigSpaceClassBody;
        } else {
          out += '[';
          out += kOnigSpaceClassBody;
          out += ']';
        }
      } else if (n == 'S') {
        ZT_THROW_IF_NOT(!in_class, DataError,
                        "%s: regex '%s': \\S inside a character class is not supported",
                        where.c_str(), p.c_str());
        out += "[^";
        out += kOnigSpaceClassBody;
        out += ']';
      } else {
        out += c;
        out += n;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      class_start = i + 1;
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // [:posix:]
      const size_t close = p.find(":]", i + 2);
      ZT_THROW_IF_NOT(close != std::string::npos, DataError, "%s: regex '%s': unterminated [:",
                      where.c_str(), p.c_str());
      out.append(p, i, close + 2 - i);
      i = close + 1;
      continue;
    }
    if (in_class && c == ']' && i != class_start) in_class = false;
    out += c;
  }
  return out;
}

Regex::Regex(const std::string& pattern, const std::string& where) {
  const std::string translated = translate_onig_pattern(pattern, where);
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()),
                                   translated.size(), PCRE2_UTF | PCRE2_UCP, &err, &err_offset,
                                   nullptr);
  ZT_THROW_IF_NOT(code != nullptr, DataError,
                  "%s: regex '%s' does not compile (PCRE2, after \\s translation, at offset %zu): %s",
                  where.c_str(), pattern.c_str(), size_t(err_offset), pcre2_message(err).c_str());
  code_ = code;
  ZT_CHECK_PCRE2(pcre2_jit_compile(code, PCRE2_JIT_COMPLETE));
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

bool Regex::find(std::string_view subject, size_t start, size_t* match_begin,
                 size_t* match_end) const {
  MatchState& st = match_state();
  const int rc = pcre2_jit_match(static_cast<pcre2_code*>(code_),
                                 reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(),
                                 start, 0, st.data, st.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  ZT_CHECK_PCRE2(rc);
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
  *match_begin = ov[0];
  *match_end = ov[1];
  return true;
}

PreTokenizer::PreTokenizer(const nlohmann::json& j, const std::string& file) {
  if (!j.is_null()) parse(j, file, "pre_tokenizer");
  for (size_t i = 0; i < steps_.size(); ++i) {
    ZT_THROW_IF_NOT(!steps_[i].is_byte_level || i + 1 == steps_.size(), DataError,
                    "%s: pre_tokenizer: a ByteLevel step must be the last one (found at step %zu "
                    "of %zu); other orders are not supported",
                    file.c_str(), i + 1, steps_.size());
  }
  byte_level_ = !steps_.empty() && steps_.back().is_byte_level;
}

PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::parse(const nlohmann::json& j, const std::string& file, const std::string& key) {
  ZT_THROW_IF_NOT(j.is_object(), DataError, "%s: %s: expected an object, found %s", file.c_str(),
                  key.c_str(), json_type(j).c_str());
  const nlohmann::json& type = require(j, "type", file, key);
  ZT_THROW_IF_NOT(type.is_string(), DataError, "%s: %s.type: expected a string, found %s",
                  file.c_str(), key.c_str(), json_type(type).c_str());
  const std::string t = type.get<std::string>();
  if (t == "Sequence") {
    const nlohmann::json& list = require(j, "pretokenizers", file, key);
    ZT_THROW_IF_NOT(list.is_array(), DataError, "%s: %s.pretokenizers: expected an array, found %s",
                    file.c_str(), key.c_str(), json_type(list).c_str());
    for (size_t i = 0; i < list.size(); ++i)
      parse(list[i], file, key + ".pretokenizers[" + std::to_string(i) + "]");
  } else if (t == "Split") {
    Step s;
    const nlohmann::json& pat = require(j, "pattern", file, key);
    if (pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string()) {
      s.regex = std::make_unique<Regex>(pat["Regex"].get<std::string>(),
                                        file + ": " + key + ".pattern.Regex");
    } else if (pat.is_object() && pat.contains("String") && pat["String"].is_string()) {
      s.literal = pat["String"].get<std::string>();
      ZT_THROW_IF_NOT(!s.literal.empty(), DataError, "%s: %s.pattern.String: empty pattern",
                      file.c_str(), key.c_str());
    } else {
      throw DataError(strformat("%s: %s.pattern: expected {\"Regex\": string} or {\"String\": "
                                "string}, found %s",
                                file.c_str(), key.c_str(), pat.dump().c_str()));
    }
    const nlohmann::json& beh = require(j, "behavior", file, key);
    const std::string b = beh.is_string() ? beh.get<std::string>() : beh.dump();
    if (b == "Removed") s.behavior = SplitBehavior::kRemoved;
    else if (b == "Isolated") s.behavior = SplitBehavior::kIsolated;
    else if (b == "MergedWithPrevious") s.behavior = SplitBehavior::kMergedWithPrevious;
    else if (b == "MergedWithNext") s.behavior = SplitBehavior::kMergedWithNext;
    else if (b == "Contiguous") s.behavior = SplitBehavior::kContiguous;
    else
      throw DataError(strformat("%s: %s.behavior: expected Removed, Isolated, MergedWithPrevious, "
                                "MergedWithNext or Contiguous, found %s",
                                file.c_str(), key.c_str(), b.c_str()));
    s.invert = get_bool(j, "invert", false, file, key);
    steps_.push_back(std::move(s));
  } else if (t == "ByteLevel") {
    Step s;
    s.is_byte_level = true;
    s.add_prefix_space = get_bool(j, "add_prefix_space", true, file, key);
    if (get_bool(j, "use_regex", true, file, key))
      s.regex = std::make_unique<Regex>(kGpt2Pattern, file + ": " + key + " (GPT-2 regex)");
    steps_.push_back(std::move(s));
  } else {
    throw DataError(strformat("%s: %s.type: pre-tokenizer '%s' is not supported (expected "
                              "Sequence, Split or ByteLevel)",
                              file.c_str(), key.c_str(), t.c_str()));
  }
}

void PreTokenizer::apply_split(const Step& step, std::string_view piece,
                               std::vector<std::string_view>* out) const {
  // Matches and the gaps between them, in order: (begin, end, is_match).
  struct Span {
    size_t b, e;
    bool m;
  };
  thread_local std::vector<Span> spans, merged;
  spans.clear();
  size_t prev = 0, pos = 0;
  while (pos <= piece.size()) {
    size_t mb, me;
    if (step.regex) {
      if (!step.regex->find(piece, pos, &mb, &me)) break;
    } else {
      const size_t f = piece.find(step.literal, pos);
      if (f == std::string_view::npos) break;
      mb = f;
      me = f + step.literal.size();
    }
    if (me == mb) {  // empty match: nothing to split; move on by one character
      if (mb >= piece.size()) break;
      size_t next = mb;
      utf8_next(piece, &next);
      pos = next;
      continue;
    }
    if (mb > prev) spans.push_back({prev, mb, step.invert});
    spans.push_back({mb, me, !step.invert});
    prev = pos = me;
  }
  if (prev < piece.size()) spans.push_back({prev, piece.size(), step.invert});

  const std::vector<Span>* result = &spans;
  switch (step.behavior) {
    case SplitBehavior::kIsolated:
      break;
    case SplitBehavior::kRemoved:
      merged.clear();
      for (const Span& s : spans)
        if (!s.m) merged.push_back(s);
      result = &merged;
      break;
    case SplitBehavior::kMergedWithPrevious: {
      merged.clear();
      bool prev_match = false;
      for (const Span& s : spans) {
        if (s.m && !prev_match && !merged.empty()) merged.back().e = s.e;
        else merged.push_back(s);
        prev_match = s.m;
      }
      result = &merged;
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      merged.clear();
      bool prev_match = false;
      for (size_t k = spans.size(); k-- > 0;) {
        const Span& s = spans[k];
        if (s.m && !prev_match && !merged.empty()) merged.back().b = s.b;
        else merged.push_back(s);
        prev_match = s.m;
      }
      std::reverse(merged.begin(), merged.end());
      result = &merged;
      break;
    }
    case SplitBehavior::kContiguous: {
      merged.clear();
      bool prev_match = false;
      for (const Span& s : spans) {
        if (s.m == prev_match && !merged.empty()) merged.back().e = s.e;
        else merged.push_back(s);
        prev_match = s.m;
      }
      result = &merged;
      break;
    }
  }
  for (const Span& s : *result)
    if (s.e > s.b) out->push_back(piece.substr(s.b, s.e - s.b));
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>* out,
                         std::deque<std::string>* arena) const {
  if (text.empty()) return;
  thread_local std::vector<std::string_view> cur, next;
  cur.clear();
  cur.push_back(text);
  for (const Step& step : steps_) {
    next.clear();
    for (std::string_view piece : cur) {
      if (step.is_byte_level) {
        if (step.add_prefix_space && piece[0] != ' ') {
          arena->push_back(" ");
          arena->back().append(piece.data(), piece.size());
          piece = arena->back();
        }
        if (step.regex) apply_split(step, piece, &next);
        else next.push_back(piece);
      } else {
        apply_split(step, piece, &next);
      }
    }
    std::swap(cur, next);
  }
  out->insert(out->end(), cur.begin(), cur.end());
}

}  // namespace tok
}  // namespace zeroth
