// Helpers shared by the sandbox tests: the containment check, test configs with
// small limits, MBPP loading, and a scan for processes left behind by a run.
// Must not: run any program itself (tests do that through Sandbox/CodeChecker).
#pragma once

#include <string>
#include <vector>

#include "zeroth/code_reward.h"
#include "zeroth/sandbox.h"

namespace zeroth {
namespace test {

// True when run_contained.sh started this process (PID 1 of its own namespace, inside
// the test cgroups). Adversarial cases REQUIRE it, so they never run uncontained.
bool contained();

// Sandbox config with small limits (fast timeouts); 2 concurrent slots.
SandboxConfig small_sandbox_config();
// Code-reward config with the same small limits.
CodeRewardConfig small_code_config();

// Processes (pids) in this PID namespace whose real uid is in [uid_base, uid_base + n).
std::vector<int> processes_with_uids(int64_t uid_base, int n);
// Number of open fds of this process.
int open_fd_count();

struct MbppTask {
  int task_id = 0;
  std::string code;
  CodeProblem problem;
};
// /work/shared/data/mbpp_train.jsonl (ZEROTH_SHARED_DATA_DIR); REQUIREs it to exist.
std::vector<MbppTask> load_mbpp();

// A Python solution whose asserts only pass when `breach` (a Python expression
// evaluated at import) is true: "assert answer() == 42".
CodeProblem answer_problem();

}  // namespace test
}  // namespace zeroth
