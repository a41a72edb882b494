// Tensor: a typed, shaped view of memory on one device.
//
// Owns: shape/stride bookkeeping, views (reshape, narrow), ownership of the
// allocation through a shared Storage that frees via the Backend that made it.
// Must not: compute anything. Every computation is an op on a Backend (backend.h);
// model code never touches BLAS or CUDA directly.
//
// Strides are in elements. Most ops require contiguous tensors; GEMM accepts a row
// stride (leading dimension) and a batch stride; copy accepts any strides.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "zeroth/dtype.h"

namespace zeroth {

class Backend;

enum class DeviceType : uint8_t { CPU = 0, CUDA = 1 };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  bool is_cpu() const { return type == DeviceType::CPU; }
  std::string str() const;  // "cpu" or "cuda:0"
  static Device cpu() { return Device{}; }
  static Device cuda(int index) { return Device{DeviceType::CUDA, index}; }
};

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& s);

// One allocation. Frees through `backend` unless it is a non-owning view
// (backend == nullptr), e.g. over a memory-mapped file or a caller's buffer.
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device;
  Backend* backend = nullptr;
  ~Storage();
};

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false

  // Uninitialised contiguous tensor allocated by `be` on its device.
  static Tensor empty(Backend& be, const Shape& shape, DType dtype);
  // Contiguous tensor filled with zeros (be.fill).
  static Tensor zeros(Backend& be, const Shape& shape, DType dtype);
  // Non-owning contiguous view of memory the caller keeps alive.
  static Tensor view_of(void* data, const Shape& shape, DType dtype, Device device = Device::cpu());

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const;
  Backend* backend() const;  // the allocating backend, nullptr for views of foreign memory
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int dim() const { return int(shape_.size()); }
  int64_t size(int d) const;    // negative d counts from the end
  int64_t stride(int d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }
  size_t element_size() const { return dtype_size(dtype_); }
  bool is_contiguous() const;

  void* data_ptr() const;  // first element (storage + offset)
  // Typed pointer; aborts if T does not match dtype (float/F32, bf16/BF16, f16/F16,
  // int32_t/I32, int64_t/I64).
  template <typename T>
  T* data() const;

  // Same memory, new shape (one dimension may be -1). Requires contiguity.
  Tensor view(const Shape& shape) const;
  // Elements [start, start+length) of dimension d; shares memory, keeps strides.
  Tensor narrow(int d, int64_t start, int64_t length) const;
  // Index i of dimension d, which is removed; shares memory.
  Tensor select(int d, int64_t i) const;
  // Dimensions d0 and d1 swapped (shape and strides); shares memory. The result is not
  // contiguous unless one of them has size 1; ops that take strided operands (gemm's
  // batch and row strides, copy) accept it.
  Tensor transpose(int d0, int d1) const;

  // "f32[2, 3] cpu" — for messages.
  std::string str() const;

  // Host copies (synchronous). Shapes/sizes must match; tensor must be contiguous.
  void copy_from_host(const void* src, size_t bytes);
  void copy_to_host(void* dst, size_t bytes) const;
  std::vector<float> to_float_vector() const;  // any float dtype, contiguous

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes from storage_->data
  Shape shape_, strides_;
  DType dtype_ = DType::F32;
};

Shape contiguous_strides(const Shape& shape);

}  // namespace zeroth
