// Element types and host-side conversions (bf16 and f16 stored as uint16_t bits).
//
// Owns: the DType enum, sizes and names (the names are safetensors' dtype strings),
// and scalar conversions float <-> bf16/f16 with round-to-nearest-even (and fp8 e4m3 ->
// float). Kernels that convert in bulk live in the backends, not here.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace zeroth {

// F8E4M3 is a storage dtype only: the block-quantized weights of FP8 checkpoints
// (DeepSeek-V3/R1 on the Hub), dequantized when they are loaded (load_hf_weights). No
// backend makes tensors of it (Tensor::empty refuses it).
enum class DType : uint8_t { F32 = 0, BF16 = 1, F16 = 2, I32 = 3, I64 = 4, F8E4M3 = 5 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::I32: return 4;
    case DType::I64: return 8;
    case DType::F8E4M3: return 1;
  }
  return 0;
}

// "F32", "BF16", "F16", "I32", "I64", "F8_E4M3" (as in safetensors headers).
const char* dtype_name(DType t);
// Inverse of dtype_name; returns false for any other string.
bool dtype_from_name(const std::string& name, DType* out);

// The dtypes tensors compute in (not F8E4M3, which needs its block scales to mean anything).
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
// OCP FP8 E4M3 ("e4m3fn", safetensors F8_E4M3): 1 sign, 4 exponent bits (bias 7), 3
// mantissa bits; no infinities, S.1111.111 is NaN; largest finite 448, smallest 2^-9.
float f8e4m3_to_float(uint8_t b);
uint16_t float_to_f16(float f);  // round to nearest even, overflow to inf

}  // namespace zeroth
