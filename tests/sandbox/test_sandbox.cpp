// Sandbox (sandbox.h): running, stdin/stdout, files, exit codes, limits, timeout,
// output caps, isolation of the filesystem/environment, the pool, config errors.
// Tag [sandbox]. Must not: run hostile programs (test_adversarial.cpp does that).
#include <catch2/catch.hpp>
#include <chrono>

#include "sandbox_test_util.h"
#include "zeroth/error.h"
#include "zeroth/sandbox.h"

using namespace zeroth;

namespace {
SandboxJob python_job(const std::string& src, const std::string& stdin_data = "") {
  SandboxJob job;
  job.argv = {"/usr/bin/python3", "-I", "-S", "-B", "/tmp/main.py"};
  job.files.push_back({"main.py", src, false, false});
  job.stdin_data = stdin_data;
  return job;
}
}  // namespace

TEST_CASE("sandbox runs a program with stdin, files and exit status", "[sandbox]") {
  Sandbox sb(test::small_sandbox_config());
  SandboxResult r = sb.run(python_job("import sys\ndata = sys.stdin.read()\n"
                                      "print(data.upper(), end='')\nprint('err', file=sys.stderr)\n"
                                      "sys.exit(3)\n",
                                      "hello\nworld"));
  REQUIRE(r.started);
  CHECK(r.exit_code == 3);
  CHECK(r.term_signal == 0);
  CHECK(r.stdout_data == "HELLO\nWORLD");
  CHECK(r.stderr_data == "err\n");
  CHECK_FALSE(r.timed_out);
  CHECK_FALSE(r.output_exceeded);
  CHECK_FALSE(r.exited_ok());

  SandboxResult ok = sb.run(python_job("print(open('/tmp/data.txt').read())"));
  CHECK(ok.exit_code == 1);  // no such file: each run has a fresh /tmp
  SandboxJob job = python_job("print(open('/tmp/data.txt').read().strip())");
  job.files.push_back({"data.txt", "payload\n", false, false});
  SandboxResult with_file = sb.run(job);
  CHECK(with_file.exited_ok());
  CHECK(with_file.stdout_data == "payload\n");
}

TEST_CASE("sandbox stdin larger than a pipe buffer, and a program that ignores stdin", "[sandbox]") {
  Sandbox sb(test::small_sandbox_config());
  std::string big(1 << 20, 'a');
  SandboxResult r = sb.run(python_job("import sys\nprint(len(sys.stdin.read()))", big));
  REQUIRE(r.exited_ok());
  CHECK(r.stdout_data == "1048576\n");
  SandboxResult ignore = sb.run(python_job("print('x')", big));  // EPIPE on our side
  CHECK(ignore.exited_ok());
  CHECK(ignore.stdout_data == "x\n");
}

TEST_CASE("sandbox program sees a minimal environment, uid and filesystem", "[sandbox]") {
  SandboxConfig cfg = test::small_sandbox_config();
  Sandbox sb(cfg);
  SandboxResult r = sb.run(python_job(
      "import os\n"
      "print(sorted(k for k in os.environ if k not in ('PWD', 'LC_CTYPE')))\n"
      "print(os.getuid(), os.getgid(), os.getcwd())\n"
      "print(sorted(os.listdir('/')))\n"
      "print(os.access('/usr', os.W_OK), os.access('/tmp', os.W_OK))\n"));
  REQUIRE(r.exited_ok());
  const int64_t uid0 = cfg.uid_base;
  std::string expected_uid_line_a = std::to_string(uid0) + " " + std::to_string(uid0) + " /tmp";
  std::string expected_uid_line_b = std::to_string(uid0 + 1) + " " + std::to_string(uid0 + 1) + " /tmp";
  CHECK(r.stdout_data.find("['HOME', 'LANG', 'PATH']\n") == 0);
  CHECK((r.stdout_data.find(expected_uid_line_a) != std::string::npos ||
         r.stdout_data.find(expected_uid_line_b) != std::string::npos));
  CHECK(r.stdout_data.find("['bin', 'dev', 'etc', 'lib', 'lib64', 'proc', 'sbin', 'tmp', 'usr']") !=
        std::string::npos);
  CHECK(r.stdout_data.find("False True") != std::string::npos);
}

TEST_CASE("sandbox wall-clock timeout kills and reports", "[sandbox]") {
  SandboxConfig cfg = test::small_sandbox_config();
  cfg.limits.wall_seconds = 0.5;
  Sandbox sb(cfg);
  SandboxResult r = sb.run(python_job("import time\nprint('started', flush=True)\ntime.sleep(30)"));
  CHECK(r.started);
  CHECK(r.timed_out);
  CHECK(r.stdout_data == "started\n");
  CHECK(r.wall_seconds < 5.0);
  CHECK_FALSE(r.exited_ok());
}

