// libFuzzer target for the math verifier (math_verify.h): the input is split at its
// first newline into a gold answer and a completion; the verifier must never crash,
// hang, read out of bounds or throw, whatever the bytes. Built only with
// -DZEROTH_FUZZ=ON and clang (tests/fuzz/CMakeLists.txt; docs/rewards.md says how to
// run it). Must not: assert anything about the verdicts themselves (the unit tests do).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "zeroth/math_verify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nl = in.find('\n');
  std::string_view gold = nl == std::string_view::npos ? in : in.substr(0, nl);
  std::string_view completion = nl == std::string_view::npos ? in : in.substr(nl + 1);
  static const zeroth::MathVerifyOptions opts_default;
  static const zeroth::MathVerifyOptions opts_all = [] {
    zeroth::MathVerifyOptions o;
    o.extractors = {"boxed", "answer_tag", "the_answer_is", "gsm8k", "last_number"};
    o.ordered_lists = true;
    return o;
  }();
  try {
    zeroth::MathVerdict v = zeroth::verify_math(completion, gold, opts_all);
    if (v.extracted && v.extracted_answer.size() > completion.size() + 16) std::abort();  // extraction grew text
    (void)zeroth::extract_answer(completion, opts_default);
    (void)zeroth::math_equal(gold, completion, opts_default);
    (void)zeroth::math_equal(completion, gold, opts_all);
    (void)zeroth::math_equal(gold, gold, opts_default);
  } catch (...) {
    std::abort();  // the verifier promises never to throw
  }
  return 0;
}
