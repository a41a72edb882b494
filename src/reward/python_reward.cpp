// PythonRewardPool (python_reward.h): worker processes that run a user's Python reward
// function, the JSON-lines protocol with them, per-call timeouts and restarts.
// Must not: throw on a completion's content or on anything the function does at call
// time, leave a worker (or a process it started) behind, or let the function's prints
// reach the protocol.
#include "zeroth/python_reward.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include <nlohmann/json.hpp>

#include "zeroth/error.h"

namespace zeroth {

namespace {

using Clock = std::chrono::steady_clock;

// The worker program: imports the user's file, checks the function, then answers one
// request line with one reply line, on the socket that is its stdin and (duplicated
// before the user's code runs) its original stdout.
const char* const kDriver = R"PY(
import importlib.util, inspect, io, json, math, numbers, os, sys, traceback

KNOWN = ("data_source", "solution_str", "ground_truth", "extra_info", "prompt", "num_tokens", "kind")

def as_number(v):
    """A Python or NumPy number (a bool counts as 0/1) as a float; None for anything else."""
    if isinstance(v, numbers.Real):
        return float(v)
    if type(v).__name__ == "bool_":  # numpy.bool_ is not a numbers.Real
        return float(bool(v))
    return None

def main():
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", newline="\n")
    os.dup2(2, 1)  # the function's prints go to stderr, never into the protocol
    sys.stdout = sys.stderr

    def send(obj):
        proto.write(json.dumps(obj, allow_nan=False) + "\n")
        proto.flush()

    def user_traceback(e):
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
            tb = tb.tb_next  # drop the driver's own frames
        return "".join(traceback.format_exception(type(e), e, tb))

    path, name, extra = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    try:
        folder = os.path.dirname(os.path.abspath(path))
        if folder not in sys.path:
            sys.path.insert(0, folder)  # the file may import its neighbours
        spec = importlib.util.spec_from_file_location("zeroth_user_reward", path)
        if spec is None or spec.loader is None:
            raise ImportError("cannot load %r as a Python module (expected a .py file)" % path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        fn = getattr(module, name, None)
        if fn is None:
            raise AttributeError("%s defines no %r" % (path, name))
        if not callable(fn):
            raise TypeError("%s.%s is a %s, not a function" % (path, name, type(fn).__name__))
        params = inspect.signature(fn).parameters.values()
        take = []
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.name in KNOWN:
                if p.kind == p.POSITIONAL_ONLY:
                    raise TypeError("%s(): parameter %r is positional-only; zeroth passes arguments by keyword"
                                    % (name, p.name))
                take.append(p.name)
        var_keyword = any(p.kind == p.VAR_KEYWORD for p in params)
        if var_keyword:
            take = list(KNOWN)
        names = {p.name: p for p in params}
        for key in extra:  # rewards.python.kwargs
            if key in KNOWN:
                raise TypeError("rewards.python.kwargs: %r is an argument zeroth passes itself" % key)
            p = names.get(key)
            if not var_keyword and (p is None or p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY)):
                raise TypeError("rewards.python.kwargs: %s() has no keyword parameter %r" % (name, key))
        for p in params:
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and \
                    p.name not in KNOWN and p.name not in extra:
                raise TypeError("%s(): required parameter %r is not one zeroth passes (it passes %s, and "
                                "rewards.python.kwargs)" % (name, p.name, ", ".join(KNOWN)))
    except BaseException as e:
        send({"ready": False, "error": user_traceback(e)})
        return
    send({"ready": True, "params": take})

    for line in io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace"):
        request = json.loads(line)
        try:
            out = fn(**{k: request[k] for k in take}, **extra)
            correct, extra_values = None, {}
            if isinstance(out, dict):
                for k, v in out.items():
                    x = as_number(v)
                    if k not in ("score", "correct") and isinstance(k, str) and x is not None and math.isfinite(x):
                        extra_values[k] = x
                if "score" not in out:
                    raise TypeError("the reward function returned a dict without 'score' (keys: %s)"
                                    % ", ".join(sorted(map(str, out))))
                correct = out.get("correct")
                out = out["score"]
            score = as_number(out)
            if score is None:
                raise TypeError("the reward function returned %s (a %s); expected a number or a dict with "
                                "'score'" % (repr(out)[:200], type(out).__name__))
            if not math.isfinite(score):
                raise ValueError("the reward function returned %r; expected a finite number" % score)
            if correct is not None:
                if as_number(correct) is None:
                    raise TypeError("'correct' is %s (a %s); expected a bool" % (repr(correct)[:200],
                                                                                type(correct).__name__))
                correct = as_number(correct) != 0
            send({"id": request["id"], "score": score, "correct": correct, "extra": extra_values})
        except BaseException as e:
            send({"id": request["id"], "error": user_traceback(e)})

main()
)PY";

constexpr size_t kMaxReply = size_t(64) << 20;  // a reply line longer than this: protocol error
constexpr size_t kMaxError = 4000;              // error text kept (its end)

std::string trim_error(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.size() > kMaxError) s = "..." + s.substr(s.size() - kMaxError);
  return s;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return strformat("exited with status %d", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return strformat("was killed by signal %d (%s)%s", sig, strsignal(sig),
                     sig == SIGKILL ? "; out of memory?" : "");
  }
  return "ended";
}

