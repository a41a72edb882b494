// io_util.h: POSIX helpers, message formatting and float conversion for src/io.
// Must not: know the safetensors format.
#include "io/io_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

namespace zeroth {
namespace io {

std::string errno_message(int err, const std::string& path) {
  return "'" + path + "': " + std::strerror(err);
}

std::string dtype_shape_str(DType dtype, const Shape& shape) {
  std::string s = dtype_name(dtype);
  s += "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

namespace {

// True if `j` nests at most `depth` levels with at most 16 children per level.
bool shallow(const nlohmann::json& j, int depth) {
  if (!j.is_structured()) return true;
  if (depth == 0 || j.size() > 16) return false;
  for (const auto& v : j)
    if (!shallow(v, depth - 1)) return false;
  return true;
}

float load_float(const uint8_t* p, DType t) {
  if (t == DType::F32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  return t == DType::BF16 ? bf16_to_float(h) : f16_to_float(h);
}

void store_float(uint8_t* p, DType t, float f) {
  if (t == DType::F32) {
    std::memcpy(p, &f, 4);
    return;
  }
  uint16_t h = t == DType::BF16 ? float_to_bf16(f) : float_to_f16(f);
  std::memcpy(p, &h, 2);
}

}  // namespace

std::string json_brief(const nlohmann::json& j) {
  if (!shallow(j, 4))
    return j.is_array() ? strformat("an array of %zu elements", j.size())
                        : strformat("an object of %zu keys", j.size());
  std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

void convert_floats(const void* src, DType src_dtype, void* dst, DType dst_dtype, uint64_t n) {
  ZT_ASSERT(dtype_is_float(src_dtype) && dtype_is_float(dst_dtype), "%s -> %s",
            dtype_name(src_dtype), dtype_name(dst_dtype));
  const uint8_t* s = static_cast<const uint8_t*>(src);
  uint8_t* d = static_cast<uint8_t*>(dst);
  const size_t ss = dtype_size(src_dtype), ds = dtype_size(dst_dtype);
  for (uint64_t i = 0; i < n; ++i)
    store_float(d + i * ds, dst_dtype, load_float(s + i * ss, src_dtype));
}

bool checked_nbytes(const Shape& shape, DType dtype, uint64_t* out) {
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  *out = n;
  return true;
}

void write_all(int fd, const void* data, uint64_t bytes, const std::string& path) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  constexpr uint64_t kChunk = uint64_t(1) << 30;  // Linux writes at most ~2 GiB per call
  while (bytes > 0) {
    size_t n = static_cast<size_t>(bytes < kChunk ? bytes : kChunk);
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    ZT_CHECK_SYS(w, path);
    ZT_ASSERT(w > 0, "write returned 0 for %zu bytes", n);
    p += w;
    bytes -= static_cast<uint64_t>(w);
  }
}

void fsync_parent_dir(const std::string& path) {
  const std::string dir = dir_of(path);
  int fd = -1;
  ZT_CHECK_SYS(fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC), dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  errno = err;
  ZT_CHECK_SYS(rc, dir);
}

std::string dir_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_regular_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void check_input_file(const std::string& path, const std::string& what) {
  if (is_directory(path))
    throw DataError(strformat("%s: is a directory (expected %s)", path.c_str(), what.c_str()));
}

void check_output_file(const std::string& path, const std::string& flag) {
  if (path.empty()) throw UsageError(strformat("--%s: expected a file path, found nothing", flag.c_str()));
  if (is_directory(path))
    throw UsageError(strformat("--%s %s: is a directory (expected a file path)", flag.c_str(), path.c_str()));
  const std::string dir = dir_of(path);
  if (!is_directory(dir))
    throw UsageError(strformat("--%s %s: the directory '%s' does not exist", flag.c_str(), path.c_str(),
                               dir.c_str()));
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
  const std::string tmp = path + ".tmp";
  try {
    {
      std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
      if (!out) throw RuntimeError(strformat("%s: cannot open for writing: %s", tmp.c_str(), std::strerror(errno)));
      write(out);
      out.flush();
      if (!out) throw RuntimeError(strformat("%s: write failed", tmp.c_str()));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      throw RuntimeError(strformat("cannot rename %s to %s: %s", tmp.c_str(), path.c_str(), std::strerror(errno)));
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace io
}  // namespace zeroth
