// Sandbox::run (sandbox.h): builds the bwrap command line, forks and execs it (no
// shell), pumps stdin/stdout/stderr with poll, enforces the wall clock and output
// caps, kills the whole PID namespace, reaps, and classifies how the run ended.
// Must not: interpret program output beyond the memory-exhaustion markers, or leave
// a process, fd or temporary file behind when it returns.
#include "zeroth/sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "zeroth/error.h"
#include "zeroth/log.h"

#define ZT_CHECK_SYS(call)                                                              \
  ZT_CHECK_LIB("libc", call, zt_status_ != -1, std::string(std::strerror(errno)))

namespace zeroth {
namespace {

using Clock = std::chrono::steady_clock;

// An fd closed on scope exit.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

void make_pipe(Fd* read_end, Fd* write_end) {
  int p[2];
  ZT_CHECK_SYS(::pipe2(p, O_CLOEXEC));
  read_end->fd = p[0];
  write_end->fd = p[1];
}

// write(2) to a pipe whose reader may be gone (a program that exits, or crashes, before
// reading its stdin): EPIPE, never the SIGPIPE that would end this process. SIGPIPE is
// blocked in this thread around the write, and the one the write raised is consumed.
ssize_t write_no_sigpipe(int fd, const void* data, size_t len) {
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigemptyset(&pending);
  ::sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const ssize_t n = ::write(fd, data, len);
  const int saved = errno;
  if (n < 0 && saved == EPIPE && !was_pending) {
    const struct timespec zero = {0, 0};
    while (::sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return n;
}

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  ZT_CHECK_SYS(flags);
  ZT_CHECK_SYS(::fcntl(fd, F_SETFL, flags | O_NONBLOCK));
}

// A memfd (CLOEXEC) holding `content`, positioned at 0, for bwrap --file.
int make_memfd(const std::string& name, const std::string& content) {
  int fd = static_cast<int>(::syscall(SYS_memfd_create, name.c_str(), MFD_CLOEXEC));
  ZT_CHECK_SYS(fd);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      lib_fail("libc", __FILE__, __LINE__, "write(memfd)", std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  ZT_CHECK_SYS(::lseek(fd, 0, SEEK_SET));
  return fd;
}

bool valid_file_name(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.size() > 200) return false;
  for (char c : name)
    if (c == '/' || c == '\0') return false;
  return true;
}

// What the forked child needs, all prepared before fork (the child only makes
// async-signal-safe calls).
struct ChildPlan {
  std::vector<std::string> args;     // argv of the executable
  std::vector<std::string> env;      // NAME=value
  std::vector<int> keep_fds;         // fds >= 3 the child keeps (CLOEXEC cleared)
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  std::string chdir_to;              // empty: stay
  struct rlimit limits[8];
  int resources[8];
  int n_limits = 0;
};

void add_limit(ChildPlan* plan, int resource, rlim_t value, rlim_t hard) {
  ZT_ASSERT(plan->n_limits < 8, "too many rlimits");
  plan->resources[plan->n_limits] = resource;
  plan->limits[plan->n_limits].rlim_cur = value;
  plan->limits[plan->n_limits].rlim_max = hard;
  ++plan->n_limits;
}

[[noreturn]] void child_exec(const ChildPlan& plan, char* const* argv, char* const* envp) {
  ::setsid();  // own session and process group: the whole group can be killed
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s) sigaction(s, &dfl, nullptr);  // errors on KILL/STOP: fine
  if (::dup2(plan.stdin_fd, 0) < 0 || ::dup2(plan.stdout_fd, 1) < 0 || ::dup2(plan.stderr_fd, 2) < 0)
    ::_exit(126);
  // Close every fd except 0-2 and keep_fds (sorted): nothing of the host leaks in.
  unsigned int next = 3;
  for (int fd : plan.keep_fds) {
    if (static_cast<unsigned int>(fd) > next) ::syscall(SYS_close_range, next, fd - 1, 0);
    ::fcntl(fd, F_SETFD, 0);
    next = static_cast<unsigned int>(fd) + 1;
  }
  ::syscall(SYS_close_range, next, ~0U, 0);
  if (!plan.chdir_to.empty() && ::chdir(plan.chdir_to.c_str()) != 0) ::_exit(126);
  for (int i = 0; i < plan.n_limits; ++i)
    if (::setrlimit(plan.resources[i], &plan.limits[i]) != 0) ::_exit(126);
  ::execve(argv[0], argv, envp);
  ::_exit(127);
}

// Parses "child-pid": N out of bwrap's --info-fd JSON; 0 if absent.
pid_t parse_child_pid(const std::string& info) {
  size_t k = info.find("\"child-pid\"");
  if (k == std::string::npos) return 0;
  k = info.find(':', k);
  if (k == std::string::npos) return 0;
  ++k;
  while (k < info.size() && (info[k] == ' ' || info[k] == '\t')) ++k;
  long v = 0;
  bool any = false;
  while (k < info.size() && info[k] >= '0' && info[k] <= '9') {
    v = v * 10 + (info[k] - '0');
    any = true;
    ++k;
  }
  return any ? static_cast<pid_t>(v) : 0;
}

bool has_memory_marker(const std::string& err) {
  size_t from = err.size() > 4096 ? err.size() - 4096 : 0;
  std::string_view tail(err.data() + from, err.size() - from);
  return tail.find("MemoryError") != std::string_view::npos ||
         tail.find("std::bad_alloc") != std::string_view::npos ||
         tail.find("Cannot allocate memory") != std::string_view::npos ||
         tail.find("out of memory") != std::string_view::npos;
}

bool is_executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

bool is_symlink_to(const std::string& path, const std::string& target) {
  std::error_code ec;
  if (!std::filesystem::is_symlink(path, ec)) return false;
  return std::filesystem::read_symlink(path, ec).string() == target;
}

// Removes a directory tree made for a mode-None run.
void remove_tree(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) ZT_LOG_WARN("sandbox: could not remove %s: %s", dir.c_str(), ec.message().c_str());
}

}  // namespace

