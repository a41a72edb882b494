// CpuBackend::copy: dst = src elementwise for any strides (up to 6 dimensions),
// converting dtype (float <-> float, int <-> int, int -> float).
//
// Owns: stride coalescing and the strided gather/scatter loops. Work is cut into
// (row, chunk of the last dimension) items spread over OpenMP threads.
// Must not: reorder or combine values; every output element is one converted input.
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "tensor/cpu_backend.h"
#include "zeroth/error.h"

namespace zeroth {
namespace {

constexpr int kMaxDims = 6;

// Reads n elements spaced `stride` apart and converts them to f32.
void gather_f32(const char* p, DType t, int64_t stride, int64_t n, float* out) {
  if (stride == 1 && dtype_is_float(t)) return cpu::to_f32(p, t, n, out);
  switch (t) {
    case DType::F32: {
      const float* s = reinterpret_cast<const float*>(p);
      for (int64_t i = 0; i < n; ++i) out[i] = s[i * stride];
      return;
    }
    case DType::BF16: {
      const uint16_t* s = reinterpret_cast<const uint16_t*>(p);
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_float(s[i * stride]);
      return;
    }
    case DType::F16: {
      const uint16_t* s = reinterpret_cast<const uint16_t*>(p);
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_float(s[i * stride]);
      return;
    }
    case DType::I32: {
      const int32_t* s = reinterpret_cast<const int32_t*>(p);
      for (int64_t i = 0; i < n; ++i) out[i] = float(s[i * stride]);
      return;
    }
    case DType::I64: {
      const int64_t* s = reinterpret_cast<const int64_t*>(p);
      for (int64_t i = 0; i < n; ++i) out[i] = float(s[i * stride]);
      return;
    }
    case DType::F8E4M3: ZT_ASSERT(false, "copy: F8_E4M3 is a storage dtype only");
  }
}

void scatter_f32(const float* in, int64_t n, char* p, DType t, int64_t stride) {
  if (stride == 1) return cpu::from_f32(in, t, n, p);
  switch (t) {
    case DType::F32: {
      float* d = reinterpret_cast<float*>(p);
      for (int64_t i = 0; i < n; ++i) d[i * stride] = in[i];
      return;
    }
    case DType::BF16: {
      uint16_t* d = reinterpret_cast<uint16_t*>(p);
      for (int64_t i = 0; i < n; ++i) d[i * stride] = float_to_bf16(in[i]);
      return;
    }
    case DType::F16: {
      uint16_t* d = reinterpret_cast<uint16_t*>(p);
      for (int64_t i = 0; i < n; ++i) d[i * stride] = float_to_f16(in[i]);
      return;
    }
    default: ZT_ASSERT(false, "copy: cannot write floats into %s", dtype_name(t));
  }
}

void gather_i64(const char* p, DType t, int64_t stride, int64_t n, int64_t* out) {
  if (t == DType::I32) {
    const int32_t* s = reinterpret_cast<const int32_t*>(p);
    for (int64_t i = 0; i < n; ++i) out[i] = s[i * stride];
  } else {
    const int64_t* s = reinterpret_cast<const int64_t*>(p);
    for (int64_t i = 0; i < n; ++i) out[i] = s[i * stride];
  }
}

void scatter_i64(const int64_t* in, int64_t n, char* p, DType t, int64_t stride) {
  if (t == DType::I32) {
    int32_t* d = reinterpret_cast<int32_t*>(p);
    for (int64_t i = 0; i < n; ++i) {
      ZT_ASSERT(in[i] >= std::numeric_limits<int32_t>::min() &&
                    in[i] <= std::numeric_limits<int32_t>::max(),
                "copy: I64 value %lld does not fit in I32", (long long)in[i]);
      d[i * stride] = int32_t(in[i]);
    }
  } else {
    int64_t* d = reinterpret_cast<int64_t*>(p);
    for (int64_t i = 0; i < n; ++i) d[i * stride] = in[i];
  }
}

template <typename T>
void copy_same(const char* s, int64_t ss, char* d, int64_t ds, int64_t n) {
  const T* src = reinterpret_cast<const T*>(s);
  T* dst = reinterpret_cast<T*>(d);
  if (ss == 1 && ds == 1) {
    std::memcpy(dst, src, size_t(n) * sizeof(T));
    return;
  }
  for (int64_t i = 0; i < n; ++i) dst[i * ds] = src[i * ss];
}

void copy_same_dtype(const char* s, int64_t ss, char* d, int64_t ds, int64_t n, size_t elem) {
  switch (elem) {
    case 2: return copy_same<uint16_t>(s, ss, d, ds, n);
    case 4: return copy_same<uint32_t>(s, ss, d, ds, n);
    case 8: return copy_same<uint64_t>(s, ss, d, ds, n);
    default: ZT_ASSERT(false, "copy: unexpected element size %zu", elem);
  }
}

// Dimensions after dropping size-1 ones and merging neighbours that are contiguous
// in both tensors. dims[ndim-1] is the innermost.
struct Layout {
  int ndim = 0;
  int64_t size[kMaxDims] = {};
  int64_t src_stride[kMaxDims] = {};
  int64_t dst_stride[kMaxDims] = {};
};

Layout coalesce(const Tensor& src, const Tensor& dst) {
  Layout l;
  for (int i = 0; i < src.dim(); ++i) {
    if (src.size(i) == 1) continue;
    if (l.ndim > 0) {
      int j = l.ndim - 1;
      if (l.src_stride[j] == src.stride(i) * src.size(i) &&
          l.dst_stride[j] == dst.stride(i) * src.size(i)) {
        l.size[j] *= src.size(i);
        l.src_stride[j] = src.stride(i);
        l.dst_stride[j] = dst.stride(i);
        continue;
      }
    }
    l.size[l.ndim] = src.size(i);
    l.src_stride[l.ndim] = src.stride(i);
    l.dst_stride[l.ndim] = dst.stride(i);
    ++l.ndim;
  }
  if (l.ndim == 0) {  // a single element
    l.ndim = 1;
    l.size[0] = 1;
    l.src_stride[0] = l.dst_stride[0] = 1;
  }
  return l;
}

}  // namespace

void CpuBackend::copy(const Tensor& src, Tensor& dst) {
  cpu::check_cpu(src, "copy", "src");
  cpu::check_cpu(dst, "copy", "dst");
  cpu::check_same_shape(src, dst, "copy");
  ZT_ASSERT(src.dim() <= kMaxDims, "copy: %s has more than %d dimensions", src.str().c_str(),
            kMaxDims);
  const DType st = src.dtype(), dt = dst.dtype();
  const bool same = st == dt;
  const bool to_float = dtype_is_float(dt);
  ZT_ASSERT(same || to_float || !dtype_is_float(st), "copy: cannot convert %s to %s",
            src.str().c_str(), dst.str().c_str());
  if (src.numel() == 0) return;

  const Layout l = coalesce(src, dst);
  const int inner = l.ndim - 1;
  const int64_t len = l.size[inner];
  int64_t rows = 1;
  for (int i = 0; i < inner; ++i) rows *= l.size[i];
  const int64_t chunks = (len + cpu::kBlock - 1) / cpu::kBlock;
  const char* sbase = static_cast<const char*>(src.data_ptr());
  char* dbase = static_cast<char*>(dst.data_ptr());
  const size_t se = dtype_size(st), de = dtype_size(dt);

  // Blocks of whole items holding about kBlock elements each.
  const int64_t items_per_block = std::max<int64_t>(1, cpu::kBlock / std::min(len, cpu::kBlock));
  cpu::parallel_blocks(threads_, rows * chunks, items_per_block, [&](int64_t b, int64_t e) {
    std::vector<float> fbuf;
    std::vector<int64_t> ibuf;
    for (int64_t item = b; item < e; ++item) {
      int64_t row = item / chunks, chunk = item % chunks;
      int64_t so = 0, dso = 0, r = row;
      for (int i = inner - 1; i >= 0; --i) {
        int64_t idx = r % l.size[i];
        r /= l.size[i];
        so += idx * l.src_stride[i];
        dso += idx * l.dst_stride[i];
      }
      int64_t begin = chunk * cpu::kBlock, n = std::min(len - begin, cpu::kBlock);
      const char* sp = sbase + size_t(so + begin * l.src_stride[inner]) * se;
      char* dp = dbase + size_t(dso + begin * l.dst_stride[inner]) * de;
      if (same) {
        copy_same_dtype(sp, l.src_stride[inner], dp, l.dst_stride[inner], n, se);
      } else if (to_float) {
        fbuf.resize(size_t(n));
        gather_f32(sp, st, l.src_stride[inner], n, fbuf.data());
        scatter_f32(fbuf.data(), n, dp, dt, l.dst_stride[inner]);
      } else {
        ibuf.resize(size_t(n));
        gather_i64(sp, st, l.src_stride[inner], n, ibuf.data());
        scatter_i64(ibuf.data(), n, dp, dt, l.dst_stride[inner]);
      }
    }
  });
}

}  // namespace zeroth
