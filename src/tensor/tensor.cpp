// tensor.h: Tensor bookkeeping — shapes, strides, views, typed access, host copies.
//
// Owns: everything declared in include/zeroth/tensor.h. Memory comes from and goes
// back to the Backend that made it (Storage's destructor).
// Must not: compute on tensor data (ops live on a Backend); the only data movement
// here is the synchronous host copy the header promises.
#include "zeroth/tensor.h"

#include <cctype>
#include <cstring>
#include <utility>

#include "zeroth/backend.h"
#include "zeroth/error.h"

namespace zeroth {

Storage::~Storage() {
  if (backend != nullptr && data != nullptr) backend->deallocate(data);
}

std::string Device::str() const {
  if (type == DeviceType::CPU) return "cpu";
  return strformat("cuda:%d", index);
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t st = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = st;
    st *= shape[i] > 0 ? shape[i] : 1;
  }
  return strides;
}

static void check_shape(const Shape& shape) {
  for (int64_t d : shape) ZT_ASSERT(d >= 0, "negative dimension in shape %s", shape_str(shape).c_str());
}

Tensor Tensor::empty(Backend& be, const Shape& shape, DType dtype) {
  check_shape(shape);
  ZT_ASSERT(dtype != DType::F8E4M3, "Tensor::empty: F8_E4M3 is a storage dtype only (dequantize it on load)");
  Tensor t;
  t.storage_ = std::make_shared<Storage>();
  t.storage_->bytes = size_t(shape_numel(shape)) * dtype_size(dtype);
  t.storage_->device = be.device();
  t.storage_->backend = &be;
  if (t.storage_->bytes > 0) {  // an empty tensor owns no memory (data stays null)
    t.storage_->data = be.allocate(t.storage_->bytes);
    ZT_ASSERT(t.storage_->data != nullptr, "%s: allocation of %zu bytes returned null",
              be.name().c_str(), t.storage_->bytes);
  }
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::zeros(Backend& be, const Shape& shape, DType dtype) {
  Tensor t = empty(be, shape, dtype);
  be.fill(t, 0.0);
  return t;
}

Tensor Tensor::view_of(void* data, const Shape& shape, DType dtype, Device device) {
  check_shape(shape);
  ZT_ASSERT(data != nullptr || shape_numel(shape) == 0, "view_of: null data for shape %s",
            shape_str(shape).c_str());
  Tensor t;
  t.storage_ = std::make_shared<Storage>();
  t.storage_->data = data;
  t.storage_->bytes = size_t(shape_numel(shape)) * dtype_size(dtype);
  t.storage_->device = device;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

Device Tensor::device() const {
  ZT_ASSERT(defined(), "device() of an undefined tensor");
  return storage_->device;
}

Backend* Tensor::backend() const {
  ZT_ASSERT(defined(), "backend() of an undefined tensor");
  return storage_->backend;
}

static int normalise_dim(int d, int ndim, const char* what) {
  int nd = d < 0 ? d + ndim : d;
  ZT_ASSERT(nd >= 0 && nd < ndim, "%s: dimension %d out of range for a %d-D tensor", what, d, ndim);
  return nd;
}

int64_t Tensor::size(int d) const { return shape_[size_t(normalise_dim(d, dim(), "size"))]; }

int64_t Tensor::stride(int d) const { return strides_[size_t(normalise_dim(d, dim(), "stride"))]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] == 1) continue;  // a size-1 dimension's stride never matters
    if (shape_[i] == 0) return true;
    if (strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

void* Tensor::data_ptr() const {
  ZT_ASSERT(defined(), "data_ptr() of an undefined tensor");
  if (storage_->data == nullptr) return nullptr;
  return static_cast<char*>(storage_->data) + offset_;
}

template <typename T>
struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::F32; };
template <> struct DTypeOf<bf16> { static constexpr DType value = DType::BF16; };
template <> struct DTypeOf<f16> { static constexpr DType value = DType::F16; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::I32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::I64; };

template <typename T>
T* Tensor::data() const {
  ZT_ASSERT(dtype_ == DTypeOf<T>::value, "data<%s>() on tensor %s", dtype_name(DTypeOf<T>::value),
            str().c_str());
  return static_cast<T*>(data_ptr());
}

template float* Tensor::data<float>() const;
template bf16* Tensor::data<bf16>() const;
template f16* Tensor::data<f16>() const;
template int32_t* Tensor::data<int32_t>() const;
template int64_t* Tensor::data<int64_t>() const;

Tensor Tensor::view(const Shape& shape) const {
  ZT_ASSERT(defined(), "view() of an undefined tensor");
  ZT_ASSERT(is_contiguous(), "view(%s) of non-contiguous tensor %s (strides %s)",
            shape_str(shape).c_str(), str().c_str(), shape_str(strides_).c_str());
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      ZT_ASSERT(infer < 0, "view(%s): more than one -1", shape_str(shape).c_str());
      infer = int(i);
    } else {
      ZT_ASSERT(s[i] >= 0, "view(%s): negative dimension", shape_str(shape).c_str());
      known *= s[i];
    }
  }
  if (infer >= 0) {
    ZT_ASSERT(known > 0 && numel() % known == 0, "view(%s) of %s: cannot infer the -1 dimension",
              shape_str(shape).c_str(), str().c_str());
    s[size_t(infer)] = numel() / known;
  }
  ZT_ASSERT(shape_numel(s) == numel(), "view(%s) of %s: element count %lld != %lld",
            shape_str(shape).c_str(), str().c_str(), (long long)shape_numel(s), (long long)numel());
  Tensor t = *this;
  t.shape_ = s;
  t.strides_ = contiguous_strides(s);
  return t;
}

