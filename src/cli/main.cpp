// zeroth: entry point. Dispatches to a subcommand and maps errors to exit codes
// (0 ok, 2 usage/config error, 1 runtime failure).
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "zeroth/error.h"

namespace zeroth {
namespace cli {

static const Command kCommands[] = {
    {"version", "print the version, compiled backends and library versions", cmd_version},
    {"config", "show, check or document the configuration (YAML, defaults:, --set)", cmd_config},
    {"ckpt", "create or inspect a model checkpoint (init a HF model directory, info)", cmd_ckpt},
    {"pretrain", "pretrain a model: next-token loss over a packed text/JSONL corpus", cmd_pretrain},
    {"sft", "supervised fine-tuning (cold start): loss on response tokens of prompt/response JSONL", cmd_sft},
    {"score", "per-token log-probabilities of token sequences (JSONL ids -> logprobs)", cmd_score},
    {"tokenize", "text <-> token ids for JSONL files (a tokenizer.json or model directory)", cmd_tokenize},
    {"train-tokenizer", "learn a byte-level BPE tokenizer.json from a corpus (the demo's vocabulary)", cmd_train_tokenizer},
    {"reward", "score completions with the configured rewards (math, format, sandboxed code)", cmd_reward},
    {"train", "GRPO reinforcement learning (R1-Zero): rollout, rule-based rewards, policy update", cmd_train},
    {"eval", "held-out accuracy of a model directory (greedy pass@1, pass@k) on a train config's eval set", cmd_eval},
    {"pass-rate", "offline difficulty filtering: each training prompt's pass rate over k samples; keep a range", cmd_pass_rate},
    {"sweep", "hyperparameter sweeps of train (grid, zip, random): run locally, under mpirun or as a Slurm array; status, report", cmd_sweep},
    {"generate", "sample G completions per prompt with the KV-cached model (JSONL prompts -> completions, log-probs)", cmd_generate},
    {"demo-data", "write the CPU demo's data: arithmetic pretraining corpus, RL train/eval prompts", cmd_demo_data},
    {"bench", "benchmarks: train (fwd+bwd vs the GEMM peak), gemm, reward, rollout", cmd_bench},
};

static void print_usage(FILE* f) {
  std::fprintf(f,
               "usage: zeroth <command> [options]\n"
               "\nR1-Zero-style reinforcement learning for MoE language models.\n"
               "\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(f, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(f, "\n'zeroth <command> --help' describes a command's options.\n");
}

}  // namespace cli
}  // namespace zeroth

int main(int argc, char** argv) {
  using namespace zeroth;
  using namespace zeroth::cli;
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  if (name == "--version") name = "version";
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const auto& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.run(args);
    } catch (const Error& e) {
      std::fprintf(stderr, "zeroth %s: error: %s\n", c.name, e.what());
      return e.exit_code();
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "zeroth %s: error: out of host memory (an input, a config value or the model is "
                   "larger than this machine's memory or the process's limit)\n", c.name);
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "zeroth %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "zeroth: unknown command '%s'\n\n", name.c_str());
  print_usage(stderr);
  return 2;
}
