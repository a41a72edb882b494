// run_stop.h: stop-signal handlers, the time-limit clock and the per-step stop agreement.
// Must not: write checkpoints or log from the signal handler (only write(2) is used there).
#include "zeroth/run_stop.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "zeroth/comm.h"
#include "zeroth/error.h"

namespace zeroth {

namespace {

volatile std::sig_atomic_t g_signal = 0;    // the first stop signal, 0 = none
volatile std::sig_atomic_t g_hard = 0;      // a SIGTERM/SIGINT was seen
volatile std::sig_atomic_t g_announce = 1;  // print a line when the first one arrives
std::atomic<int64_t> g_start_ns{-1};        // steady_clock at install_stop_handlers

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void say(const char* s) {
  const ssize_t r = ::write(2, s, std::strlen(s));
  (void)r;
}

void on_stop_signal(int sig) {
  if (sig != SIGUSR1) {
    if (g_hard) {  // the second SIGTERM/SIGINT: stop at once
      std::signal(sig, SIG_DFL);
      std::raise(sig);
      return;
    }
    g_hard = 1;
  }
  if (g_signal) return;
  g_signal = sig;
  if (!g_announce) return;
  if (sig == SIGUSR1)
    say("\nzeroth: SIGUSR1: stopping after the current step (at once in a rollout or an eval) with a checkpoint\n");
  else if (sig == SIGTERM)
    say("\nzeroth: SIGTERM: stopping after the current step (at once in a rollout or an eval) with a checkpoint "
        "(send SIGTERM again to stop at once, without one)\n");
  else
    say("\nzeroth: SIGINT: stopping after the current step (at once in a rollout or an eval) with a checkpoint "
        "(press Ctrl-C again to stop at once, without one)\n");
}

}  // namespace

const char* stop_signal_name(int sig) {
  switch (sig) {
    case SIGUSR1: return "SIGUSR1";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    default: return "a signal";
  }
}

namespace {

// Agreement codes: a signal number (< 100), or the time limit.
constexpr int64_t kTimeLimitCode = 100;

}  // namespace

void install_stop_handlers(bool announce) {
  g_signal = 0;
  g_hard = 0;
  g_announce = announce ? 1 : 0;
  g_start_ns = now_ns();
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // reads, writes and MPI's polls go on where they were
  for (int sig : {SIGUSR1, SIGTERM, SIGINT})
    if (::sigaction(sig, &sa, nullptr) != 0)
      throw RuntimeError(strformat("sigaction(%d): %s", sig, std::strerror(errno)));
}

int stop_signal() { return int(g_signal); }

double run_elapsed_seconds() {
  int64_t start = g_start_ns.load();
  if (start < 0) {
    int64_t expected = -1;
    const int64_t now = now_ns();
    start = g_start_ns.compare_exchange_strong(expected, now) ? now : expected;
  }
  return double(now_ns() - start) * 1e-9;
}

StopCheck::StopCheck(double time_limit_minutes)
    : limit_s_(time_limit_minutes * 60.0), last_(std::chrono::steady_clock::now()) {}

std::string StopCheck::reason_of(int64_t code) const {
  if (code == 0) return "";
  if (code == kTimeLimitCode) {
    const double min = limit_s_ / 60.0;
    return strformat("train.time_limit_minutes %g: %.3g minutes used, and the longest step took %.3g", min,
                     run_elapsed_seconds() / 60.0, longest_step_s_ / 60.0);
  }
  return stop_signal_name(int(code));
}

std::string StopCheck::poll(Communicator& comm) {
  const auto now = std::chrono::steady_clock::now();
  longest_step_s_ = std::max(longest_step_s_, std::chrono::duration<double>(now - last_).count());
  last_ = now;
  int64_t code = stop_signal();
  if (code == 0 && limit_s_ > 0 && run_elapsed_seconds() + longest_step_s_ > limit_s_) code = kTimeLimitCode;
  // The time limit outranks a signal in the agreement (Max), so every rank reports the
  // same reason whatever each one saw.
  comm.all_reduce_host(&code, 1, ReduceOp::Max);
  return reason_of(code);
}

SaveTimer::SaveTimer(double minutes) : interval_s_(minutes * 60.0), last_(std::chrono::steady_clock::now()) {}

bool SaveTimer::due(Communicator& comm) {
  if (interval_s_ <= 0) return false;
  const double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_).count();
  double flag = since >= interval_s_ ? 1.0 : 0.0;
  comm.all_reduce_host(&flag, 1, ReduceOp::Max);
  return flag > 0;
}

}  // namespace zeroth
