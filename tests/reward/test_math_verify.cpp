// Tests of the native math answer verifier (include/zeroth/math_verify.h).
//
// Owns: the case table run (math_cases.cpp), extraction, options, robustness against
// hostile input, and the self-consistency of every gold answer of GSM8K/MATH train
// under equivalent rewritings. Must not: assert on wall time.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "math_cases.h"
#include "zeroth/error.h"
#include "zeroth/math_verify.h"

using zeroth::MathVerifyOptions;
using zeroth::math_equal;
using zeroth::verify_math;

TEST_CASE("math verifier: case table from MATH, Math-Verify and our own") {
  MathVerifyOptions opts;
  int failed = 0;
  for (int i = 0; i < kNumMathCases; ++i) {
    const MathCase& c = kMathCases[i];
    bool got = c.completion ? verify_math(c.pred, c.gold, opts).correct
                            : math_equal(c.gold, c.pred, opts);
    if (got != c.expected) {
      ++failed;
      UNSCOPED_INFO("[" << c.source << "] gold=" << c.gold << " pred=" << c.pred
                        << " expected=" << c.expected << " got=" << got);
    }
  }
  std::printf("math case table: %d/%d pass\n", kNumMathCases - failed, kNumMathCases);
  CHECK(failed == 0);
}

TEST_CASE("math verifier: equivalence is symmetric on the table's plain pairs") {
  MathVerifyOptions opts;
  for (int i = 0; i < kNumMathCases; ++i) {
    const MathCase& c = kMathCases[i];
    if (c.completion) continue;
    INFO("gold=" << c.gold << " pred=" << c.pred);
    CHECK(math_equal(c.gold, c.pred, opts) == math_equal(c.pred, c.gold, opts));
  }
}

TEST_CASE("math verifier: ordered lists option") {
  MathVerifyOptions opts;
  opts.ordered_lists = true;
  CHECK_FALSE(math_equal("10, 4, -2", "4, 10, -2", opts));  // MATH's test_order
  CHECK(math_equal("10, 4, -2", "10,4,-2", opts));
  CHECK(math_equal("1 \\pm \\sqrt{2}", "1-\\sqrt2, 1+\\sqrt2", opts));  // \pm stays unordered
}

TEST_CASE("math verifier: tolerance is configurable") {
  MathVerifyOptions opts;
  CHECK_FALSE(math_equal("\\frac{1}{3}", "0.333", opts));
  opts.rel_tol = 2e-3;
  CHECK(math_equal("\\frac{1}{3}", "0.333", opts));
  CHECK(math_equal("\\frac{1}{3}+1", "1.333", opts));
  opts.rel_tol = 1e-4;
  CHECK_FALSE(math_equal("\\frac{1}{3}", "0.333", opts));
}

TEST_CASE("math verifier: extraction follows the configured order") {
  MathVerifyOptions opts;
  const char* text = "The answer is 7.\n<answer>8</answer>\n#### 9\n\\boxed{10}";
  CHECK(zeroth::extract_answer(text, opts).value() == "10");
  opts.extractors = {"answer_tag", "boxed"};
  CHECK(zeroth::extract_answer(text, opts).value() == "8");
  opts.extractors = {"gsm8k"};
  CHECK(zeroth::extract_answer(text, opts).value() == "9");
  opts.extractors = {"the_answer_is"};
  CHECK(zeroth::extract_answer(text, opts).value() == "7");
  opts.extractors = {"last_number"};
  CHECK(zeroth::extract_answer("it is 1,234.5 or so", opts).value() == "1,234.5");
  opts.extractors = {"boxed"};
  CHECK_FALSE(zeroth::extract_answer("no box here", opts).has_value());
  CHECK(zeroth::extract_answer("\\boxed{\\frac{1}{\\sqrt{2}}}", opts).value() ==
        "\\frac{1}{\\sqrt{2}}");
  CHECK_FALSE(zeroth::extract_answer("\\boxed{unclosed", opts).has_value());
  auto v = verify_math("nothing to see", "5", MathVerifyOptions{});
  CHECK_FALSE(v.extracted);
  CHECK_FALSE(v.correct);
}

TEST_CASE("math verifier: options are validated") {
  MathVerifyOptions opts;
  CHECK_NOTHROW(zeroth::validate_math_verify_options(opts));
  opts.extractors = {"boxed", "boxd"};
  CHECK_THROWS_AS(zeroth::validate_math_verify_options(opts), zeroth::ConfigError);
  opts = MathVerifyOptions{};
  opts.rel_tol = 0;
  CHECK_THROWS_AS(zeroth::validate_math_verify_options(opts), zeroth::ConfigError);
}

