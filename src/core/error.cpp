// Implementation of error.h: formatting helpers and the abort path.
#include "zeroth/error.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace zeroth {

std::string vstrformat(const char* fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = std::vsnprintf(nullptr, 0, fmt, ap2);
  va_end(ap2);
  if (n <= 0) return std::string();
  std::vector<char> buf(static_cast<size_t>(n) + 1);
  std::vsnprintf(buf.data(), buf.size(), fmt, ap);
  return std::string(buf.data(), static_cast<size_t>(n));
}

std::string strformat(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string s = vstrformat(fmt, ap);
  va_end(ap);
  return s;
}

void assert_fail(const char* file, int line, const char* expr, const std::string& msg_in) {
  // ZT_ASSERT prefixes the format with one space; drop it.
  std::string msg = (!msg_in.empty() && msg_in[0] == ' ') ? msg_in.substr(1) : msg_in;
  std::fprintf(stderr, "zeroth: internal error at %s:%d: assertion `%s` failed%s%s\n", file, line,
               expr, msg.empty() ? "" : ": ", msg.c_str());
  std::fflush(stderr);
  std::abort();
}

void lib_fail(const char* lib, const char* file, int line, const std::string& what,
              const std::string& detail) {
  throw RuntimeError(strformat("%s error at %s:%d: %s failed: %s", lib, file, line, what.c_str(),
                               detail.c_str()));
}

}  // namespace zeroth
