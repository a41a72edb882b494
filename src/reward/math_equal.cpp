// Structure-level equivalence of two answers for the math verifier.
//
// Owns: parsing a cleaned answer into a Value (expression, tuple/interval, set, list,
// union, matrix, relation chain) and comparing two Values, plus the public math_equal
// and verify_math. Must not: throw (every entry point catches), recurse past
// opts.max_depth, or compare more than kMaxItems elements per level.
#include <cmath>

#include "reward/math_internal.h"

namespace zeroth {
namespace {

using namespace math_detail;

constexpr size_t kMaxItems = 64;

enum class Rel { Eq, Lt, Le, Gt, Ge, Ne, Approx, In };

struct Value {
  enum class Kind { Expr, Tuple, Set, List, Union, Matrix, Relation } kind = Kind::Expr;
  char open = 0, close = 0;  // Tuple brackets
  bool from_pm = false;      // List made by expanding \pm
  int rows = 0, cols = 0;    // Matrix
  std::vector<Value> items;  // elements; Relation: chain parts; Matrix: row-major
  std::vector<Rel> rels;     // Relation: rels[k] sits between items[k] and items[k+1]
  ExprTree expr;
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "7,425,000", "1 000", "-12,000.5": a number with thousands separators.
bool strip_thousands(std::string_view s, std::string* out) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t lead = 0;
  while (i + lead < s.size() && is_digit(s[i + lead])) ++lead;
  if (lead == 0 || lead > 3) return false;
  size_t j = i + lead;
  char sep = j < s.size() ? s[j] : '\0';
  if (sep != ',' && sep != ' ') return false;
  int groups = 0;
  while (j < s.size() && s[j] == sep) {
    if (j + 3 >= s.size() + 0 && j + 3 > s.size()) return false;
    for (int k = 1; k <= 3; ++k)
      if (j + k >= s.size() || !is_digit(s[j + k])) return false;
    j += 4;
    ++groups;
  }
  if (groups == 0) return false;
  if (j < s.size() && s[j] == '.') {
    ++j;
    size_t st = j;
    while (j < s.size() && is_digit(s[j])) ++j;
    if (j == st) return false;
  }
  if (j != s.size()) return false;
  out->clear();
  for (char c : s)
    if (c != sep) out->push_back(c);
  return true;
}

// Splits at depth-0 relation operators.
void split_relations(std::string_view s, std::vector<std::string_view>* parts,
                     std::vector<Rel>* rels) {
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '(' || c == '[' || c == '{') {
      ++depth;
      continue;
    }
    if (c == ')' || c == ']' || c == '}') {
      --depth;
      continue;
    }
    if (depth != 0) continue;
    Rel r;
    size_t len = 0;
    if (c == '=') { r = Rel::Eq; len = 1; }
    else if (c == '<') { r = Rel::Lt; len = 1; }
    else if (c == '>') { r = Rel::Gt; len = 1; }
    else if (c == '\\') {
      size_t e = i + 1;
      while (e < s.size() && ((s[e] >= 'a' && s[e] <= 'z') || (s[e] >= 'A' && s[e] <= 'Z'))) ++e;
      std::string_view name = s.substr(i + 1, e - i - 1);
      if (name == "le") r = Rel::Le;
      else if (name == "ge") r = Rel::Ge;
      else if (name == "ne") r = Rel::Ne;
      else if (name == "approx" || name == "sim" || name == "simeq") r = Rel::Approx;
      else if (name == "in") r = Rel::In;
      else if (name == "equiv") r = Rel::Eq;
      else {
        i = e - 1;
        continue;
      }
      len = e - i;
    } else {
      continue;
    }
    parts->push_back(s.substr(start, i - start));
    rels->push_back(r);
    start = i + len;
    i = start - 1;
  }
  parts->push_back(s.substr(start));
}

bool parse_value(std::string_view s, const MathVerifyOptions& opts, int depth, Value* v);

// A left-hand side naming what is asked: x, f(x), (p,q), x_1.
bool names_unknown(const Value& v) {
  if (v.kind == Value::Kind::Expr) return is_single_symbol(v.expr);
  if (v.kind == Value::Kind::Tuple) {
    for (const Value& it : v.items)
      if (!names_unknown(it)) return false;
    return true;
  }
  return false;
}

bool parse_items(const std::vector<std::string_view>& parts, const MathVerifyOptions& opts,
                 int depth, std::vector<Value>* out) {
  if (parts.size() > kMaxItems) return false;
  out->reserve(parts.size());
  for (std::string_view p : parts) {
    Value it;
    if (!parse_value(p, opts, depth + 1, &it)) return false;
    if (it.kind == Value::Kind::List && it.from_pm) {
      for (Value& x : it.items) out->push_back(std::move(x));
    } else {
      out->push_back(std::move(it));
    }
  }
  return true;
}

