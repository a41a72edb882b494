// `zeroth demo-data`: writes the CPU demo's data (pretrain.txt, train.jsonl, eval.jsonl)
// from a seed. The generator lives in src/train/prompt_data_demo.cpp; this file parses
// flags, checks the corpus against the R1-Zero template before writing, and reports.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "zeroth/error.h"
#include "zeroth/prompt.h"
#include "zeroth/prompt_data.h"

namespace zeroth {
namespace cli {

static const char kDemoDataUsage[] =
    "usage: zeroth demo-data --out DIR [--seed S] [--train N] [--eval N] [--corpus-bytes B]\n"
    "                        [--copy-forcing]\n"
    "\n"
    "Writes the synthetic arithmetic task of the CPU demo (docs/data.md, \"demo task\"):\n"
    "  DIR/pretrain.txt  pretraining corpus, one document per line (no R1-Zero template text,\n"
    "                    no <think>/<answer> tags, no held-out problem)\n"
    "  DIR/train.jsonl   RL prompts {\"prompt\", \"answer\", \"steps\", \"key\"}\n"
    "  DIR/eval.jsonl    held-out prompts, disjoint from the train prompts and the corpus\n"
    "\n"
    "  --out DIR          output directory (created)\n"
    "  --seed S           seed (default 1); the same seed writes the same bytes\n"
    "  --train N          RL training prompts (default 10000)\n"
    "  --eval N           held-out prompts (default 300)\n"
    "  --corpus-bytes B   size of pretrain.txt, about (default 3000000)\n"
    "  --copy-forcing     a corpus with more signal for in-context copying: repeat documents\n"
    "                     and made-up tag names (an experiment, docs/demo.md; default off)\n";

static int64_t parse_count(const Args& args, const char* key, int64_t fallback, int64_t lo) {
  return args.has(key) ? parse_int_flag(key, args.get(key), lo) : fallback;
}

int cmd_demo_data(const std::vector<std::string>& argv) {
  Args args("demo-data", argv, {"out", "seed", "train", "eval", "corpus-bytes", "copy-forcing"},
            {"copy-forcing"});
  if (args.help()) {
    std::printf("%s", kDemoDataUsage);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(strformat("unexpected argument '%s' (see 'zeroth demo-data --help')",
                               args.positional()[0].c_str()));
  DemoDataOptions o;
  const std::string out = args.required("out");
  o.seed = uint64_t(parse_count(args, "seed", 1, 0));
  o.train_prompts = parse_count(args, "train", o.train_prompts, 1);
  o.eval_prompts = parse_count(args, "eval", o.eval_prompts, 1);
  o.corpus_bytes = parse_count(args, "corpus-bytes", o.corpus_bytes, 1);
  o.copy_forcing = args.has("copy-forcing");
  const DemoData data = generate_demo_data(o);
  const auto bad = find_forbidden_text(data.corpus, {kR1ZeroTemplate});
  if (!bad.empty()) throw RuntimeError("the generated corpus contains forbidden text: " + bad[0]);
  write_demo_data(data, out);
  std::printf("wrote %s/pretrain.txt (%zu bytes, %lld documents:", out.c_str(), data.corpus.size(),
              (long long)data.corpus_documents);
  for (const auto& [kind, n] : data.corpus_doc_kinds) std::printf(" %s %lld", kind.c_str(), (long long)n);
  std::printf("), %s/train.jsonl (%zu prompts), %s/eval.jsonl (%zu prompts), seed %llu\n", out.c_str(),
              data.train.size(), out.c_str(), data.eval.size(), (unsigned long long)o.seed);
  return 0;
}

}  // namespace cli
}  // namespace zeroth
