// `zeroth pass-rate`: offline difficulty filtering of a train config's training prompts.
// Samples k completions of every training prompt with a model (evaluate_model's sampled
// pass, the eval section's sampling settings), writes each prompt's pass rate, prints the
// distribution, and with --keep / --kept-dir writes the original JSONL lines of the prompts
// whose pass rate lies in a range (drop what the model always or never solves, as DAPO,
// Skywork-OR1 and POLARIS prepare their RL data). Data parallel under mpirun.
// Must not: contain evaluation logic (evaluate_model in src/train/grpo_trainer_util.cpp).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/run_context.h"
#include "io/io_util.h"
#include "zeroth/backend.h"
#include "zeroth/backend_factory.h"
#include "zeroth/comm.h"
#include "zeroth/error.h"
#include "zeroth/grpo_trainer.h"
#include "zeroth/log.h"
#include "zeroth/model.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"
#include "zeroth/prompt.h"
#include "zeroth/prompt_data.h"
#include "zeroth/tokenizer.h"
#include "zeroth/train.h"

namespace zeroth {
namespace cli {

static const char kPassRateUsage[] =
    "usage: zeroth pass-rate --model DIR --config CONFIG.yaml --out RATES.jsonl [--samples K]\n"
    "                        [--keep LO:HI [--kept-dir DIR]] [--limit N] [--set section.key=value ...]\n"
    "\n"
    "Offline difficulty filtering: samples K completions of every training prompt of a train\n"
    "config (prompts.sources, less any eval split) with the model, at the eval section's\n"
    "sampling settings (eval.temperature, top_p, top_k, min_p, max_new_tokens, seed), scores\n"
    "them with the config's rewards and writes each prompt's pass rate. Prints how many\n"
    "prompts were solved 0, 1, ..., K times, then one JSON line (prompts, samples,\n"
    "pass_rate_mean, solved_none_frac, solved_all_frac, and kept with --keep). Prompts every\n"
    "sample solves, or none does, give GRPO no signal: filter them out before a run.\n"
    "\n"
    "  --model DIR     HF model directory (config.json, safetensors, tokenizer.json)\n"
    "  --config C      train config (prompts, rollout, rewards and eval sections are used)\n"
    "  --out F         one JSON line per prompt: index, where (file:line), source, samples,\n"
    "                  correct, pass_rate\n"
    "  --samples K     completions per prompt (default eval.pass_k; it sets eval.pass_k)\n"
    "  --keep LO:HI    keep the prompts with LO <= pass rate <= HI, e.g. 0.01:0.99 drops those\n"
    "                  solved never and always\n"
    "  --kept-dir DIR  with --keep: write DIR/NAME.jsonl per training source NAME, the kept\n"
    "                  prompts' original lines in file order (point prompts.sources at them)\n"
    "  --limit N       only the first N training prompts\n"
    "  --set k=v       override one key (repeatable)\n";

namespace {

// "LO:HI" with 0 <= LO <= HI <= 1.
std::pair<double, double> parse_keep(const std::string& v) {
  const size_t colon = v.find(':');
  double lo = -1, hi = -1;
  size_t used_lo = 0, used_hi = 0;
  try {
    if (colon != std::string::npos) {
      lo = std::stod(v.substr(0, colon), &used_lo);
      hi = std::stod(v.substr(colon + 1), &used_hi);
    }
  } catch (const std::exception&) {
    lo = hi = -1;
  }
  if (colon == std::string::npos || used_lo != colon || used_hi != v.size() - colon - 1 || !(lo >= 0.0) ||
      !(hi <= 1.0) || !(lo <= hi))
    throw UsageError(strformat("--keep: expected LO:HI with 0 <= LO <= HI <= 1, found '%s'", v.c_str()));
  return {lo, hi};
}

// The line number of a record's "file:line".
int64_t record_line(const PromptRecord& r) {
  const size_t colon = r.where.rfind(':');
  ZT_ASSERT(colon != std::string::npos, "prompt record without a line: '%s'", r.where.c_str());
  return std::stoll(r.where.substr(colon + 1));
}

}  // namespace

int cmd_pass_rate(const std::vector<std::string>& argv) {
  Args args("pass-rate", argv, {"model", "config", "out", "samples", "keep", "kept-dir", "limit", "set"}, {}, {"set"});
  if (args.help()) {
    std::printf("%s", kPassRateUsage);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(
        strformat("unexpected argument '%s' (see 'zeroth pass-rate --help')", args.positional()[0].c_str()));
  const std::string model_dir = args.required("model"), out_path = args.required("out");
  if (args.has("kept-dir") && !args.has("keep")) throw UsageError("--kept-dir: needs --keep LO:HI");
  const bool keeping = args.has("keep");
  const std::pair<double, double> keep = keeping ? parse_keep(args.get("keep")) : std::pair<double, double>{0, 1};
  std::vector<std::string> sets = args.all("set");
  if (args.has("samples")) sets.push_back("eval.pass_k=" + std::to_string(parse_int_flag("samples", args.get("samples"), 1)));
  sets.push_back("eval.greedy=false");  // (the sampled pass only)
  sets.push_back("eval.max_prompts=" + (args.has("limit") ? std::to_string(parse_int_flag("limit", args.get("limit"), 1))
                                                          : std::string("0")));
  const TrainConfig config = load_train_config(args.required("config"), sets);
  const int64_t k = config.eval.pass_k;
  if (k < 1) throw UsageError("zeroth pass-rate: give --samples K (or set eval.pass_k >= 1)");
  io::check_output_file(out_path, "out");
  const std::string kept_dir = args.get("kept-dir");

  RunContext ctx = start_run(config.run, false);
  Communicator& world = *ctx.world;
  const ModelConfig mc = read_model_config(model_dir);
  std::unique_ptr<Tokenizer> tok = load_tokenizer(model_dir);
  const RolloutConfig& rc = config.rollout;
  const PromptTemplate tmpl(rc.prompt_template, "key 'rollout.prompt_template'");
  const PromptData data = load_prompt_data(config.prompts, tok.get(), &tmpl, rc.add_special_tokens,
                                           std::min(rc.max_len, mc.max_position_embeddings));
  const PromptDataset& prompts = data.train;
  Model model(mc, *ctx.backend, compute_dtype_for(*ctx.backend, config.run.compute_dtype, "key 'run.compute_dtype'"));
  model.release_grads();  // inference only
  load_hf_weights(model_dir, mc, model.params());
  ZT_LOG_INFO("pass-rate: %lld training prompts x %lld samples at temperature %g; model %s",
              (long long)(config.eval.max_prompts > 0 ? std::min(config.eval.max_prompts, prompts.size())
                                                      : prompts.size()),
              (long long)k, config.eval.temperature, model_dir.c_str());
  const EvalResult r = evaluate_model(model, *tok, config, prompts, world);
  if (world.rank() != 0) return 0;

  const int64_t n = int64_t(r.prompt_correct.size());
  std::vector<int64_t> hist(size_t(k + 1), 0);
  std::string lines;
  // Kept line numbers per training source (config.prompts.sources order = source index).
  std::vector<std::set<int64_t>> kept_lines(config.prompts.sources.size());
  int64_t kept = 0;
  double rate_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const PromptRecord& rec = prompts.records[size_t(i)];
    const int64_t c = r.prompt_correct[size_t(i)];
    const double rate = double(c) / double(k);
    ++hist[size_t(c)];
    rate_sum += rate;
    nlohmann::ordered_json o;
    o["index"] = i;
    o["where"] = rec.where;
    if (size_t(rec.source) < prompts.source_names.size()) o["source"] = prompts.source_names[size_t(rec.source)];
    o["samples"] = k;
    o["correct"] = c;
    o["pass_rate"] = rate;
    lines += o.dump() + "\n";
    if (keeping && rate >= keep.first && rate <= keep.second) {
      ++kept;
      kept_lines[size_t(rec.source)].insert(record_line(rec));
    }
  }
  io::write_file_atomic(out_path, [&](std::ostream& f) { f << lines; });
  if (!kept_dir.empty()) {
    std::filesystem::create_directories(kept_dir);
    for (size_t s = 0; s < config.prompts.sources.size(); ++s) {
      const std::string& path = config.prompts.sources[s].path;
      std::ifstream in(path);
      if (!in) throw DataError(strformat("%s: cannot open the prompt file again to copy its kept lines", path.c_str()));
      const std::string dest = kept_dir + "/" + prompts.source_names[s] + ".jsonl";
      io::write_file_atomic(dest, [&](std::ostream& f) {
        int64_t lineno = 0;
        for (std::string line; std::getline(in, line);)
          if (kept_lines[s].count(++lineno)) f << line << "\n";
      });
      ZT_LOG_INFO("pass-rate: %zu prompts of %s kept in %s", kept_lines[s].size(), path.c_str(), dest.c_str());
    }
  }

  std::printf("%-8s %8s %7s\n", "correct", "prompts", "share");
  for (int64_t c = 0; c <= k; ++c)
    std::printf("%3lld/%-4lld %8lld %7.3f\n", (long long)c, (long long)k, (long long)hist[size_t(c)],
                n > 0 ? double(hist[size_t(c)]) / double(n) : 0.0);
  nlohmann::ordered_json j;
  j["prompts"] = n;
  j["samples"] = k;
  j["pass_rate_mean"] = n > 0 ? rate_sum / double(n) : 0.0;
  j["solved_none_frac"] = n > 0 ? double(hist[0]) / double(n) : 0.0;
  j["solved_all_frac"] = n > 0 ? double(hist[size_t(k)]) / double(n) : 0.0;
  if (keeping) j["kept"] = kept;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace cli
}  // namespace zeroth