bool parse_matrix(std::string_view s, const MathVerifyOptions& opts, int depth, Value* v) {
  // \begin{env}[{colspec}] body \end{env}, possibly inside one pair of brackets.
  size_t b = s.find("\\begin{");
  if (b == std::string_view::npos) return false;
  std::string_view before = trim(s.substr(0, b));
  size_t name_end = s.find('}', b + 7);
  if (name_end == std::string_view::npos) return false;
  std::string_view env = s.substr(b + 7, name_end - b - 7);
  std::string end_tag = "\\end{" + std::string(env) + "}";
  size_t e = s.find(end_tag, name_end);
  if (e == std::string_view::npos) return false;
  std::string_view after = trim(s.substr(e + end_tag.size()));
  bool wrapped = (before == "(" && after == ")") || (before == "[" && after == "]");
  if (!(before.empty() && after.empty()) && !wrapped) return false;
  size_t body = name_end + 1;
  if (env == "array") {  // column spec
    while (body < s.size() && s[body] == ' ') ++body;
    if (body < s.size() && s[body] == '{') {
      size_t c = match_close(s, body);
      if (c == std::string_view::npos) return false;
      body = c + 1;
    }
  }
  std::vector<std::string_view> rows = split_top(s.substr(body, e - body), "\\\\");
  while (!rows.empty() && trim(rows.back()).empty()) rows.pop_back();
  if (rows.empty() || rows.size() > kMaxItems) return false;
  v->kind = Value::Kind::Matrix;
  v->rows = static_cast<int>(rows.size());
  for (std::string_view r : rows) {
    std::vector<std::string_view> cells = split_top(r, "&");
    if (v->cols == 0) v->cols = static_cast<int>(cells.size());
    if (static_cast<int>(cells.size()) != v->cols) return false;
    if (!parse_items(cells, opts, depth, &v->items)) return false;
  }
  return v->items.size() <= kMaxItems * 4;
}

bool parse_value(std::string_view s, const MathVerifyOptions& opts, int depth, Value* v) {
  if (depth > opts.max_depth) return false;
  s = trim(s);
  while (!s.empty() && s.back() == '.') s = trim(s.substr(0, s.size() - 1));
  if (s.empty()) return false;

  std::string plain;
  if (strip_thousands(s, &plain)) {
    v->kind = Value::Kind::Expr;
    return parse_expr(plain, opts, &v->expr);
  }
  if (s.find("\\begin{") != std::string_view::npos && parse_matrix(s, opts, depth, v)) return true;

  std::vector<std::string_view> parts = split_top(s, "\\cup");
  if (parts.size() > 1) {
    v->kind = Value::Kind::Union;
    return parse_items(parts, opts, depth, &v->items);
  }

  parts.clear();
  std::vector<Rel> rels;
  split_relations(s, &parts, &rels);
  if (!rels.empty()) {
    // \approx ends an equation chain ("x = 1/3 \approx 0.33"); alone it means "=".
    for (size_t k = 0; k < rels.size(); ++k) {
      if (rels[k] != Rel::Approx) continue;
      bool eq_before = false;
      for (size_t j = 0; j < k; ++j) eq_before = eq_before || rels[j] == Rel::Eq;
      if (eq_before) {
        rels.resize(k);
        parts.resize(k + 1);
        break;
      }
      rels[k] = Rel::Eq;
    }
    bool all_eq = true;
    for (Rel r : rels) all_eq = all_eq && (r == Rel::Eq || r == Rel::In);
    v->kind = Value::Kind::Relation;
    if (all_eq) {
      // The last bare unknown on the left names the answer: "x = 5+5+1 = 11".
      Value rhs;
      if (!parse_value(parts.back(), opts, depth + 1, &rhs)) return false;
      Value lhs;
      bool have_lhs = false;
      for (size_t k = parts.size() - 1; k > 0; --k) {
        Value cand;
        if (parse_value(parts[k - 1], opts, depth + 1, &cand) && names_unknown(cand)) {
          lhs = std::move(cand);
          have_lhs = true;
          break;
        }
      }
      if (!have_lhs && !parse_value(parts[0], opts, depth + 1, &lhs)) return false;
      v->items.push_back(std::move(lhs));
      v->items.push_back(std::move(rhs));
      v->rels.push_back(Rel::Eq);
      return true;
    }
    v->rels = rels;
    return parse_items(parts, opts, depth, &v->items);
  }

  parts = split_top(s, ",");
  if (parts.size() > 1) {
    v->kind = Value::Kind::List;
    return parse_items(parts, opts, depth, &v->items);
  }

  bool set_open = s.size() >= 4 && s[0] == '\\' && s[1] == '{';
  if (s[0] == '(' || s[0] == '[' || set_open) {
    size_t open = set_open ? 1 : 0;
    size_t close = match_close(s, open);
    if (close == s.size() - 1 && (!set_open || s[close - 1] == '\\')) {
      std::string_view inner = s.substr(open + 1, close - open - 1 - (set_open ? 1 : 0));
      std::vector<std::string_view> items = split_top(inner, ",");
      if (set_open) {
        v->kind = Value::Kind::Set;
        if (trim(inner).empty()) return true;
        return parse_items(items, opts, depth, &v->items);
      }
      if (items.size() == 1) return parse_value(inner, opts, depth + 1, v);
      v->kind = Value::Kind::Tuple;
      v->open = s[0];
      v->close = s[close];
      return parse_items(items, opts, depth, &v->items);
    }
  }

  for (const char* pm : {"\\pm", "\\mp"}) {
    std::vector<std::string_view> sides = split_top(s, pm);
    if (sides.size() == 2) {
      v->kind = Value::Kind::List;
      v->from_pm = true;
      for (const char* sign : {"+", "-"}) {
        std::string e = "(" + std::string(sides[0].empty() ? "0" : sides[0]) + ")" + sign + "(" +
                        std::string(sides[1]) + ")";
        Value it;
        if (!parse_value(e, opts, depth + 1, &it)) return false;
        v->items.push_back(std::move(it));
      }
      return true;
    }
    if (sides.size() > 2) return false;
  }

  v->kind = Value::Kind::Expr;
  return parse_expr(s, opts, &v->expr);
}

