// `zeroth generate`: G sampled completions per prompt of a JSONL file, with the
// rollout engine (rollout.h: continuous batching over the MLA latent KV cache).
// Reads the `rollout:` section of --config (a full run config works: its other
// sections are ignored here), --set rollout.<key>=<value>, and the shortcuts
// --group-size, --temperature, --max-new-tokens, --seed (applied last).
// Input lines: {"prompt": "...", ...} rendered with rollout.prompt_template (the record's
// string and number fields fill its {field}s) and encoded with the tokenizer, or
// {"ids": [...], ...} used as given. Output: one line per completion, ordered by
// (prompt, sample): the input record's keys ("ids" renamed "prompt_ids") plus
// prompt_index, sample_index, prompt_text, completion, ids, logprobs, finish_reason, stop.
// Must not: contain generation logic (generate() does) or compute rewards.
// Errors: a bad input line is a DataError naming file:line (every line is checked before
// the model loads); config errors are ConfigErrors naming the key.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/io_util.h"
#include "cli/cli.h"
#include "zeroth/backend.h"
#include "zeroth/backend_factory.h"
#include "zeroth/config_reflect.h"
#include "zeroth/error.h"
#include "zeroth/log.h"
#include "zeroth/model.h"
#include "zeroth/model_config.h"
#include "zeroth/model_infer.h"
#include "zeroth/model_params.h"
#include "zeroth/prompt.h"
#include "zeroth/rollout.h"
#include "zeroth/rollout_config.h"
#include "zeroth/tokenizer.h"