bool parse_sandbox_mode(const std::string& s, SandboxMode* out) {
  if (s == "bwrap") *out = SandboxMode::Bwrap;
  else if (s == "none") *out = SandboxMode::None;
  else return false;
  return true;
}

const char* sandbox_mode_name(SandboxMode mode) {
  return mode == SandboxMode::Bwrap ? "bwrap" : "none";
}

void validate_sandbox_limits(const SandboxLimits& l, const std::string& where) {
  auto need = [&](bool ok, const char* key, double found) {
    ZT_THROW_IF_NOT(ok, ConfigError, "%s.%s: expected a positive value, found %g", where.c_str(),
                    key, found);
  };
  need(l.wall_seconds > 0 && std::isfinite(l.wall_seconds), "wall_seconds", l.wall_seconds);
  need(l.cpu_seconds > 0, "cpu_seconds", l.cpu_seconds);
  need(l.memory_bytes >= (int64_t(16) << 20), "memory_bytes (>= 16 MiB)", double(l.memory_bytes));
  need(l.max_processes > 0, "max_processes", l.max_processes);
  need(l.file_size_bytes > 0, "file_size_bytes", double(l.file_size_bytes));
  need(l.open_files >= 16, "open_files (>= 16)", l.open_files);
  need(l.tmp_bytes > 0, "tmp_bytes", double(l.tmp_bytes));
  need(l.output_bytes > 0, "output_bytes", double(l.output_bytes));
}

Sandbox::Sandbox(SandboxConfig config) : config_(std::move(config)) {
  validate_sandbox_limits(config_.limits, "sandbox.limits");
  as_root_ = ::geteuid() == 0;
  if (config_.mode == SandboxMode::Bwrap) {
    ZT_THROW_IF_NOT(is_executable(config_.bwrap_path), ConfigError,
                    "sandbox: bubblewrap not found at '%s' (expected an executable bwrap). Install "
                    "the Debian package `bubblewrap`, or set `sandbox: none` to run generated code "
                    "WITHOUT isolation",
                    config_.bwrap_path.c_str());
    ZT_THROW_IF_NOT(!as_root_ || is_executable(config_.setpriv_path), ConfigError,
                    "sandbox: setpriv not found at '%s' (needed to drop root inside the sandbox; "
                    "Debian package util-linux)",
                    config_.setpriv_path.c_str());
  }
  ZT_THROW_IF_NOT(config_.max_concurrent >= 0, ConfigError,
                  "sandbox.max_concurrent: expected >= 0 (0 = cores), found %d",
                  config_.max_concurrent);
  ZT_THROW_IF_NOT(config_.uid_base > 0 && config_.uid_base < 4000000000LL, ConfigError,
                  "sandbox.uid_base: expected a uid in (0, 4e9), found %lld",
                  static_cast<long long>(config_.uid_base));
  int n = config_.max_concurrent;
  if (n == 0) n = 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_slots_ = n;
  free_slots_.reserve(static_cast<size_t>(n));
  for (int i = n - 1; i >= 0; --i) free_slots_.push_back(i);
}