bool values_equal(const Value& a, const Value& b, const MathVerifyOptions& opts, int depth);

bool unordered_equal(const std::vector<Value>& a, const std::vector<Value>& b,
                     const MathVerifyOptions& opts, int depth) {
  if (a.size() != b.size() || a.size() > kMaxItems) return false;
  bool used[kMaxItems] = {};
  for (const Value& x : a) {
    bool found = false;
    for (size_t j = 0; j < b.size() && !found; ++j) {
      if (!used[j] && values_equal(x, b[j], opts, depth + 1)) {
        used[j] = true;
        found = true;
      }
    }
    if (!found) return false;
  }
  return true;
}

bool ordered_equal(const std::vector<Value>& a, const std::vector<Value>& b,
                   const MathVerifyOptions& opts, int depth) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!values_equal(a[i], b[i], opts, depth + 1)) return false;
  return true;
}

// (l1 - r1) == k (l2 - r2) at every point, k != 0 (k > 0 when `positive`).
bool proportional(const Value& l1, const Value& r1, const Value& l2, const Value& r2,
                  bool positive, const MathVerifyOptions& opts) {
  using K = Value::Kind;
  if (l1.kind != K::Expr || r1.kind != K::Expr || l2.kind != K::Expr || r2.kind != K::Expr)
    return false;
  int points = std::max(3, opts.num_points);
  int valid = 0;
  bool have_k = false;
  std::complex<double> k;
  for (int p = 0; p < points + 6 && valid < points; ++p) {
    std::complex<double> a1, b1, a2, b2;
    if (!eval_numeric(l1.expr, p, &a1) || !eval_numeric(r1.expr, p, &b1) ||
        !eval_numeric(l2.expr, p, &a2) || !eval_numeric(r2.expr, p, &b2))
      continue;
    std::complex<double> d1 = a1 - b1, d2 = a2 - b2;
    double s1 = std::max(std::abs(a1), std::abs(b1)), s2 = std::max(std::abs(a2), std::abs(b2));
    bool z1 = std::abs(d1) <= opts.rel_tol * s1 + opts.abs_tol;
    bool z2 = std::abs(d2) <= opts.rel_tol * s2 + opts.abs_tol;
    if (z1 != z2) return false;
    ++valid;
    if (z1) continue;
    std::complex<double> kk = d1 / d2;
    if (!have_k) {
      k = kk;
      have_k = true;
      if (positive && (k.real() <= 0 || std::abs(k.imag()) > opts.rel_tol * std::abs(k)))
        return false;
    } else if (std::abs(kk - k) > 10 * opts.rel_tol * std::abs(k) + opts.abs_tol) {
      return false;
    }
  }
  return valid == points;
}

bool relations_equal(const Value& a, const Value& b, const MathVerifyOptions& opts, int depth) {
  if (a.items.size() == 2 && b.items.size() == 2) {
    Rel ra = a.rels[0], rb = b.rels[0];
    const Value *la = &a.items[0], *xa = &a.items[1], *lb = &b.items[0], *xb = &b.items[1];
    // x > y is y < x; x >= y is y <= x.
    if (ra == Rel::Gt || ra == Rel::Ge) {
      std::swap(la, xa);
      ra = ra == Rel::Gt ? Rel::Lt : Rel::Le;
    }
    if (rb == Rel::Gt || rb == Rel::Ge) {
      std::swap(lb, xb);
      rb = rb == Rel::Gt ? Rel::Lt : Rel::Le;
    }
    if (ra != rb) return false;
    if (ra == Rel::Eq && names_unknown(*la) && names_unknown(*lb) &&
        values_equal(*la, *lb, opts, depth + 1))
      return values_equal(*xa, *xb, opts, depth + 1);
    return proportional(*la, *xa, *lb, *xb, ra == Rel::Lt || ra == Rel::Le, opts);
  }
  if (a.rels != b.rels) return false;
  return ordered_equal(a.items, b.items, opts, depth);
}