Tensor Tensor::narrow(int d, int64_t start, int64_t length) const {
  ZT_ASSERT(defined(), "narrow() of an undefined tensor");
  int nd = normalise_dim(d, dim(), "narrow");
  int64_t n = shape_[size_t(nd)];
  ZT_ASSERT(start >= 0 && length >= 0 && start + length <= n,
            "narrow(dim %d, start %lld, length %lld) of %s: out of range [0, %lld)", d,
            (long long)start, (long long)length, str().c_str(), (long long)n);
  Tensor t = *this;
  t.shape_[size_t(nd)] = length;
  if (length > 0) t.offset_ += size_t(start * strides_[size_t(nd)]) * dtype_size(dtype_);
  return t;
}

Tensor Tensor::select(int d, int64_t i) const {
  ZT_ASSERT(defined(), "select() of an undefined tensor");
  int nd = normalise_dim(d, dim(), "select");
  int64_t n = shape_[size_t(nd)];
  ZT_ASSERT(i >= 0 && i < n, "select(dim %d, index %lld) of %s: out of range [0, %lld)", d,
            (long long)i, str().c_str(), (long long)n);
  Tensor t = *this;
  t.offset_ += size_t(i * strides_[size_t(nd)]) * dtype_size(dtype_);
  t.shape_.erase(t.shape_.begin() + nd);
  t.strides_.erase(t.strides_.begin() + nd);
  return t;
}

Tensor Tensor::transpose(int d0, int d1) const {
  ZT_ASSERT(defined(), "transpose() of an undefined tensor");
  const int a = normalise_dim(d0, dim(), "transpose"), b = normalise_dim(d1, dim(), "transpose");
  Tensor t = *this;
  std::swap(t.shape_[size_t(a)], t.shape_[size_t(b)]);
  std::swap(t.strides_[size_t(a)], t.strides_[size_t(b)]);
  return t;
}

std::string Tensor::str() const {
  if (!defined()) return "undefined";
  std::string name = dtype_name(dtype_);
  for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
  return name + shape_str(shape_) + " " + storage_->device.str();
}

void Tensor::copy_from_host(const void* src, size_t bytes) {
  ZT_ASSERT(defined(), "copy_from_host into an undefined tensor");
  ZT_ASSERT(is_contiguous(), "copy_from_host into non-contiguous tensor %s", str().c_str());
  ZT_ASSERT(bytes == nbytes(), "copy_from_host: %zu bytes into %s (%zu bytes)", bytes,
            str().c_str(), nbytes());
  if (bytes == 0) return;
  if (storage_->backend != nullptr) {
    storage_->backend->copy_from_host(data_ptr(), src, bytes);
  } else {
    ZT_ASSERT(storage_->device.is_cpu(),
              "copy_from_host into %s: a foreign-memory view on a device has no backend to copy with",
              str().c_str());
    std::memcpy(data_ptr(), src, bytes);
  }
}

void Tensor::copy_to_host(void* dst, size_t bytes) const {
  ZT_ASSERT(defined(), "copy_to_host from an undefined tensor");
  ZT_ASSERT(is_contiguous(), "copy_to_host from non-contiguous tensor %s", str().c_str());
  ZT_ASSERT(bytes == nbytes(), "copy_to_host: %zu bytes from %s (%zu bytes)", bytes,
            str().c_str(), nbytes());
  if (bytes == 0) return;
  if (storage_->backend != nullptr) {
    storage_->backend->copy_to_host(dst, data_ptr(), bytes);
  } else {
    ZT_ASSERT(storage_->device.is_cpu(),
              "copy_to_host from %s: a foreign-memory view on a device has no backend to copy with",
              str().c_str());
    std::memcpy(dst, data_ptr(), bytes);
  }
}

std::vector<float> Tensor::to_float_vector() const {
  ZT_ASSERT(defined() && dtype_is_float(dtype_), "to_float_vector of %s: needs a float dtype",
            str().c_str());
  size_t n = size_t(numel());
  std::vector<float> out(n);
  if (dtype_ == DType::F32) {
    copy_to_host(out.data(), nbytes());
    return out;
  }
  std::vector<uint16_t> bits(n);
  copy_to_host(bits.data(), nbytes());
  for (size_t i = 0; i < n; ++i)
    out[i] = dtype_ == DType::BF16 ? bf16_to_float(bits[i]) : f16_to_float(bits[i]);
  return out;
}

}  // namespace zeroth