TEST_CASE("math verifier: hostile input returns 'not equal' without crashing") {
  MathVerifyOptions opts;
  std::string junk(1 << 20, 'x');
  for (size_t i = 0; i < junk.size(); i += 7) junk[i] = "{}()\\^$_"[i % 8];
  CHECK_FALSE(verify_math(junk, "5", opts).correct);
  CHECK_FALSE(math_equal("5", junk, opts));
  std::string boxed_junk = "\\boxed{" + std::string(1 << 20, '1') + "}";
  CHECK_FALSE(verify_math(boxed_junk, "1", opts).correct);

  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "{(";
  deep += "1";
  for (int i = 0; i < 5000; ++i) deep += ")}";
  CHECK_FALSE(math_equal("1", deep, opts));
  std::string deep_frac;
  for (int i = 0; i < 2000; ++i) deep_frac += "\\frac{1}{";
  deep_frac += "2";
  for (int i = 0; i < 2000; ++i) deep_frac += "}";
  CHECK_FALSE(math_equal("2", deep_frac, opts));
  std::string minus(100000, '-');
  CHECK_FALSE(math_equal("1", minus + "1", opts));

  CHECK_FALSE(math_equal("5", "10^10^10", opts));
  CHECK_FALSE(math_equal("10^{10^{10}}", "10^{10^{10}}+1", opts));
  CHECK_FALSE(math_equal("5", "2^{2^{2^{2^{2^{2}}}}}", opts));
  CHECK_FALSE(math_equal("5", "1000000!", opts));
  CHECK_FALSE(math_equal("5", "(10^{100})!", opts));
  CHECK_FALSE(math_equal("1", "\\frac{1}{0}", opts));
  CHECK_FALSE(math_equal("0", "0^{-1}", opts));
  std::string long_sum = "1";
  for (int i = 0; i < 3000; ++i) long_sum += "+1";
  CHECK_FALSE(math_equal("3001", long_sum, opts));  // over max_answer_bytes
  CHECK_FALSE(math_equal("1", std::string("\0\xff\xfe", 3), opts));
  CHECK(math_equal("5", "5", opts));  // still sane afterwards
}

TEST_CASE("math verifier: many checks run (throughput sanity, no timing asserted)") {
  MathVerifyOptions opts;
  const char* pairs[][2] = {{"72", "72"},       {"\\frac{1}{2}", "0.5"}, {"3\\sqrt{2}", "\\sqrt{18}"},
                            {"(1,2)", "(1, 2)"}, {"x^2+1", "1+x^2"},     {"\\$1,000", "1000"}};
  int equal = 0;
  for (int i = 0; i < 20000; ++i) equal += math_equal(pairs[i % 6][0], pairs[i % 6][1], opts);
  CHECK(equal == 20000);
}

// ---- gold answers of the training sets ----

namespace {

std::vector<std::string> read_answers(const std::string& path, bool gsm8k) {
  std::vector<std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    std::string a = j.at("answer").get<std::string>();
    if (gsm8k) {
      size_t p = a.rfind("#### ");
      if (p == std::string::npos) continue;
      a = a.substr(p + 5);
    }
    out.push_back(a);
  }
  return out;
}

void replace_all(std::string* s, const std::string& from, const std::string& to) {
  for (size_t p = s->find(from); p != std::string::npos; p = s->find(from, p + to.size()))
    s->replace(p, from.size(), to);
}

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::string with_commas(const std::string& digits) {
  std::string r;
  int n = static_cast<int>(digits.size());
  for (int i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) r += ',';
    r += digits[i];
  }
  return r;
}

