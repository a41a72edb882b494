// Sandboxed execution of untrusted programs (code rewards): one program run per
// SandboxJob, inside bubblewrap, with rlimits, a wall-clock timeout and output caps.
//
// Owns: building the bwrap command line, fork/exec (no shell), feeding stdin and
// reading stdout/stderr with poll, killing the whole sandbox on timeout or output
// overflow, per-run uid slots, and the bounded SandboxPool. Must not: interpret
// the program's output (that is code_reward.h's job), expose any host path other
// than the read-only system directories, or pass the caller's environment on.
//
// Containment (docs/sandbox.md has the full design):
//  * bwrap with new IPC, PID, network, UTS and cgroup namespaces, --die-with-parent,
//    --new-session; /usr (and the /bin, /lib, /lib64, /sbin links) read-only, a fresh
//    /proc and /dev, a private size-capped tmpfs /tmp (the only writable place), no
//    /root, /home, working tree or host /tmp; --clearenv plus PATH/HOME/LANG.
//  * The program runs as an unprivileged uid with no capabilities and no_new_privs
//    (setpriv inside the sandbox when the caller is root; the caller's uid in a user
//    namespace otherwise). Each concurrent run gets its own uid (uid_base + slot), so
//    RLIMIT_NPROC bounds one run's processes and threads without touching another's.
//  * rlimits set in the forked child before exec and inherited by the program: CPU
//    seconds, address space, processes, file size, open files, no core dumps; soft =
//    hard, so the program cannot raise them.
//  * Timeout / output overflow: SIGKILL to the sandbox's PID-namespace init (its pid
//    comes from bwrap --info-fd), which makes the kernel kill every process in the
//    namespace (the bwrap process group only as a fallback). run() returns only after
//    bwrap is reaped and init's pidfd reports its exit, i.e. after the namespace is
//    empty: nothing outlives a run. CPU: soft = cpu_seconds, hard = soft + 1 s.
//  * mode None (config `sandbox: none`) runs the program directly with the same
//    rlimits, timeout and caps but no isolation; it logs a warning on every run. Its
//    files are in a private directory (the working directory and HOME) that every
//    "/tmp/" in argv names, so a job addresses /tmp/NAME in both modes.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

