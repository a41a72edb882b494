// Normaliser of extracted answers for the math verifier.
//
// Owns: one linear pass (recursive only into command arguments, depth-limited) that
// removes presentation (\left \right \! \, $, \%, \$, currency, degrees, \boxed,
// font commands, unit words and unit \text{}), unifies spellings (\dfrac -> \frac,
// \leq -> \le, unicode operators -> LaTeX, {,} -> ,) and turns prose words into
// \word{...}; plus the bracket helpers used by the structure parser. Must not: throw,
// interpret mathematics (math_expr.cpp does), or use regular expressions.
#include <cctype>
#include <cstring>

#include "reward/math_internal.h"

namespace zeroth::math_detail {
namespace {

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

constexpr const char* kUnitWords[] = {
    "unit", "units", "cm", "mm", "km", "meter", "meters", "metre", "metres", "centimeter",
    "centimeters", "millimeter", "millimeters", "kilometer", "kilometers", "inch", "inches",
    "feet", "foot", "ft", "yard", "yards", "yd", "mile", "miles", "mph", "hour", "hours", "hr",
    "hrs", "minute", "minutes", "min", "mins", "second", "seconds", "sec", "day", "days",
    "week", "weeks", "month", "months", "year", "years", "dollar", "dollars", "cent", "cents",
    "usd", "euro", "euros", "pound", "pounds", "lb", "lbs", "kg", "gram", "grams", "kilogram",
    "kilograms", "ounce", "ounces", "oz", "liter", "liters", "litre", "litres", "ml",
    "gallon", "gallons", "degree", "degrees", "deg", "sq", "square", "cubic", "percent",
    "percentage", "pct", "radians", "rad", "cm", "m"};

bool is_unit_word(std::string_view w) {
  if (w.size() > 16) return false;
  char low[17];
  for (size_t i = 0; i < w.size(); ++i)
    low[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(w[i])));
  std::string_view l(low, w.size());
  for (const char* u : kUnitWords)
    if (l == u) return true;
  return false;
}

bool is_function_word(std::string_view w) {
  static constexpr const char* kF[] = {"sin", "cos", "tan", "cot", "sec", "csc", "arcsin",
                                       "arccos", "arctan", "sinh", "cosh", "tanh", "log",
                                       "ln", "lg", "exp", "pi", "sqrt"};
  for (const char* f : kF)
    if (w == f) return true;
  return false;
}

// Last non-space character written.
char last_char(const std::string& out) {
  for (size_t i = out.size(); i > 0; --i)
    if (out[i - 1] != ' ') return out[i - 1];
  return '\0';
}

bool after_quantity(const std::string& out) {
  char c = last_char(out);
  return is_digit(c) || c == '}' || c == ')' || c == '.';
}

// Skips "^2", "^{2}", "^3" after a dropped unit.
size_t skip_unit_power(std::string_view s, size_t i) {
  size_t j = i;
  while (j < s.size() && s[j] == ' ') ++j;
  if (j + 1 < s.size() && s[j] == '^') {
    if (is_digit(s[j + 1])) return j + 2;
    if (s[j + 1] == '{' && j + 3 < s.size() && is_digit(s[j + 2]) && s[j + 3] == '}') return j + 4;
  }
  if (j + 1 < s.size() && static_cast<unsigned char>(s[j]) == 0xC2 &&
      (static_cast<unsigned char>(s[j + 1]) == 0xB2 || static_cast<unsigned char>(s[j + 1]) == 0xB3))
    return j + 2;
  return i;
}

// Only words (and spaces/periods) remain from i on.
bool only_words_left(std::string_view s, size_t i) {
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (!(is_letter(c) || c == ' ' || c == '.' || c == '\'')) return false;
  }
  return true;
}

bool starts_with(std::string_view s, size_t i, const char* lit) {
  size_t n = std::strlen(lit);
  return s.size() - i >= n && s.compare(i, n, lit) == 0;
}

struct Cleaner {
  const MathVerifyOptions& opts;
  std::string* out;
  bool ok = true;

  void emit_space() {
    if (!out->empty() && out->back() != ' ') out->push_back(' ');
  }

  // Text-like command argument (\text, \mathrm, ...).
  void text_arg(std::string_view t, int depth) {
    t = trim(t);
    if (t.empty()) return;
    // Words only: units are dropped, "and"/"or" separate, others become \word{}.
    bool has_word = false, all_units = true;
    size_t i = 0;
    while (i < t.size()) {
      if (is_letter(t[i])) {
        size_t e = i;
        while (e < t.size() && is_letter(t[e])) ++e;
        std::string_view w = t.substr(i, e - i);
        if (w.size() >= 2) has_word = true;
        if (!is_unit_word(w)) all_units = false;
        i = e;
      } else {
        if (t[i] != ' ') all_units = false;
        ++i;
      }
    }
    if (has_word && all_units) return;
    if (t == "and" || t == "or") {
      out->push_back(',');
      return;
    }
    if (!has_word) {
      run(t, depth + 1);
      return;
    }
    out->append("\\word{");
    for (char c : t)
      if (is_letter(c) || is_digit(c))
        out->push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    out->push_back('}');
  }