bool values_equal(const Value& a, const Value& b, const MathVerifyOptions& opts, int depth) {
  using K = Value::Kind;
  if (depth > opts.max_depth) return false;
  // "x = 3" against "3": the right-hand side answers.
  if (a.kind == K::Relation && b.kind != K::Relation) {
    if (a.rels.size() == 1 && a.rels[0] == Rel::Eq && names_unknown(a.items[0]))
      return values_equal(a.items[1], b, opts, depth + 1);
    return false;
  }
  if (b.kind == K::Relation && a.kind != K::Relation) return values_equal(b, a, opts, depth);
  auto collection = [](K k) { return k == K::Set || k == K::List || k == K::Union; };
  switch (a.kind) {
    case K::Expr:
      if (b.kind == K::Expr) return expr_equal(a.expr, b.expr, opts);
      if (b.kind == K::Set && b.items.size() == 1) return values_equal(a, b.items[0], opts, depth + 1);
      return false;
    case K::Relation:
      return relations_equal(a, b, opts, depth);
    case K::Tuple:
      if (b.kind == K::Tuple)
        return a.open == b.open && a.close == b.close && ordered_equal(a.items, b.items, opts, depth);
      if (b.kind == K::List && a.open == '(' && a.close == ')')
        return ordered_equal(a.items, b.items, opts, depth);
      if (b.kind == K::Matrix && (b.rows == 1 || b.cols == 1) && a.open == '(' && a.close == ')')
        return ordered_equal(a.items, b.items, opts, depth);
      return false;
    case K::Matrix:
      if (b.kind == K::Matrix)
        return a.rows == b.rows && a.cols == b.cols && ordered_equal(a.items, b.items, opts, depth);
      if (b.kind == K::Tuple) return values_equal(b, a, opts, depth);
      return false;
    case K::Set:
      if (b.kind == K::Expr && a.items.size() == 1) return values_equal(a.items[0], b, opts, depth + 1);
      [[fallthrough]];
    case K::List:
    case K::Union:
      if (a.kind == K::List && b.kind == K::Tuple) return values_equal(b, a, opts, depth);
      if (!collection(b.kind)) return false;
      if (a.kind == K::Union || b.kind == K::Union) {
        if (a.kind != b.kind) return false;
      }
      if (opts.ordered_lists && a.kind == K::List && b.kind == K::List && !a.from_pm &&
          !b.from_pm)
        return ordered_equal(a.items, b.items, opts, depth);
      return unordered_equal(a.items, b.items, opts, depth);
  }
  return false;
}

bool prepare(std::string_view s, const MathVerifyOptions& opts, std::string* cleaned) {
  if (s.size() > opts.max_answer_bytes * 8) return false;
  std::optional<std::string> boxed;
  if (s.find("\\boxed") != std::string_view::npos || s.find("\\fbox") != std::string_view::npos) {
    boxed = boxed_content(s, opts);
    if (boxed) s = *boxed;
  }
  return clean_answer(s, opts, cleaned);
}

bool math_equal_impl(std::string_view gold, std::string_view pred, const MathVerifyOptions& opts) {
  std::string g, p;
  if (!prepare(gold, opts, &g) || !prepare(pred, opts, &p)) return false;
  if (g == p) return true;
  Value vg, vp;
  if (!parse_value(g, opts, 0, &vg) || !parse_value(p, opts, 0, &vp)) return false;
  return values_equal(vg, vp, opts, 0);
}

}  // namespace

bool math_equal(std::string_view gold, std::string_view predicted, const MathVerifyOptions& opts) {
  try {
    return math_equal_impl(gold, predicted, opts);
  } catch (...) {  // std::bad_alloc: a check never throws; treat as "not equal"
    return false;
  }
}

MathVerdict verify_math(std::string_view completion, std::string_view gold,
                        const MathVerifyOptions& opts) {
  MathVerdict v;
  try {
    std::optional<std::string> a = extract_answer(completion, opts);
    if (!a) return v;
    v.extracted = true;
    v.extracted_answer = std::move(*a);
    v.correct = math_equal(gold, v.extracted_answer, opts);
  } catch (...) {
    v.correct = false;
  }
  return v;
}

}  // namespace zeroth