namespace zeroth {

enum class SandboxMode { Bwrap, None };

// Parses "bwrap" or "none"; false on anything else.
bool parse_sandbox_mode(const std::string& s, SandboxMode* out);
const char* sandbox_mode_name(SandboxMode mode);

struct SandboxLimits {
  double wall_seconds = 10.0;             // wall clock; the whole sandbox is killed after it
  int cpu_seconds = 5;                    // RLIMIT_CPU per process: SIGXCPU, SIGKILL 1 s later
  int64_t memory_bytes = int64_t(1) << 30;  // RLIMIT_AS per process
  int max_processes = 64;                 // RLIMIT_NPROC: processes + threads of the run's uid
  int64_t file_size_bytes = int64_t(16) << 20;  // RLIMIT_FSIZE (largest file written)
  int open_files = 64;                    // RLIMIT_NOFILE
  int64_t tmp_bytes = int64_t(64) << 20;  // size of the private /tmp tmpfs (bwrap mode)
  int64_t output_bytes = int64_t(1) << 20;  // cap on captured stdout, and on stderr
};

// Throws ConfigError naming `where` (e.g. "reward.code.run_limits") on a non-positive limit.
void validate_sandbox_limits(const SandboxLimits& limits, const std::string& where);

struct SandboxConfig {
  SandboxMode mode = SandboxMode::Bwrap;
  std::string bwrap_path = "/usr/bin/bwrap";
  std::string setpriv_path = "/usr/bin/setpriv";  // drops root to the run's uid
  // Read-only system paths bound at the same place (missing ones are skipped).
  std::vector<std::string> ro_paths = {"/usr", "/etc/alternatives", "/etc/ld.so.cache"};
  // Concurrent runs allowed (each has its own uid); 0 = 4 x hardware concurrency: a
  // run mostly waits on namespace set-up and teardown in the kernel, not on a core
  // (measured on 2 cores: 35 runs/s with 2 slots, 60-70 with 8).
  int max_concurrent = 0;
  // Runs as uid/gid uid_base + slot (slot in [0, max_concurrent)) when the caller is
  // root. Pick a range no real user or service uses.
  int64_t uid_base = 2000000;
  SandboxLimits limits;  // defaults for jobs that do not set their own
};

// A file created in the sandbox's /tmp before the program starts (owned by root,
// read-only for the program unless `writable`).
struct SandboxFile {
  std::string name;      // relative to /tmp; no "..", no leading '/'
  std::string content;
  bool executable = false;
  bool writable = false;
};

struct SandboxJob {
  std::vector<std::string> argv;  // argv[0]: absolute path as seen inside the sandbox
  std::string stdin_data;         // written to the program's stdin, then EOF
  std::vector<SandboxFile> files;
  bool use_default_limits = true;  // false: use `limits` below
  SandboxLimits limits;
};

struct SandboxResult {
  bool started = false;      // bwrap set the sandbox up and exec'd the program
  int exit_code = -1;        // exit status when it exited normally, else -1
  int term_signal = 0;       // signal that ended it (0 when it exited)
  bool timed_out = false;    // killed at the wall-clock limit
  bool cpu_exceeded = false;  // ended by SIGXCPU at the RLIMIT_CPU soft limit
  bool memory_exceeded = false;  // an allocation failed at the memory limit (see docs)
  bool output_exceeded = false;  // stdout or stderr passed output_bytes; killed
  std::string stdout_data;   // at most output_bytes
  std::string stderr_data;   // at most output_bytes
  double wall_seconds = 0.0;
  // user + system time wait4 reports for the child we forked. In bwrap mode that is
  // bwrap's own time (the program is reaped inside the namespace), so it is not the
  // program's CPU time; cpu_exceeded is the reliable signal.
  double cpu_seconds = 0.0;
  std::string sandbox_error;  // why the sandbox itself failed (then started == false)

  bool exited_ok() const { return started && exit_code == 0 && !timed_out && !output_exceeded; }
};

// Runs jobs. Thread-safe: run() may be called from many threads; at most
// max_concurrent run at once (the others wait for a slot).
class Sandbox {
 public:
  // Throws ConfigError when mode is Bwrap and bwrap (or setpriv, as root) is missing or
  // not executable: the message says to install `bubblewrap` or set `sandbox: none`.
  explicit Sandbox(SandboxConfig config);
  SandboxResult run(const SandboxJob& job) const;
  const SandboxConfig& config() const { return config_; }
  int max_concurrent() const { return n_slots_; }

 private:
  int acquire_slot() const;
  void release_slot(int slot) const;
  SandboxConfig config_;
  bool as_root_ = false;
  int n_slots_ = 1;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::vector<int> free_slots_;
};

// A bounded pool of worker threads that run sandbox jobs asynchronously, so reward
// checking overlaps generation. submit() never blocks; jobs run in FIFO order.
class SandboxPool {
 public:
  // workers <= 0: the sandbox's max_concurrent.
  explicit SandboxPool(const Sandbox& sandbox, int workers = 0);
  ~SandboxPool();  // finishes queued jobs, then joins
  SandboxPool(const SandboxPool&) = delete;
  SandboxPool& operator=(const SandboxPool&) = delete;

  std::future<SandboxResult> submit(SandboxJob job);
  const Sandbox& sandbox() const { return sandbox_; }
  int workers() const { return static_cast<int>(threads_.size()); }

 private:
  void worker_loop();
  const Sandbox& sandbox_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::queue<std::pair<SandboxJob, std::promise<SandboxResult>>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace zeroth
