// Expression parser and evaluators of the math verifier.
//
// Owns: recursive-descent parsing of one cleaned scalar expression (LaTeX or plain:
// + - * / ^ !, implicit products, \frac, \sqrt[n]{}, functions, \pi, i, \infty, mixed
// numbers, scientific notation, subscripted names) into a flat node arena; exact
// evaluation with rationals; numeric evaluation with complex doubles at deterministic
// pseudo-random points; and scalar equivalence. Must not: throw, recurse past
// opts.max_depth, create more than opts.max_nodes nodes, or compute exact powers with
// |exponent| > opts.max_exponent. Structure (lists, sets, relations) is math_equal.cpp's.
#include <cmath>
#include <cstring>

#include "reward/math_internal.h"

namespace zeroth::math_detail {
namespace {

uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

struct FnName {
  const char* name;
  Fn fn;
};
constexpr FnName kFunctions[] = {
    {"sin", Fn::Sin},     {"cos", Fn::Cos},     {"tan", Fn::Tan},     {"cot", Fn::Cot},
    {"sec", Fn::Sec},     {"csc", Fn::Csc},     {"arcsin", Fn::Asin}, {"arccos", Fn::Acos},
    {"arctan", Fn::Atan}, {"sinh", Fn::Sinh},   {"cosh", Fn::Cosh},   {"tanh", Fn::Tanh},
    {"ln", Fn::Ln},       {"log", Fn::Ln},      {"lg", Fn::Log10},    {"exp", Fn::Exp},
};

bool find_function(std::string_view name, Fn* fn) {
  for (const FnName& f : kFunctions) {
    if (name == f.name) {
      *fn = f.fn;
      return true;
    }
  }
  return false;
}

constexpr const char* kGreek[] = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
    "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau",
    "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda",
    "Xi", "Sigma", "Phi", "Psi", "Omega", "emptyset", "varnothing", "ell"};

bool is_greek(std::string_view name) {
  for (const char* g : kGreek)
    if (name == g) return true;
  return false;
}

class Parser {
 public:
  Parser(std::string_view s, const MathVerifyOptions& opts, ExprTree* t)
      : s_(s), opts_(opts), t_(t) {}

  bool run() {
    t_->nodes.clear();
    t_->nodes.reserve(32);
    int r = expr();
    skip_ws();
    if (r < 0 || p_ != s_.size()) return false;
    t_->root = r;
    return true;
  }

 private:
  void skip_ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\t' || s_[p_] == '\n')) ++p_;
  }
  char peek() {
    skip_ws();
    return p_ < s_.size() ? s_[p_] : '\0';
  }
  // The command name at p_ (after '\'), without consuming it.
  std::string_view peek_command() {
    skip_ws();
    if (p_ >= s_.size() || s_[p_] != '\\') return {};
    size_t e = p_ + 1;
    while (e < s_.size() && is_letter(s_[e])) ++e;
    return s_.substr(p_ + 1, e - p_ - 1);
  }

