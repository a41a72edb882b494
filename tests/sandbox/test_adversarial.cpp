// Adversarial suite ([adversarial]): hostile programs run through the CodeChecker.
// Each case must be contained, score 0, leave no process behind, leak no fd, and
// leave the calling process working. Many programs are written so that a breach would
// make "assert answer() == 42" pass: reward 0 is then the proof of containment.
// Every program is bounded (a fork bomb stops at 10000 forks, the disk filler at
// 1 GiB, ...) and every case REQUIREs run_contained.sh's containment first, so even a
// sandbox bug cannot harm the machine. Must not: run outside that containment.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

#include "sandbox_test_util.h"
#include "zeroth/code_reward.h"

using namespace zeroth;

namespace {

struct Fixture {
  SandboxConfig scfg = test::small_sandbox_config();
  Sandbox sandbox{scfg};
  SandboxPool pool{sandbox};
  CodeChecker checker{pool, test::small_code_config()};
  int fds_before = test::open_fd_count();

  // Checks `code` as the solution of "assert answer() == 42"; requires reward 0 and a
  // clean aftermath. Returns the reward for further checks.
  CodeReward hostile(const std::string& code) {
    REQUIRE(test::contained());
    CodeReward r = checker.check_code(code, test::answer_problem());
    INFO("verdict " << code_verdict_name(r.verdict) << ": "
                    << (r.tests.empty() ? r.detail : r.tests[0].detail));
    CHECK(r.reward == 0.0);
    aftermath();
    return r;
  }

  void aftermath() {
    CHECK(test::processes_with_uids(scfg.uid_base, sandbox.max_concurrent()).empty());
    CHECK(test::open_fd_count() == fds_before);
    // The calling process and the sandbox still work.
    CodeReward ok = checker.check_code("def answer():\n    return 42\n", test::answer_problem());
    CHECK(ok.reward == 1.0);
  }
};

}  // namespace

TEST_CASE("adversarial: fork bomb is capped by the run's process limit", "[adversarial]") {
  Fixture f;
  const std::string bomb =
      "import os, time\n"
      "n = 0\n"
      "for i in range(10000):\n"
      "    try:\n"
      "        if os.fork() == 0:\n"
      "            time.sleep(20)\n"
      "            os._exit(0)\n"
      "        n += 1\n"
      "    except OSError:\n"
      "        break\n"
      "print('forked', n, flush=True)\n"
      "def answer():\n"
      "    return 42 if n >= 100 else 0\n";
  CodeReward r = f.hostile(bomb);
  CHECK(r.verdict == CodeVerdict::WrongAnswer);  // the fork loop stopped at the limit
  // And the raw run shows how many forks the limit allowed.
  SandboxJob job;
  job.argv = {"/usr/bin/python3", "-I", "-S", "-B", "/tmp/main.py"};
  job.files.push_back({"main.py", bomb, false, false});
  SandboxResult raw = f.sandbox.run(job);
  int forked = -1;
  REQUIRE(std::sscanf(raw.stdout_data.c_str(), "forked %d", &forked) == 1);
  CHECK(forked > 0);
  CHECK(forked < f.scfg.limits.max_processes);
  f.aftermath();
}

TEST_CASE("adversarial: memory bomb hits the memory limit", "[adversarial]") {
  Fixture f;
  CodeReward r = f.hostile("x = []\nfor i in range(64):\n    x.append(bytearray(64 << 20))\n"
                           "def answer():\n    return 42\n");
  CHECK(r.verdict == CodeVerdict::MemoryLimit);
}

TEST_CASE("adversarial: thread bomb is capped", "[adversarial]") {
  Fixture f;
  CodeReward r = f.hostile(
      "import threading, time\nn = 0\n"
      "for i in range(10000):\n"
      "    try:\n"
      "        threading.Thread(target=time.sleep, args=(20,), daemon=True).start()\n"
      "        n += 1\n"
      "    except BaseException:\n"
      "        break\n"
      "def answer():\n    return 42 if n >= 100 else n\n");
  CHECK(r.verdict != CodeVerdict::Passed);
}

TEST_CASE("adversarial: infinite loop, SIGTERM-ignoring loop and sleep time out", "[adversarial]") {
  Fixture f;
  CHECK(f.hostile("while True:\n    pass\n").verdict == CodeVerdict::Timeout);
  CHECK(f.hostile("import signal, time\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):\n"
                  "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.01)\n")
            .verdict == CodeVerdict::Timeout);
  CHECK(f.hostile("import time\ntime.sleep(3600)\ndef answer():\n    return 42\n").verdict ==
        CodeVerdict::Timeout);
  // A loop inside the tested function: the tests time out, not the import.
  CHECK(f.hostile("def answer():\n    while True:\n        pass\n").verdict == CodeVerdict::Timeout);
}

