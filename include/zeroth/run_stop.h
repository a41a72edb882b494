// Stopping a training run early and cleanly: on a signal (SIGUSR1, SIGTERM, SIGINT) or at
// a wall-clock limit (train.time_limit_minutes), every rank finishes the step it is in
// (zeroth train drops a step whose rollout a signal interrupts instead: grpo_collect.cpp),
// writes a checkpoint and exits with kExitStopped, so that `--resume` continues the run
// exactly where it stopped (a preempted or time-limited Slurm job, Ctrl-C in a terminal,
// a sweep that is interrupted).
//
// Owns: the process's stop-signal handlers, the time-limit clock, the per-step
// agreement of every rank on whether to stop (StopCheck::poll, one small all-reduce), and
// the timer of time-based checkpoints (SaveTimer, train.save_every_minutes).
// Must not: save checkpoints or decide where a loop polls (the loops do: pretrain_loop.cpp,
// grpo_trainer.cpp).
//
// Signals: the first SIGUSR1, SIGTERM or SIGINT asks for a stop after the current step. A
// second SIGTERM or SIGINT after a SIGTERM or SIGINT ends the process at once (the default
// action); SIGUSR1 never does, so a signal sent twice by two routes (a terminal's Ctrl-C
// and a sweep forwarding it) still stops cleanly. Open MPI's mpirun forwards SIGUSR1 to
// every rank but answers SIGTERM/SIGINT by killing the ranks a second later: under
// mpirun, send SIGUSR1.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace zeroth {

class Communicator;

// The exit status of a run that stopped early with a checkpoint (EX_TEMPFAIL of
// sysexits.h: "try again later", i.e. resume it).
constexpr int kExitStopped = 75;

// Installs the stop handlers for SIGUSR1, SIGTERM and SIGINT, forgets any earlier stop
// request and starts the time-limit clock (the run's time is counted from here). Call
// once at the start of a training command; `announce` false keeps the handler silent (the
// ranks other than 0).
void install_stop_handlers(bool announce = true);

// The number of the first stop signal received since install_stop_handlers, or 0.
int stop_signal();
// "SIGUSR1", "SIGTERM", "SIGINT" (or "a signal").
const char* stop_signal_name(int sig);

// Seconds since install_stop_handlers (or since the first call, when it was never called).
double run_elapsed_seconds();

// How a run ended early; stopped false when it ran all its steps.
struct RunStop {
  bool stopped = false;
  int64_t step = 0;        // the last step done (its checkpoint exists)
  std::string reason;      // e.g. "SIGUSR1", "train.time_limit_minutes 30: ..."
  std::string where;       // "" = the command's own steps; "cold start" = zeroth train's SFT stage
};

// Thrown out of a stage nested in a command (the cold start of zeroth train) that stopped
// early; every rank throws it at the same step. Not an Error: nothing failed.
struct RunStopped {
  RunStop stop;
};

// Polled by a training loop at each step boundary. Every rank of the communicator passed
// to poll() must call it at the same point of the same step (it is a collective).
class StopCheck {
 public:
  // train.time_limit_minutes; 0 = no limit.
  explicit StopCheck(double time_limit_minutes);

  // Whether to stop now, the same on every rank of `comm`: a stop signal on any rank, or,
  // with a limit, the run's time so far plus the longest step so far (the time between
  // two polls, the first measured from construction) would pass the limit on any rank.
  // Returns the reason ("" = go on).
  std::string poll(Communicator& comm);

 private:
  std::string reason_of(int64_t code) const;  // of an agreed code (0 = "")

  double limit_s_ = 0;
  double longest_step_s_ = 0;
  std::chrono::steady_clock::time_point last_;
};

// train.save_every_minutes: whether a step boundary is due a checkpoint because that many
// minutes have passed since the last one (or since construction). Every rank of the
// communicator passed to due() must call it at the same step boundary (a collective when
// the interval is set; none when it is 0).
class SaveTimer {
 public:
  explicit SaveTimer(double minutes);  // 0 = never due
  // True on every rank when the interval has passed on any rank.
  bool due(Communicator& comm);
  // A checkpoint was written now: the interval starts again.
  void saved() { last_ = std::chrono::steady_clock::now(); }

 private:
  double interval_s_ = 0;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace zeroth
