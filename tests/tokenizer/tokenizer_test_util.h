// Shared helpers for the tokenizer tests: loading the real tokenizers once per process,
// reading JSONL golden files, writing scratch files.
#pragma once

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "zeroth/tokenizer.h"

namespace zeroth_test {

inline bool path_exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

inline std::string shared_tokenizer_dir(const std::string& name) {
  return std::string(ZEROTH_SHARED_DATA_DIR) + "/tokenizers/" + name;
}

// The real tokenizer `name` (deepseek-v3 or qwen3), loaded once; nullptr with a printed
// message when the shared data is absent.
inline const zeroth::Tokenizer* real_tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<zeroth::Tokenizer>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second.get();
  const std::string dir = shared_tokenizer_dir(name);
  if (!path_exists(dir + "/tokenizer.json")) {
    std::printf("SKIP: %s/tokenizer.json not found (shared data absent)\n", dir.c_str());
    return nullptr;
  }
  return (cache[name] = zeroth::load_tokenizer(dir)).get();
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

inline std::string scratch_dir() {
  static std::string dir;
  if (dir.empty()) {
    char tmpl[] = "/tmp/zeroth_tok_test_XXXXXX";
    dir = mkdtemp(tmpl);
  }
  return dir;
}

inline std::string write_file(const std::string& name, const std::string& content) {
  const std::string p = scratch_dir() + "/" + name;
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

}  // namespace zeroth_test
