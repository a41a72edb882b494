// Native math answer verifier: extraction of a final answer from a completion and
// equivalence of two answers (R1-Zero's math reward: "is the final answer the gold one").
//
// Owns: answer extraction, LaTeX/plain-text normalisation, exact (rational) and
// numeric equivalence of expressions, equations, sets, tuples, intervals, lists,
// multiple-choice letters and matrices. Must not: throw from a check, allocate without
// bound, use std::regex, or depend on wall-clock time. Every check is bounded by the
// explicit limits in MathVerifyOptions (input length, recursion depth, node count,
// exponent size); anything over a limit is judged "not equal".
//
// Extractors (MathVerifyOptions::extractors), tried in the listed order; the first one
// that finds something wins:
//   "boxed"         content of the LAST \boxed{...} or \fbox{...} (nested braces;
//                   also the unbraced form `\boxed 5`)
//   "answer_tag"    content of the last <answer>...</answer> (an unclosed final
//                   <answer> runs to the end of the text); a \boxed{} inside it wins
//   "the_answer_is" text after the last "the answer is" / "final answer is"
//                   (case-insensitive, optional ':'), up to the end of the line or
//                   of the sentence
//   "gsm8k"         text after the last "#### " up to the end of the line
//   "last_number"   the last number in the text (not in the default list)
// Default order: boxed, answer_tag, the_answer_is, gsm8k.
//
// Equivalence semantics (math_equal), in brief:
//   * numbers compare exactly as rationals where they fit (integers, decimals,
//     fractions, mixed numbers like 3\frac12, scientific notation), otherwise
//     numerically with relative tolerance rel_tol; expressions with variables are
//     compared numerically at several deterministic pseudo-random points;
//   * %, \$, currency signs, degrees (^\circ), trailing unit words and \text{units},
//     thousands separators, \left \right \! \, and spacing are ignored;
//     28\% equals 28 (the MATH convention), not 0.28;
//   * `x = 3` equals `3` (the last bare variable on the left of a chain counts);
//     two equations are equal when one is a nonzero multiple of the other;
//     inequalities likewise with a positive multiple (x > 1 equals 1 < x);
//   * (a,b), [a,b], (a,b], ... are compared element-wise and must have the same
//     brackets; \{...\} sets and bare comma lists compare without order (unless
//     ordered_lists); unions (\cup) without order; \pm expands to two answers;
//   * pmatrix/bmatrix/array matrices compare element-wise with equal shapes;
//   * words (\text{Evelyn}) compare case-insensitively as opaque symbols.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zeroth {

struct MathVerifyOptions {
  // Extractors to try, in order (names above).
  std::vector<std::string> extractors = {"boxed", "answer_tag", "the_answer_is", "gsm8k"};
  double rel_tol = 1e-6;          // relative tolerance of numeric comparisons
  double abs_tol = 1e-9;          // absolute tolerance near zero
  bool ordered_lists = false;     // bare comma lists "1, 2, 3" compare in order
  size_t max_completion_bytes = size_t(4) << 20;  // longer completions: not extracted
  size_t max_answer_bytes = 2048;  // longer answers: not equal
  int max_depth = 48;              // recursion limit of the parsers
  int max_nodes = 1024;            // expression nodes per answer
  int max_exponent = 4096;         // |integer exponent| computed exactly; above: numeric
  int num_points = 4;              // random points for expressions with variables
};

// Throws ConfigError when `opts` names an unknown extractor or has a non-positive
// tolerance/limit. The check functions below never throw; they ignore unknown names.
void validate_math_verify_options(const MathVerifyOptions& opts);

// The final answer in `completion`, from the first extractor that finds one.
std::optional<std::string> extract_answer(std::string_view completion,
                                          const MathVerifyOptions& opts = {});

// True when the two already-extracted answers are equivalent. A \boxed{} wrapper and
// surrounding $...$ are removed from either side first. Never throws.
bool math_equal(std::string_view gold, std::string_view predicted,
                const MathVerifyOptions& opts = {});

struct MathVerdict {
  bool correct = false;           // the extracted answer equals the gold answer
  bool extracted = false;         // some extractor found an answer
  std::string extracted_answer;   // what it found (empty when none)
};

// Extracts the answer from `completion` and compares it with `gold`. Never throws.
MathVerdict verify_math(std::string_view completion, std::string_view gold,
                        const MathVerifyOptions& opts = {});

}  // namespace zeroth
