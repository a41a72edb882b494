// Helpers for the op test harness (test_ops.cpp): random inputs, uploads to any
// backend, strided views with a host mirror, float64 comparison with a tolerance.
//
// Owns: test-only plumbing shared by the op cases. Must not: compute any op's
// reference (each case in test_ops.cpp does that itself, in float64) or call a
// backend op other than the memory functions.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "zeroth/backend.h"
#include "zeroth/tensor.h"

namespace zeroth {
namespace testing {

using Rng = std::mt19937_64;
using Index = std::vector<int64_t>;

// Backends by name: "cpu" or "cuda" (device 0). The cuda one fails the test (Catch
// FAIL) when the build or the machine has no CUDA device.
std::unique_ptr<Backend> make_test_backend(const std::string& which);

// value rounded to what `dt` can hold (identity for F32; ints truncate).
double round_to(DType dt, double value);

// n values uniform in [lo, hi), already rounded to dt (integers for int dtypes).
std::vector<double> random_values(Rng& rng, int64_t n, DType dt, double lo, double hi);

// A contiguous tensor on `be` holding `values` (rounded to dt).
Tensor upload(Backend& be, const std::vector<double>& values, const Shape& shape, DType dt);
// Every element of a contiguous tensor (any dtype), as float64.
std::vector<double> download(const Tensor& t);

// Calls fn(index) for every index of `shape` in row-major order.
void for_each_index(const Shape& shape, const std::function<void(const Index&)>& fn);

// A tensor of `shape` that is a view into a larger parent: each dimension i is
// padded by pads[i] elements (the view starts at element 1 of a padded dimension),
// and with `interleave` every element is followed by a gap, so the last dimension
// has stride 2. host holds the parent's values.
struct Strided {
  Tensor parent, view;
  std::vector<double> host;  // (parent.numel()) values of the parent
  Shape strides;             // the view's strides into the parent (elements)
  int64_t offset = 0;        // the view's first element in the parent
  double at(const Index& idx) const;
  int64_t flat(const Index& idx) const;  // position of view element idx in host
};

// The view's elements (row-major), read back through the parent.
std::vector<double> download_view(const Strided& s);

// pads empty: a plain contiguous tensor. `fill` (when set) gives every parent value
// instead of random ones (e.g. NaN for outputs that must be overwritten).
Strided make_strided(Backend& be, Rng& rng, const Shape& shape, DType dt, const Shape& pads,
                     bool interleave, double lo, double hi);
Strided make_filled(Backend& be, const Shape& shape, DType dt, const Shape& pads,
                    bool interleave, double fill);

// The stated tolerance for an output of dtype dt: max |got - ref| over the
// reference's scale (max |ref|, or 1 when it is 0). F32 1e-5, BF16 1e-2, F16 2e-3,
// ints exact.
double tolerance(DType dt);

// Checks got against ref with the normalised max error above (and reports NMSE);
// NaN in ref demands NaN in got. `what` names the case in the failure message.
void expect_close(const std::vector<double>& got, const std::vector<double>& ref, double tol,
                  const std::string& what);

// Checks that every parent element outside the view still has its initial value
// (bitwise for NaN), after the op wrote into s.view.
void expect_outside_unchanged(const Strided& s, const std::string& what);

std::string dt_str(DType dt);  // "f32", "bf16", ...

}  // namespace testing
}  // namespace zeroth

// Registers `fn(Backend&)` twice: on the CPU (tags "[cpu]" + tags) and, hidden, on CUDA
// ("[.cuda]" + tags; the ops_cuda / op_grads_cuda CTest entries run those on a GPU).
// Include <catch2/catch.hpp> before using it.
#define ZT_BACKEND_TEST(name, tags, fn)                          \
  TEST_CASE(name, "[cpu]" tags) {                                \
    auto be = ::zeroth::testing::make_test_backend("cpu");       \
    fn(*be);                                                     \
  }                                                              \
  TEST_CASE(name " (cuda)", "[.cuda]" tags) {                    \
    auto be = ::zeroth::testing::make_test_backend("cuda");      \
    fn(*be);                                                     \
  }
