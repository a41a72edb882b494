// Tensor entry points of the safetensors reader and writer: checks on the
// destination tensor and host <-> device copies through Tensor.
//
// Owns: only the glue between Tensor and the raw-pointer API. Kept apart so the
// rest of src/io links without the tensor module.
// Must not: parse or lay out files (safetensors_reader.cpp / safetensors_writer.cpp).
#include <cstring>
#include <vector>

#include "io/io_util.h"
#include "zeroth/safetensors.h"

namespace zeroth {

namespace {

void check_destination(const SafetensorsFile& f, const std::string& name, const Tensor& dst) {
  if (!dst.defined())
    throw CheckpointError("safetensors file '" + f.path() + "': tensor '" + name +
                          "': destination tensor is undefined");
  ZT_ASSERT(dst.is_contiguous(), "read_into '%s': destination %s is not contiguous", name.c_str(),
            dst.str().c_str());
}

}  // namespace

void SafetensorsFile::read_into(const std::string& name, Tensor& dst) const {
  check_destination(*this, name, dst);
  expect(name, dst.dtype(), dst.shape());
  const SafetensorsInfo& i = info(name);
  dst.copy_from_host(data(name), i.nbytes);
}

void SafetensorsFile::read_into_converting(const std::string& name, Tensor& dst) const {
  check_destination(*this, name, dst);
  const SafetensorsInfo& i = info(name);
  if (i.dtype == dst.dtype() || !dtype_is_float(i.dtype) || !dtype_is_float(dst.dtype())) {
    read_into(name, dst);
    return;
  }
  std::vector<uint8_t> host(dst.nbytes());
  read_into_converting(name, host.data(), dst.dtype(), dst.shape());
  dst.copy_from_host(host.data(), host.size());
}

void SafetensorsWriter::add(const std::string& name, const Tensor& t) {
  if (!t.defined()) throw CheckpointError("safetensors writer: tensor '" + name + "' is undefined");
  ZT_ASSERT(t.is_contiguous(), "add '%s': tensor %s is not contiguous", name.c_str(),
            t.str().c_str());
  auto owned = std::make_shared<std::vector<uint8_t>>(t.nbytes());
  if (!owned->empty()) t.copy_to_host(owned->data(), owned->size());
  add_entry(Entry{name, t.dtype(), t.shape(), 0, owned->data(), owned});
}

void ShardedSafetensors::read_into(const std::string& name, Tensor& dst) const {
  file_of(name).read_into(name, dst);
}

void ShardedSafetensors::read_into_converting(const std::string& name, Tensor& dst) const {
  file_of(name).read_into_converting(name, dst);
}

}  // namespace zeroth
