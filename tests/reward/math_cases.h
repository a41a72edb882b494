// Data table of gold/prediction/verdict cases for the math verifier tests.
//
// Owns: the case list (math_cases.cpp). Must not: contain test logic.
#pragma once

struct MathCase {
  const char* gold;
  const char* pred;     // an extracted answer, or a completion when `completion`
  bool expected;
  bool completion;      // pred is a whole completion (goes through verify_math)
  const char* source;   // where the case comes from
};

extern const MathCase kMathCases[];
extern const int kNumMathCases;
