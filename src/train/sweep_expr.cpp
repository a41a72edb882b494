// sweep.h: the constraint expressions of a sweep file, e.g.
// `grpo.clip_high >= grpo.clip_low and rollout.group_size * rl.prompts_per_step <= 256`.
// A recursive-descent evaluator over numbers, 'strings', true/false and key names with
// + - * / ( ), comparisons and and/or/not. No function calls, no assignment: a
// constraint can only compute a truth value.
// Must not: know where names come from (the caller's lookup does).
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>

#include "zeroth/error.h"
#include "zeroth/sweep.h"

namespace zeroth {
namespace {

using Value = SweepExprValue;
using Kind = SweepExprValue::Kind;

const char* kind_name(Kind k) {
  return k == Kind::Number ? "a number" : k == Kind::Bool ? "a boolean" : "a string";
}

class Parser {
 public:
  Parser(const std::string& text, const std::function<bool(const std::string&, Value*)>& lookup)
      : s_(text), lookup_(lookup) {}

  bool run() {
    Value v = parse_or();
    skip_space();
    if (i_ < s_.size()) fail(strformat("unexpected '%s'", s_.substr(i_).c_str()));
    if (v.kind != Kind::Bool) fail(strformat("expected a comparison (true or false), found %s", kind_name(v.kind)));
    return v.boolean;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw ConfigError(strformat("constraint '%s': %s", s_.c_str(), what.c_str()));
  }
  void skip_space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  static bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
  static bool ident_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '[' || c == ']';
  }
  // The next word (identifier or keyword) without consuming it.
  std::string peek_word() {
    skip_space();
    size_t j = i_;
    if (j >= s_.size() || !ident_start(s_[j])) return "";
    while (j < s_.size() && ident_char(s_[j])) ++j;
    return s_.substr(i_, j - i_);
  }
  bool accept(const char* op) {
    skip_space();
    const size_t n = std::char_traits<char>::length(op);
    if (s_.compare(i_, n, op) != 0) return false;
    // "<" must not take the first half of "<=", "!" not of "!=".
    if ((op[0] == '<' || op[0] == '>' || op[0] == '!' || op[0] == '=') && n == 1 && i_ + 1 < s_.size() &&
        s_[i_ + 1] == '=')
      return false;
    i_ += n;
    return true;
  }
  bool accept_word(const char* w) {
    if (peek_word() != w) return false;
    i_ += std::char_traits<char>::length(w);
    return true;
  }
  bool as_bool(const Value& v, const char* op) const {
    if (v.kind != Kind::Bool) fail(strformat("'%s' needs true/false operands, found %s", op, kind_name(v.kind)));
    return v.boolean;
  }
  double as_number(const Value& v, const char* op) const {
    if (v.kind != Kind::Number) fail(strformat("'%s' needs numbers, found %s", op, kind_name(v.kind)));
    return v.number;
  }
  static Value make_bool(bool b) {
    Value v;
    v.kind = Kind::Bool;
    v.boolean = b;
    return v;
  }
  static Value make_number(double x) {
    Value v;
    v.number = x;
    return v;
  }

  Value parse_or() {
    Value a = parse_and();
    while (accept_word("or") || accept("||")) {
      Value b = parse_and();
      a = make_bool(as_bool(a, "or") | as_bool(b, "or"));
    }
    return a;
  }
  Value parse_and() {
    Value a = parse_not();
    while (accept_word("and") || accept("&&")) {
      Value b = parse_not();
      a = make_bool(as_bool(a, "and") & as_bool(b, "and"));
    }
    return a;
  }
  Value parse_not() {
    if (accept_word("not") || accept("!")) return make_bool(!as_bool(parse_not(), "not"));
    return parse_comparison();
  }
  Value parse_comparison() {
    Value a = parse_sum();
    static const char* const kOps[] = {"<=", ">=", "==", "!=", "<", ">"};
    for (const char* op : kOps) {
      if (!accept(op)) continue;
      Value b = parse_sum();
      const std::string o = op;
      if (o == "==" || o == "!=") {
        if (a.kind != b.kind)
          fail(strformat("'%s' compares %s with %s", op, kind_name(a.kind), kind_name(b.kind)));
        bool eq = a.kind == Kind::Number ? a.number == b.number
                  : a.kind == Kind::Bool ? a.boolean == b.boolean
                                         : a.text == b.text;
        return make_bool(o == "==" ? eq : !eq);
      }
      const double x = as_number(a, op), y = as_number(b, op);
      return make_bool(o == "<" ? x < y : o == "<=" ? x <= y : o == ">" ? x > y : x >= y);
    }
    return a;
  }
  Value parse_sum() {
    Value a = parse_product();
    for (;;) {
      if (accept("+")) {
        a = make_number(as_number(a, "+") + as_number(parse_product(), "+"));
      } else if (accept("-")) {
        a = make_number(as_number(a, "-") - as_number(parse_product(), "-"));
      } else {
        return a;
      }
    }
  }
  Value parse_product() {
    Value a = parse_unary();
    for (;;) {
      if (accept("*")) {
        a = make_number(as_number(a, "*") * as_number(parse_unary(), "*"));
      } else if (accept("/")) {
        const double d = as_number(parse_unary(), "/");
        if (d == 0) fail("division by zero");
        a = make_number(as_number(a, "/") / d);
      } else {
        return a;
      }
    }
  }
  Value parse_unary() {
    if (accept("-")) return make_number(-as_number(parse_unary(), "-"));
    if (accept("+")) return make_number(as_number(parse_unary(), "+"));
    return parse_primary();
  }
  Value parse_primary() {
    skip_space();
    if (i_ >= s_.size()) fail("unexpected end");
    const char c = s_[i_];
    if (c == '(') {
      ++i_;
      Value v = parse_or();
      if (!accept(")")) fail("missing ')'");
      return v;
    }
    if (c == '\'' || c == '"') {
      const size_t end = s_.find(c, i_ + 1);
      if (end == std::string::npos) fail("unterminated string");
      Value v;
      v.kind = Kind::String;
      v.text = s_.substr(i_ + 1, end - i_ - 1);
      i_ = end + 1;
      return v;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      const char* begin = s_.c_str() + i_;
      char* end = nullptr;
      const double x = std::strtod(begin, &end);
      if (end == begin) fail(strformat("bad number at '%s'", begin));
      i_ += static_cast<size_t>(end - begin);
      return make_number(x);
    }
    const std::string w = peek_word();
    if (w.empty()) fail(strformat("unexpected '%s'", s_.substr(i_).c_str()));
    i_ += w.size();
    if (w == "true" || w == "false") return make_bool(w == "true");
    if (w == "and" || w == "or" || w == "not") fail(strformat("unexpected '%s'", w.c_str()));
    Value v;
    if (!lookup_(w, &v)) fail(strformat("unknown name '%s' (a swept key or a key of the base config)", w.c_str()));
    return v;
  }

  const std::string& s_;
  const std::function<bool(const std::string&, Value*)>& lookup_;
  size_t i_ = 0;
};

}  // namespace

bool eval_sweep_constraint(const std::string& expr,
                           const std::function<bool(const std::string&, SweepExprValue*)>& lookup) {
  return Parser(expr, lookup).run();
}

}  // namespace zeroth
