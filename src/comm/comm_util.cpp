// comm_util.h: argument checks and BF16/F16 <-> f32 host conversions.
#include "comm/comm_util.h"

#include <cstring>

#include "zeroth/dtype.h"
#include "zeroth/error.h"

namespace zeroth {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Avg: return "avg";
    case ReduceOp::Max: return "max";
  }
  return "?";
}

namespace comm_detail {

void check_tensor(const Tensor& x, Device dev, const char* what) {
  ZT_ASSERT(x.defined(), "%s: tensor is undefined", what);
  ZT_ASSERT(x.is_contiguous(), "%s: expected a contiguous tensor, found %s (strides %s)", what,
            x.str().c_str(), shape_str(x.strides()).c_str());
  ZT_ASSERT(x.device() == dev, "%s: expected a tensor on %s, found %s", what, dev.str().c_str(),
            x.str().c_str());
}

void check_op(ReduceOp op, DType dtype, const char* what) {
  ZT_ASSERT(op != ReduceOp::Avg || dtype_is_float(dtype),
            "%s: ReduceOp avg needs a float dtype, found %s", what, dtype_name(dtype));
}

void check_no_overlap(const Tensor& a, const Tensor& b, const char* what) {
  const char* pa = static_cast<const char*>(a.data_ptr());
  const char* pb = static_cast<const char*>(b.data_ptr());
  bool disjoint = pa + a.nbytes() <= pb || pb + b.nbytes() <= pa;
  ZT_ASSERT(disjoint || a.nbytes() == 0 || b.nbytes() == 0,
            "%s: input and output must not overlap (%s, %s)", what, a.str().c_str(),
            b.str().c_str());
}

void check_counts(const std::vector<int64_t>& counts, int size, int64_t numel, const char* which) {
  ZT_ASSERT(int64_t(counts.size()) == size, "all_to_all_v: %s has %zu entries, expected %d (one per rank)",
            which, counts.size(), size);
  int64_t total = 0;
  for (size_t p = 0; p < counts.size(); ++p) {
    ZT_ASSERT(counts[p] >= 0, "all_to_all_v: %s[%zu] = %lld is negative", which, p,
              (long long)counts[p]);
    total += counts[p];
  }
  ZT_ASSERT(total == numel, "all_to_all_v: %s sum to %lld elements, but the tensor has %lld", which,
            (long long)total, (long long)numel);
}

std::vector<int64_t> chunk_offsets(const std::vector<int64_t>& counts) {
  std::vector<int64_t> off(counts.size(), 0);
  for (size_t p = 1; p < counts.size(); ++p) off[p] = off[p - 1] + counts[p - 1];
  return off;
}

void to_f32(const void* src, DType dtype, float* dst, size_t n) {
  const uint16_t* h = static_cast<const uint16_t*>(src);
  switch (dtype) {
    case DType::F32: std::memcpy(dst, src, n * sizeof(float)); return;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_float(h[i]);
      return;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_float(h[i]);
      return;
    default: break;
  }
  ZT_ASSERT(false, "to_f32: %s is not a float dtype", dtype_name(dtype));
}

void from_f32(const float* src, DType dtype, void* dst, size_t n) {
  uint16_t* h = static_cast<uint16_t*>(dst);
  switch (dtype) {
    case DType::F32: std::memcpy(dst, src, n * sizeof(float)); return;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) h[i] = float_to_bf16(src[i]);
      return;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) h[i] = float_to_f16(src[i]);
      return;
    default: break;
  }
  ZT_ASSERT(false, "from_f32: %s is not a float dtype", dtype_name(dtype));
}

}  // namespace comm_detail
}  // namespace zeroth
