// Helpers shared by the safetensors reader, writer and sharded loader, and the modules
// that read JSON from input files. Owns: the POSIX check macro, message formatting of
// shapes/JSON values, parsing one JSON value of an input file (parse_json_input),
// element conversion between float dtypes, and small file-system helpers.
// Must not: know the safetensors format itself.
#pragma once

#include <cerrno>
#include <cstdint>
#include <functional>
#include <ostream>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_set>
#include <vector>

#include "zeroth/dtype.h"
#include "zeroth/error.h"
#include "zeroth/tensor.h"

namespace zeroth {
namespace io {

// "'<path>': <strerror(err)>" for failed system calls.
std::string errno_message(int err, const std::string& path);

// Checks a POSIX call that returns -1 on failure; throws RuntimeError naming the
// source line, the call, `path` and errno's text.
#define ZT_CHECK_SYS(call, path) \
  ZT_CHECK_LIB("posix", call, zt_status_ != -1, ::zeroth::io::errno_message(errno, (path)))

// A JSON value for "found ..." in messages: dumped and cut to 80 characters when it
// is shallow and small, else described ("an array of 3 elements") so that hostile
// nesting cannot recurse deeply.
std::string json_brief(const nlohmann::json& j);

// The deepest nesting parse_json_input accepts: deeper values would overflow the stack
// of the recursive copy, dump and destruction of nlohmann's values.
constexpr int kMaxJsonInputDepth = 256;

// One JSON value read from an input file (a JSONL line, ...), as `Json` (nlohmann::json
// or ordered_json). Any failure is a DataError "<where>: invalid JSON: <reason>": a
// syntax error, a number out of range (1e999), nesting deeper than kMaxJsonInputDepth,
// a key given twice in one object (the parser would keep one silently).
template <class Json>
Json parse_json_input(const std::string& text, const std::string& where) {
  std::vector<std::unordered_set<std::string>> keys;  // one set per open object
  typename Json::parser_callback_t limit = [&where, &keys](int depth, nlohmann::json::parse_event_t event,
                                                           Json& parsed) {
    if (depth > kMaxJsonInputDepth)
      throw DataError(where + ": invalid JSON: nested deeper than " + std::to_string(kMaxJsonInputDepth) +
                      " levels");
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) keys.emplace_back();
    else if (event == E::object_end && !keys.empty()) keys.pop_back();
    else if (event == E::key && !keys.empty() && parsed.is_string() &&
             !keys.back().insert(parsed.template get<std::string>()).second)
      throw DataError(where + ": invalid JSON: key " + parsed.dump() + " given twice in one object");
    return true;
  };
  try {
    return Json::parse(text, limit);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(where + ": invalid JSON: " + e.what());
  }
}

// "F32[2, 3]" for messages.
std::string dtype_shape_str(DType dtype, const Shape& shape);

// Converts `n` elements between float dtypes (F32/BF16/F16); src and dst need not be
// aligned. Aborts on integer dtypes (callers check first).
void convert_floats(const void* src, DType src_dtype, void* dst, DType dst_dtype, uint64_t n);

// Byte size of `shape` elements of `dtype`; false if a dimension is negative or the
// product overflows 64 bits.
bool checked_nbytes(const Shape& shape, DType dtype, uint64_t* out);

// Writes all of `bytes` to `fd` (retrying short writes and EINTR); RuntimeError
// naming `path` on failure.
void write_all(int fd, const void* data, uint64_t bytes, const std::string& path);

// fsync of the directory holding `path` so a rename in it is durable.
void fsync_parent_dir(const std::string& path);

// Directory part of `path` ("." if none) and joining.
std::string dir_of(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

bool is_directory(const std::string& path);
bool is_regular_file(const std::string& path);

// An input file (a JSONL or text file a command reads): a directory would read as zero
// lines, so it is a DataError "<path>: is a directory (expected <what>)". A missing file
// is left to the caller's open.
void check_input_file(const std::string& path, const std::string& what);

// The output file of a command, checked before the work starts: a UsageError naming
// `flag` when it is a directory or its directory does not exist. (The output may be the
// input: commands read all input before write_file_atomic replaces it.)
void check_output_file(const std::string& path, const std::string& flag);

// Writes `path` atomically: `write` fills PATH.tmp, which is renamed over `path`. On any
// failure the .tmp is removed and the error (RuntimeError for I/O) propagates.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace io
}  // namespace zeroth
