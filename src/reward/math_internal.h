// Internals of the math verifier shared by src/reward/math_*.cpp.
//
// Owns: the cleaned-answer normaliser, the expression tree (flat arena of nodes) with
// its exact (rational, __int128) and numeric (complex double) evaluators, and bracket-
// aware splitting helpers. Must not: throw, recurse without a depth limit, or be used
// outside src/reward/math_*.cpp (the public API is include/zeroth/math_verify.h).
#pragma once

#include <complex>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zeroth/math_verify.h"

namespace zeroth::math_detail {

// ---- rationals on __int128 with overflow detection ----
struct Rat {
  __int128 num = 0;
  __int128 den = 1;  // > 0, gcd(num, den) == 1
};
bool rat_make(__int128 num, __int128 den, Rat* out);  // false on den == 0
bool rat_add(const Rat& a, const Rat& b, Rat* out);   // false on overflow
bool rat_sub(const Rat& a, const Rat& b, Rat* out);
bool rat_mul(const Rat& a, const Rat& b, Rat* out);
bool rat_div(const Rat& a, const Rat& b, Rat* out);
double rat_to_double(const Rat& a);

// ---- cleaning ----
// Normalises an extracted answer: drops $, \left/\right, spacing commands, \%, \$,
// degrees, unit words and unit \text{}, unwraps \boxed, \text{} and font commands,
// maps unicode operators to LaTeX, and turns words into \word{...}. Returns false when
// the input is over the limits.
bool clean_answer(std::string_view in, const MathVerifyOptions& opts, std::string* out);

// Position of the bracket closing the one at `open` (any of ( [ { closes with any of
// ) ] }), or npos. Bounded by the string length.
size_t match_close(std::string_view s, size_t open);
// Splits `s` at depth-0 occurrences of `sep` (a literal string).
std::vector<std::string_view> split_top(std::string_view s, std::string_view sep);
std::string_view trim(std::string_view s);

// ---- expressions ----
enum class Op : uint8_t {
  Num, Sym, Pi, Imag, Inf, Add, Sub, Mul, Div, Neg, Pow, Fact, Sqrt, Root, Func, Abs
};
enum class Fn : uint8_t { Sin, Cos, Tan, Cot, Sec, Csc, Asin, Acos, Atan, Sinh, Cosh, Tanh,
                          Ln, Log10, Exp };

struct Node {
  Op op = Op::Num;
  Fn fn = Fn::Sin;
  bool exact = false;   // Num: q is valid; otherwise use d
  int a = -1, b = -1;   // children
  Rat q;
  double d = 0.0;
  uint64_t sym = 0;     // Sym: hash of the name
};

struct ExprTree {
  std::vector<Node> nodes;
  int root = -1;
  bool has_sym = false;
  bool has_inf = false;
  bool has_decimal = false;  // a number was written with a point or an exponent
  uint64_t text_hash = 0;    // hash of the source text without spaces
};

// Parses a cleaned expression (no top-level commas or relations). False on any syntax
// error or limit.
bool parse_expr(std::string_view s, const MathVerifyOptions& opts, ExprTree* out);
// True when the tree is exactly one symbol (a variable, possibly subscripted).
bool is_single_symbol(const ExprTree& t);
// Exact value when the tree has no symbols and only rational operations.
bool eval_exact(const ExprTree& t, const MathVerifyOptions& opts, Rat* out);
// Numeric value at random point `point` (symbols get deterministic pseudo-random
// values). False when the value is not finite (unless from \infty) or on a limit.
bool eval_numeric(const ExprTree& t, int point, std::complex<double>* out);
bool expr_equal(const ExprTree& a, const ExprTree& b, const MathVerifyOptions& opts);
// Content of the last \boxed{} / \fbox{} in `s` (math_extract.cpp).
std::optional<std::string> boxed_content(std::string_view s, const MathVerifyOptions& opts);
bool num_close(std::complex<double> a, std::complex<double> b, const MathVerifyOptions& opts);

}  // namespace zeroth::math_detail
