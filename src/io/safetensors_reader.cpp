// SafetensorsFile: maps a safetensors file read-only and validates its header.
//
// Owns: every check on a file's bytes (length prefix, JSON header, dtypes, shapes,
// offsets, coverage of the data buffer, metadata) and the host reads.
// Must not: read tensor bytes at open (lazy), trust any number from the file before
// checking it, or touch Tensor (that is safetensors_tensor.cpp, so this file links
// without the tensor module).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <tuple>

#include "io/io_util.h"
#include "zeroth/safetensors.h"

namespace zeroth {

using nlohmann::json;

struct SafetensorsFile::Mapping {
  std::string path;
  void* base = nullptr;  // the whole file, mapped read-only
  size_t file_size = 0;
  const uint8_t* buffer = nullptr;  // the data buffer (after the header)
  uint64_t buffer_size = 0;
  std::map<std::string, SafetensorsInfo> tensors;
  std::map<std::string, std::string> metadata;

  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (base) ::munmap(base, file_size);
  }
};

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw CheckpointError("safetensors file '" + path + "': " + what);
}

[[noreturn]] void fail_tensor(const std::string& path, const std::string& name,
                              const std::string& what) {
  fail(path, "tensor '" + name + "': " + what);
}

// A non-negative JSON integer that fits in int64; false otherwise.
bool as_index(const json& j, uint64_t* out) {
  if (j.is_number_unsigned()) {
    uint64_t v = j.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = v;
    return true;
  }
  if (j.is_number_integer()) {
    int64_t v = j.get<int64_t>();
    if (v < 0) return false;
    *out = static_cast<uint64_t>(v);
    return true;
  }
  return false;
}

SafetensorsInfo parse_entry(const std::string& path, const std::string& name, const json& e,
                            uint64_t buffer_size) {
  if (!e.is_object())
    fail_tensor(path, name,
                "expected an object {dtype, shape, data_offsets}, found " + io::json_brief(e));
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!e.contains(key)) fail_tensor(path, name, std::string("missing key '") + key + "'");

  SafetensorsInfo info;
  const json& dt = e["dtype"];
  if (!dt.is_string() || !dtype_from_name(dt.get<std::string>(), &info.dtype))
    fail_tensor(
        path, name,
        "unsupported dtype " + io::json_brief(dt) + "; expected one of F32, BF16, F16, I32, I64, F8_E4M3");

  const json& sh = e["shape"];
  if (!sh.is_array())
    fail_tensor(path, name, "shape: expected an array of integers, found " + io::json_brief(sh));
  for (const json& d : sh) {
    uint64_t v;
    if (!as_index(d, &v))
      fail_tensor(path, name,
                  "shape " + io::json_brief(sh) + ": expected non-negative integers, found " +
                      io::json_brief(d));
    info.shape.push_back(static_cast<int64_t>(v));
  }
  if (!io::checked_nbytes(info.shape, info.dtype, &info.nbytes))
    fail_tensor(path, name,
                "shape " + io::json_brief(sh) + " of " + dtype_name(info.dtype) +
                    " is larger than 2^64 bytes");

  const json& off = e["data_offsets"];
  uint64_t begin = 0, end = 0;
  if (!off.is_array() || off.size() != 2 || !as_index(off[0], &begin) || !as_index(off[1], &end))
    fail_tensor(path, name,
                "data_offsets: expected [begin, end] of non-negative integers, found " +
                    io::json_brief(off));
  if (begin > end)
    fail_tensor(path, name,
                strformat("data_offsets [%llu, %llu]: begin is after end",
                          (unsigned long long)begin, (unsigned long long)end));
  if (end > buffer_size)
    fail_tensor(path, name,
                strformat("data_offsets [%llu, %llu] out of range: the data buffer "
                          "has %llu bytes",
                          (unsigned long long)begin, (unsigned long long)end,
                          (unsigned long long)buffer_size));
  if (end - begin != info.nbytes)
    fail_tensor(path, name,
                strformat("data_offsets [%llu, %llu] span %llu bytes, expected %llu "
                          "for %s",
                          (unsigned long long)begin, (unsigned long long)end,
                          (unsigned long long)(end - begin), (unsigned long long)info.nbytes,
                          io::dtype_shape_str(info.dtype, info.shape).c_str()));
  info.begin = begin;
  return info;
}

