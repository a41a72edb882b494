// sweep.h: running a sweep's trials: child processes of `zeroth train` (directly or
// under launch/zeroth-local.sh), N at a time, with completion markers; or a Slurm job
// array script built on launch/slurm/zeroth-train.sbatch.
// Must not: decide trial settings (the plan did) or read metrics (sweep_report.cpp).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "zeroth/error.h"
#include "zeroth/run_stop.h"
#include "zeroth/sweep.h"

namespace zeroth {

namespace fs = std::filesystem;

namespace {

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,/=:+@%") ==
                        std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string join_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + shell_quote(a);
  return out;
}

std::string hostname() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw RuntimeError(strformat("cannot write '%s'", path.c_str()));
}

std::string self_exe() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("zeroth") : p.string();
}

// An exclusive flock on OUT/.sweep.lock for the life of the object (released by the
// kernel when the process ends, however it ends). RuntimeError when another process
// holds it.
class SweepLock {
 public:
  explicit SweepLock(const std::string& out_dir) {
    const std::string path = out_dir + "/.sweep.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw RuntimeError(strformat("cannot open '%s': %s", path.c_str(), std::strerror(errno)));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      std::string holder;
      char buf[64] = {0};
      if (::pread(fd_, buf, sizeof buf - 1, 0) > 0) holder = buf;
      ::close(fd_);
      throw RuntimeError(strformat(
          "%s: another `zeroth sweep` is running this sweep's trials%s; wait for it, or stop it "
          "(its trials resume from their checkpoints on the next run)",
          out_dir.c_str(), holder.empty() ? "" : (" (" + holder + ")").c_str()));
    }
    const std::string me = strformat("pid %d on %s", int(::getpid()), hostname().c_str());
    if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, me.data(), me.size(), 0) < 0) {
      // informational only
    }
  }
  ~SweepLock() { ::close(fd_); }
  SweepLock(const SweepLock&) = delete;
  SweepLock& operator=(const SweepLock&) = delete;

 private:
  int fd_ = -1;
};

// The sweep's own stop signals (local/mpirun executors): the first SIGINT, SIGTERM or
// SIGUSR1 stops starting trials and asks the running ones to stop at their next step with
// a checkpoint (SIGUSR1, which mpirun forwards); a later SIGINT/SIGTERM is passed on as
// SIGTERM (they stop at once). The handler only records; the wait loop forwards.
volatile std::sig_atomic_t g_sweep_signal = 0;  // the first signal
volatile std::sig_atomic_t g_sweep_hard = 0;    // SIGINT/SIGTERM seen after the first signal

void on_sweep_signal(int sig) {
  if (g_sweep_signal == 0)
    g_sweep_signal = sig;
  else if (sig != SIGUSR1)
    g_sweep_hard = 1;
}

// Installs on_sweep_signal without SA_RESTART (waitpid returns EINTR) for the life of
// the object; the previous handlers come back after.
class SweepSignals {
 public:
  SweepSignals() {
    g_sweep_signal = 0;
    g_sweep_hard = 0;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sweep_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < 3; ++i) ::sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~SweepSignals() {
    for (size_t i = 0; i < 3; ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
  }
  SweepSignals(const SweepSignals&) = delete;
  SweepSignals& operator=(const SweepSignals&) = delete;

 private:
  static constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGUSR1};
  struct sigaction old_[3];
};

const char* sweep_signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : "a signal";
}

struct Job {
  size_t trial = 0;
  std::vector<std::string> argv;
  bool resume = false;
};

// fork + exec with stdout/stderr appended to `log`; extra environment in `env`.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log,
            const std::vector<std::pair<std::string, std::string>>& env) {
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw RuntimeError(strformat("cannot open '%s': %s", log.c_str(), std::strerror(errno)));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fd);
    throw RuntimeError(strformat("fork: %s", std::strerror(errno)));
  }
  if (pid == 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    for (const auto& kv : env) ::setenv(kv.first.c_str(), kv.second.c_str(), 1);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "zeroth sweep: cannot run '%s': %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(fd);
  return pid;
}

