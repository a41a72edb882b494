// This process's host memory, for the run metrics (mem_rss_gib, mem_peak_gib) and logs.
// Linux /proc only; elsewhere the values are unknown (-1).
#pragma once

#include <cstdint>
#include <string>

namespace zeroth {

struct HostMemory {
  int64_t rss_bytes = -1;   // resident set now (VmRSS)
  int64_t peak_bytes = -1;  // largest resident set since the process started (VmHWM)
};

// Reads /proc/self/status. Never throws: a field it cannot read stays -1.
HostMemory host_memory();

// The same from the text of a /proc/PID/status file ("VmRSS:   1234 kB" lines).
HostMemory parse_proc_status(const std::string& text);

}  // namespace zeroth
