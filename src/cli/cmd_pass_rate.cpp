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
    "       zeroth pass-rate --from RATES.jsonl --keep LO:HI --kept-dir DIR\n"
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
    "  --set k=v       override one key (repeatable)\n"
    "  --from R        filter again from a rates file this command wrote, without sampling (choose\n"
    "                  the range after seeing the distribution): the kept lines of each rated file\n"
    "                  go to DIR/SOURCE.jsonl as above; a line the rates do not name is dropped\n";

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

// "file:line" split at its last colon; false when it is not of that form.
bool split_where(const std::string& where, std::string& file, int64_t& line) {
  const size_t colon = where.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == where.size()) return false;
  const std::string digits = where.substr(colon + 1);
  if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 12) return false;
  file = where.substr(0, colon);
  line = std::stoll(digits);
  return line >= 1;
}

// The kept lines of one prompt file, written to DIR/NAME.jsonl.
struct KeptFile {
  std::string name, path;
  std::set<int64_t> lines;  // 1-based
};

// Copies each file's kept lines, byte for byte and in file order, to DIR/NAME.jsonl.
void write_kept(const std::string& dir, const std::vector<KeptFile>& files) {
  for (const KeptFile& kf : files) {  // never replace a prompt file by its filtered copy
    const std::string dest = dir + "/" + kf.name + ".jsonl";
    std::error_code ec;
    if (std::filesystem::exists(dest) && std::filesystem::equivalent(dest, kf.path, ec))
      throw UsageError(strformat("--kept-dir %s: %s would overwrite the prompt file it is filtered from; choose "
                                 "another directory", dir.c_str(), dest.c_str()));
  }
  std::filesystem::create_directories(dir);
  for (const KeptFile& kf : files) {
    std::ifstream in(kf.path);
    if (!in) throw DataError(strformat("%s: cannot open the prompt file again to copy its kept lines", kf.path.c_str()));
    const std::string dest = dir + "/" + kf.name + ".jsonl";
    int64_t lineno = 0;
    io::write_file_atomic(dest, [&](std::ostream& f) {
      for (std::string line; std::getline(in, line);)
        if (kf.lines.count(++lineno)) f << line << "\n";
    });
    if (!kf.lines.empty() && *kf.lines.rbegin() > lineno)
      throw DataError(strformat("%s: has %lld lines, but the rates name line %lld: the file changed since it was rated",
                                kf.path.c_str(), (long long)lineno, (long long)*kf.lines.rbegin()));
    ZT_LOG_INFO("pass-rate: %zu prompts of %s kept in %s", kf.lines.size(), kf.path.c_str(), dest.c_str());
  }
}

// The table of how many prompts were solved c of k times, then the JSON summary line.
void print_summary(const std::vector<int64_t>& hist, int64_t k, double rate_sum, bool keeping, int64_t kept) {
  int64_t n = 0;
  for (int64_t h : hist) n += h;
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
}