  // Reads a braced argument at s[i] (after spaces); returns its content and moves i.
  bool braced(std::string_view s, size_t* i, std::string_view* arg) {
    size_t j = *i;
    while (j < s.size() && s[j] == ' ') ++j;
    if (j >= s.size() || s[j] != '{') return false;
    size_t close = match_close(s, j);
    if (close == std::string_view::npos) return false;
    *arg = s.substr(j + 1, close - j - 1);
    *i = close + 1;
    return true;
  }

  void command(std::string_view s, size_t* ip, int depth) {
    size_t i = *ip + 1;  // after '\'
    if (i >= s.size()) {
      *ip = i;
      return;
    }
    if (!is_letter(s[i])) {
      char c = s[i];
      *ip = i + 1;
      if (c == '{' || c == '}' || c == '|') {
        out->push_back('\\');
        out->push_back(c);
      } else if (c == '\\') {
        out->append("\\\\");
      } else if (c == ' ') {
        emit_space();
      }
      // \! \, \; \: \% \$ are dropped.
      return;
    }
    size_t e = i;
    while (e < s.size() && is_letter(s[e])) ++e;
    std::string_view name = s.substr(i, e - i);
    *ip = e;
    static constexpr const char* kDrop[] = {
        "left", "right", "big", "Big", "bigl", "bigr", "Bigl", "Bigr", "bigg", "Bigg",
        "biggl", "biggr", "displaystyle", "textstyle", "limits", "quad", "qquad", "hfill",
        "circ", "degree", "deg", "mathdollar", "dollar", "euro", "pounds", "nonumber", "notag",
        "middle"};
    for (const char* d : kDrop) {
      if (name == d) {
        if ((name == "left" || name == "right" || name == "middle") && e < s.size() &&
            s[e] == '.')
          ++*ip;
        return;
      }
    }
    if (name == "boxed" || name == "fbox") {
      std::string_view arg;
      if (braced(s, ip, &arg)) run(arg, depth + 1);
      return;
    }
    static constexpr const char* kText[] = {
        "text", "textbf", "textit", "textrm", "textnormal", "texttt", "textsf", "mbox", "hbox",
        "mathrm", "mathbf", "mathit", "mathsf", "mathtt", "boldsymbol", "bm", "mathbb",
        "mathcal", "operatorname", "textup", "emph"};
    for (const char* t : kText) {
      if (name == t) {
        std::string_view arg;
        if (braced(s, ip, &arg)) {
          size_t before = out->size();
          text_arg(arg, depth);
          if (out->size() == before) *ip = skip_unit_power(s, *ip);
        }
        return;
      }
    }
    if (name == "dfrac" || name == "tfrac" || name == "cfrac") {
      out->append("\\frac");
      return;
    }
    if (name == "leq" || name == "le" || name == "leqslant") {
      out->append("\\le ");
      return;
    }
    if (name == "geq" || name == "ge" || name == "geqslant") {
      out->append("\\ge ");
      return;
    }
    if (name == "neq" || name == "ne") {
      out->append("\\ne ");
      return;
    }
    if (name == "lt") {
      out->push_back('<');
      return;
    }
    if (name == "gt") {
      out->push_back('>');
      return;
    }
    out->push_back('\\');
    out->append(name.data(), name.size());
    // A command followed by a letter needs a separator ("\pi r" must not become "\pir").
    if (e < s.size() && s[e] == ' ') out->push_back(' ');
  }

