// Shared helpers of the sandbox tests (sandbox_test_util.h).
#include "sandbox_test_util.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

namespace zeroth {
namespace test {

bool contained() {
  const char* env = std::getenv("ZEROTH_SANDBOX_CONTAINED");
  return env != nullptr && std::string(env) == "1" && ::getpid() == 1;
}

namespace {
SandboxLimits small_limits() {
  SandboxLimits l;
  l.wall_seconds = 3.0;
  l.cpu_seconds = 2;
  l.memory_bytes = int64_t(256) << 20;
  l.max_processes = 16;
  l.file_size_bytes = int64_t(4) << 20;
  l.open_files = 32;
  l.tmp_bytes = int64_t(16) << 20;
  l.output_bytes = int64_t(64) << 10;
  return l;
}
}  // namespace

SandboxConfig small_sandbox_config() {
  SandboxConfig c;
  c.max_concurrent = 2;
  c.limits = small_limits();
  return c;
}

CodeRewardConfig small_code_config() {
  CodeRewardConfig c;
  c.run_limits = small_limits();
  c.compile_limits.wall_seconds = 20.0;
  c.compile_limits.cpu_seconds = 15;
  return c;
}

std::vector<int> processes_with_uids(int64_t uid_base, int n) {
  std::vector<int> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    struct stat st;
    if (::stat((std::string("/proc/") + e->d_name).c_str(), &st) != 0) continue;
    if (int64_t(st.st_uid) >= uid_base && int64_t(st.st_uid) < uid_base + n) out.push_back(int(pid));
  }
  ::closedir(d);
  return out;
}

int open_fd_count() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;  // the DIR's own fd
}

std::vector<MbppTask> load_mbpp() {
  const std::string path = std::string(ZEROTH_SHARED_DATA_DIR) + "/mbpp_train.jsonl";
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<MbppTask> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line);
    MbppTask t;
    t.task_id = j.at("task_id").get<int>();
    t.code = j.at("code").get<std::string>();
    t.problem.language = CodeLanguage::Python;
    t.problem.test_setup_code = j.value("test_setup_code", std::string());
    if (j.contains("test_imports"))
      for (const auto& s : j["test_imports"]) t.problem.test_imports.push_back(s.get<std::string>());
    for (const auto& s : j.at("test_list")) t.problem.asserts.push_back(s.get<std::string>());
    out.push_back(std::move(t));
  }
  return out;
}

CodeProblem answer_problem() {
  CodeProblem p;
  p.language = CodeLanguage::Python;
  p.asserts = {"assert answer() == 42"};
  return p;
}

}  // namespace test
}  // namespace zeroth