// --from: the kept lines of every file a rates file names, without sampling.
int filter_from_rates(const std::string& rates_path, const std::pair<double, double>& keep, const std::string& dir) {
  std::ifstream in(rates_path);
  if (!in) throw DataError(strformat("%s: cannot open the rates file (--from)", rates_path.c_str()));
  std::vector<KeptFile> files;
  std::map<std::string, size_t> file_index;  // path -> files
  std::vector<int64_t> hist;
  int64_t k = -1, lineno = 0, kept = 0;
  double rate_sum = 0;
  for (std::string line; std::getline(in, line);) {
    ++lineno;
    const std::string at = strformat("%s:%lld", rates_path.c_str(), (long long)lineno);
    const nlohmann::json o = io::parse_json_input<nlohmann::json>(line, at);
    std::string file;
    int64_t file_line = 0;
    const auto bad = [&](const char* what) {
      return DataError(strformat("%s: expected a line of 'zeroth pass-rate --out' (%s)", at.c_str(), what));
    };
    if (!o.is_object() || !o.contains("where") || !o["where"].is_string() || !split_where(o["where"], file, file_line))
      throw bad("\"where\": \"file:line\"");
    if (!o.contains("samples") || !o["samples"].is_number_integer() || !o.contains("correct") ||
        !o["correct"].is_number_integer())
      throw bad("integer \"samples\" and \"correct\"");
    const int64_t samples = o["samples"].get<int64_t>(), correct = o["correct"].get<int64_t>();
    if (k < 0) {
      if (samples < 1) throw bad("\"samples\" >= 1");
      k = samples;
      hist.assign(size_t(k + 1), 0);
    }
    if (samples != k) throw bad("the same \"samples\" on every line");
    if (correct < 0 || correct > k) throw bad("0 <= \"correct\" <= \"samples\"");
    const double rate = double(correct) / double(k);
    ++hist[size_t(correct)];
    rate_sum += rate;
    auto it = file_index.find(file);
    if (it == file_index.end()) {
      std::string name = o.contains("source") && o["source"].is_string() ? o["source"].get<std::string>()
                                                                          : std::filesystem::path(file).stem().string();
      it = file_index.emplace(file, files.size()).first;
      files.push_back({name, file, {}});
    }
    if (rate >= keep.first && rate <= keep.second) {
      ++kept;
      files[it->second].lines.insert(file_line);
    }
  }
  if (k < 0) throw DataError(strformat("%s: no rated prompt (--from)", rates_path.c_str()));
  std::set<std::string> names;
  for (const KeptFile& kf : files)
    if (!names.insert(kf.name).second)
      throw DataError(strformat("%s: two rated files share the source name '%s'", rates_path.c_str(), kf.name.c_str()));
  write_kept(dir, files);
  print_summary(hist, k, rate_sum, true, kept);
  return 0;
}

}  // namespace

int cmd_pass_rate(const std::vector<std::string>& argv) {
  Args args("pass-rate", argv, {"model", "config", "out", "samples", "keep", "kept-dir", "limit", "set", "from"}, {},
            {"set"});
  if (args.help()) {
    std::printf("%s", kPassRateUsage);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(
        strformat("unexpected argument '%s' (see 'zeroth pass-rate --help')", args.positional()[0].c_str()));
  if (args.has("kept-dir") && !args.has("keep")) throw UsageError("--kept-dir: needs --keep LO:HI");
  const bool keeping = args.has("keep");
  const std::pair<double, double> keep = keeping ? parse_keep(args.get("keep")) : std::pair<double, double>{0, 1};
  if (args.has("from")) {
    for (const char* other : {"model", "config", "out", "samples", "limit", "set"})
      if (args.has(other))
        throw UsageError(strformat("--from: filters a rates file without sampling; --%s does not apply", other));
    if (!keeping || !args.has("kept-dir")) throw UsageError("--from: needs --keep LO:HI and --kept-dir DIR");
    return filter_from_rates(args.get("from"), keep, args.get("kept-dir"));
  }
  const std::string model_dir = args.required("model"), out_path = args.required("out");
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
  // The kept lines per training source (config.prompts.sources order = source index).
  std::vector<KeptFile> kept_files;
  for (size_t s = 0; s < config.prompts.sources.size(); ++s)
    kept_files.push_back({prompts.source_names[s], config.prompts.sources[s].path, {}});
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
      std::string file;
      int64_t line = 0;
      ZT_ASSERT(split_where(rec.where, file, line), "prompt record without a line: '%s'", rec.where.c_str());
      ++kept;
      kept_files[size_t(rec.source)].lines.insert(line);
    }
  }
  io::write_file_atomic(out_path, [&](std::ostream& f) { f << lines; });
  if (!kept_dir.empty()) write_kept(kept_dir, kept_files);
  print_summary(hist, k, rate_sum, keeping, kept);
  return 0;
}

}  // namespace cli
}  // namespace zeroth
