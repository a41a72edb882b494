// User reward functions written in Python (`rewards.functions: [{name: python}]` with the
// `rewards.python` section): verl's custom_reward_function / TRL's reward functions, so a
// researcher can change the rule without rebuilding zeroth.
//
// The function is the user's own, trusted code (it is not sandboxed; the model's output
// reaches it only as a string). It runs in persistent worker processes, one call at a
// time each, spoken to over a socket in JSON lines:
//   * a worker is `INTERPRETER -u -c <driver> PATH FUNCTION`: the driver imports PATH,
//     looks FUNCTION up, reads its signature and answers {"ready": ...}; every request
//     afterwards is one call. The driver moves the user's stdout to stderr, so a print
//     in the function cannot corrupt the protocol.
//   * arguments are passed by keyword, and only those the function declares (all of them
//     when it takes **kwargs): data_source, solution_str, ground_truth, extra_info (verl's
//     compute_score), and prompt, num_tokens, kind; plus the configured kwargs (verl's
//     reward_kwargs), each of which must be a parameter. A required parameter zeroth does
//     not pass is a ConfigError at start.
//   * the function returns a number (bool counts as 0/1), or a dict with "score" and,
//     optionally, "correct" (bool), which then decides the sample's correctness; its other
//     keys with finite numbers (or bools) come back as `extra`.
//   * a call that raises, returns anything else (NaN included), kills its worker or takes
//     longer than timeout_seconds scores 0 with an error; the worker is killed (its whole
//     process group) and started again, so one bad input costs one call, not the run.
//
// Owns: the driver program, worker processes (posix_spawn, kill, restart), the protocol,
// the per-call timeout, dispatch of a batch over the workers. Must not: interpret the
// score (rewards.h composes it), or throw on anything a completion contains.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace zeroth {

struct PythonRewardOptions {
  std::string path;                      // the .py file
  std::string function = "compute_score";
  std::string interpreter = "python3";   // a path, or a name looked up on PATH
  int workers = 4;                       // worker processes (calls at once)
  double timeout_seconds = 30.0;         // per call; also bounds a worker's start (x 4, >= 60 s)
  std::string kwargs_json = "{}";        // more keyword arguments of every call (a JSON object)
  std::string where = "rewards.python";  // config key prefix in errors
};

// One call's arguments. The JSON fields must hold valid JSON text.
struct PythonRewardCall {
  std::string data_source;        // the prompt's source name
  std::string solution_str;       // the completion
  std::string ground_truth_json;  // math: the gold answer as a JSON string; code: the tests object
  std::string extra_info_json;    // the prompt's JSONL record (an object), or "null"
  std::string prompt;             // the text the model continued
  int64_t num_tokens = -1;        // the completion's tokens (-1: unknown -> None)
  std::string kind;               // "math" or "code"
};

struct PythonRewardResult {
  enum class Status { Ok, Error, Timeout };
  Status status = Status::Ok;
  double score = 0.0;       // 0 unless Ok
  int correct = -1;         // -1: the function did not say; else 0 or 1
  std::string error;        // Error/Timeout: what happened (a Python traceback, trimmed)
  std::map<std::string, double> extra;  // a dict's other finite numeric (or bool) values

  bool ok() const { return status == Status::Ok; }
};

class PythonRewardWorker;

// The workers of one reward function. Thread-safe: calls from many threads share the
// workers (each call takes a free one).
class PythonRewardPool {
 public:
  // Starts every worker. Throws ConfigError (naming options.where) when the interpreter
  // is missing, the file does not import, the function is missing or not callable, or it
  // needs an argument zeroth does not pass; the message carries the Python traceback.
  explicit PythonRewardPool(PythonRewardOptions options);
  ~PythonRewardPool();
  PythonRewardPool(const PythonRewardPool&) = delete;
  PythonRewardPool& operator=(const PythonRewardPool&) = delete;

  // One call; never throws on what the call contains or does.
  PythonRewardResult call(const PythonRewardCall& c) const;
  // Calls spread over the workers; results in input order.
  std::vector<PythonRewardResult> call_batch(const std::vector<PythonRewardCall>& calls) const;

  // The parameters the function takes, as the driver found them.
  const std::vector<std::string>& parameters() const { return params_; }
  int workers() const { return int(workers_.size()); }
  // Workers started again after a timeout, crash or protocol error, since construction.
  int64_t restarts() const;

 private:
  PythonRewardWorker* acquire() const;
  void release(PythonRewardWorker* w) const;

  PythonRewardOptions options_;
  std::vector<std::string> params_;
  std::vector<std::unique_ptr<PythonRewardWorker>> workers_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::vector<PythonRewardWorker*> free_;
};

// The JSON text of `s` as a JSON string (invalid UTF-8 replaced by U+FFFD).
std::string python_json_string(const std::string& s);

}  // namespace zeroth