// `interpreter` as an absolute path: itself when it names a path, else looked up on PATH.
std::string resolve_interpreter(const std::string& interpreter, const std::string& where) {
  auto executable = [](const std::string& p) { return ::access(p.c_str(), X_OK) == 0; };
  if (interpreter.find('/') != std::string::npos) {
    if (executable(interpreter)) return interpreter;
  } else if (!interpreter.empty()) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    while (start <= dirs.size()) {
      size_t end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      const std::string dir = end > start ? dirs.substr(start, end - start) : ".";
      const std::string candidate = dir + "/" + interpreter;
      if (executable(candidate)) return candidate;
      start = end + 1;
    }
  }
  throw ConfigError(strformat("key '%s.interpreter': expected an executable Python 3 interpreter (a path, or a "
                              "name on PATH), found '%s', which %s",
                              where.c_str(), interpreter.c_str(),
                              interpreter.find('/') != std::string::npos ? "is not an executable file"
                                                                         : "is not on PATH (install python3)"));
}

}  // namespace

// One worker process and its socket.
class PythonRewardWorker {
 public:
  PythonRewardWorker(const PythonRewardOptions& options, std::string interpreter)
      : options_(options), interpreter_(std::move(interpreter)) {}
  ~PythonRewardWorker() { stop(); }