  int add_node(Node n) {
    if (static_cast<int>(t_->nodes.size()) >= opts_.max_nodes) return -1;
    t_->nodes.push_back(n);
    return static_cast<int>(t_->nodes.size()) - 1;
  }
  int binary(Op op, int a, int b) {
    if (a < 0 || b < 0) return -1;
    Node n;
    n.op = op;
    n.a = a;
    n.b = b;
    return add_node(n);
  }
  int unary_node(Op op, int a) {
    if (a < 0) return -1;
    Node n;
    n.op = op;
    n.a = a;
    return add_node(n);
  }
  int number_node(const Rat& q) {
    Node n;
    n.op = Op::Num;
    n.exact = true;
    n.q = q;
    n.d = rat_to_double(q);
    return add_node(n);
  }
  int symbol_node(uint64_t h) {
    Node n;
    n.op = Op::Sym;
    n.sym = h;
    t_->has_sym = true;
    return add_node(n);
  }

  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p_(p) { ++p_->depth_; }
    ~DepthGuard() { --p_->depth_; }
    Parser* p_;
  };
  bool too_deep() const { return depth_ > opts_.max_depth; }

  int expr() {
    DepthGuard g(this);
    if (too_deep()) return -1;
    int left = term();
    while (left >= 0) {
      char c = peek();
      if (c == '+' || c == '-') {
        ++p_;
        int right = term();
        left = binary(c == '+' ? Op::Add : Op::Sub, left, right);
      } else {
        break;
      }
    }
    return left;
  }

  bool starts_atom() {
    char c = peek();
    if (is_digit(c) || c == '.' || is_letter(c) || c == '(' || c == '[' || c == '{') return true;
    if (c != '\\') return false;
    std::string_view cmd = peek_command();
    return !(cmd == "cdot" || cmd == "times" || cmd == "div" || cmd == "ast" || cmd.empty());
  }

  int term() {
    DepthGuard g(this);
    if (too_deep()) return -1;
    int left = unary();
    while (left >= 0) {
      char c = peek();
      if (c == '*' || c == '/') {
        ++p_;
        left = binary(c == '*' ? Op::Mul : Op::Div, left, unary());
        continue;
      }
      std::string_view cmd = peek_command();
      if (cmd == "cdot" || cmd == "times" || cmd == "ast" || cmd == "div") {
        p_ += 1 + cmd.size();
        left = binary(cmd == "div" ? Op::Div : Op::Mul, left, unary());
        continue;
      }
      if (starts_atom()) {
        left = binary(Op::Mul, left, power());
        continue;
      }
      break;
    }
    return left;
  }

  int unary() {
    DepthGuard g(this);
    if (too_deep()) return -1;
    char c = peek();
    if (c == '-') {
      ++p_;
      return unary_node(Op::Neg, unary());
    }
    if (c == '+') {
      ++p_;
      return unary();
    }
    return power();
  }

  // base ^ exponent, right-associative; the exponent is a group, a number, a symbol
  // or a signed one of those.
  int power() {
    DepthGuard g(this);
    if (too_deep()) return -1;
    int base = postfix();
    if (base < 0) return -1;
    if (peek() != '^') return base;
    ++p_;
    return binary(Op::Pow, base, exponent());
  }

  int exponent() {
    DepthGuard g(this);
    if (too_deep()) return -1;
    char c = peek();
    if (c == '-') {
      ++p_;
      return unary_node(Op::Neg, exponent());
    }
    if (c == '+') {
      ++p_;
      return exponent();
    }
    int e = postfix_of(atom(/*allow_multi_digit=*/true));
    if (e < 0) return -1;
    if (peek() == '^') {
      ++p_;
      return binary(Op::Pow, e, exponent());
    }
    return e;
  }

  int postfix() { return postfix_of(atom(true)); }
  int postfix_of(int a) {
    while (a >= 0 && peek() == '!') {
      ++p_;
      a = unary_node(Op::Fact, a);
    }
    return a;
  }

  // A braced group {..} or a single character/command (LaTeX argument rules).
  int latex_arg() {
    char c = peek();
    if (c == '{') return group();
    if (is_digit(c)) {
      Rat q;
      rat_make(c - '0', 1, &q);
      ++p_;
      return number_node(q);
    }
    if (is_letter(c)) {
      ++p_;
      return letter_symbol(s_[p_ - 1]);
    }
    if (c == '\\') return atom(false);
    return -1;
  }

  int group() {  // at an opening bracket
    char open = s_[p_];
    ++p_;
    int e = expr();
    char c = peek();
    bool ok = (open == '{' && c == '}') || (open != '{' && (c == ')' || c == ']'));
    if (e < 0 || !ok) return -1;
    ++p_;
    return e;
  }

  int letter_symbol(char c) {
    if (c == 'i') {
      Node n;
      n.op = Op::Imag;
      return add_node(n);
    }
    return symbol_node(fnv1a(std::string_view(&c, 1)));
  }

  // Optional subscript after a name: folds its raw text into the symbol's hash.
  uint64_t subscript(uint64_t h) {
    if (peek() != '_') return h;
    ++p_;
    skip_ws();
    if (p_ >= s_.size()) return h;
    size_t start = p_, end;
    if (s_[p_] == '{') {
      size_t close = match_close(s_, p_);
      if (close == std::string_view::npos) return h;
      end = close + 1;
    } else if (is_digit(s_[p_])) {
      end = p_;
      while (end < s_.size() && is_digit(s_[end])) ++end;
    } else {
      end = p_ + 1;
    }
    p_ = end;
    return fnv1a(s_.substr(start, end - start), fnv1a("_", h));
  }

  int number() {
    size_t start = p_;
    __int128 mant = 0;
    int digits = 0, frac_digits = 0;
    bool overflow = false, seen_dot = false;
    while (p_ < s_.size()) {
      char c = s_[p_];
      if (is_digit(c)) {
        if (digits >= 36) overflow = true;
        else mant = mant * 10 + (c - '0');
        if (mant != 0 || c != '0') ++digits;
        if (seen_dot) ++frac_digits;
        ++p_;
      } else if (c == '.' && !seen_dot && p_ + 1 < s_.size() && is_digit(s_[p_ + 1])) {
        seen_dot = true;
        ++p_;
      } else {
        break;
      }
    }
    if (seen_dot) t_->has_decimal = true;
    int exp10 = -frac_digits;
    // Scientific notation: 1.5e3, 2E-4 (only when digits follow).
    if (p_ + 1 < s_.size() && (s_[p_] == 'e' || s_[p_] == 'E')) {
      size_t q = p_ + 1;
      int sign = 1;
      if (q < s_.size() && (s_[q] == '+' || s_[q] == '-')) sign = s_[q++] == '-' ? -1 : 1;
      if (q < s_.size() && is_digit(s_[q])) {
        int e = 0;
        while (q < s_.size() && is_digit(s_[q])) {
          if (e < 100000) e = e * 10 + (s_[q] - '0');
          ++q;
        }
        exp10 += sign * e;
        p_ = q;
        t_->has_decimal = true;
      }
    }
    std::string_view text = s_.substr(start, p_ - start);
    // Number in a base: 204_5 is an opaque name.
    if (p_ < s_.size() && s_[p_] == '_') return symbol_node(subscript(fnv1a(text)));
    Node n;
    n.op = Op::Num;
    if (!overflow && exp10 > -36 && exp10 < 36) {
      __int128 p10 = 1;
      bool ok = true;
      for (int k = 0; k < (exp10 < 0 ? -exp10 : exp10); ++k)
        if (__builtin_mul_overflow(p10, static_cast<__int128>(10), &p10)) ok = false;
      if (ok) {
        __int128 num = mant, den = 1;
        if (exp10 >= 0) ok = !__builtin_mul_overflow(mant, p10, &num);
        else den = p10;
        if (ok && rat_make(num, den, &n.q)) {
          n.exact = true;
          n.d = rat_to_double(n.q);
          return add_node(n);
        }
      }
    }
    std::string buf(text);
    n.d = std::strtod(buf.c_str(), nullptr);
    return add_node(n);
  }

  // After an integer: "3\frac{1}{2}" (or "3 1/2") is the mixed number 7/2.
  int maybe_mixed(int whole) {
    const Node& w = t_->nodes[whole];
    if (!w.exact || w.q.den != 1 || w.q.num < 0) return whole;
    size_t save = p_;
    skip_ws();
    std::string_view cmd = peek_command();
    __int128 n = 0, d = 0;
    bool found = false;
    if (cmd == "frac" || cmd == "dfrac" || cmd == "tfrac") {
      size_t q = p_ + 1 + cmd.size();
      auto read_int_arg = [&](__int128* v) {
        while (q < s_.size() && s_[q] == ' ') ++q;
        bool braced = q < s_.size() && s_[q] == '{';
        if (braced) ++q;
        size_t st = q;
        *v = 0;
        while (q < s_.size() && is_digit(s_[q]) && q - st < 18) *v = *v * 10 + (s_[q++] - '0');
        if (q == st || (!braced && q - st != 1)) return false;
        if (braced) {
          if (q >= s_.size() || s_[q] != '}') return false;
          ++q;
        }
        return true;
      };
      if (read_int_arg(&n) && read_int_arg(&d)) {
        found = true;
        p_ = q;
      }
    } else if (save < p_ && p_ < s_.size() && is_digit(s_[p_])) {  // "3 1/2"
      size_t q = p_, st = q;
      while (q < s_.size() && is_digit(s_[q]) && q - st < 18) n = n * 10 + (s_[q++] - '0');
      if (q < s_.size() && s_[q] == '/') {
        size_t st2 = ++q;
        while (q < s_.size() && is_digit(s_[q]) && q - st2 < 18) d = d * 10 + (s_[q++] - '0');
        bool end_ok = q == s_.size() || !(is_digit(s_[q]) || is_letter(s_[q]) || s_[q] == '.' ||
                                          s_[q] == '^' || s_[q] == '(');
        if (q > st2 && end_ok && n < d) {
          found = true;
          p_ = q;
        }
      }
    }
    if (!found || d == 0) {
      p_ = save;
      return whole;
    }
    Rat fr, sum;
    if (!rat_make(n, d, &fr) || !rat_add(w.q, fr, &sum)) {
      p_ = save;
      return whole;
    }
    Node& wn = t_->nodes[whole];
    wn.q = sum;
    wn.d = rat_to_double(sum);
    return whole;
  }

  int function_call(Fn fn) {
    // Optional power (\sin^2 x) and base (\log_2 8), in either order.
    int pow_e = -2;
    int base = -2;
    for (int k = 0; k < 2; ++k) {
      char c = peek();
      if (c == '^' && pow_e == -2) {
        ++p_;
        pow_e = exponent();
        if (pow_e < 0) return -1;
      } else if (c == '_' && base == -2) {
        ++p_;
        base = latex_arg_or_number();
        if (base < 0) return -1;
      }
    }
    int arg;
    if (peek() == '(' || peek() == '{' || peek() == '[') {
      arg = group();
    } else {
      arg = power();
      while (arg >= 0 && starts_atom() && !starts_function()) arg = binary(Op::Mul, arg, power());
    }
    if (arg < 0) return -1;
    Node n;
    n.op = Op::Func;
    n.fn = fn;
    n.a = arg;
    int r = add_node(n);
    if (base >= 0) {  // log_b x = ln x / ln b
      Node lb;
      lb.op = Op::Func;
      lb.fn = Fn::Ln;
      lb.a = base;
      r = binary(Op::Div, r, add_node(lb));
    }
    if (pow_e >= 0) r = binary(Op::Pow, r, pow_e);
    return r;
  }

  int latex_arg_or_number() {
    if (is_digit(peek())) return number();
    return latex_arg();
  }

  bool starts_function() {
    char c = peek();
    size_t e = p_;
    if (c == '\\') ++e;
    else if (!is_letter(c)) return false;
    size_t st = e;
    while (e < s_.size() && is_letter(s_[e])) ++e;
    Fn fn;
    return find_function(s_.substr(st, e - st), &fn);
  }

  int atom(bool /*allow_multi_digit*/) {
    DepthGuard g(this);
    if (too_deep()) return -1;
    char c = peek();
    if (c == '\0') return -1;
    if (is_digit(c) || c == '.') {
      int n = number();
      if (n < 0) return -1;
      return maybe_mixed(n);
    }
    if (c == '(' || c == '[' || c == '{') return group();
    if (c == '|') {
      ++p_;
      int e = expr();
      if (e < 0 || peek() != '|') return -1;
      ++p_;
      return unary_node(Op::Abs, e);
    }
    if (is_letter(c)) {
      size_t e = p_;
      while (e < s_.size() && is_letter(s_[e])) ++e;
      std::string_view run = s_.substr(p_, e - p_);
      Fn fn;
      if (run.size() >= 2 && find_function(run, &fn)) {
        p_ = e;
        return function_call(fn);
      }
      if (run == "pi") {
        p_ = e;
        Node n;
        n.op = Op::Pi;
        return add_node(n);
      }
      if (run.size() >= 4) {  // a word: one opaque, case-insensitive symbol
        std::string low(run);
        for (char& ch : low) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        p_ = e;
        return symbol_node(subscript(fnv1a(low, 7)));
      }
      ++p_;
      if (c == 'i' && peek() != '_') return letter_symbol('i');
      return symbol_node(subscript(fnv1a(std::string_view(&c, 1))));
    }
    if (c != '\\') return -1;
    std::string_view cmd = peek_command();
    p_ += 1 + cmd.size();
    if (cmd == "frac" || cmd == "dfrac" || cmd == "tfrac" || cmd == "cfrac") {
      int a = latex_arg();
      int b = a >= 0 ? latex_arg() : -1;
      return binary(Op::Div, a, b);
    }
    if (cmd == "sqrt") {
      if (peek() == '[') {
        ++p_;
        int idx = expr();
        if (idx < 0 || peek() != ']') return -1;
        ++p_;
        return binary(Op::Root, latex_arg(), idx);
      }
      return unary_node(Op::Sqrt, latex_arg());
    }
    if (cmd == "pi") {
      Node n;
      n.op = Op::Pi;
      return add_node(n);
    }
    if (cmd == "infty" || cmd == "infin") {
      Node n;
      n.op = Op::Inf;
      t_->has_inf = true;
      return add_node(n);
    }
    if (cmd == "word") {  // \word{...} from the cleaner: an opaque symbol
      if (peek() != '{') return -1;
      size_t close = match_close(s_, p_);
      if (close == std::string_view::npos) return -1;
      uint64_t h = fnv1a(s_.substr(p_ + 1, close - p_ - 1), 7);
      p_ = close + 1;
      return symbol_node(h);
    }
    Fn fn;
    if (find_function(cmd, &fn)) return function_call(fn);
    if (is_greek(cmd)) return symbol_node(subscript(fnv1a(cmd, 3)));
    return -1;
  }

  std::string_view s_;
  const MathVerifyOptions& opts_;
  ExprTree* t_;
  size_t p_ = 0;
  int depth_ = 0;
};

