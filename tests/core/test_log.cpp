// Tests for log.h: levels, rank filtering, prefixes and plain progress lines.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <string>

#include "zeroth/log.h"

using namespace zeroth;

namespace {

// Runs f with stderr redirected to a temporary file and returns what was written.
template <typename F>
std::string capture_stderr(F f) {
  std::fflush(stderr);
  char path[] = "/tmp/zeroth_log_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  f();
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out;
  FILE* in = std::fopen(path, "r");
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, in)) > 0) out.append(buf, n);
  std::fclose(in);
  close(fd);
  unlink(path);
  return out;
}

struct RestoreLog {
  LogOptions saved = log_options();
  ~RestoreLog() { log_configure(saved); }
};

}  // namespace

TEST_CASE("log levels filter messages", "[core][log]") {
  RestoreLog restore;
  LogOptions o;
  o.level = LogLevel::Warn;
  o.timestamps = false;
  log_configure(o);
  std::string out = capture_stderr([] {
    ZT_LOG_INFO("hidden %d", 1);
    ZT_LOG_WARN("shown %d", 2);
  });
  REQUIRE(out == "warning: shown 2\n");
}

TEST_CASE("only rank 0 logs unless all_ranks and errors always print with a rank prefix", "[core][log]") {
  RestoreLog restore;
  LogOptions o;
  o.timestamps = false;
  o.rank = 3;
  o.world_size = 4;
  log_configure(o);
  std::string out = capture_stderr([] {
    ZT_LOG_INFO("from rank three");
    ZT_LOG_ERROR("bad");
  });
  REQUIRE(out == "[r3] error: bad\n");
  o.all_ranks = true;
  log_configure(o);
  out = capture_stderr([] { ZT_LOG_INFO("hello"); });
  REQUIRE(out == "[r3] hello\n");
}

TEST_CASE("timestamps prefix lines", "[core][log]") {
  RestoreLog restore;
  LogOptions o;
  log_configure(o);
  std::string out = capture_stderr([] { ZT_LOG_INFO("x"); });
  // [HH:MM:SS.mmm] x
  REQUIRE(out.size() == std::string("[00:00:00.000] x\n").size());
  REQUIRE(out[0] == '[');
  REQUIRE(out.substr(13) == "] x\n");
}

TEST_CASE("parse_log_level accepts the four levels only", "[core][log]") {
  LogLevel l;
  REQUIRE(parse_log_level("debug", &l));
  REQUIRE(l == LogLevel::Debug);
  REQUIRE(parse_log_level("error", &l));
  REQUIRE(l == LogLevel::Error);
  REQUIRE_FALSE(parse_log_level("verbose", &l));
}

TEST_CASE("progress prints plain lines with rate and a final line when not a terminal", "[core][log]") {
  RestoreLog restore;
  LogOptions o;
  o.timestamps = false;
  log_configure(o);
  std::string out = capture_stderr([] {
    Progress p("tokenize", 100, "docs", /*plain_interval_s=*/0.0);
    p.update(50, "ok");
    p.finish("done");
  });
  REQUIRE(out.find("tokenize  50% 50/100 docs") != std::string::npos);
  REQUIRE(out.find("eta") != std::string::npos);
  REQUIRE(out.find("tokenize 100% 100/100 docs") == std::string::npos);  // finish keeps the count it has
  REQUIRE(out.find("| done\n") != std::string::npos);
  REQUIRE(out.find('\r') == std::string::npos);
}

TEST_CASE("progress is silent on ranks that do not log", "[core][log]") {
  RestoreLog restore;
  LogOptions o;
  o.rank = 1;
  o.world_size = 2;
  log_configure(o);
  std::string out = capture_stderr([] {
    Progress p("x", 10, "it", 0.0);
    p.update(5);
    p.finish();
  });
  REQUIRE(out.empty());
}

TEST_CASE("format_duration", "[core][log]") {
  REQUIRE(format_duration(12.34) == "12.3s");
  REQUIRE(format_duration(185) == "3m05s");
  REQUIRE(format_duration(3720) == "1h02m");
}
