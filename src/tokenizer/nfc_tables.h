// Unicode tables for NFC normalization, generated into nfc_tables.cpp by
// scripts/tokenizer-golden/gen_nfc_tables.py. Data only; no code lives here.
#pragma once

#include <cstddef>
#include <cstdint>

namespace zeroth {
namespace tok {

struct CccRange {       // code points first..last have canonical combining class ccc
  uint32_t first, last;
  uint8_t ccc;
};
struct QcRange {        // code points first..last have NFC_Quick_Check No or Maybe
  uint32_t first, last;
};
struct Decomposition {  // canonical, one level: cp -> a (+ b when b != 0)
  uint32_t cp, a, b;
};
struct Composition {    // primary composite: a + b -> composite
  uint32_t a, b, composite;
};

extern const char* const kNfcUnicodeVersion;
extern const CccRange kCccRanges[];          // sorted by first
extern const size_t kCccRangeCount;
extern const QcRange kNfcQcNotYes[];         // sorted by first
extern const size_t kNfcQcNotYesCount;
extern const Decomposition kDecompositions[];
extern const size_t kDecompositionCount;
extern const Composition kCompositions[];
extern const size_t kCompositionCount;

}  // namespace tok
}  // namespace zeroth
