// Tests of run_stop.h: the stop-signal handlers (a first SIGUSR1/SIGTERM/SIGINT asks for a
// stop; a second SIGTERM/SIGINT ends the process at once, SIGUSR1 never does; checked in
// forked children) and StopCheck (a signal or the time limit becomes the agreed reason;
// a limit only stops when the longest step would overrun it), and SaveTimer (the interval
// of train.save_every_minutes).
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <thread>

#include "zeroth/backend.h"
#include "zeroth/comm.h"
#include "zeroth/run_stop.h"

using namespace zeroth;

namespace {

// Runs fn in a forked child (stderr silenced); returns its wait status.
template <class Fn>
int in_child(Fn fn) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::freopen("/dev/null", "w", stderr);
    fn();
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return status;
}

}  // namespace

TEST_CASE("stop signals: the first asks for a stop, a second SIGTERM/SIGINT ends the process") {
  // One SIGTERM: the process goes on, and remembers it.
  int st = in_child([] {
    install_stop_handlers();
    std::raise(SIGTERM);
    ::_exit(stop_signal() == SIGTERM ? 0 : 1);
  });
  CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
  // SIGUSR1 twice, then SIGINT: still alive (SIGUSR1 never escalates); the first one counts.
  st = in_child([] {
    install_stop_handlers();
    std::raise(SIGUSR1);
    std::raise(SIGUSR1);
    std::raise(SIGINT);
    ::_exit(stop_signal() == SIGUSR1 ? 0 : 1);
  });
  CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
  // SIGINT then SIGTERM: the second ends the process with its default action.
  st = in_child([] {
    install_stop_handlers();
    std::raise(SIGINT);
    std::raise(SIGTERM);
    ::_exit(0);
  });
  CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM));
  // install_stop_handlers forgets an earlier request.
  st = in_child([] {
    install_stop_handlers();
    std::raise(SIGINT);
    install_stop_handlers();
    std::raise(SIGINT);
    ::_exit(stop_signal() == SIGINT ? 0 : 1);
  });
  CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
}

TEST_CASE("StopCheck: a signal or the time limit, agreed over the communicator") {
  std::unique_ptr<Backend> be = make_cpu_backend(1);
  std::unique_ptr<Communicator> comm = make_local_communicator(be.get());
  int st = in_child([&] {
    install_stop_handlers(false);
    StopCheck none(0);
    if (!none.poll(*comm).empty()) ::_exit(1);
    std::raise(SIGUSR1);
    if (none.poll(*comm) != "SIGUSR1") ::_exit(2);
    ::_exit(0);
  });
  CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));

  install_stop_handlers(false);  // the clock starts now
  // A limit far away: no stop.
  StopCheck far(60);
  CHECK(far.poll(*comm).empty());
  // A 2 s limit: at ~0.3 s with a 0.3 s step, 0.3 + 0.3 < 2 goes on; after a 1.2 s step
  // (1.5 s used), 1.5 + 1.2 > 2: the next step would overrun it. (Late wake-ups only make
  // the second poll later; the first has 1.4 s of room.)
  install_stop_handlers(false);
  StopCheck soon(2.0 / 60.0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(soon.poll(*comm).empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  const std::string why = soon.poll(*comm);
  CHECK_THAT(why, Catch::StartsWith("train.time_limit_minutes"));
  CHECK_THAT(why, Catch::Contains("minutes used"));
}

TEST_CASE("SaveTimer: due once the interval has passed since the last checkpoint, never at 0") {
  std::unique_ptr<Backend> be = make_cpu_backend(1);
  std::unique_ptr<Communicator> comm = make_local_communicator(be.get());
  SaveTimer off(0);
  CHECK_FALSE(off.due(*comm));
  // A 0.2 s interval: not due at once, due after 0.3 s, not due again right after a save.
  SaveTimer timer(0.2 / 60.0);
  CHECK_FALSE(timer.due(*comm));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(timer.due(*comm));
  CHECK(timer.due(*comm));  // still due until a checkpoint is written
  timer.saved();
  CHECK_FALSE(timer.due(*comm));
}