namespace zeroth {
namespace cli {

static const char kGenerateUsage[] =
    "usage: zeroth generate --model DIR --prompts FILE.jsonl --output OUT.jsonl\n"
    "                       [--config C.yaml] [--set rollout.KEY=VALUE ...]\n"
    "                       [--group-size G] [--temperature T] [--max-new-tokens N] [--seed S]\n"
    "                       [--tokenizer PATH] [--threads N] [--device cpu|cuda[:i]]\n"
    "\n"
    "  --model DIR          Hugging Face model directory (config.json + safetensors)\n"
    "  --prompts FILE       JSONL: {\"prompt\": \"...\"} (rendered with rollout.prompt_template;\n"
    "                       other string/number fields fill its {field}s) or {\"ids\": [...]}\n"
    "  --output OUT         JSONL, one line per completion ordered by (prompt, sample): the\n"
    "                       input's keys plus prompt_index, sample_index, prompt_text,\n"
    "                       completion, ids, logprobs, finish_reason (stop|length), stop\n"
    "  --config C.yaml      a file with a `rollout:` section (other sections are ignored)\n"
    "  --set KEY=VALUE      override a rollout key, e.g. --set rollout.top_p=0.95 (repeatable)\n"
    "  --group-size G, --temperature T, --max-new-tokens N, --seed S\n"
    "                       shortcuts for the rollout keys of the same name (applied last)\n"
    "  --tokenizer PATH     tokenizer.json or a directory holding one (default: --model's)\n"
    "  --threads N          CPU threads (default: all cores)\n"
    "  --device D           cpu (default) or cuda / cuda:<i>: the model, KV cache and\n"
    "                       sampler run there (fp32; only ids and log-probs come back)\n"
    "\n"
    "Without a tokenizer only {\"ids\"} lines work, stop strings must be off\n"
    "(--set 'rollout.stop=[]') and completions have no text. The KV cache holds\n"
    "rollout.num_slots sequences of rollout.max_len tokens, fewer under rollout.kv_cache_mb\n"
    "(docs/rollout.md).\n";

namespace {

// A config with only the `rollout:` section.
struct GenerateCliConfig {
  RolloutConfig rollout;
  template <class V>
  void visit(V& v) {
    v.field("rollout", rollout, "Rollout: sampling, stop rules, KV cache, prompt template");
  }
};

RolloutConfig load_rollout_config(const Args& args) {
  ConfigNode root = args.has("config") ? load_config_tree(args.get("config"))
                                       : ConfigNode::make_map(SourcePos{"<command line>", 0, 0});
  std::vector<std::string> overrides = args.all("set");
  const std::pair<const char*, const char*> shortcuts[] = {{"group-size", "group_size"},
                                                           {"temperature", "temperature"},
                                                           {"max-new-tokens", "max_new_tokens"},
                                                           {"seed", "seed"}};
  for (const auto& s : shortcuts)
    if (args.has(s.first)) overrides.push_back(std::string("rollout.") + s.second + "=" + args.get(s.first));
  for (const std::string& o : overrides) {
    if (o.compare(0, 8, "rollout.") != 0)
      throw UsageError(strformat("--set %s: expected a key under rollout. (zeroth generate reads "
                                 "only the rollout section)",
                                 o.c_str()));
    apply_config_override(root, o);
  }
  ConfigNode only = ConfigNode::make_map(root.pos);
  if (root.kind == ConfigNode::Kind::Map)
    if (const ConfigNode::Entry* e = root.find("rollout")) only.set("rollout", e->key_pos, e->value);
  GenerateCliConfig cfg;
  read_config_tree(only, cfg);
  return cfg.rollout;
}

struct PromptLine {
  nlohmann::ordered_json obj;  // the input record ("ids" renamed "prompt_ids")
  std::string text;            // what the model is given, as text ("" without a tokenizer)
  std::vector<int32_t> ids;
};

std::vector<PromptLine> read_prompts(const std::string& path, const Tokenizer* tok,
                                     const PromptTemplate& tmpl, bool add_special,
                                     int64_t vocab, int64_t max_len) {
  std::ifstream in(path);
  if (!in) throw DataError(strformat("%s: cannot open for reading", path.c_str()));
  std::vector<PromptLine> out;
  std::string text;
  for (long long lineno = 1; std::getline(in, text); ++lineno) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = strformat("%s:%lld", path.c_str(), lineno);
    PromptLine line;
    line.obj = io::parse_json_input<nlohmann::ordered_json>(text, where);
    if (!line.obj.is_object() || (!line.obj.contains("ids") && !line.obj.contains("prompt")))
      throw DataError(strformat("%s: expected an object with \"prompt\" (text) or \"ids\" (token "
                                "ids), found %s",
                                where.c_str(),
                                line.obj.is_object() ? "an object with neither" : line.obj.type_name()));
    if (line.obj.contains("ids")) {
      const auto& ids = line.obj["ids"];
      if (!ids.is_array() || ids.empty())
        throw DataError(strformat("%s: \"ids\": expected a non-empty array of token ids, found %s",
                                  where.c_str(), ids.is_array() ? "an empty array" : ids.type_name()));
      for (size_t i = 0; i < ids.size(); ++i) {
        const auto& v = ids[i];
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab)
          throw DataError(strformat("%s: \"ids\"[%zu]: expected an integer in [0, %lld), found %s",
                                    where.c_str(), i, (long long)vocab, v.dump().c_str()));
        line.ids.push_back(int32_t(v.get<int64_t>()));
      }
      if (tok) line.text = tok->decode(line.ids, false);
      line.obj["prompt_ids"] = line.obj["ids"];
      line.obj.erase("ids");
    } else {
      if (!tok)
        throw DataError(strformat("%s: a \"prompt\" line needs a tokenizer (--tokenizer, or a model "
                                  "directory with tokenizer.json); give {\"ids\": [...]} instead",
                                  where.c_str()));
      std::map<std::string, std::string> fields;
      for (auto it = line.obj.begin(); it != line.obj.end(); ++it) {
        if (it.value().is_string()) fields[it.key()] = it.value().get<std::string>();
        else if (it.value().is_number()) fields[it.key()] = it.value().dump();
      }
      if (!line.obj["prompt"].is_string())
        throw DataError(strformat("%s: \"prompt\": expected a string, found %s", where.c_str(),
                                  line.obj["prompt"].type_name()));
      line.text = tmpl.render(fields, where);
      line.ids = encode_prompt(*tok, line.text, add_special, where);
      for (size_t i = 0; i < line.ids.size(); ++i)
        if (line.ids[i] >= vocab)
          throw DataError(strformat("%s: token %zu of the prompt is id %d, outside the model's "
                                    "vocabulary of %lld (tokenizer and model do not match)",
                                    where.c_str(), i, line.ids[i], (long long)vocab));
    }
    if (int64_t(line.ids.size()) > max_len)
      throw DataError(strformat("%s: the prompt has %zu tokens; the cache holds %lld per sequence "
                                "(rollout.max_len, at most the model's max_position_embeddings)",
                                where.c_str(), line.ids.size(), (long long)max_len));
    out.push_back(std::move(line));
  }
  if (in.bad()) throw DataError(strformat("%s: read failed", path.c_str()));
  return out;
}

int parse_threads(const Args& args) {
  if (!args.has("threads")) return 0;
  const std::string v = args.get("threads");
  size_t pos = 0;
  long x = -1;
  try {
    x = std::stol(v, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (v.empty() || pos != v.size() || x < 0)
    throw UsageError(strformat("--threads: expected an integer >= 0, found '%s'", v.c_str()));
  return int(x);
}

}  // namespace

int cmd_generate(const std::vector<std::string>& argv) {
  Args args("generate", argv,
            {"model", "prompts", "output", "config", "set", "group-size", "temperature",
             "max-new-tokens", "seed", "tokenizer", "threads", "device"},
            {}, {"set"});
  if (args.help()) {
    std::printf("%s", kGenerateUsage);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(strformat("unexpected argument '%s' (see 'zeroth generate --help')",
                               args.positional()[0].c_str()));
  const std::string model_dir = args.required("model");
  const std::string prompts_path = args.required("prompts");
  const std::string output = args.required("output");
  io::check_input_file(prompts_path, "a JSONL file of prompts");
  io::check_output_file(output, "output");
  const int threads = parse_threads(args);
  const RolloutConfig rc = load_rollout_config(args);

  const ModelConfig mcfg = read_model_config(model_dir);
  std::unique_ptr<Tokenizer> tok;
  if (args.has("tokenizer")) {
    tok = load_tokenizer(args.get("tokenizer"));
  } else if (std::filesystem::exists(std::filesystem::path(model_dir) / "tokenizer.json")) {
    tok = load_tokenizer(model_dir);
  }
  if (!tok && !rc.stop.empty())
    throw ConfigError(strformat("key 'rollout.stop': stop strings need a tokenizer, and %s has no "
                                "tokenizer.json: pass --tokenizer, or --set 'rollout.stop=[]'",
                                model_dir.c_str()));
  const PromptTemplate tmpl(rc.prompt_template, "key 'rollout.prompt_template'");
  const KvCachePlan plan = plan_kv_cache(mcfg, rc);
  const std::vector<PromptLine> lines = read_prompts(prompts_path, tok.get(), tmpl,
                                                     rc.add_special_tokens, mcfg.vocab_size,
                                                     plan.max_len);
  StopParams stop;
  if (tok) {
    stop = rc.stop_params(*tok);
  } else {
    stop.max_new_tokens = rc.max_new_tokens;
    for (int64_t id : rc.stop_token_ids) {
      ZT_THROW_IF_NOT(id >= 0 && id < mcfg.vocab_size, ConfigError,
                      "key 'rollout.stop_token_ids': expected ids in [0, %lld), found %lld",
                      (long long)mcfg.vocab_size, (long long)id);
      stop.stop_token_ids.push_back(int32_t(id));
    }
    if (rc.stop_at_eos && mcfg.eos_token_id && *mcfg.eos_token_id >= 0)
      stop.stop_token_ids.push_back(int32_t(*mcfg.eos_token_id));
  }

  auto backend = make_backend(args.get("device", "cpu"), threads, 0, "--device");
  Model model(mcfg, *backend);
  model.release_grads();  // inference only
  load_hf_weights(model_dir, mcfg, model.params());
  ModelInference engine(model, plan.num_slots, plan.max_len);
  std::fprintf(stderr,
               "zeroth generate: %zu prompts x %lld samples; KV cache %lld slots x %lld tokens "
               "(%.1f MiB, %lld B/token)%s\n",
               lines.size(), (long long)rc.group_size, (long long)plan.num_slots,
               (long long)plan.max_len, double(plan.bytes) / 1048576.0,
               (long long)plan.bytes_per_token, plan.capped ? ", capped by rollout.kv_cache_mb" : "");

  std::vector<std::vector<int32_t>> prompt_ids;
  prompt_ids.reserve(lines.size());
  for (const PromptLine& l : lines) prompt_ids.push_back(l.ids);
  const int64_t total = int64_t(lines.size()) * rc.group_size;
  Progress bar("generate", total, "seq", 5.0);
  const auto t0 = std::chrono::steady_clock::now();
  GenerateStats st;
  const std::vector<Completion> out =
      generate(engine, tok.get(), prompt_ids, rc.group_size, rc.sampling(), stop, 0, &st,
               [&](const GenerateProgress& p) {
                 const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                 bar.update(p.completions_done,
                            strformat("%lld running, %lld tok, %.1f tok/s", (long long)p.running,
                                      (long long)p.generated_tokens,
                                      s > 0 ? double(p.generated_tokens) / s : 0.0));
               });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  bar.finish(strformat("%lld tok, %.1f tok/s", (long long)st.generated_tokens,
                       secs > 0 ? double(st.generated_tokens) / secs : 0.0));

  int64_t n_stop = 0;
  io::write_file_atomic(output, [&](std::ostream& f) {
    for (const Completion& c : out) {
      const PromptLine& l = lines[size_t(c.prompt_index)];
      nlohmann::ordered_json o = l.obj;
      o["prompt_index"] = c.prompt_index;
      o["sample_index"] = c.sample_index;
      o["prompt_text"] = l.text;
      o["completion"] = c.text;
      o["ids"] = c.ids;
      o["logprobs"] = c.logprobs;
      o["finish_reason"] = finish_reason_name(c.finish);
      o["stop"] = c.stop;
      n_stop += c.finish == FinishReason::kStop;
      f << o.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
    }
  });
  std::fprintf(stderr,
               "zeroth generate: %zu completions -> %s (%lld stop, %lld length); %lld tokens in "
               "%.2f s (%.1f tok/s), %lld decode steps, mean batch %.1f\n",
               out.size(), output.c_str(), (long long)n_stop, (long long)(int64_t(out.size()) - n_stop),
               (long long)st.generated_tokens, secs, secs > 0 ? double(st.generated_tokens) / secs : 0.0,
               (long long)st.decode_steps,
               st.decode_steps ? double(st.decode_tokens) / double(st.decode_steps) : 0.0);
  return 0;
}

}  // namespace cli
}  // namespace zeroth