  // Starts the process and waits for its ready line. "" on success (params filled),
  // else why not (with the Python traceback when there is one).
  std::string start(std::vector<std::string>* params) {
    stop();
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      return strformat("socketpair: %s", std::strerror(errno));
    // posix_spawn (vfork-like: no copy of this process's page tables, which matters when a
    // trainer holds tens of GB): its own session, so a kill reaches whatever the function
    // started; default signal dispositions and an empty mask; the socket as stdin and
    // stdout; no other descriptor of ours.
    const std::string dash_u = "-u", dash_c = "-c";
    std::vector<const char*> argv = {interpreter_.c_str(), dash_u.c_str(), dash_c.c_str(), kDriver,
                                     options_.path.c_str(), options_.function.c_str(),
                                     options_.kwargs_json.c_str(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawnattr_init(&attr);
    ::posix_spawn_file_actions_adddup2(&actions, sv[1], 0);
    ::posix_spawn_file_actions_adddup2(&actions, sv[1], 1);
    ::posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    ::posix_spawnattr_setsigdefault(&attr, &all);
    ::posix_spawnattr_setsigmask(&attr, &none);
    ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, argv[0], &actions, &attr, const_cast<char* const*>(argv.data()), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
    ::close(sv[1]);
    if (rc != 0) {
      ::close(sv[0]);
      return strformat("posix_spawn %s: %s", interpreter_.c_str(), std::strerror(rc));
    }
    fd_ = sv[0];
    pid_ = pid;
    buf_.clear();
    const double start_s = std::max(60.0, 4.0 * options_.timeout_seconds);
    std::string line;
    const int r = read_line(&line, Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                      std::chrono::duration<double>(start_s)));
    if (r == kTimeout) {
      stop();
      return strformat("it did not start within %g s (importing %s)", start_s, options_.path.c_str());
    }
    if (r == kEof) return strformat("the interpreter %s before it answered", ended().c_str());
    nlohmann::json ready;
    try {
      ready = nlohmann::json::parse(line);
    } catch (const std::exception&) {
      stop();
      return "its first line was not the driver's (is '" + interpreter_ + "' a Python 3 interpreter?)";
    }
    if (!ready.is_object() || !ready.value("ready", false)) {
      std::string err = ready.is_object() && ready.contains("error") && ready["error"].is_string()
                            ? ready["error"].get<std::string>()
                            : line;
      stop();
      return trim_error(err);
    }
    if (params) {
      params->clear();
      if (ready.contains("params") && ready["params"].is_array())
        for (const auto& p : ready["params"])
          if (p.is_string()) params->push_back(p.get<std::string>());
    }
    return "";
  }

  // One call; `body` is the request object's text after its opening brace (the fields
  // after "id", and the closing brace).
  PythonRewardResult call(const std::string& body) {
    PythonRewardResult res;
    if (pid_ < 0) {
      ++restarts_;
      const std::string why = start(nullptr);
      if (!why.empty()) return error(PythonRewardResult::Status::Error, "the worker could not start again: " + why);
    }
    const uint64_t id = ++next_id_;
    const std::string request = "{\"id\":" + std::to_string(id) + "," + body + "\n";
    const auto deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options_.timeout_seconds));
    const int w = write_all(request, deadline);
    std::string line;
    const int r = w == kLine ? read_line(&line, deadline) : w;
    if (r == kTimeout) {
      stop();
      return error(PythonRewardResult::Status::Timeout,
                   strformat("the call took longer than timeout_seconds (%g s); the worker was killed and starts "
                             "again", options_.timeout_seconds));
    }
    if (r == kEof) return error(PythonRewardResult::Status::Error, "the worker " + ended() + " during the call");
    nlohmann::json reply;
    try {
      reply = nlohmann::json::parse(line);
    } catch (const std::exception&) {
      stop();
      return error(PythonRewardResult::Status::Error, "the worker answered something that is not JSON");
    }
    if (!reply.is_object() || !reply.contains("id") || reply["id"] != id) {
      stop();
      return error(PythonRewardResult::Status::Error, "the worker answered another request");
    }
    if (reply.contains("error")) {
      const auto& e = reply["error"];
      return error(PythonRewardResult::Status::Error, e.is_string() ? e.get<std::string>() : e.dump());
    }
    const auto score = reply.find("score");
    if (score == reply.end() || !score->is_number() || !std::isfinite(score->get<double>())) {
      stop();
      return error(PythonRewardResult::Status::Error, "the worker's reply has no finite score");
    }
    res.score = score->get<double>();
    const auto correct = reply.find("correct");
    if (correct != reply.end() && correct->is_boolean()) res.correct = correct->get<bool>() ? 1 : 0;
    const auto extra = reply.find("extra");
    if (extra != reply.end() && extra->is_object())
      for (const auto& [key, value] : extra->items())
        if (value.is_number() && std::isfinite(value.get<double>())) res.extra[key] = value.get<double>();
    return res;
  }

  int64_t restarts() const { return restarts_.load(); }

 private:
  enum { kLine, kTimeout, kEof };

  static PythonRewardResult error(PythonRewardResult::Status s, const std::string& why) {
    PythonRewardResult r;
    r.status = s;
    r.error = trim_error(why);
    return r;
  }

  static int remaining_ms(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : int(std::min<int64_t>(left, 1000 * 1000));
  }

  int write_all(const std::string& s, Clock::time_point deadline) {
    size_t off = 0;
    while (off < s.size()) {
      const ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        off += size_t(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        const int ms = remaining_ms(deadline);
        if (ms == 0) return kTimeout;
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, ms);
        continue;
      }
      return kEof;  // EPIPE / ECONNRESET: the worker is gone
    }
    return kLine;
  }

  int read_line(std::string* line, Clock::time_point deadline) {
    for (;;) {
      const size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        line->assign(buf_, 0, nl);
        buf_.erase(0, nl + 1);
        return kLine;
      }
      if (buf_.size() > kMaxReply) return kEof;
      const int ms = remaining_ms(deadline);
      if (ms == 0) return kTimeout;
      pollfd p{fd_, POLLIN, 0};
      const int pr = ::poll(&p, 1, ms);
      if (pr <= 0) continue;  // EINTR or not yet: the deadline is checked above
      char tmp[1 << 16];
      const ssize_t n = ::recv(fd_, tmp, sizeof(tmp), MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (n <= 0) return kEof;
      buf_.append(tmp, size_t(n));
    }
  }

  // After EOF: reaps the worker and says how it ended.
  std::string ended() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (pid_ < 0) return "ended";
    int status = 0;
    // It closed its socket: it is exiting, or it is still running with the socket closed.
    for (int i = 0; i < 100; ++i) {
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        ::kill(-pid_, SIGKILL);  // whatever it started
        pid_ = -1;
        return describe_status(status);
      }
      if (r < 0 && errno != EINTR) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop();
    return "closed its socket";
  }

  void stop() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);  // its process group (setsid in the child)
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    pid_ = -1;
  }

  const PythonRewardOptions& options_;
  const std::string interpreter_;
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
  uint64_t next_id_ = 0;
  std::atomic<int64_t> restarts_{0};
};

