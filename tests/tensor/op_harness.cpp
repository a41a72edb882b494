// op_harness.h: random inputs, uploads, strided views and the tolerance check used
// by test_ops.cpp.
//
// Owns: test plumbing only. Must not: run backend ops other than memory copies.
#include "op_harness.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "zeroth/error.h"
#include "zeroth/gpu_probe.h"
#ifdef ZEROTH_HAVE_CUDA
#include "zeroth/cuda_backend.h"
#endif

namespace zeroth {
namespace testing {

std::unique_ptr<Backend> make_test_backend(const std::string& which) {
  if (which == "cpu") return make_cpu_backend(0);
  REQUIRE(which == "cuda");
#ifdef ZEROTH_HAVE_CUDA
  std::string why;
  if (!gpu_available(&why)) FAIL("CUDA op tests need a GPU: " << why);
  return make_cuda_backend(0);
#else
  FAIL("CUDA op tests need a build with ZEROTH_CUDA=ON");
  return nullptr;
#endif
}

std::string dt_str(DType dt) {
  std::string s = dtype_name(dt);
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

double round_to(DType dt, double v) {
  switch (dt) {
    case DType::F32: return double(float(v));
    case DType::BF16: return double(bf16_to_float(float_to_bf16(float(v))));
    case DType::F16: return double(f16_to_float(float_to_f16(float(v))));
    case DType::I32: return double(int32_t(v));
    case DType::I64: return double(int64_t(v));
    case DType::F8E4M3: break;  // storage only: no op takes it
  }
  return v;
}

std::vector<double> random_values(Rng& rng, int64_t n, DType dt, double lo, double hi) {
  std::vector<double> v(static_cast<size_t>(n));
  if (dtype_is_float(dt)) {
    std::uniform_real_distribution<double> dist(lo, hi);
    for (double& x : v) x = round_to(dt, dist(rng));
  } else {
    std::uniform_int_distribution<int64_t> dist(int64_t(lo), int64_t(hi) - 1);
    for (double& x : v) x = double(dist(rng));
  }
  return v;
}

Tensor upload(Backend& be, const std::vector<double>& values, const Shape& shape, DType dt) {
  REQUIRE(int64_t(values.size()) == shape_numel(shape));
  Tensor t = Tensor::empty(be, shape, dt);
  std::vector<unsigned char> bytes(t.nbytes());
  for (size_t i = 0; i < values.size(); ++i) {
    unsigned char* p = bytes.data() + i * t.element_size();
    float f = float(values[i]);
    uint16_t h;
    switch (dt) {
      case DType::F32: std::memcpy(p, &f, 4); break;
      case DType::BF16: h = float_to_bf16(f); std::memcpy(p, &h, 2); break;
      case DType::F16: h = float_to_f16(f); std::memcpy(p, &h, 2); break;
      case DType::I32: { int32_t x = int32_t(values[i]); std::memcpy(p, &x, 4); break; }
      case DType::I64: { int64_t x = int64_t(values[i]); std::memcpy(p, &x, 8); break; }
      case DType::F8E4M3: FAIL("F8_E4M3 is a storage dtype only");
    }
  }
  t.copy_from_host(bytes.data(), bytes.size());
  return t;
}

std::vector<double> download(const Tensor& t) {
  std::vector<unsigned char> bytes(t.nbytes());
  t.copy_to_host(bytes.data(), bytes.size());
  std::vector<double> out(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    const unsigned char* p = bytes.data() + i * t.element_size();
    float f;
    uint16_t h;
    int32_t i32;
    int64_t i64;
    switch (t.dtype()) {
      case DType::F32: std::memcpy(&f, p, 4); out[i] = f; break;
      case DType::BF16: std::memcpy(&h, p, 2); out[i] = bf16_to_float(h); break;
      case DType::F16: std::memcpy(&h, p, 2); out[i] = f16_to_float(h); break;
      case DType::I32: std::memcpy(&i32, p, 4); out[i] = double(i32); break;
      case DType::I64: std::memcpy(&i64, p, 8); out[i] = double(i64); break;
      case DType::F8E4M3: FAIL("F8_E4M3 is a storage dtype only");
    }
  }
  return out;
}

void for_each_index(const Shape& shape, const std::function<void(const Index&)>& fn) {
  if (shape_numel(shape) == 0) return;
  Index idx(shape.size(), 0);
  while (true) {
    fn(idx);
    int d = int(shape.size()) - 1;
    while (d >= 0 && ++idx[size_t(d)] == shape[size_t(d)]) idx[size_t(d--)] = 0;
    if (d < 0) return;
  }
}

int64_t Strided::flat(const Index& idx) const {
  int64_t p = offset;
  for (size_t i = 0; i < idx.size(); ++i) p += idx[i] * strides[i];
  return p;
}

double Strided::at(const Index& idx) const { return host[size_t(flat(idx))]; }

static Strided build_strided(Backend& be, const Shape& shape, DType dt, const Shape& pads,
                             bool interleave, const std::function<std::vector<double>(int64_t)>& values) {
  REQUIRE((pads.empty() || pads.size() == shape.size()));
  Shape pshape = shape;
  for (size_t i = 0; i < pads.size(); ++i) pshape[i] += pads[i];
  if (interleave) pshape.push_back(2);
  Strided s;
  s.host = values(shape_numel(pshape));
  s.parent = upload(be, s.host, pshape, dt);
  s.view = interleave ? s.parent.select(-1, 1) : s.parent;
  Shape pstrides = contiguous_strides(pshape);
  s.offset = interleave ? 1 : 0;
  for (size_t i = 0; i < pads.size(); ++i) {
    if (pads[i] == 0) continue;
    s.view = s.view.narrow(int(i), 1, shape[i]);
    s.offset += pstrides[i];
  }
  s.strides = s.view.strides();
  REQUIRE(s.view.shape() == shape);
  if (s.view.numel() > 0) {
    // narrow/select must land exactly where the host mirror says.
    REQUIRE(static_cast<char*>(s.view.data_ptr()) - static_cast<char*>(s.parent.data_ptr()) ==
            s.offset * int64_t(dtype_size(dt)));
  }
  return s;
}

Strided make_strided(Backend& be, Rng& rng, const Shape& shape, DType dt, const Shape& pads,
                     bool interleave, double lo, double hi) {
  return build_strided(be, shape, dt, pads, interleave,
                       [&](int64_t n) { return random_values(rng, n, dt, lo, hi); });
}

Strided make_filled(Backend& be, const Shape& shape, DType dt, const Shape& pads,
                    bool interleave, double fill) {
  return build_strided(be, shape, dt, pads, interleave, [&](int64_t n) {
    return std::vector<double>(static_cast<size_t>(n), round_to(dt, fill));
  });
}

std::vector<double> download_view(const Strided& s) {
  std::vector<double> parent = download(s.parent);
  std::vector<double> out;
  out.reserve(static_cast<size_t>(s.view.numel()));
  for_each_index(s.view.shape(), [&](const Index& idx) { out.push_back(parent[size_t(s.flat(idx))]); });
  return out;
}

double tolerance(DType dt) {
  switch (dt) {
    case DType::F32: return 1e-5;
    case DType::BF16: return 1e-2;
    case DType::F16: return 2e-3;
    default: return 0.0;
  }
}

void expect_close(const std::vector<double>& got, const std::vector<double>& ref, double tol,
                  const std::string& what) {
  REQUIRE(got.size() == ref.size());
  double scale = 0.0;
  for (double r : ref)
    if (std::isfinite(r)) scale = std::max(scale, std::fabs(r));
  if (scale == 0.0) scale = 1.0;
  double worst = 0.0, num = 0.0, den = 0.0;
  size_t worst_i = 0;
  bool special_ok = true;
  std::string special;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(ref[i])) {
      bool same = std::isnan(ref[i]) ? std::isnan(got[i]) : got[i] == ref[i];
      if (!same && special_ok) {
        special_ok = false;
        special = strformat(" element %zu: got %g, expected %g;", i, got[i], ref[i]);
      }
      continue;
    }
    double err = std::fabs(got[i] - ref[i]);
    if (!(err <= worst)) {  // NaN in got counts as the worst
      worst = std::isnan(err) ? INFINITY : err;
      worst_i = i;
    }
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  double rel = worst / scale;
  INFO(what << ":" << special << " max|err|/scale = " << rel << " (tolerance " << tol
            << ", worst element " << worst_i << ": got "
            << (got.empty() ? 0.0 : got[worst_i]) << ", expected "
            << (ref.empty() ? 0.0 : ref[worst_i]) << ", scale " << scale
            << "), NMSE = " << (den > 0 ? num / den : num));
  CHECK((special_ok && rel <= tol));
}

void expect_outside_unchanged(const Strided& s, const std::string& what) {
  std::vector<double> now = download(s.parent);
  std::vector<char> inside(now.size(), 0);
  for_each_index(s.view.shape(), [&](const Index& idx) { inside[size_t(s.flat(idx))] = 1; });
  size_t changed = 0, first = 0;
  for (size_t i = 0; i < now.size(); ++i) {
    if (inside[i]) continue;
    bool same = std::isnan(s.host[i]) ? std::isnan(now[i]) : now[i] == s.host[i];
    if (!same && changed++ == 0) first = i;
  }
  INFO(what << ": " << changed << " parent elements outside the view changed (first at "
            << first << ")");
  CHECK(changed == 0);
}

}  // namespace testing
}  // namespace zeroth
