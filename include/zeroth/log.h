// Rank-aware logging and progress lines.
//
// Every process logs through these functions. By default only rank 0 prints; with
// `all_ranks` (config run.log_all_ranks or env ZEROTH_LOG_ALL_RANKS=1) every rank does,
// each line prefixed with its rank. Lines carry a timestamp and a level and go to
// stderr; results a command is asked for (tables, JSON) go to stdout, never here.
//
// Progress: a single self-rewriting line with rate and ETA when stderr is a
// terminal; plain periodic lines otherwise (CI logs, files, mpirun).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace zeroth {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

struct LogOptions {
  LogLevel level = LogLevel::Info;
  bool all_ranks = false;   // print on every rank, not only rank 0
  bool timestamps = true;
  int rank = 0;             // this process's rank in the world
  int world_size = 1;
};

// Sets the process's logging options. Environment variables ZEROTH_LOG_LEVEL
// (debug|info|warn|error) and ZEROTH_LOG_ALL_RANKS (0|1) override `opts`.
void log_configure(const LogOptions& opts);
const LogOptions& log_options();

// Parses "debug", "info", "warn" or "error"; returns false on anything else.
bool parse_log_level(const std::string& s, LogLevel* out);
const char* log_level_name(LogLevel level);

// True when a message at `level` would be printed by this rank.
bool log_enabled(LogLevel level);

void log_message(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// A long loop's progress. Prints nothing on ranks that do not log.
class Progress {
 public:
  // total <= 0 means unknown (no ETA). `unit` names what is counted ("tok", "samples").
  Progress(std::string label, int64_t total, std::string unit = "it",
           double plain_interval_s = 10.0);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Sets the count done so far and an optional short status ("loss 2.31").
  void update(int64_t done, const std::string& status = "");
  // A resumed loop: `done` were finished before this process started; the rate and ETA
  // count only what this process does.
  void resume_from(int64_t done);
  // Prints the final line (always, on logging ranks).
  void finish(const std::string& status = "");

 private:
  void print(bool final_line);
  std::string label_, unit_, status_;
  int64_t total_, done_ = 0, base_ = 0;
  double plain_interval_s_;
  bool tty_, enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_print_;
};

// Formats seconds as "1h02m", "3m05s" or "12.3s".
std::string format_duration(double seconds);

}  // namespace zeroth

#define ZT_LOG_DEBUG(...) ::zeroth::log_message(::zeroth::LogLevel::Debug, __VA_ARGS__)
#define ZT_LOG_INFO(...) ::zeroth::log_message(::zeroth::LogLevel::Info, __VA_ARGS__)
#define ZT_LOG_WARN(...) ::zeroth::log_message(::zeroth::LogLevel::Warn, __VA_ARGS__)
#define ZT_LOG_ERROR(...) ::zeroth::log_message(::zeroth::LogLevel::Error, __VA_ARGS__)
