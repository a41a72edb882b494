// Implementation of log.h. One mutex serialises lines from threads of a process.
#include "zeroth/log.h"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include "zeroth/error.h"

namespace zeroth {
namespace {

LogOptions g_opts;  // the process's logging identity (rank, level); set once at start-up
std::mutex g_mutex;

void apply_env(LogOptions* o) {
  if (const char* lv = std::getenv("ZEROTH_LOG_LEVEL")) {
    LogLevel l;
    if (parse_log_level(lv, &l)) o->level = l;
  }
  if (const char* ar = std::getenv("ZEROTH_LOG_ALL_RANKS")) o->all_ranks = std::string(ar) == "1";
}

struct EnvInit {
  EnvInit() { apply_env(&g_opts); }
} g_env_init;

std::string prefix(LogLevel level) {
  std::string p;
  if (g_opts.timestamps) {
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    int ms = int(std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    p += strformat("[%s.%03d] ", buf, ms);
  }
  if (g_opts.world_size > 1) p += strformat("[r%d] ", g_opts.rank);
  if (level != LogLevel::Info) p += strformat("%s: ", log_level_name(level));
  return p;
}

bool rank_prints() { return g_opts.all_ranks || g_opts.rank == 0; }

}  // namespace

void log_configure(const LogOptions& opts) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_opts = opts;
  apply_env(&g_opts);
}

const LogOptions& log_options() { return g_opts; }

bool parse_log_level(const std::string& s, LogLevel* out) {
  if (s == "debug") *out = LogLevel::Debug;
  else if (s == "info") *out = LogLevel::Info;
  else if (s == "warn" || s == "warning") *out = LogLevel::Warn;
  else if (s == "error") *out = LogLevel::Error;
  else return false;
  return true;
}

const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warning";
    case LogLevel::Error: return "error";
  }
  return "?";
}

bool log_enabled(LogLevel level) {
  // Errors print on every rank: a failure on rank 3 must not be silent.
  if (level == LogLevel::Error) return true;
  return level >= g_opts.level && rank_prints();
}

void log_message(LogLevel level, const char* fmt, ...) {
  if (!log_enabled(level)) return;
  va_list ap;
  va_start(ap, fmt);
  std::string msg = vstrformat(fmt, ap);
  va_end(ap);
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string line = prefix(level) + msg + "\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

std::string format_duration(double s) {
  if (s < 0) s = 0;
  if (s < 60) return strformat("%.1fs", s);
  long t = long(s + 0.5);
  if (t < 3600) return strformat("%ldm%02lds", t / 60, t % 60);
  return strformat("%ldh%02ldm", t / 3600, (t % 3600) / 60);
}

Progress::Progress(std::string label, int64_t total, std::string unit, double plain_interval_s)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total),
      plain_interval_s_(plain_interval_s) {
  tty_ = isatty(STDERR_FILENO) == 1;
  enabled_ = log_enabled(LogLevel::Info);
  start_ = last_print_ = std::chrono::steady_clock::now();
}

Progress::~Progress() {
  if (!finished_ && tty_ && enabled_) {
    std::lock_guard<std::mutex> lock(g_mutex);
    std::fputs("\n", stderr);
  }
}

void Progress::update(int64_t done, const std::string& status) {
  done_ = done;
  status_ = status;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_print_).count();
  if (since >= (tty_ ? 0.1 : plain_interval_s_)) print(false);
}

void Progress::resume_from(int64_t done) { done_ = base_ = done; }

void Progress::finish(const std::string& status) {
  if (!status.empty()) status_ = status;
  if (enabled_ && !finished_) print(true);
  finished_ = true;
}

void Progress::print(bool final_line) {
  auto now = std::chrono::steady_clock::now();
  last_print_ = now;
  double el = std::chrono::duration<double>(now - start_).count();
  double rate = el > 0 ? double(done_ - base_) / el : 0.0;
  std::string body = label_ + " ";
  if (total_ > 0) {
    double frac = double(done_) / double(total_);
    body += strformat("%3.0f%% %lld/%lld %s", 100.0 * frac, (long long)done_, (long long)total_,
                      unit_.c_str());
  } else {
    body += strformat("%lld %s", (long long)done_, unit_.c_str());
  }
  body += strformat(" | %.1f %s/s | %s", rate, unit_.c_str(), format_duration(el).c_str());
  if (!final_line && total_ > 0 && rate > 0)
    body += " | eta " + format_duration(double(total_ - done_) / rate);
  if (!status_.empty()) body += " | " + status_;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", body.c_str(), final_line ? "\n" : "");
  } else {
    std::string line = prefix(LogLevel::Info) + body + "\n";
    std::fputs(line.c_str(), stderr);
  }
  std::fflush(stderr);
}

}  // namespace zeroth