TEST_CASE("adversarial: writing outside the sandbox /tmp and filling the disk", "[adversarial]") {
  Fixture f;
  const std::string marker = "zeroth-sandbox-escape-" + std::to_string(::getpid());
  CodeReward r = f.hostile(
      "import os\nwritten = []\n"
      "for d in ['/usr', '/usr/lib', '/etc', '/', '/proc', '/dev', '/work/main', '/root', '/home']:\n"
      "    try:\n"
      "        with open(os.path.join(d, '" + marker + "'), 'w') as fh:\n"
      "            fh.write('x')\n"
      "        written.append(d)\n"
      "    except OSError:\n"
      "        pass\n"
      "def answer():\n    return 42 if written else 0\n");
  CHECK(r.verdict == CodeVerdict::WrongAnswer);
  for (const char* d : {"/usr/", "/etc/", "/", "/work/main/", "/root/", "/tmp/"}) {
    std::ifstream in(std::string(d) + marker);
    CHECK_FALSE(in.good());
  }
  // Disk filler: one big file (capped at 1 GiB) then many small ones.
  CodeReward fill = f.hostile(
      "total = 0\nchunk = b'z' * (1 << 20)\n"
      "try:\n"
      "    with open('/tmp/big', 'wb') as fh:\n"
      "        while total < (1 << 30):\n"
      "            fh.write(chunk)\n"
      "            total += len(chunk)\n"
      "except OSError:\n"
      "    pass\n"
      "small = 0\n"
      "try:\n"
      "    for i in range(1024):\n"
      "        with open('/tmp/f%d' % i, 'wb') as fh:\n"
      "            fh.write(chunk * 3)\n"
      "        small += 3 << 20\n"
      "except OSError:\n"
      "    pass\n"
      "def answer():\n    return 42 if total + small >= (64 << 20) else 0\n");
  CHECK(fill.verdict == CodeVerdict::WrongAnswer);
}

TEST_CASE("adversarial: too many open files, raising rlimits", "[adversarial]") {
  Fixture f;
  CHECK(f.hostile("fds = []\n"
                  "try:\n"
                  "    for i in range(100000):\n"
                  "        fds.append(open('/dev/null'))\n"
                  "except OSError:\n"
                  "    pass\n"
                  "def answer():\n    return 42 if len(fds) > 1000 else len(fds)\n")
            .verdict == CodeVerdict::WrongAnswer);
  CHECK(f.hostile("import resource\nraised = []\n"
                  "for name in ['RLIMIT_NPROC', 'RLIMIT_AS', 'RLIMIT_CPU', 'RLIMIT_NOFILE', 'RLIMIT_FSIZE']:\n"
                  "    r = getattr(resource, name)\n"
                  "    try:\n"
                  "        resource.setrlimit(r, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
                  "        raised.append(name)\n"
                  "    except (ValueError, OSError):\n"
                  "        pass\n"
                  "def answer():\n    return 42 if raised else 0\n")
            .verdict == CodeVerdict::WrongAnswer);
}

TEST_CASE("adversarial: the host's environment, files and processes are invisible", "[adversarial]") {
  Fixture f;
  // The launcher put ZEROTH_SANDBOX_CONTAINED in this process's environment.
  CHECK(f.hostile("import os\nleak = [k for k in os.environ if k not in ('PATH', 'HOME', 'LANG', 'PWD', 'LC_CTYPE')]\n"
                  "try:\n"
                  "    leak.append(open('/proc/1/environ').read())\n"
                  "except OSError:\n"
                  "    pass\n"
                  "def answer():\n    return 42 if leak and any(leak) else 0\n")
            .verdict == CodeVerdict::WrongAnswer);
  const std::string canary = "/tmp/zeroth-sandbox-canary-" + std::to_string(::getpid());
  { std::ofstream(canary) << "host secret"; }
  CodeReward files = f.hostile(
      "import os\nseen = []\n"
      "for p in ['" + canary + "', '/work/main/CMakeLists.txt', '/root', '/home', '/etc/passwd', "
      "'/etc/shadow', '/work', '/sys/fs/cgroup']:\n"
      "    if os.path.exists(p):\n"
      "        seen.append(p)\n"
      "def answer():\n    return 42 if seen else 0\n");
  CHECK(files.verdict == CodeVerdict::WrongAnswer);
  std::remove(canary.c_str());
  CodeReward procs = f.hostile(
      "import os\nothers = []\n"
      "for p in os.listdir('/proc'):\n"
      "    if p.isdigit():\n"
      "        try:\n"
      "            cmd = open('/proc/%s/cmdline' % p, 'rb').read()\n"
      "        except OSError:\n"
      "            continue\n"
      "        if b'test_sandbox' in cmd or b'run_contained' in cmd or int(p) > 10:\n"
      "            others.append(cmd)\n"
      "def answer():\n    return 42 if others else 0\n");
  CHECK(procs.verdict == CodeVerdict::WrongAnswer);
}

