// `zeroth score`: per-token log-probabilities of token sequences under a model.
// Reads JSONL lines {"ids": [...], ...}; writes each line back with "logprobs": the
// fp32 log-probability of every token after the first (at --temperature), keeping the
// line's other keys. Must not: tokenize (ids are given) or sample.
// Errors: a bad line is a DataError naming file:line (all lines are validated before
// the model runs); a bad model directory is a ConfigError / CheckpointError.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/io_util.h"
#include "cli/cli.h"
#include "zeroth/backend.h"
#include "zeroth/error.h"
#include "zeroth/model.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"

namespace zeroth {
namespace cli {

static const char kScoreUsage[] =
    "usage: zeroth score --model DIR --input FILE.jsonl --output OUT.jsonl\n"
    "                    [--temperature T] [--threads N]\n"
    "\n"
    "  --model DIR        Hugging Face model directory (config.json + safetensors)\n"
    "  --input FILE       JSONL, one {\"ids\": [int, ...]} per line (other keys are kept)\n"
    "  --output OUT       JSONL, each input line with \"logprobs\": log p(ids[t] | ids[<t])\n"
    "                     for t >= 1, in fp32 (len(ids) - 1 values)\n"
    "  --temperature T    scores softmax(logits / T) (default 1)\n"
    "  --threads N        CPU threads (default: all cores)\n";

namespace {

struct ScoreLine {
  nlohmann::ordered_json obj;
  std::vector<int32_t> ids;
};

float parse_float_flag(const std::string& name, const std::string& v) {
  size_t pos = 0;
  float x = 0.0f;
  try {
    x = std::stof(v, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos != v.size() || !std::isfinite(x))
    throw UsageError(strformat("--%s: expected a number, found '%s'", name.c_str(), v.c_str()));
  return x;
}

std::vector<ScoreLine> read_lines(const std::string& path, int64_t vocab, int64_t max_positions) {
  std::ifstream in(path);
  if (!in) throw DataError(strformat("%s: cannot open for reading", path.c_str()));
  std::vector<ScoreLine> out;
  std::string text;
  for (int64_t lineno = 1; std::getline(in, text); ++lineno) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    ScoreLine line;
    line.obj = io::parse_json_input<nlohmann::ordered_json>(text, strformat("%s:%lld", path.c_str(), (long long)lineno));
    if (!line.obj.is_object() || !line.obj.contains("ids"))
      throw DataError(strformat("%s:%lld: expected an object with key \"ids\", found %s",
                                path.c_str(), (long long)lineno,
                                line.obj.is_object() ? "an object without it" : line.obj.type_name()));
    const auto& ids = line.obj["ids"];
    if (!ids.is_array() || ids.empty())
      throw DataError(strformat("%s:%lld: \"ids\": expected a non-empty array of token ids, found %s",
                                path.c_str(), (long long)lineno,
                                ids.is_array() ? "an empty array" : ids.type_name()));
    if (int64_t(ids.size()) > max_positions)
      throw DataError(strformat("%s:%lld: \"ids\": %zu tokens, the model takes at most %lld "
                                "(max_position_embeddings)",
                                path.c_str(), (long long)lineno, ids.size(), (long long)max_positions));
    for (size_t i = 0; i < ids.size(); ++i) {
      const auto& v = ids[i];
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab)
        throw DataError(strformat("%s:%lld: \"ids\"[%zu]: expected an integer in [0, %lld), found %s",
                                  path.c_str(), (long long)lineno, i, (long long)vocab,
                                  v.dump().c_str()));
      line.ids.push_back(int32_t(v.get<int64_t>()));
    }
    out.push_back(std::move(line));
  }
  return out;
}

}  // namespace

int cmd_score(const std::vector<std::string>& argv) {
  Args args("score", argv, {"model", "input", "output", "temperature", "threads"});
  if (args.help()) {
    std::printf("%s", kScoreUsage);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(strformat("unexpected argument '%s' (see 'zeroth score --help')",
                               args.positional()[0].c_str()));
  const std::string model_dir = args.required("model");
  const std::string input = args.required("input");
  const std::string output = args.required("output");
  io::check_input_file(input, "a JSONL file");
  io::check_output_file(output, "output");
  const float temperature = parse_float_flag("temperature", args.get("temperature", "1"));
  if (!(temperature > 0.0f))
    throw UsageError(strformat("--temperature: expected a number > 0, found %g", double(temperature)));
  int threads = 0;
  if (args.has("threads")) threads = int(parse_float_flag("threads", args.get("threads")));

  ModelConfig config = read_model_config(model_dir);
  std::vector<ScoreLine> lines = read_lines(input, config.vocab_size, config.max_position_embeddings);
  auto backend = make_cpu_backend(threads);
  Model model(config, *backend);
  model.release_grads();  // inference only
  load_hf_weights(model_dir, config, model.params());

  io::write_file_atomic(output, [&](std::ostream& out) {
    for (ScoreLine& line : lines) {
      // One sequence per forward (B = 1, T = its length).
      const int64_t T = int64_t(line.ids.size());
      Tensor ids = Tensor::empty(*backend, {1, T}, DType::I32);
      ids.copy_from_host(line.ids.data(), line.ids.size() * sizeof(int32_t));
      model.forward(ids);
      std::vector<int32_t> targets(line.ids.begin() + 1, line.ids.end());
      targets.push_back(-1);
      Tensor tt = Tensor::empty(*backend, {T}, DType::I32);
      tt.copy_from_host(targets.data(), targets.size() * sizeof(int32_t));
      Tensor lp = Tensor::empty(*backend, {T}, DType::F32);
      model.token_logprobs(tt, temperature, lp, nullptr);
      std::vector<float> v = lp.to_float_vector();
      v.pop_back();
      line.obj["logprobs"] = v;
      out << line.obj.dump() << '\n';
    }
  });
  std::fprintf(stderr, "zeroth score: %zu sequences -> %s\n", lines.size(), output.c_str());
  return 0;
}

}  // namespace cli
}  // namespace zeroth