// ---- exact evaluation ----
bool isqrt128(__int128 v, __int128* r) {
  if (v < 0) return false;
  long double f = std::sqrt(static_cast<long double>(v));
  __int128 x = static_cast<__int128>(f);
  for (__int128 c = (x > 2 ? x - 2 : 0); c <= x + 2; ++c) {
    if (c * c == v) {
      *r = c;
      return true;
    }
  }
  return false;
}

bool exact_rec(const ExprTree& t, int i, const MathVerifyOptions& opts, int depth, Rat* out) {
  if (depth > opts.max_depth * 4 || i < 0) return false;
  const Node& n = t.nodes[i];
  Rat a, b;
  switch (n.op) {
    case Op::Num:
      if (!n.exact) return false;
      *out = n.q;
      return true;
    case Op::Add:
    case Op::Sub:
    case Op::Mul:
    case Op::Div:
      if (!exact_rec(t, n.a, opts, depth + 1, &a) || !exact_rec(t, n.b, opts, depth + 1, &b))
        return false;
      if (n.op == Op::Add) return rat_add(a, b, out);
      if (n.op == Op::Sub) return rat_sub(a, b, out);
      if (n.op == Op::Mul) return rat_mul(a, b, out);
      return rat_div(a, b, out);
    case Op::Neg:
      if (!exact_rec(t, n.a, opts, depth + 1, &a)) return false;
      return rat_sub(Rat{0, 1}, a, out);
    case Op::Pow: {
      if (!exact_rec(t, n.a, opts, depth + 1, &a) || !exact_rec(t, n.b, opts, depth + 1, &b))
        return false;
      if (b.den == 2) {  // square roots of perfect squares
        __int128 rn, rd;
        if (!isqrt128(a.num, &rn) || !isqrt128(a.den, &rd)) return false;
        rat_make(rn, rd, &a);
        b.den = 1;
      }
      if (b.den != 1 || b.num > opts.max_exponent || b.num < -opts.max_exponent) return false;
      bool neg = b.num < 0;
      __int128 e = neg ? -b.num : b.num;
      Rat r{1, 1}, base = a;
      while (e > 0) {
        if ((e & 1) && !rat_mul(r, base, &r)) return false;
        e >>= 1;
        if (e > 0 && !rat_mul(base, base, &base)) return false;
      }
      if (neg) return rat_div(Rat{1, 1}, r, out);
      *out = r;
      return true;
    }
    case Op::Sqrt: {
      if (!exact_rec(t, n.a, opts, depth + 1, &a)) return false;
      __int128 rn, rd;
      if (!isqrt128(a.num, &rn) || !isqrt128(a.den, &rd)) return false;
      return rat_make(rn, rd, out);
    }
    case Op::Fact: {
      if (!exact_rec(t, n.a, opts, depth + 1, &a) || a.den != 1 || a.num < 0 || a.num > 33)
        return false;
      __int128 f = 1;
      for (__int128 k = 2; k <= a.num; ++k) f *= k;
      return rat_make(f, 1, out);
    }
    case Op::Abs:
      if (!exact_rec(t, n.a, opts, depth + 1, &a)) return false;
      *out = a;
      if (out->num < 0) out->num = -out->num;
      return true;
    default:
      return false;
  }
}