std::string python_json_string(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

PythonRewardPool::PythonRewardPool(PythonRewardOptions options) : options_(std::move(options)) {
  const std::string& where = options_.where;
  if (options_.path.empty())
    throw ConfigError(strformat("key '%s.path': expected the Python file that defines the reward function, "
                                "found none", where.c_str()));
  if (::access(options_.path.c_str(), R_OK) != 0)
    throw ConfigError(strformat("key '%s.path': expected a readable Python file, found '%s' (%s)", where.c_str(),
                                options_.path.c_str(), std::strerror(errno)));
  if (options_.function.empty())
    throw ConfigError(strformat("key '%s.function': expected a function name, found ''", where.c_str()));
  if (options_.workers < 1)
    throw ConfigError(strformat("key '%s.workers': expected at least 1, found %d", where.c_str(), options_.workers));
  if (!(options_.timeout_seconds > 0) || !std::isfinite(options_.timeout_seconds))
    throw ConfigError(strformat("key '%s.timeout_seconds': expected a positive number of seconds, found %g",
                                where.c_str(), options_.timeout_seconds));
  const std::string interpreter = resolve_interpreter(options_.interpreter, where);
  for (int i = 0; i < options_.workers; ++i) {
    workers_.push_back(std::make_unique<PythonRewardWorker>(options_, interpreter));
    std::vector<std::string> params;
    const std::string why = workers_.back()->start(&params);
    if (!why.empty())
      throw ConfigError(strformat("key '%s.path': %s function '%s' of %s could not be loaded with %s: %s",
                                  where.c_str(), i == 0 ? "the" : "(a later worker) the", options_.function.c_str(),
                                  options_.path.c_str(), interpreter.c_str(), why.c_str()));
    if (i == 0) params_ = std::move(params);
    free_.push_back(workers_.back().get());
  }
}

PythonRewardPool::~PythonRewardPool() = default;

PythonRewardWorker* PythonRewardPool::acquire() const {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !free_.empty(); });
  PythonRewardWorker* w = free_.back();
  free_.pop_back();
  return w;
}

void PythonRewardPool::release(PythonRewardWorker* w) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(w);
  }
  cv_.notify_one();
}

namespace {
std::string request_body(const PythonRewardCall& c) {
  std::string b;
  b.reserve(c.solution_str.size() + c.prompt.size() + c.extra_info_json.size() + c.ground_truth_json.size() + 128);
  b += "\"data_source\":" + python_json_string(c.data_source);
  b += ",\"solution_str\":" + python_json_string(c.solution_str);
  b += ",\"ground_truth\":" + (c.ground_truth_json.empty() ? std::string("null") : c.ground_truth_json);
  b += ",\"extra_info\":" + (c.extra_info_json.empty() ? std::string("null") : c.extra_info_json);
  b += ",\"prompt\":" + python_json_string(c.prompt);
  b += ",\"num_tokens\":" + (c.num_tokens < 0 ? std::string("null") : std::to_string(c.num_tokens));
  b += ",\"kind\":" + python_json_string(c.kind) + "}";
  return b;
}
}  // namespace

PythonRewardResult PythonRewardPool::call(const PythonRewardCall& c) const {
  const std::string body = request_body(c);
  PythonRewardWorker* w = acquire();
  PythonRewardResult r = w->call(body);
  release(w);
  return r;
}

std::vector<PythonRewardResult> PythonRewardPool::call_batch(const std::vector<PythonRewardCall>& calls) const {
  std::vector<PythonRewardResult> out(calls.size());
  std::atomic<size_t> next{0};
  auto loop = [&] {
    PythonRewardWorker* w = acquire();
    for (size_t k = next++; k < calls.size(); k = next++) out[k] = w->call(request_body(calls[k]));
    release(w);
  };
  const size_t n_threads = std::min(calls.size(), workers_.size());
  if (n_threads <= 1) {
    if (!calls.empty()) loop();
    return out;
  }
  std::vector<std::thread> threads;
  for (size_t t = 0; t < n_threads; ++t) threads.emplace_back(loop);
  for (auto& t : threads) t.join();
  return out;
}

int64_t PythonRewardPool::restarts() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const auto& w : workers_) n += w->restarts();
  return n;
}

}  // namespace zeroth
