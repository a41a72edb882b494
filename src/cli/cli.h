// The `zeroth` command line: one binary, one subcommand per workflow.
//
// Owns: argument parsing helpers and the table of subcommands. Each subcommand
// lives in its own file (src/cli/cmd_<name>.cpp) and is listed in main.cpp.
// Exit codes: 0 ok, 2 usage or config error, 1 runtime failure.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace zeroth {
namespace cli {

struct Command {
  const char* name;
  const char* summary;                      // one line for `zeroth --help`
  int (*run)(const std::vector<std::string>& args);  // args after the subcommand name
};

// Parsed flags of a subcommand: --key value, --key=value, bare --flag (value "").
// Repeatable flags (--set) keep every value in order.
// An integer flag value: the whole string must be an integer >= min, else UsageError
// "--name: expected an integer >= min, found 'v'".
int64_t parse_int_flag(const std::string& name, const std::string& v, int64_t min);

class Args {
 public:
  // `known` lists accepted flags without dashes; `repeatable` those that may repeat;
  // `boolean` those that take no value. Throws UsageError naming the command on
  // unknown or malformed flags.
  Args(const std::string& command, const std::vector<std::string>& argv,
       const std::vector<std::string>& known, const std::vector<std::string>& boolean = {},
       const std::vector<std::string>& repeatable = {});
  bool has(const std::string& key) const;
  std::string get(const std::string& key, const std::string& fallback = "") const;
  std::string required(const std::string& key) const;  // throws UsageError if missing
  const std::vector<std::string>& all(const std::string& key) const;
  const std::vector<std::string>& positional() const { return positional_; }
  bool help() const { return help_; }

 private:
  std::string command_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
  bool help_ = false;
};

int cmd_version(const std::vector<std::string>& args);
int cmd_score(const std::vector<std::string>& args);
int cmd_tokenize(const std::vector<std::string>& args);
int cmd_train_tokenizer(const std::vector<std::string>& args);
int cmd_pretrain(const std::vector<std::string>& args);
int cmd_sft(const std::vector<std::string>& args);
int cmd_reward(const std::vector<std::string>& args);
int cmd_bench(const std::vector<std::string>& args);
int bench_reward(const std::vector<std::string>& args);  // `zeroth bench reward`
int cmd_config(const std::vector<std::string>& args);
int cmd_ckpt(const std::vector<std::string>& args);
int cmd_demo_data(const std::vector<std::string>& args);
int cmd_train(const std::vector<std::string>& args);
int cmd_generate(const std::vector<std::string>& args);
int bench_rollout(const std::vector<std::string>& args);  // zeroth bench rollout
int cmd_eval(const std::vector<std::string>& args);
int cmd_pass_rate(const std::vector<std::string>& args);
int cmd_sweep(const std::vector<std::string>& args);

}  // namespace cli
}  // namespace zeroth