// ---- numeric evaluation ----
using Cx = std::complex<double>;

double symbol_value(uint64_t h, int point) {
  uint64_t r = splitmix64(h ^ splitmix64(static_cast<uint64_t>(point) + 0x1234567ull));
  double u = static_cast<double>(r >> 11) * (1.0 / 9007199254740992.0);
  return 0.35 + 1.9 * u;  // in [0.35, 2.25): avoids 0, 1 and small integers
}

bool is_real(const Cx& z) { return z.imag() == 0.0; }

bool numeric_rec(const ExprTree& t, int i, int point, int depth, Cx* out) {
  if (depth > 4096 || i < 0) return false;
  const Node& n = t.nodes[i];
  Cx a, b;
  switch (n.op) {
    case Op::Num:
      *out = Cx(n.d, 0.0);
      return true;
    case Op::Sym:
      *out = Cx(symbol_value(n.sym, point), 0.0);
      return true;
    case Op::Pi:
      *out = Cx(M_PI, 0.0);
      return true;
    case Op::Imag:
      *out = Cx(0.0, 1.0);
      return true;
    case Op::Inf:
      *out = Cx(HUGE_VAL, 0.0);
      return true;
    case Op::Add:
    case Op::Sub:
    case Op::Mul:
    case Op::Div:
    case Op::Pow:
    case Op::Root:
      if (!numeric_rec(t, n.a, point, depth + 1, &a) || !numeric_rec(t, n.b, point, depth + 1, &b))
        return false;
      if (n.op == Op::Add) *out = is_real(a) && is_real(b) ? Cx(a.real() + b.real(), 0) : a + b;
      else if (n.op == Op::Sub) *out = is_real(a) && is_real(b) ? Cx(a.real() - b.real(), 0) : a - b;
      else if (n.op == Op::Mul) *out = is_real(a) && is_real(b) ? Cx(a.real() * b.real(), 0) : a * b;
      else if (n.op == Op::Div) {
        if (b == Cx(0.0, 0.0)) return false;
        *out = is_real(a) && is_real(b) ? Cx(a.real() / b.real(), 0) : a / b;
      } else {
        if (n.op == Op::Root) {  // radicand a, index b
          if (b == Cx(0.0, 0.0)) return false;
          b = Cx(1.0, 0.0) / b;
        }
        if (is_real(a) && is_real(b)) {
          double x = a.real(), y = b.real();
          if (x >= 0 || std::floor(y) == y) {
            *out = Cx(std::pow(x, y), 0.0);
          } else {
            double inv = 1.0 / y;  // odd roots of negatives stay real
            if (std::fabs(inv - std::round(inv)) < 1e-9 && std::fmod(std::round(inv), 2.0) != 0)
              *out = Cx(-std::pow(-x, y), 0.0);
            else
              *out = std::pow(a, b);
          }
        } else {
          if (a == Cx(0.0, 0.0)) return false;
          *out = std::pow(a, b);
        }
      }
      break;
    case Op::Neg:
      if (!numeric_rec(t, n.a, point, depth + 1, &a)) return false;
      *out = -a;
      break;
    case Op::Sqrt:
      if (!numeric_rec(t, n.a, point, depth + 1, &a)) return false;
      *out = is_real(a) && a.real() >= 0 ? Cx(std::sqrt(a.real()), 0.0) : std::sqrt(a);
      break;
    case Op::Abs:
      if (!numeric_rec(t, n.a, point, depth + 1, &a)) return false;
      *out = Cx(std::abs(a), 0.0);
      break;
    case Op::Fact:
      if (!numeric_rec(t, n.a, point, depth + 1, &a) || !is_real(a) || a.real() < 0 ||
          a.real() > 170)
        return false;
      *out = Cx(std::tgamma(a.real() + 1.0), 0.0);
      break;
    case Op::Func:
      if (!numeric_rec(t, n.a, point, depth + 1, &a)) return false;
      switch (n.fn) {
        case Fn::Sin: *out = std::sin(a); break;
        case Fn::Cos: *out = std::cos(a); break;
        case Fn::Tan: *out = std::tan(a); break;
        case Fn::Cot: *out = Cx(1.0, 0.0) / std::tan(a); break;
        case Fn::Sec: *out = Cx(1.0, 0.0) / std::cos(a); break;
        case Fn::Csc: *out = Cx(1.0, 0.0) / std::sin(a); break;
        case Fn::Asin: *out = std::asin(a); break;
        case Fn::Acos: *out = std::acos(a); break;
        case Fn::Atan: *out = std::atan(a); break;
        case Fn::Sinh: *out = std::sinh(a); break;
        case Fn::Cosh: *out = std::cosh(a); break;
        case Fn::Tanh: *out = std::tanh(a); break;
        case Fn::Ln:
          if (a == Cx(0.0, 0.0)) return false;
          *out = is_real(a) && a.real() > 0 ? Cx(std::log(a.real()), 0.0) : std::log(a);
          break;
        case Fn::Log10:
          if (a == Cx(0.0, 0.0)) return false;
          *out = std::log10(a);
          break;
        case Fn::Exp: *out = std::exp(a); break;
      }
      break;
  }
  if (!t.has_inf && !(std::isfinite(out->real()) && std::isfinite(out->imag()))) return false;
  if (std::isnan(out->real())) return false;
  return true;
}

}  // namespace