TEST_CASE("adversarial: killing the parent or every process", "[adversarial]") {
  Fixture f;
  f.hostile("import os, signal\nfor pid in (os.getppid(), 1, -1):\n"
            "    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n"
            "    except OSError:\n"
            "        pass\n"
            "def answer():\n    return 0\n");
  f.hostile("import os, signal\nfor pid in range(1, 4000):\n"
            "    if pid != os.getpid():\n"
            "        try:\n"
            "            os.kill(pid, signal.SIGKILL)\n"
            "        except OSError:\n"
            "            pass\n"
            "os.killpg(0, signal.SIGKILL)\n");
  CHECK(::getpid() == 1);  // the test process (PID 1 of its namespace) is alive and well
}

TEST_CASE("adversarial: huge output, orphans and daemons", "[adversarial]") {
  Fixture f;
  CHECK(f.hostile("import sys\nfor i in range(1 << 20):\n    sys.stdout.write('spam' * 256)\n"
                  "def answer():\n    return 42\n")
            .verdict == CodeVerdict::OutputLimit);
  // A daemon (double fork + setsid) that would outlive the run, and an orphan child.
  f.hostile("import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        time.sleep(60)\n"
            "    os._exit(0)\n"
            "if os.fork() == 0:\n"
            "    time.sleep(60)\n"
            "    os._exit(0)\n"
            "def answer():\n    return 41\n");
}

TEST_CASE("adversarial: exiting 0 before the tests run, faking results", "[adversarial]") {
  Fixture f;
  CHECK(f.hostile("import os\nos._exit(0)\n").verdict == CodeVerdict::RuntimeError);
  CHECK(f.hostile("import sys, os\nprint('\\n' * 3 + 'PASS 0 PASS\\nDONE')\nos.close(1)\nos.close(2)\n"
                  "def answer():\n    os._exit(0)\n")
            .verdict != CodeVerdict::Passed);
  // Closing every fd so the harness cannot report, then returning the right answer
  // does not count: a test without a result line did not pass.
  CHECK(f.hostile("import os\ndef answer():\n    os.closerange(0, 64)\n    return 42\n").verdict !=
        CodeVerdict::Passed);
}

TEST_CASE("adversarial: network is unreachable, even a loopback listener of the test", "[adversarial]") {
  Fixture f;
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  REQUIRE(s >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(s, 4) != 0) {
    ::close(s);
    WARN("no loopback in the test's namespace; the network case is checked inside the sandbox only");
    f.hostile("import socket\ns = socket.socket()\ns.settimeout(1)\n"
              "try:\n    s.connect(('127.0.0.1', 9))\n    ok = True\nexcept OSError:\n    ok = False\n"
              "def answer():\n    return 42 if ok else 0\n");
    return;
  }
  socklen_t len = sizeof(addr);
  REQUIRE(::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  int port = ntohs(addr.sin_port);
  f.fds_before = test::open_fd_count();
  CHECK(f.hostile("import socket\nok = False\n"
                  "for fam, host in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):\n"
                  "    try:\n"
                  "        s = socket.socket(fam)\n"
                  "        s.settimeout(1)\n"
                  "        s.connect((host, " + std::to_string(port) + "))\n"
                  "        ok = True\n"
                  "    except OSError:\n"
                  "        pass\n"
                  "def answer():\n    return 42 if ok else 0\n")
            .verdict == CodeVerdict::WrongAnswer);
  int c = ::accept(s, nullptr, nullptr);
  CHECK(c < 0);  // nobody connected
  if (c >= 0) ::close(c);
  ::close(s);
}

TEST_CASE("adversarial: a C++ compile bomb ends as a compile error", "[adversarial]") {
  REQUIRE(test::contained());
  SandboxConfig scfg = test::small_sandbox_config();
  Sandbox sandbox(scfg);
  SandboxPool pool(sandbox);
  CodeRewardConfig cfg = test::small_code_config();
  cfg.compile_limits.wall_seconds = 4.0;
  cfg.compile_limits.cpu_seconds = 3;
  cfg.compile_limits.memory_bytes = int64_t(1) << 30;
  CodeChecker checker(pool, cfg);
  CodeProblem p;
  p.language = CodeLanguage::Cpp;
  p.stdio_cases = {{"", "42"}};
  // Exponential macro expansion (10^8 tokens if it ever finished).
  const std::string bomb =
      "#define A(x) x x x x x x x x x x\n#define B(x) A(A(x))\n#define C(x) B(B(x))\n#define D(x) C(C(x))\n"
      "int main() { int v[] = { D(1,) 1 }; return v[0]; }\n";
  CodeReward r = checker.check_code(bomb, p);
  CHECK(r.verdict == CodeVerdict::CompileError);
  CHECK(r.reward == 0.0);
  // Reading an endless device as a header.
  CodeReward dev = checker.check_code("#include \"/dev/zero\"\nint main() {}\n", p);
  CHECK(dev.verdict == CodeVerdict::CompileError);
  CHECK(test::processes_with_uids(scfg.uid_base, sandbox.max_concurrent()).empty());
}
