// Benchmark (not a test): sandboxed Python runs per second, for a trivial program
// and for MBPP-typical checks (reference solution + its asserts). Prints a table and
// a JSON line. Usage: bench_sandbox [seconds_per_row=5] [workers=0 (2 x cores)]
// Runs only trusted programs (print(1), MBPP reference solutions).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "zeroth/code_reward.h"
#include "zeroth/sandbox.h"

using namespace zeroth;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 5.0;
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int workers = argc > 2 ? std::atoi(argv[2]) : 0;
  if (workers <= 0) workers = 2 * cores;
  SandboxConfig scfg;
  scfg.max_concurrent = workers;
  Sandbox sandbox(scfg);
  SandboxPool pool(sandbox, workers);
  CodeChecker checker(pool, CodeRewardConfig{});

  std::vector<std::pair<std::string, CodeProblem>> mbpp;
  std::ifstream in(std::string(ZEROTH_SHARED_DATA_DIR) + "/mbpp_train.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line);
    CodeProblem p;
    p.test_setup_code = j.value("test_setup_code", std::string());
    for (const auto& s : j.at("test_list")) p.asserts.push_back(s.get<std::string>());
    mbpp.emplace_back(j.at("code").get<std::string>(), std::move(p));
  }
  if (mbpp.empty()) {
    std::fprintf(stderr, "bench_sandbox: no MBPP data at %s\n", ZEROTH_SHARED_DATA_DIR);
    return 1;
  }

  auto bench = [&](const char* name, auto make_future) {
    auto t0 = Clock::now();
    int done = 0, ok = 0;
    std::vector<std::future<bool>> inflight;
    while (std::chrono::duration<double>(Clock::now() - t0).count() < seconds) {
      inflight.clear();
      for (int i = 0; i < 4 * workers; ++i) inflight.push_back(make_future(done + i));
      for (auto& f : inflight) ok += f.get();
      done += static_cast<int>(inflight.size());
    }
    double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("%-22s %8d %8d %10.1f\n", name, done, ok, done / dt);
    return done / dt;
  };
  std::printf("%-22s %8s %8s %10s   (workers %d, cores %d)\n", "case", "runs", "ok", "runs/s", workers, cores);
  double trivial = bench("trivial print(1)", [&](int) {
    SandboxJob job;
    job.argv = {"/usr/bin/python3", "-I", "-S", "-B", "-c", "print(1)"};
    return std::async(std::launch::deferred, [f = std::make_shared<std::future<SandboxResult>>(pool.submit(job))] {
      SandboxResult r = f->get();
      return r.exited_ok() && r.stdout_data == "1\n";
    });
  });
  double typical = bench("MBPP check", [&](int i) {
    const auto& t = mbpp[static_cast<size_t>(i) % mbpp.size()];
    return std::async(std::launch::deferred, [f = std::make_shared<std::future<CodeReward>>(
                                                  checker.check_async("```python\n" + t.first + "\n```", t.second))] {
      return f->get().reward == 1.0;
    });
  });
  std::printf("{\"bench\": \"sandbox\", \"workers\": %d, \"cores\": %d, \"trivial_runs_per_s\": %.1f, "
              "\"mbpp_checks_per_s\": %.1f}\n", workers, cores, trivial, typical);
  return 0;
}