// Equivalent rewritings of a gold answer.
std::vector<std::string> variants(const std::string& g) {
  std::vector<std::string> v;
  v.push_back(" " + g + " ");
  v.push_back("\\boxed{" + g + "}");
  v.push_back("$" + g + "$");
  std::string t = g;
  replace_all(&t, "\\frac", "\\dfrac");
  if (t != g) v.push_back(t);
  t = g;
  replace_all(&t, "\\dfrac", "\\frac");
  replace_all(&t, "\\tfrac", "\\frac");
  if (t != g) v.push_back(t);
  t = g;
  replace_all(&t, "\\left(", "(");
  replace_all(&t, "\\right)", ")");
  if (t != g) v.push_back(t);
  if (!g.empty() && g[0] == '(' && g.find("\\left") == std::string::npos) {
    t = g;
    replace_all(&t, "(", "\\left(");
    replace_all(&t, ")", "\\right)");
    v.push_back(t);
  }
  if (g == "\\frac12" || g == "\\frac{1}{2}") v.push_back("0.5");
  if (g == "\\frac{1}{4}" || g == "-\\frac{1}{4}") v.push_back(g[0] == '-' ? "-0.25" : "0.25");
  std::string d = g[0] == '-' ? g.substr(1) : g;
  if (all_digits(d) && d.size() > 3 && d[0] != '0')
    v.push_back((g[0] == '-' ? "-" : "") + with_commas(d));
  bool relation_like = false;
  for (const char* r : {"=", ",", ":", "<", ">", "\\le", "\\ge", "\\ne", "\\approx", "\\text",
                        "\\begin", "\\in"})
    relation_like = relation_like || g.find(r) != std::string::npos;
  if (!relation_like) v.push_back("x = " + g);
  return v;
}

// A different answer: the integer plus one.
bool bumped(const std::string& g, std::string* out) {
  std::string d = g[0] == '-' ? g.substr(1) : g;
  if (!all_digits(d) || d.size() > 15) return false;
  long long x = std::stoll(g);
  *out = std::to_string(x + 1);
  return true;
}

void check_dataset(const char* name, const std::string& path, bool gsm8k, double min_rate) {
  std::ifstream probe(path);
  if (!probe) {
    std::printf("SKIPPED %s gold self-consistency: %s not found\n", name, path.c_str());
    return;
  }
  std::vector<std::string> golds = read_answers(path, gsm8k);
  REQUIRE(!golds.empty());
  MathVerifyOptions opts;
  size_t self_ok = 0, var_total = 0, var_ok = 0, mism_total = 0, mism_ok = 0;
  std::vector<std::string> fails;
  size_t empty = 0;
  for (size_t i = 0; i < golds.size(); ++i) {
    const std::string& g = golds[i];
    if (g.find_first_not_of(" ") == std::string::npos) {  // a data defect, not an answer
      ++empty;
      continue;
    }
    if (math_equal(g, g, opts)) ++self_ok;
    else if (fails.size() < 10) fails.push_back("self: " + g);
    for (const std::string& v : variants(g)) {
      ++var_total;
      if (math_equal(g, v, opts)) ++var_ok;
      else if (fails.size() < 30) fails.push_back("variant: " + g + "  vs  " + v);
    }
    std::string b;
    if (bumped(g, &b)) {
      ++mism_total;
      mism_ok += !math_equal(g, b, opts);
    }
    // Against another, different gold answer.
    const std::string& other = golds[(i * 7919 + 13) % golds.size()];
    if (other != g && math_equal(other, other, opts)) {
      ++mism_total;
      bool same = math_equal(g, other, opts);
      mism_ok += !same;
      if (same && fails.size() < 40) fails.push_back("judged equal: " + g + "  vs  " + other);
    }
  }
  for (const std::string& f : fails) std::printf("  %s: %s\n", name, f.c_str());
  if (empty > 0) std::printf("%s: %zu empty gold answers skipped\n", name, empty);
  double self_rate = double(self_ok) / (golds.size() - empty);
  double var_rate = double(var_ok) / var_total;
  double mism_rate = double(mism_ok) / mism_total;
  std::printf("%s: self %zu/%zu (%.2f%%), variants %zu/%zu (%.2f%%), mismatches unequal %zu/%zu "
              "(%.2f%%)\n",
              name, self_ok, golds.size() - empty, 100 * self_rate, var_ok, var_total, 100 * var_rate,
              mism_ok, mism_total, 100 * mism_rate);
  CHECK(self_ok == golds.size() - empty);
  CHECK(var_rate >= min_rate);
  CHECK(mism_rate >= 0.995);
}

}  // namespace

TEST_CASE("math verifier: every GSM8K train gold answer verifies against its rewritings") {
  check_dataset("gsm8k", std::string(ZEROTH_SHARED_DATA_DIR) + "/gsm8k_train.jsonl", true, 1.0);
}

TEST_CASE("math verifier: every MATH train gold answer verifies against its rewritings") {
  check_dataset("math", std::string(ZEROTH_SHARED_DATA_DIR) + "/math_train.jsonl", false, 0.99);
}
