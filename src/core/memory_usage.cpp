// host_memory() (memory_usage.h): VmRSS and VmHWM of /proc/self/status.
#include "zeroth/memory_usage.h"

#include <fstream>
#include <sstream>

namespace zeroth {

HostMemory parse_proc_status(const std::string& text) {
  HostMemory m;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    int64_t* field = nullptr;
    if (line.rfind("VmRSS:", 0) == 0) field = &m.rss_bytes;
    if (line.rfind("VmHWM:", 0) == 0) field = &m.peak_bytes;
    if (field == nullptr) continue;
    std::istringstream v(line.substr(6));
    int64_t n = -1;
    std::string unit;
    if (v >> n >> unit && n >= 0 && unit == "kB") *field = n * 1024;
  }
  return m;
}

HostMemory host_memory() {
  std::ifstream in("/proc/self/status");
  if (!in) return {};
  std::stringstream text;
  text << in.rdbuf();
  return parse_proc_status(text.str());
}

}  // namespace zeroth
