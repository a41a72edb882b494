// Pretraining corpus -> packed token sequences (data.h), and SequenceDataset::fill.
// Must not: shuffle or batch (data_sampler.cpp) or know SFT formats (data_sft.cpp).
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/io_util.h"
#include "zeroth/data.h"
#include "zeroth/error.h"
#include "zeroth/tokenizer.h"

namespace zeroth {

void SequenceDataset::fill(int64_t index, int32_t* ids_out, float* mask_out) const {
  ZT_ASSERT(index >= 0 && index < count, "sequence %lld of %lld", (long long)index, (long long)count);
  const int64_t T = seq_len;
  if (packed) {
    const int32_t* src = stream.data() + index * (T - 1);
    for (int64_t t = 0; t < T; ++t) {
      ids_out[t] = src[t];
      mask_out[t] = t + 1 < T ? 1.0f : 0.0f;
    }
  } else {
    for (int64_t t = 0; t < T; ++t) {
      ids_out[t] = ids[size_t(index * T + t)];
      mask_out[t] = mask[size_t(index * T + t)];
    }
  }
}

SequenceDataset load_pretrain_corpus(const std::string& path, const std::string& format,
                                     const std::string& text_field, const Tokenizer& tokenizer,
                                     int32_t eos_id, int64_t seq_len) {
  ZT_ASSERT(seq_len >= 2 && eos_id >= 0);
  if (format != "text" && format != "jsonl")
    throw ConfigError(strformat("key 'data.format': expected 'text' or 'jsonl', found '%s'", format.c_str()));
  io::check_input_file(path, "a text or JSONL corpus file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(strformat("%s: cannot open the corpus for reading", path.c_str()));
  SequenceDataset ds;
  ds.seq_len = seq_len;
  ds.packed = true;
  std::string line;
  for (long long lineno = 1; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::string text;
    if (format == "text") {
      text = line;
    } else {
      nlohmann::json obj = io::parse_json_input<nlohmann::json>(line, strformat("%s:%lld", path.c_str(), lineno));
      if (!obj.is_object() || !obj.contains(text_field) || !obj[text_field].is_string())
        throw DataError(strformat("%s:%lld: expected an object with the string field \"%s\" "
                                  "(data.text_field), found %s",
                                  path.c_str(), lineno, text_field.c_str(),
                                  !obj.is_object()              ? obj.type_name()
                                  : !obj.contains(text_field)   ? "an object without it"
                                                                : obj[text_field].type_name()));
      text = obj[text_field].get<std::string>();
    }
    std::vector<int32_t> ids;
    try {
      ids = tokenizer.encode(text, true);
    } catch (const DataError& e) {
      throw DataError(strformat("%s:%lld: %s", path.c_str(), lineno, e.what()));
    }
    ds.stream.insert(ds.stream.end(), ids.begin(), ids.end());
    ds.stream.push_back(eos_id);
    ++ds.documents;
  }
  if (in.bad()) throw DataError(strformat("%s: read error", path.c_str()));
  const int64_t n = int64_t(ds.stream.size());
  ds.count = n >= seq_len ? (n - 1) / (seq_len - 1) : 0;
  if (ds.count == 0)
    throw DataError(strformat("%s: expected at least %lld tokens (one sequence of train.seq_len), "
                              "found %lld in %lld documents",
                              path.c_str(), (long long)seq_len, (long long)n, (long long)ds.documents));
  ds.stream.resize(size_t(ds.count * (seq_len - 1) + 1));  // the tail that fills no sequence
  return ds;
}

}  // namespace zeroth