TEST_CASE("sandbox CPU limit ends a busy loop", "[sandbox]") {
  SandboxConfig cfg = test::small_sandbox_config();
  cfg.limits.cpu_seconds = 1;
  cfg.limits.wall_seconds = 10.0;
  Sandbox sb(cfg);
  SandboxResult r = sb.run(python_job("while True:\n    pass\n"));
  CHECK(r.started);
  CHECK(r.cpu_exceeded);
  CHECK_FALSE(r.timed_out);
  CHECK(r.term_signal == 24);  // SIGXCPU
  SandboxResult ignoring = sb.run(python_job("import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\n"
                                             "while True:\n    pass\n"));
  CHECK(ignoring.term_signal == 9);  // SIGKILL at the hard limit, one second later
  CHECK_FALSE(ignoring.timed_out);
}

TEST_CASE("sandbox output cap truncates and kills", "[sandbox]") {
  Sandbox sb(test::small_sandbox_config());  // 64 KiB cap
  SandboxResult r = sb.run(python_job("import sys\nwhile True:\n    sys.stdout.write('y' * 4096)\n"));
  CHECK(r.output_exceeded);
  CHECK(r.stdout_data.size() == size_t(64) << 10);
  SandboxResult e = sb.run(python_job("import sys\nfor i in range(100000):\n    sys.stderr.write('e' * 1000)\n"));
  CHECK(e.output_exceeded);
  CHECK(e.stderr_data.size() == size_t(64) << 10);
}

TEST_CASE("sandbox memory limit makes allocation fail", "[sandbox]") {
  Sandbox sb(test::small_sandbox_config());  // 256 MiB address space
  SandboxResult r = sb.run(python_job("x = bytearray(1 << 30)\n"));
  CHECK(r.started);
  CHECK(r.memory_exceeded);
  CHECK(r.exit_code == 1);
}

TEST_CASE("sandbox reports a program killed by a signal", "[sandbox]") {
  Sandbox sb(test::small_sandbox_config());
  SandboxResult r = sb.run(python_job("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"));
  CHECK(r.started);
  CHECK(r.term_signal == 11);
  CHECK(r.exit_code == -1);
}

TEST_CASE("sandbox reports a missing program as a start failure or exit 127", "[sandbox]") {
  Sandbox sb(test::small_sandbox_config());
  SandboxJob job;
  job.argv = {"/usr/bin/does-not-exist-zeroth"};
  SandboxResult r = sb.run(job);
  CHECK_FALSE(r.exited_ok());
  CHECK((!r.started || r.exit_code != 0));
}

TEST_CASE("sandbox pool runs jobs concurrently and keeps results apart", "[sandbox]") {
  Sandbox sb(test::small_sandbox_config());
  SandboxPool pool(sb);
  CHECK(pool.workers() == 2);
  std::vector<std::future<SandboxResult>> fs;
  for (int i = 0; i < 12; ++i) fs.push_back(pool.submit(python_job("import sys\nprint(int(sys.stdin.read()) * 2)", std::to_string(i))));
  for (int i = 0; i < 12; ++i) {
    SandboxResult r = fs[size_t(i)].get();
    REQUIRE(r.exited_ok());
    CHECK(r.stdout_data == std::to_string(2 * i) + "\n");
  }
}

TEST_CASE("sandbox config errors name the key", "[sandbox]") {
  SandboxConfig cfg = test::small_sandbox_config();
  cfg.bwrap_path = "/nonexistent/bwrap";
  try {
    Sandbox sb(cfg);
    FAIL("expected ConfigError");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("sandbox: none") != std::string::npos);
    CHECK(std::string(e.what()).find("/nonexistent/bwrap") != std::string::npos);
  }
  SandboxConfig bad = test::small_sandbox_config();
  bad.limits.wall_seconds = 0;
  CHECK_THROWS_AS(Sandbox(bad), ConfigError);
  SandboxMode m;
  CHECK(parse_sandbox_mode("none", &m));
  CHECK(m == SandboxMode::None);
  CHECK_FALSE(parse_sandbox_mode("docker", &m));
  Sandbox sb(test::small_sandbox_config());
  SandboxJob rel;
  rel.argv = {"python3"};
  CHECK_THROWS_AS(sb.run(rel), RuntimeError);
  SandboxJob badfile = python_job("print(1)");
  badfile.files.push_back({"../escape", "x", false, false});
  CHECK_THROWS_AS(sb.run(badfile), RuntimeError);
}

TEST_CASE("sandbox mode none runs with limits but no isolation", "[sandbox]") {
  SandboxConfig cfg = test::small_sandbox_config();
  cfg.mode = SandboxMode::None;
  cfg.bwrap_path = "/nonexistent/bwrap";  // not needed in mode none
  Sandbox sb(cfg);
  SandboxJob job;
  job.argv = {"/usr/bin/python3", "-I", "-S", "-B", "main.py"};
  job.files.push_back({"main.py", "import os\nprint(open('data').read(), sorted(os.environ))", false, false});
  job.files.push_back({"data", "d", false, false});
  SandboxResult r = sb.run(job);
  REQUIRE(r.exited_ok());
  CHECK(r.stdout_data == "d ['HOME', 'LANG', 'PATH']\n");
  cfg.limits.wall_seconds = 0.3;
  Sandbox slow(cfg);
  SandboxJob sleeper;
  sleeper.argv = {"/usr/bin/sleep", "20"};
  SandboxResult t = slow.run(sleeper);
  CHECK(t.timed_out);
  CHECK(t.wall_seconds < 3.0);
}