bool parse_expr(std::string_view s, const MathVerifyOptions& opts, ExprTree* out) {
  out->has_sym = false;
  out->has_inf = false;
  out->has_decimal = false;
  out->root = -1;
  if (s.empty() || s.size() > opts.max_answer_bytes) return false;
  uint64_t h = 1469598103934665603ull;
  for (char c : s) {
    if (c == ' ') continue;
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  out->text_hash = h;
  Parser p(s, opts, out);
  return p.run();
}

bool is_single_symbol(const ExprTree& t) {
  return t.root >= 0 && t.nodes[t.root].op == Op::Sym;
}

bool eval_exact(const ExprTree& t, const MathVerifyOptions& opts, Rat* out) {
  if (t.root < 0 || t.has_sym || t.has_inf) return false;
  return exact_rec(t, t.root, opts, 0, out);
}

bool eval_numeric(const ExprTree& t, int point, std::complex<double>* out) {
  if (t.root < 0) return false;
  return numeric_rec(t, t.root, point, 0, out);
}

bool num_close(std::complex<double> a, std::complex<double> b, const MathVerifyOptions& opts) {
  bool ia = std::isinf(a.real()), ib = std::isinf(b.real());
  if (ia || ib) return ia && ib && (a.real() > 0) == (b.real() > 0);
  double diff = std::abs(a - b);
  double scale = std::max(std::abs(a), std::abs(b));
  return diff <= opts.abs_tol || diff <= opts.rel_tol * scale;
}

bool expr_equal(const ExprTree& a, const ExprTree& b, const MathVerifyOptions& opts) {
  if (a.text_hash == b.text_hash) return true;  // the same text, spaces aside
  Rat qa, qb;
  bool ea = eval_exact(a, opts, &qa), eb = eval_exact(b, opts, &qb);
  if (ea && eb) {
    if (qa.num == qb.num && qa.den == qb.den) return true;
    // A written decimal may approximate the other side (1/12 vs 0.0833333333):
    // compare those numerically, with rel_tol. Exact values must match exactly.
    if (!a.has_decimal && !b.has_decimal) return false;
  }
  if (a.has_inf != b.has_inf) return false;
  int points = (a.has_sym || b.has_sym) ? std::max(1, opts.num_points) : 1;
  int valid = 0;
  for (int p = 0; p < points + 4 && valid < points; ++p) {
    std::complex<double> va, vb;
    bool oka = eval_numeric(a, p, &va), okb = eval_numeric(b, p, &vb);
    if (oka != okb) return false;
    if (!oka) continue;  // outside both domains at this point: try another
    if (!num_close(va, vb, opts)) return false;
    ++valid;
  }
  return valid == points;
}

}  // namespace zeroth::math_detail