int Sandbox::acquire_slot() const {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !free_slots_.empty(); });
  int slot = free_slots_.back();
  free_slots_.pop_back();
  return slot;
}

void Sandbox::release_slot(int slot) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    free_slots_.push_back(slot);
  }
  cv_.notify_one();
}

SandboxResult Sandbox::run(const SandboxJob& job) const {
  const SandboxLimits& lim = job.use_default_limits ? config_.limits : job.limits;
  if (!job.use_default_limits) validate_sandbox_limits(lim, "sandbox job limits");
  ZT_THROW_IF_NOT(!job.argv.empty() && !job.argv[0].empty() && job.argv[0][0] == '/', RuntimeError,
                  "sandbox job: argv[0] must be an absolute path, found '%s'",
                  job.argv.empty() ? "" : job.argv[0].c_str());
  for (const SandboxFile& f : job.files)
    ZT_THROW_IF_NOT(valid_file_name(f.name), RuntimeError,
                    "sandbox job: file name '%s' must be a plain name (no '/', not '..')",
                    f.name.c_str());

  const bool bwrap = config_.mode == SandboxMode::Bwrap;
  if (!bwrap)
    ZT_LOG_WARN("sandbox: mode 'none': running %s WITHOUT isolation (rlimits and timeout only)",
                job.argv[0].c_str());

  int slot = acquire_slot();
  struct SlotGuard {
    const Sandbox* s;
    int slot;
    ~SlotGuard() { s->release_slot(slot); }
  } slot_guard{this, slot};

  SandboxResult res;
  Fd in_r, in_w, out_r, out_w, err_r, err_w, info_r, info_w;
  make_pipe(&in_r, &in_w);
  make_pipe(&out_r, &out_w);
  make_pipe(&err_r, &err_w);
  std::vector<std::unique_ptr<Fd>> file_fds;
  std::string tmp_dir;  // mode None: the run's working directory
  struct TmpGuard {
    std::string* dir;
    ~TmpGuard() {
      if (!dir->empty()) remove_tree(*dir);
    }
  } tmp_guard{&tmp_dir};

  ChildPlan plan;
  plan.stdin_fd = in_r.fd;
  plan.stdout_fd = out_w.fd;
  plan.stderr_fd = err_w.fd;
  const std::string uid = std::to_string(config_.uid_base + slot);
  if (bwrap) {
    make_pipe(&info_r, &info_w);
    std::vector<std::string>& a = plan.args;
    a = {config_.bwrap_path, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
         "--unshare-cgroup-try", "--die-with-parent", "--new-session"};
    if (!as_root_) a.push_back("--unshare-user");
    for (const std::string& p : config_.ro_paths) {
      a.insert(a.end(), {"--ro-bind-try", p, p});
    }
    for (const char* top : {"bin", "lib", "lib64", "sbin"}) {
      std::string host = std::string("/") + top;
      std::string usr = std::string("usr/") + top;
      if (is_symlink_to(host, usr)) a.insert(a.end(), {"--symlink", usr, host});
      else a.insert(a.end(), {"--ro-bind-try", host, host});
    }
    a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size",
                       std::to_string(lim.tmp_bytes), "--tmpfs", "/tmp"});
    for (const SandboxFile& f : job.files) {
      file_fds.push_back(std::make_unique<Fd>(make_memfd(f.name, f.content)));
      int fd = file_fds.back()->fd;
      plan.keep_fds.push_back(fd);
      const char* perms = f.writable ? "0666" : (f.executable ? "0555" : "0444");
      a.insert(a.end(), {"--perms", perms, "--file", std::to_string(fd), "/tmp/" + f.name});
    }
    a.insert(a.end(), {"--chdir", "/tmp", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin",
                       "--setenv", "HOME", "/tmp", "--setenv", "LANG", "C.UTF-8", "--info-fd",
                       std::to_string(info_w.fd)});
    plan.keep_fds.push_back(info_w.fd);
    a.push_back("--");
    if (as_root_) {
      a.insert(a.end(), {config_.setpriv_path, "--reuid=" + uid, "--regid=" + uid,
                         "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                         "--no-new-privs", "--"});
    }
    a.insert(a.end(), job.argv.begin(), job.argv.end());
  } else {
    char templ[] = "/tmp/zeroth-sandbox-XXXXXX";
    ZT_CHECK_LIB("libc", ::mkdtemp(templ), zt_status_ != nullptr, std::string(std::strerror(errno)));
    tmp_dir = templ;
    for (const SandboxFile& f : job.files) {
      std::string path = tmp_dir + "/" + f.name;
      Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                   f.executable ? 0755 : 0644));
      ZT_CHECK_SYS(fd.fd);
      ZT_CHECK_SYS(::write(fd.fd, f.content.data(), f.content.size()));
    }
    // The job names its files /tmp/NAME, as inside bwrap: here that is the private
    // directory, so every "/tmp/" in the arguments (a path, or in a shell command) is it.
    for (const std::string& arg : job.argv) {
      std::string mapped;
      size_t from = 0;
      for (size_t at = arg.find("/tmp/"); at != std::string::npos; at = arg.find("/tmp/", from)) {
        mapped.append(arg, from, at - from).append(tmp_dir).append("/");
        from = at + 5;
      }
      plan.args.push_back(mapped.append(arg, from, std::string::npos));
    }
    plan.chdir_to = tmp_dir;
  }
  std::sort(plan.keep_fds.begin(), plan.keep_fds.end());
  plan.env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8",
              "HOME=" + (bwrap ? std::string("/tmp") : tmp_dir)};
  // CPU: SIGXCPU at the soft limit (reported as cpu_exceeded), SIGKILL one second
  // later for a program that ignores it. Every other limit: soft = hard.
  const rlim_t cpu = static_cast<rlim_t>(lim.cpu_seconds);
  add_limit(&plan, RLIMIT_CPU, cpu, cpu + 1);
  for (auto [resource, value] : {std::pair<int, int64_t>{RLIMIT_AS, lim.memory_bytes},
                                 {RLIMIT_NPROC, lim.max_processes},
                                 {RLIMIT_FSIZE, lim.file_size_bytes},
                                 {RLIMIT_NOFILE, lim.open_files},
                                 {RLIMIT_CORE, 0}})
    add_limit(&plan, resource, static_cast<rlim_t>(value), static_cast<rlim_t>(value));

  std::vector<char*> argv, envp;
  for (std::string& s : plan.args) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (std::string& s : plan.env) envp.push_back(s.data());
  envp.push_back(nullptr);

  const Clock::time_point start = Clock::now();
  pid_t pid = ::fork();
  ZT_CHECK_SYS(pid);
  if (pid == 0) child_exec(plan, argv.data(), envp.data());

  // Parent: keep only our ends.
  in_r.reset();
  out_w.reset();
  err_w.reset();
  info_w.reset();
  file_fds.clear();
  set_nonblocking(in_w.fd);
  set_nonblocking(out_r.fd);
  set_nonblocking(err_r.fd);
  if (info_r.fd >= 0) set_nonblocking(info_r.fd);

  const Clock::time_point deadline =
      start + std::chrono::microseconds(static_cast<int64_t>(lim.wall_seconds * 1e6));
  const size_t cap = static_cast<size_t>(lim.output_bytes);
  size_t stdin_off = 0;
  if (job.stdin_data.empty()) in_w.reset();
  std::string info;
  pid_t ns_init = 0;
  Fd ns_pidfd;  // a pidfd of the namespace's init: no pid-reuse races
  auto learn_init = [&]() {
    if (ns_init != 0 || info.find('}') == std::string::npos) return;
    ns_init = parse_child_pid(info);
    if (ns_init > 0) ns_pidfd.fd = static_cast<int>(::syscall(SYS_pidfd_open, ns_init, 0));
  };
  auto kill_init = [&]() {
    if (ns_pidfd.fd >= 0) ::syscall(SYS_pidfd_send_signal, ns_pidfd.fd, SIGKILL, nullptr, 0);
  };
  bool killed = false;
  Clock::time_point killed_at;
  // Kills the namespace's init: the kernel then kills every process in the namespace,
  // and bwrap reaps init (after the namespace is empty) and exits. Only when init is
  // unknown (mode None, or bwrap still setting up) is the process group killed at once;
  // killing bwrap itself would orphan init and return before the namespace is empty.
  auto kill_all = [&]() {
    if (killed) return;
    killed = true;
    killed_at = Clock::now();
    if (ns_pidfd.fd >= 0) kill_init();
    else ::kill(-pid, SIGKILL);
  };

  char buf[65536];
  while (out_r.fd >= 0 || err_r.fd >= 0 || info_r.fd >= 0) {
    struct pollfd pfd[4];
    Fd* which[4];
    int n = 0;
    for (Fd* f : {&out_r, &err_r, &info_r}) {
      if (f->fd < 0) continue;
      pfd[n] = {f->fd, POLLIN, 0};
      which[n++] = f;
    }
    if (in_w.fd >= 0) {
      pfd[n] = {in_w.fd, POLLOUT, 0};
      which[n++] = &in_w;
    }
    int64_t left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left_ms <= 0) {
      res.timed_out = !killed;
      kill_all();
      break;
    }
    int rc = ::poll(pfd, static_cast<nfds_t>(n), static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    if (rc < 0 && errno == EINTR) continue;
    ZT_CHECK_SYS(rc);
    for (int i = 0; i < n; ++i) {
      if (pfd[i].revents == 0) continue;
      Fd* f = which[i];
      if (f == &in_w) {
        ssize_t w = write_no_sigpipe(in_w.fd, job.stdin_data.data() + stdin_off, job.stdin_data.size() - stdin_off);
        if (w > 0) stdin_off += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || stdin_off == job.stdin_data.size())
          in_w.reset();  // done, or the program closed its stdin (EPIPE)
        continue;
      }
      ssize_t r = ::read(f->fd, buf, sizeof(buf));
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0) {
        f->reset();
        if (f == &info_r) learn_init();
        continue;
      }
      if (f == &info_r) {
        if (info.size() < 4096) info.append(buf, static_cast<size_t>(r));
        learn_init();
        continue;
      }
      std::string& dst = (f == &out_r) ? res.stdout_data : res.stderr_data;
      size_t room = cap - std::min(cap, dst.size());
      dst.append(buf, std::min(room, static_cast<size_t>(r)));
      if (static_cast<size_t>(r) > room && !killed) {
        res.output_exceeded = true;
        kill_all();
      }
    }
    if (killed) break;
  }
  in_w.reset();
  out_r.reset();
  err_r.reset();
  if (info_r.fd >= 0) {  // killed before bwrap reported: read what there is
    ssize_t r = ::read(info_r.fd, buf, sizeof(buf));
    if (r > 0) info.append(buf, static_cast<size_t>(r));
    info_r.reset();
  }
  learn_init();
  if (killed) kill_init();  // init reported after kill_all ran

  int status = 0;
  struct rusage ru;
  std::memset(&ru, 0, sizeof(ru));
  // All pipes are closed; bwrap exits once its namespace is empty. A program that
  // closed its stdout and stderr but keeps running still meets the deadline here.
  for (;;) {
    pid_t w = ::wait4(pid, &status, WNOHANG, &ru);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) ZT_CHECK_SYS(w);
    if (!killed && Clock::now() >= deadline) {
      res.timed_out = true;
      kill_all();
    }
    // bwrap should exit right after its init; if it does not, kill its group.
    if (killed && Clock::now() - killed_at > std::chrono::seconds(2)) ::kill(-pid, SIGKILL);
    ::usleep(killed ? 200 : 1000);
  }
  if (!bwrap) ::kill(-pid, SIGKILL);  // mode None: stragglers in the group
  // bwrap may exit as soon as its init reports the program's status, before init
  // itself has exited. Init's exit completes only once the kernel has killed every
  // process of the namespace, so wait for it: after this, nothing of the run is left.
  if (ns_pidfd.fd >= 0) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      struct pollfd pfd = {ns_pidfd.fd, POLLIN, 0};
      int rc;
      do rc = ::poll(&pfd, 1, 2000);
      while (rc < 0 && errno == EINTR);
      if (rc != 0) break;
      kill_init();  // still alive after 2 s: force it
    }
  }
  res.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  res.cpu_seconds = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                    1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);

  if (WIFEXITED(status)) {
    int code = WEXITSTATUS(status);
    if (bwrap && ns_init == 0) {
      // bwrap failed before the program started (bad mount, missing path).
      res.started = false;
      res.sandbox_error = "bwrap exited with " + std::to_string(code) + ": " +
                          res.stderr_data.substr(0, 2000);
    } else if (code == 127 && !bwrap && res.stderr_data.empty() && res.stdout_data.empty()) {
      res.started = false;
      res.sandbox_error = "could not execute " + job.argv[0];
    } else {
      res.started = true;
      // bwrap reports a program killed by signal S as exit status 128 + S.
      if (bwrap && code > 128 && code < 128 + NSIG) res.term_signal = code - 128;
      else res.exit_code = code;
    }
  } else if (WIFSIGNALED(status)) {
    res.started = !bwrap || ns_init > 0;
    res.term_signal = WTERMSIG(status);
  }
  if (res.term_signal == SIGXCPU) res.cpu_exceeded = true;
  if (res.started && res.exit_code != 0 && !res.timed_out && has_memory_marker(res.stderr_data))
    res.memory_exceeded = true;
  return res;
}

}  // namespace zeroth
