// Tests for memory_usage.h: /proc/self/status parsing, and that the live values move with
// an allocation that is touched.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>

#include "zeroth/memory_usage.h"

using namespace zeroth;

TEST_CASE("parse_proc_status reads VmRSS and VmHWM in kB", "[core]") {
  const HostMemory m = parse_proc_status(
      "Name:\tzeroth\nVmPeak:\t  999999 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t3\n");
  CHECK(m.rss_bytes == 10240 * 1024);
  CHECK(m.peak_bytes == 20480 * 1024);
  const HostMemory none = parse_proc_status("Name:\tx\nVmRSS:\tgarbage\nVmHWM:\t12 MB\n");
  CHECK(none.rss_bytes == -1);
  CHECK(none.peak_bytes == -1);
  CHECK(parse_proc_status("").rss_bytes == -1);
}

TEST_CASE("host_memory sees 64 MiB touched", "[core]") {
  const HostMemory before = host_memory();
  REQUIRE(before.rss_bytes > 0);
  REQUIRE(before.peak_bytes >= before.rss_bytes);
  const size_t n = size_t(64) << 20;
  std::unique_ptr<char[]> block(new char[n]);
  std::memset(block.get(), 1, n);
  const HostMemory during = host_memory();
  CHECK(during.rss_bytes >= before.rss_bytes + int64_t(n) * 9 / 10);
  CHECK(during.peak_bytes >= during.rss_bytes);
  CHECK(block[n - 1] == 1);
}
