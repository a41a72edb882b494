// SFT prompt/response JSONL -> padded rows with a loss mask on response tokens (data.h).
// Must not: shuffle or batch (data_sampler.cpp) or pack documents (data_corpus.cpp).
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/io_util.h"
#include "zeroth/data.h"
#include "zeroth/error.h"
#include "zeroth/tokenizer.h"

namespace zeroth {

static std::string apply_template(const std::string& tmpl, const std::string& prompt) {
  static const std::string kKey = "{prompt}";
  std::string out;
  size_t at = 0;
  for (size_t hit; (hit = tmpl.find(kKey, at)) != std::string::npos; at = hit + kKey.size())
    out += tmpl.substr(at, hit - at) + prompt;
  return out + tmpl.substr(at);
}

SftExample encode_sft_example(const std::string& prompt, const std::string& response,
                              const SftFormat& format, const Tokenizer& tokenizer) {
  SftExample ex;
  ex.prompt = tokenizer.encode(apply_template(format.prompt_template, prompt), true);
  ex.response = tokenizer.encode(response, false);
  if (format.add_eos) {
    ZT_ASSERT(format.eos_id >= 0, "add_eos without an EOS id");
    ex.response.push_back(format.eos_id);
  }
  return ex;
}

void append_sft_row(const SftExample& example, int32_t pad_id, SequenceDataset& dataset) {
  const int64_t T = dataset.seq_len;
  ZT_ASSERT(T >= 2 && pad_id >= 0 && !dataset.packed);
  const int64_t P = int64_t(example.prompt.size());
  const int64_t R = int64_t(example.response.size());
  std::vector<int32_t> row(size_t(T), pad_id);
  std::vector<float> mask(size_t(T), 0.0f);
  const int64_t used = std::min(T, P + R);
  for (int64_t t = 0; t < used; ++t)
    row[size_t(t)] = t < P ? example.prompt[size_t(t)] : example.response[size_t(t - P)];
  // The prediction at t is of token t+1: trained when t+1 is a response position.
  for (int64_t t = 0; t + 1 < used; ++t) mask[size_t(t)] = (t + 1 >= P) ? 1.0f : 0.0f;
  if (P + R > T) ++dataset.truncated;
  dataset.ids.insert(dataset.ids.end(), row.begin(), row.end());
  dataset.mask.insert(dataset.mask.end(), mask.begin(), mask.end());
  dataset.lengths.push_back(used);
  ++dataset.count;
}

static const std::string& string_field(const nlohmann::json& obj, const std::string& key,
                                       const char* config_key, const std::string& path,
                                       long long lineno) {
  if (!obj.contains(key) || !obj[key].is_string())
    throw DataError(strformat("%s:%lld: expected the string field \"%s\" (%s), found %s", path.c_str(),
                              lineno, key.c_str(), config_key,
                              obj.contains(key) ? obj[key].type_name() : "no such key"));
  return obj[key].get_ref<const std::string&>();
}

SequenceDataset load_sft_dataset(const std::string& path, const SftFormat& format,
                                 const Tokenizer& tokenizer, int64_t seq_len) {
  ZT_ASSERT(seq_len >= 2 && format.pad_id >= 0);
  io::check_input_file(path, "a JSONL file of prompt/response pairs");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(strformat("%s: cannot open the SFT data for reading", path.c_str()));
  SequenceDataset ds;
  ds.seq_len = seq_len;
  std::string line;
  for (long long lineno = 1; std::getline(in, line); ++lineno) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json obj = io::parse_json_input<nlohmann::json>(line, strformat("%s:%lld", path.c_str(), lineno));
    if (!obj.is_object())
      throw DataError(strformat("%s:%lld: expected a JSON object, found %s", path.c_str(), lineno,
                                obj.type_name()));
    const std::string prompt_key = format.data_keys + ".prompt_field";
    const std::string response_key = format.data_keys + ".response_field";
    const std::string& prompt = string_field(obj, format.prompt_field, prompt_key.c_str(), path, lineno);
    const std::string& response = string_field(obj, format.response_field, response_key.c_str(), path, lineno);
    SftExample ex;
    try {
      ex = encode_sft_example(prompt, response, format, tokenizer);
    } catch (const DataError& e) {
      throw DataError(strformat("%s:%lld: %s", path.c_str(), lineno, e.what()));
    }
    if (ex.response.empty())
      throw DataError(strformat("%s:%lld: expected a non-empty response (or %s.add_eos), found an "
                                "empty one", path.c_str(), lineno, format.data_keys.c_str()));
    if (int64_t(ex.prompt.size()) >= seq_len)
      throw DataError(strformat("%s:%lld: the prompt takes %zu tokens, expected fewer than "
                                "%s = %lld so that some response is trained on",
                                path.c_str(), lineno, ex.prompt.size(), format.seq_len_key.c_str(),
                                (long long)seq_len));
    append_sft_row(ex, format.pad_id, ds);
    ++ds.documents;
  }
  if (in.bad()) throw DataError(strformat("%s: read error", path.c_str()));
  if (ds.count == 0)
    throw DataError(strformat("%s: expected at least one example, found none", path.c_str()));
  return ds;
}

}  // namespace zeroth
