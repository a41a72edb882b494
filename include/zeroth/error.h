// Errors and checks, shared by every module.
//
// Two kinds of failure (STYLE.md, practice 4):
//  * Bad input from a user (config, data, checkpoint, tokenizer, CLI) throws a typed
//    exception derived from zeroth::Error whose message names the file, key or line,
//    what was expected and what was found. The CLI turns it into an exit code.
//  * A broken internal invariant is a bug: ZT_ASSERT prints file:line and aborts.
// Library return codes (CUDA, cuBLAS, NCCL, MPI) are checked with macros built from
// ZT_CHECK_LIB, which reports file:line and the library's own error string.
#pragma once

#include <cstdarg>
#include <stdexcept>
#include <string>

namespace zeroth {

// Base of every error caused by input the user can fix. Exit code 1 unless a
// subclass says otherwise.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
  virtual int exit_code() const { return 1; }
};

// Command-line misuse (unknown flag, missing argument). Exit code 2.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& msg) : Error(msg) {}
  int exit_code() const override { return 2; }
};

// Invalid configuration (unknown key, wrong type, out of range). Exit code 2.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& msg) : Error(msg) {}
  int exit_code() const override { return 2; }
};

// Malformed data file (JSONL, corpus, tokenizer). Exit code 1.
class DataError : public Error {
 public:
  explicit DataError(const std::string& msg) : Error(msg) {}
};

// Malformed or mismatched checkpoint / safetensors / model directory. Exit code 1.
class CheckpointError : public Error {
 public:
  explicit CheckpointError(const std::string& msg) : Error(msg) {}
};

// Failure of the system or a library at run time (I/O, CUDA, MPI). Exit code 1.
class RuntimeError : public Error {
 public:
  explicit RuntimeError(const std::string& msg) : Error(msg) {}
};

// printf-style formatting into a std::string.
std::string strformat(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string vstrformat(const char* fmt, va_list ap);

// Prints "zeroth: internal error at file:line: what" and aborts.
[[noreturn]] void assert_fail(const char* file, int line, const char* expr, const std::string& msg);

// Throws a RuntimeError "lib error at file:line: what (detail)".
[[noreturn]] void lib_fail(const char* lib, const char* file, int line, const std::string& what,
                           const std::string& detail);

}  // namespace zeroth

// Internal invariant; aborts with file:line. Optional printf-style message (the format
// is prefixed with one space, dropped by assert_fail, so an empty message does not
// trip -Wformat-zero-length while printf checking still applies).
#define ZT_ASSERT(cond, ...)                                                             \
  do {                                                                                   \
    if (!(cond)) ::zeroth::assert_fail(__FILE__, __LINE__, #cond,                        \
                                       ::zeroth::strformat(" " __VA_ARGS__));             \
  } while (0)

// User-facing check: throws ExcType (a zeroth::Error subclass) with a formatted message.
#define ZT_THROW_IF_NOT(cond, ExcType, ...)                                              \
  do {                                                                                   \
    if (!(cond)) throw ExcType(::zeroth::strformat(__VA_ARGS__));                        \
  } while (0)

// Generic library check: `ok` is a boolean expression on the status, `errstr` an
// expression that yields the library's error string for it.
#define ZT_CHECK_LIB(lib, call, ok, errstr)                                              \
  do {                                                                                   \
    auto zt_status_ = (call);                                                            \
    if (!(ok)) ::zeroth::lib_fail(lib, __FILE__, __LINE__, #call, (errstr));              \
  } while (0)
