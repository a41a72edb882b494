// Rational numbers on __int128 for the math verifier's exact comparisons.
//
// Owns: construction in lowest terms and the four operations, each reporting overflow
// (false) instead of wrapping. Must not: throw or allocate; callers fall back to
// numeric comparison when an operation reports overflow.
#include "reward/math_internal.h"

namespace zeroth::math_detail {
namespace {

__int128 gcd128(__int128 a, __int128 b) {
  if (a < 0) a = -a;
  if (b < 0) b = -b;
  while (b != 0) {
    __int128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

constexpr __int128 kMin128 = static_cast<__int128>(static_cast<unsigned __int128>(1) << 127);

}  // namespace

bool rat_make(__int128 num, __int128 den, Rat* out) {
  if (den == 0 || num == kMin128 || den == kMin128) return false;
  if (den < 0) {
    num = -num;
    den = -den;
  }
  __int128 g = gcd128(num, den);
  if (g > 1) {
    num /= g;
    den /= g;
  }
  out->num = num;
  out->den = den;
  return true;
}

bool rat_add(const Rat& a, const Rat& b, Rat* out) {
  __int128 g = gcd128(a.den, b.den);
  __int128 bd = b.den / g, ad = a.den / g;
  __int128 x, y, n, d;
  if (__builtin_mul_overflow(a.num, bd, &x) || __builtin_mul_overflow(b.num, ad, &y) ||
      __builtin_add_overflow(x, y, &n) || __builtin_mul_overflow(a.den, bd, &d))
    return false;
  return rat_make(n, d, out);
}

bool rat_sub(const Rat& a, const Rat& b, Rat* out) {
  if (b.num == kMin128) return false;
  Rat nb{-b.num, b.den};
  return rat_add(a, nb, out);
}

bool rat_mul(const Rat& a, const Rat& b, Rat* out) {
  __int128 g1 = gcd128(a.num, b.den), g2 = gcd128(b.num, a.den);
  if (g1 == 0) g1 = 1;
  if (g2 == 0) g2 = 1;
  __int128 n, d;
  if (__builtin_mul_overflow(a.num / g1, b.num / g2, &n) ||
      __builtin_mul_overflow(a.den / g2, b.den / g1, &d))
    return false;
  return rat_make(n, d, out);
}

bool rat_div(const Rat& a, const Rat& b, Rat* out) {
  if (b.num == 0) return false;
  Rat inv{b.den, b.num};
  if (inv.den < 0) {
    inv.num = -inv.num;
    inv.den = -inv.den;
  }
  return rat_mul(a, inv, out);
}

double rat_to_double(const Rat& a) {
  return static_cast<double>(static_cast<long double>(a.num) / static_cast<long double>(a.den));
}

}  // namespace zeroth::math_detail
