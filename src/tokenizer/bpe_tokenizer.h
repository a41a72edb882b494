// Construction of the Hugging Face byte-level BPE tokenizer from parsed JSON. The class
// itself is private to bpe_tokenizer.cpp; callers see only zeroth::Tokenizer.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "zeroth/tokenizer.h"

namespace zeroth {
namespace tok {

// `tokenizer_json` from `file`; `config` is tokenizer_config.json (null if absent) from
// `config_file`. Throws DataError naming the file for anything malformed or unsupported.
std::unique_ptr<Tokenizer> make_bpe_tokenizer(const nlohmann::json& tokenizer_json,
                                              const std::string& file, const nlohmann::json& config,
                                              const std::string& config_file);

// Reads a bos/eos/pad entry of tokenizer_config.json: a string, an {"content": ...}
// object, or null (returns ""). Throws DataError for anything else.
std::string config_token_content(const nlohmann::json& config, const char* key,
                                 const std::string& config_file);

}  // namespace tok
}  // namespace zeroth