  void run(std::string_view s, int depth) {
    if (depth > opts.max_depth) {
      ok = false;
      return;
    }
    size_t i = 0;
    while (i < s.size() && ok) {
      char c = s[i];
      unsigned char uc = static_cast<unsigned char>(c);
      if (c == '\\') {
        command(s, &i, depth);
        continue;
      }
      if (c == '$' || c == '%') {
        ++i;
        continue;
      }
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '~') {
        emit_space();
        ++i;
        continue;
      }
      if (c == '{' && starts_with(s, i, "{,}")) {
        out->push_back(',');
        i += 3;
        continue;
      }
      if (c == '^') {
        size_t j = i + 1;
        while (j < s.size() && s[j] == ' ') ++j;
        if (starts_with(s, j, "\\circ")) {
          i = j + 5;
          continue;
        }
        if (starts_with(s, j, "{\\circ}")) {
          i = j + 7;
          continue;
        }
        out->push_back('^');
        ++i;
        continue;
      }
      if ((c == '<' || c == '>' || c == '!') && i + 1 < s.size() && s[i + 1] == '=') {
        out->append(c == '<' ? "\\le " : c == '>' ? "\\ge " : "\\ne ");
        i += 2;
        continue;
      }
      if (uc >= 0x80) {
        unicode(s, &i);
        continue;
      }
      if (is_letter(c)) {
        size_t e = i;
        while (e < s.size() && is_letter(s[e])) ++e;
        std::string_view w = s.substr(i, e - i);
        if (w.size() >= 2) {
          bool drop = false;
          if (after_quantity(*out)) {
            drop = is_unit_word(w) ||
                   (w.size() >= 3 && !is_function_word(w) && only_words_left(s, e));
          }
          if (w == "percent" || w == "percentage" || w == "pct") drop = true;
          if (drop) {
            i = skip_unit_power(s, e);
            continue;
          }
          if (w == "and" || w == "or") {
            out->push_back(',');
            i = e;
            continue;
          }
        }
        // "m²": a one-letter unit is recognised only with a unicode power sign.
        if (w.size() == 1 && is_unit_word(w) && after_quantity(*out) &&
            skip_unit_power(s, e) != e && static_cast<unsigned char>(s[e]) == 0xC2) {
          i = skip_unit_power(s, e);
          continue;
        }
        out->append(w.data(), w.size());
        i = e;
        continue;
      }
      out->push_back(c);
      ++i;
    }
  }

  void unicode(std::string_view s, size_t* ip) {
    struct Map {
      const char* utf8;
      const char* latex;
    };
    static constexpr Map kMap[] = {
        {"\xE2\x88\x92", "-"},       {"\xC3\x97", "\\times "}, {"\xC3\xB7", "\\div "},
        {"\xCF\x80", "\\pi "},       {"\xE2\x88\x9A", "\\sqrt"}, {"\xE2\x88\x9E", "\\infty "},
        {"\xE2\x89\xA4", "\\le "},   {"\xE2\x89\xA5", "\\ge "},  {"\xE2\x89\xA0", "\\ne "},
        {"\xC2\xB0", ""},            {"\xE2\x82\xAC", ""},       {"\xC2\xA3", ""},
        {"\xC2\xA5", ""},            {"\xC2\xB2", "^2"},         {"\xC2\xB3", "^3"},
        {"\xC2\xB7", "\\cdot "},     {"\xC2\xA0", " "},          {"\xE2\x80\x89", ""},
        {"\xE2\x88\xAA", "\\cup "},  {"\xC2\xB1", "\\pm "},      {"\xE2\x80\xAF", ""}};
    for (const Map& m : kMap) {
      if (starts_with(s, *ip, m.utf8)) {
        *ip += std::strlen(m.utf8);
        out->append(m.latex);
        return;
      }
    }
    out->push_back(s[*ip]);
    ++*ip;
  }
};

}  // namespace

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\n' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\n' || s[e - 1] == '\r'))
    --e;
  return s.substr(b, e - b);
}

size_t match_close(std::string_view s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    char c = s[i];
    if (c == '(' || c == '[' || c == '{') ++depth;
    else if (c == ')' || c == ']' || c == '}') {
      if (--depth == 0) return i;
      if (depth < 0) return std::string_view::npos;
    }
  }
  return std::string_view::npos;
}

std::vector<std::string_view> split_top(std::string_view s, std::string_view sep) {
  std::vector<std::string_view> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '(' || c == '[' || c == '{') ++depth;
    else if (c == ')' || c == ']' || c == '}') --depth;
    else if (depth == 0 && s.compare(i, sep.size(), sep) == 0) {
      // A separator that is a command must not be a prefix of a longer one.
      bool cmd_prefix = sep[0] == '\\' && i + sep.size() < s.size() &&
                        is_letter(s[i + sep.size()]) && is_letter(sep.back());
      bool escaped = sep[0] != '\\' && i > 0 && s[i - 1] == '\\';
      if (!cmd_prefix && !escaped) {
        parts.push_back(s.substr(start, i - start));
        start = i + sep.size();
        i = start - 1;
      }
    }
  }
  parts.push_back(s.substr(start));
  return parts;
}

bool clean_answer(std::string_view in, const MathVerifyOptions& opts, std::string* out) {
  out->clear();
  if (in.size() > opts.max_answer_bytes) return false;
  out->reserve(in.size() + 8);
  Cleaner c{opts, out};
  c.run(in, 0);
  if (!c.ok) return false;
  std::string_view t = trim(*out);
  // Trailing sentence punctuation and a leading "x \in".
  while (!t.empty() && (t.back() == '.' || t.back() == ',' || t.back() == ';' || t.back() == ':'))
    t = trim(t.substr(0, t.size() - 1));
  if (t.size() > 4 && is_letter(t[0])) {
    size_t j = 1;
    while (j < t.size() && t[j] == ' ') ++j;
    if (starts_with(t, j, "\\in") && (j + 3 >= t.size() || !is_letter(t[j + 3])))
      t = trim(t.substr(j + 3));
  }
  std::string r(t);
  out->swap(r);
  return !out->empty();
}

}  // namespace zeroth::math_detail