std::string status_text(int status) {
  if (WIFEXITED(status)) return strformat("exit %d", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return strformat("signal %d", WTERMSIG(status));
  return strformat("status %d", status);
}

// "--nodes=4" -> "nodes"; "-N 4" is not accepted (the plan writes long options only).
std::string option_name(const std::string& opt) {
  std::string s = opt;
  while (!s.empty() && s[0] == '-') s.erase(0, 1);
  return s.substr(0, s.find_first_of("= "));
}

SweepRunResult run_slurm(const SweepPlan& plan, const SweepRunOptions& o, const std::vector<size_t>& pending,
                         const std::string& bin) {
  SweepRunResult r;
  const std::string launch = o.launch_dir.empty() ? find_checkout_file("launch", bin) : o.launch_dir;
  const std::string tmpl = launch + "/slurm/zeroth-train.sbatch";
  std::ifstream in(tmpl);
  if (launch.empty() || !in)
    throw RuntimeError(strformat("cannot find launch/slurm/zeroth-train.sbatch (looked from '%s' and the working "
                                 "directory; set ZEROTH_ROOT to the checkout)", bin.c_str()));
  // The template's #SBATCH options, with the sweep's own replacing those of the same name.
  std::vector<std::string> options;
  for (std::string line; std::getline(in, line);)
    if (line.compare(0, 8, "#SBATCH ") == 0) options.push_back(line.substr(8));
  std::vector<std::string> extra = {"--job-name=zeroth-sweep", "--output=" + plan.out_dir + "/slurm-%A_%a.out"};
  std::string array = strformat("--array=0-%zu", pending.size() - 1);
  if (o.parallel > 0) array += strformat("%%%d", o.parallel);
  extra.push_back(array);
  for (const auto& s : o.sbatch_options) extra.push_back(s);
  for (const auto& e : extra) {
    options.erase(std::remove_if(options.begin(), options.end(),
                                 [&](const std::string& t) { return option_name(t) == option_name(e); }),
                  options.end());
    options.push_back(e);
  }
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# zeroth sweep: one Slurm array task per trial of " << plan.out_dir << "/sweep.json that was not\n"
    << "# done when this script was written. Each task runs " << tmpl << "\n"
    << "# on OUT/<trial> (it resumes a trial with checkpoints) and writes OUT/<trial>/DONE or FAILED.\n"
    << "# Written by `zeroth sweep --executor slurm`; submit with: sbatch " << plan.out_dir << "/sweep.sbatch\n";
  for (const auto& opt : options) s << "#SBATCH " << opt << "\n";
  s << "set -uo pipefail\n"
    << "out=" << shell_quote(plan.out_dir) << "\n"
    << "trials=(";
  for (size_t i : pending) s << "\n  " << shell_quote(plan.trials[i].name);
  s << "\n)\n"
    << "trial=\"${trials[${SLURM_ARRAY_TASK_ID:?not a Slurm array task}]}\"\n"
    << "dir=\"$out/$trial\"\n"
    << "if [[ -f \"$dir/DONE\" ]]; then echo \"zeroth sweep: $trial is done; skipped\" >&2; exit 0; fi\n"
    << "export ZEROTH_BIN=\"${ZEROTH_BIN:-" << bin << "}\"\n"
    << "echo \"$(hostname) $$ slurm:${SLURM_JOB_ID:-?}\" > \"$dir/RUNNING\"\n"
    << "# SIGUSR1 (the template's --signal=B:USR1@600, before the time limit) goes on to the trial,\n"
    << "# which stops after its step with a checkpoint (exit 75): no FAILED, the next run resumes it.\n"
    << "bash " << shell_quote(tmpl) << " \"$dir/config.yaml\" \"$dir\" &\n"
    << "pid=$!\n"
    << "interrupted=0\n"
    << "trap 'interrupted=1; kill -USR1 \"$pid\" 2>/dev/null || true' USR1\n"
    << "trap 'interrupted=1; kill -TERM \"$pid\" 2>/dev/null || true' TERM\n"
    << "while :; do\n"
    << "  interrupted=0; rc=0; wait \"$pid\" || rc=$?\n"
    << "  if ((interrupted && rc > 128)); then\n"
    << "    if kill -0 \"$pid\" 2>/dev/null; then continue; fi\n"
    << "    rc=0; wait \"$pid\" 2>/dev/null || rc=$?\n"
    << "  fi\n"
    << "  break\n"
    << "done\n"
    << "rm -f \"$dir/RUNNING\"\n"
    << "if ((rc == 0)); then\n"
    << "  echo \"exit 0\" > \"$dir/DONE\"; rm -f \"$dir/FAILED\"\n"
    << "elif ((rc == " << kExitStopped << ")); then\n"
    << "  echo \"zeroth sweep: $trial stopped with a checkpoint; the next run resumes it\" >&2; rm -f \"$dir/FAILED\"\n"
    << "else\n"
    << "  echo \"exit $rc\" > \"$dir/FAILED\"\n"
    << "fi\n"
    << "exit $rc\n";
  r.sbatch_script = plan.out_dir + "/sweep.sbatch";
  write_file(r.sbatch_script, s.str());
  ::chmod(r.sbatch_script.c_str(), 0755);
  const std::vector<std::string> submit = {o.sbatch_bin, r.sbatch_script};
  r.commands.push_back(join_command(submit));
  if (o.dry_run) {
    std::printf("%s", s.str().c_str());
    std::printf("# dry run: would submit: %s\n", r.commands[0].c_str());
    return r;
  }
  std::printf("zeroth sweep: submitting %zu trial(s): %s\n", pending.size(), r.commands[0].c_str());
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) throw RuntimeError(strformat("fork: %s", std::strerror(errno)));
  if (pid == 0) {
    std::vector<char*> a = {const_cast<char*>(submit[0].c_str()), const_cast<char*>(submit[1].c_str()), nullptr};
    ::execvp(a[0], a.data());
    std::fprintf(stderr, "zeroth sweep: cannot run '%s': %s\n", submit[0].c_str(), std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw RuntimeError(strformat("'%s' failed (%s)", r.commands[0].c_str(), status_text(status).c_str()));
  r.started = static_cast<int>(pending.size());
  return r;
}

}  // namespace

// `rel` (e.g. "launch/zeroth-local.sh") in the checkout: $ZEROTH_ROOT, then up to three
// levels above the binary (build/zeroth -> the repository), then the working directory.
std::string find_checkout_file(const std::string& rel, const std::string& bin) {
  std::vector<fs::path> roots;
  if (const char* r = std::getenv("ZEROTH_ROOT")) roots.emplace_back(r);
  fs::path d = fs::absolute(bin).parent_path();
  for (int i = 0; i < 3 && !d.empty(); ++i, d = d.parent_path()) roots.push_back(d);
  roots.push_back(fs::current_path());
  for (const auto& r : roots)
    if (fs::exists(r / rel)) return (r / rel).lexically_normal().string();
  return "";
}

SweepRunResult run_sweep(const SweepPlan& plan, const SweepRunOptions& o) {
  if (o.executor != "local" && o.executor != "mpirun" && o.executor != "slurm")
    throw UsageError(strformat("--executor: expected local, mpirun or slurm, found '%s'", o.executor.c_str()));
  if (o.np < 1) throw UsageError("--np: expected an integer >= 1");
  const std::string bin = o.zeroth_bin.empty() ? self_exe() : o.zeroth_bin;
  SweepRunResult r;
  std::vector<size_t> pending;
  std::vector<bool> resume(plan.trials.size(), false);
  for (size_t i = 0; i < plan.trials.size(); ++i) {
    const auto& t = plan.trials[i];
    const TrialState st = read_trial_state(plan.out_dir + "/" + t.name);
    if (st.state == "done" || st.state == "running") {
      std::printf("[%zu/%zu] %s: %s%s; skipped\n", i + 1, plan.trials.size(), t.name.c_str(), st.state.c_str(),
                  st.detail.empty() ? "" : (" (" + st.detail + ")").c_str());
      ++r.skipped;
      if (st.state == "done") ++r.done;
      continue;
    }
    resume[i] = st.has_checkpoint;
    pending.push_back(i);
  }
  if (pending.empty()) {
    std::printf("zeroth sweep: nothing to run (%d done, %d running elsewhere)\n", r.done, r.skipped - r.done);
    return r;
  }
  if (o.executor == "slurm") {
    SweepRunResult s = run_slurm(plan, o, pending, bin);
    s.done = r.done;
    s.skipped = r.skipped;
    return s;
  }

  const int parallel = std::max(1, o.parallel);
  const int cores = o.cores > 0 ? o.cores : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = std::max(1, cores / (parallel * o.np));
  std::vector<Job> jobs;
  std::string launcher;
  if (o.executor == "mpirun" && o.train_shell.empty()) {
    const std::string launch = o.launch_dir.empty() ? find_checkout_file("launch", bin) : o.launch_dir;
    launcher = launch + "/zeroth-local.sh";
    if (launch.empty() || !fs::exists(launcher))
      throw RuntimeError(strformat("cannot find launch/zeroth-local.sh (looked from '%s' and the working "
                                   "directory; set ZEROTH_ROOT to the checkout)", bin.c_str()));
  }
  for (size_t i : pending) {
    const std::string dir = plan.out_dir + "/" + plan.trials[i].name;
    Job j;
    j.trial = i;
    j.resume = resume[i];
    if (!o.train_shell.empty()) {
      j.argv = {"/bin/sh", "-c", "exec " + o.train_shell + " \"$@\"", "sh"};
    } else if (o.executor == "mpirun") {
      j.argv = {launcher, "-np", std::to_string(o.np), "--threads", std::to_string(threads), "--bin", bin, "--"};
    } else {
      j.argv = {bin};
    }
    const std::vector<std::string> train =
        j.resume ? std::vector<std::string>{"train", "--resume", dir}
                 : std::vector<std::string>{"train", "--config", dir + "/config.yaml", "--run-dir", dir};
    j.argv.insert(j.argv.end(), train.begin(), train.end());
    j.argv.push_back("--set");
    j.argv.push_back(strformat("run.threads=%d", threads));
    r.commands.push_back(join_command(j.argv));
    jobs.push_back(std::move(j));
  }
  if (o.dry_run) {
    for (size_t k = 0; k < jobs.size(); ++k)
      std::printf("# %s (%s)\n%s\n", plan.trials[jobs[k].trial].name.c_str(), jobs[k].resume ? "resume" : "fresh",
                  r.commands[k].c_str());
    std::printf("# dry run: %zu trial(s) to run, %d at a time, %d thread(s) each\n", jobs.size(), parallel, threads);
    return r;
  }

  // One sweep process per directory: a second one would start the same pending trials.
  SweepLock lock(plan.out_dir);
  std::vector<std::pair<std::string, std::string>> env = {{"OMP_NUM_THREADS", std::to_string(threads)}};
  // Passive OpenMP waiting unless the user chose: trials share the machine with each
  // other and with the sweep itself; libgomp's spinning workers starve OpenBLAS and the
  // other trials (docs/perf.md, "libgomp's active waiting").
  if (!std::getenv("OMP_WAIT_POLICY")) env.emplace_back("OMP_WAIT_POLICY", "PASSIVE");
  const std::string host = hostname();
  std::map<pid_t, size_t> running;  // pid -> index into jobs
  size_t next = 0;
  const size_t n = plan.trials.size();
  SweepSignals signals;
  bool asked = false, told_hard = false;  // forwarded SIGUSR1 / SIGTERM to the trials
  while ((next < jobs.size() && !g_sweep_signal) || !running.empty()) {
    if (g_sweep_signal && !asked) {
      asked = true;
      r.signal = int(g_sweep_signal);
      std::printf("zeroth sweep: %s: no more trials start; the %zu running stop at their next step with a "
                  "checkpoint (SIGINT/SIGTERM again: stop them at once)\n",
                  sweep_signal_name(r.signal), running.size());
      std::fflush(stdout);
      for (const auto& kv : running) ::kill(kv.first, SIGUSR1);
    }
    if (g_sweep_hard && !told_hard) {
      told_hard = true;
      for (const auto& kv : running) ::kill(kv.first, SIGTERM);
    }
    while (!g_sweep_signal && next < jobs.size() && running.size() < static_cast<size_t>(parallel)) {
      const Job& j = jobs[next];
      const auto& t = plan.trials[j.trial];
      const std::string dir = plan.out_dir + "/" + t.name;
      const pid_t pid = spawn(j.argv, dir + "/train.log", env);
      write_file(dir + "/RUNNING", strformat("%s %ld\n", host.c_str(), static_cast<long>(pid)));
      std::printf("[%zu/%zu] %s: %s (pid %ld, log %s/train.log)\n", j.trial + 1, n, t.name.c_str(),
                  j.resume ? "resuming from its checkpoint" : "starting", static_cast<long>(pid), dir.c_str());
      std::fflush(stdout);
      running[pid] = next++;
      ++r.started;
    }
    // Polled, so a signal that lands just before the wait is still seen within 50 ms.
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid == 0 || (pid < 0 && errno == EINTR)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    if (pid < 0) throw RuntimeError(strformat("waitpid: %s", std::strerror(errno)));
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const Job& j = jobs[it->second];
    running.erase(it);
    const auto& t = plan.trials[j.trial];
    const std::string dir = plan.out_dir + "/" + t.name;
    ::unlink((dir + "/RUNNING").c_str());
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      write_file(dir + "/DONE", "exit 0\n");
      ::unlink((dir + "/FAILED").c_str());
      ++r.done;
      std::printf("[%zu/%zu] %s: done\n", j.trial + 1, n, t.name.c_str());
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == kExitStopped) {
      ::unlink((dir + "/FAILED").c_str());  // interrupted: the next run resumes it
      ++r.stopped;
      std::printf("[%zu/%zu] %s: stopped with a checkpoint (exit %d); the next run resumes it\n", j.trial + 1, n,
                  t.name.c_str(), kExitStopped);
    } else {
      write_file(dir + "/FAILED", status_text(status) + "\n");
      ++r.failed;
      std::printf("[%zu/%zu] %s: FAILED (%s); see %s/train.log\n", j.trial + 1, n, t.name.c_str(),
                  status_text(status).c_str(), dir.c_str());
    }
    std::fflush(stdout);
  }
  if (g_sweep_signal) r.signal = int(g_sweep_signal);  // also one that came before any trial ran
  return r;
}

}  // namespace zeroth