// Tensors must tile the data buffer exactly: no overlap, no gap, nothing left over.
void check_coverage(const std::string& path, const std::map<std::string, SafetensorsInfo>& tensors,
                    uint64_t buffer_size) {
  std::vector<std::tuple<uint64_t, uint64_t, const std::string*>> spans;
  spans.reserve(tensors.size());
  for (const auto& kv : tensors)
    spans.emplace_back(kv.second.begin, kv.second.begin + kv.second.nbytes, &kv.first);
  std::sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) {
    return std::tie(std::get<0>(a), std::get<1>(a), *std::get<2>(a)) <
           std::tie(std::get<0>(b), std::get<1>(b), *std::get<2>(b));
  });
  uint64_t covered = 0;
  const std::string* prev = nullptr;
  for (const auto& s : spans) {
    const uint64_t b = std::get<0>(s), e = std::get<1>(s);
    const std::string& name = *std::get<2>(s);
    if (b < covered)
      fail_tensor(path, name,
                  strformat("data_offsets [%llu, %llu] overlap tensor '%s', which "
                            "ends at %llu",
                            (unsigned long long)b, (unsigned long long)e, prev->c_str(),
                            (unsigned long long)covered));
    if (b > covered)
      fail(path, strformat("bytes [%llu, %llu) of the data buffer belong to no tensor (expected "
                           "tensors to cover the buffer without gaps; next is '%s')",
                           (unsigned long long)covered, (unsigned long long)b, name.c_str()));
    covered = e;
    prev = &name;
  }
  if (covered != buffer_size)
    fail(path, strformat("bytes [%llu, %llu) at the end of the data buffer belong to no tensor "
                         "(expected tensors to cover the buffer exactly)",
                         (unsigned long long)covered, (unsigned long long)buffer_size));
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto m = std::make_shared<Mapping>();
  m->path = path;

  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {  // a missing or unreadable file is the user's to fix
    int err = errno;
    throw CheckpointError("cannot open safetensors file " + io::errno_message(err, path));
  }
  struct stat st;
  int rc = ::fstat(fd, &st);
  int err = errno;
  if (rc != 0) ::close(fd);
  errno = err;
  ZT_CHECK_SYS(rc, path);
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, strformat("file is %llu bytes, expected at least 8 (the header length)",
                         (unsigned long long)size));
  }
  void* base = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  err = errno;
  ::close(fd);  // the mapping keeps the file
  errno = err;
  ZT_CHECK_LIB("posix", base, zt_status_ != MAP_FAILED, io::errno_message(errno, path));
  m->base = base;
  m->file_size = size;
  const uint8_t* bytes = static_cast<const uint8_t*>(base);

  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];  // little-endian
  if (n > kSafetensorsMaxHeaderBytes)
    fail(path, strformat("header length %llu is larger than the limit of %llu bytes",
                         (unsigned long long)n, (unsigned long long)kSafetensorsMaxHeaderBytes));
  if (n > size - 8)
    fail(path, strformat("header length %llu runs past the end of the file (%llu bytes after "
                         "the length): truncated file?",
                         (unsigned long long)n, (unsigned long long)(size - 8)));
  if (n < 2 || bytes[8] != '{') fail(path, "header must be a JSON object starting with '{'");
  const char* hbegin = reinterpret_cast<const char*>(bytes + 8);
  json header;
  try {
    header = json::parse(hbegin, hbegin + n);
  } catch (const json::exception& e) {
    fail(path,
         strformat("header (%llu bytes) is not valid JSON: %s", (unsigned long long)n, e.what()));
  }
  if (!header.is_object())
    fail(path, "header: expected a JSON object, found " + io::json_brief(header));

  m->buffer = bytes + 8 + n;
  m->buffer_size = size - 8 - n;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      const json& md = it.value();
      if (md.is_null()) continue;
      if (!md.is_object())
        fail(path, "__metadata__: expected an object of strings, found " + io::json_brief(md));
      for (auto mit = md.begin(); mit != md.end(); ++mit) {
        if (!mit.value().is_string())
          fail(path, "__metadata__ key '" + mit.key() + "': expected a string, found " +
                         io::json_brief(mit.value()));
        m->metadata[mit.key()] = mit.value().get<std::string>();
      }
      continue;
    }
    m->tensors.emplace(it.key(), parse_entry(path, it.key(), it.value(), m->buffer_size));
  }
  check_coverage(path, m->tensors, m->buffer_size);

  SafetensorsFile f;
  f.map_ = std::move(m);
  return f;
}

const std::string& SafetensorsFile::path() const { return map_->path; }

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(map_->tensors.size());
  for (const auto& kv : map_->tensors) out.push_back(kv.first);
  return out;
}

bool SafetensorsFile::has(const std::string& name) const { return map_->tensors.count(name) != 0; }

size_t SafetensorsFile::size() const { return map_->tensors.size(); }

const SafetensorsInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = map_->tensors.find(name);
  if (it == map_->tensors.end())
    fail(map_->path, strformat("no tensor named '%s' (the file has %zu tensors)", name.c_str(),
                               map_->tensors.size()));
  return it->second;
}

const void* SafetensorsFile::data(const std::string& name) const {
  return map_->buffer + info(name).begin;
}

const std::map<std::string, std::string>& SafetensorsFile::metadata() const {
  return map_->metadata;
}

void SafetensorsFile::expect(const std::string& name, DType dtype, const Shape& shape) const {
  const SafetensorsInfo& i = info(name);
  if (i.dtype != dtype || i.shape != shape)
    fail_tensor(map_->path, name,
                "expected " + io::dtype_shape_str(dtype, shape) + ", found " +
                    io::dtype_shape_str(i.dtype, i.shape) + " in the file");
}

void SafetensorsFile::read_into(const std::string& name, void* dst, DType dtype,
                                const Shape& shape) const {
  expect(name, dtype, shape);
  const SafetensorsInfo& i = info(name);
  if (i.nbytes) std::memcpy(dst, map_->buffer + i.begin, i.nbytes);
}

void SafetensorsFile::read_into_converting(const std::string& name, void* dst, DType dtype,
                                           const Shape& shape) const {
  const SafetensorsInfo& i = info(name);
  if (i.dtype == dtype || !dtype_is_float(i.dtype) || !dtype_is_float(dtype)) {
    read_into(name, dst, dtype, shape);  // same dtype, or a mismatch that is an error
    return;
  }
  if (i.shape != shape)
    fail_tensor(map_->path, name,
                "expected shape " + io::dtype_shape_str(dtype, shape) + " (converting), found " +
                    io::dtype_shape_str(i.dtype, i.shape) + " in the file");
  io::convert_floats(map_->buffer + i.begin, i.dtype, dst, dtype, i.nbytes / dtype_size(i.dtype));
}

}  // namespace zeroth
