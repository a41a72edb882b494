// Element types and host-side conversions (bf16 and f16 stored as uint16_t bits).
//
// Owns: the DType enum, sizes and names (the names are safetensors' dtype strings),
// and scalar conversions float <-> bf16/f16 with round-to-nearest-even. Kernels that
// convert in bulk live in the backends, not here.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace zeroth {

enum class DType : uint8_t { F32 = 0, BF16 = 1, F16 = 2, I32 = 3, I64 = 4 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::I32: return 4;
    case DType::I64: return 8;
  }
  return 0;
}

// "F32", "BF16", "F16", "I32", "I64" (as in safetensors headers).
const char* dtype_name(DType t);
// Inverse of dtype_name; returns false for any other string.
bool dtype_from_name(const std::string& name, DType* out);

inline bool dtype_is_float(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; }

struct bf16 {
  uint16_t bits;
};
struct f16 {
  uint16_t bits;
};

inline float bf16_to_float(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even; NaN stays NaN (quiet).
inline uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return uint16_t((u >> 16) | 0x0040u);
  uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return uint16_t((u + rounding) >> 16);
}

float f16_to_float(uint16_t h);
uint16_t float_to_f16(float f);  // round to nearest even, overflow to inf

}  // namespace zeroth
