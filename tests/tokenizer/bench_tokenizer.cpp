// Timing program (run by hand, not a test): encode and decode speed of a tokenizer on
// one core. Prints a table and a JSON line.
//   bench_tokenizer <tokenizer.json or model dir> <text file, or a .jsonl with a "question",
//                   "problem" or "text" field per line> [repeats]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "zeroth/error.h"
#include "zeroth/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER TEXT_FILE [REPEATS]\n", argv[0]);
    return 2;
  }
  try {
    const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
    auto t0 = std::chrono::steady_clock::now();
    auto tok = zeroth::load_tokenizer(argv[1]);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<std::string> docs;
    std::ifstream in(argv[2]);
    const std::string path = argv[2];
    if (path.size() > 6 && path.substr(path.size() - 6) == ".jsonl") {
      std::string line;
      while (std::getline(in, line)) {
        if (line.empty()) continue;
        const auto j = nlohmann::json::parse(line);
        std::string text;
        for (const char* k : {"question", "answer", "problem", "text", "code"})
          if (j.contains(k) && j[k].is_string()) text += j[k].get<std::string>() + "\n";
        docs.push_back(text);
      }
    } else {
      std::stringstream ss;
      ss << in.rdbuf();
      docs.push_back(ss.str());
    }
    size_t bytes = 0;
    for (const auto& d : docs) bytes += d.size();
    double best_enc = 1e30, best_dec = 1e30;
    size_t n_ids = 0;
    for (int r = 0; r < repeats; ++r) {
      std::vector<std::vector<int32_t>> all;
      all.reserve(docs.size());
      auto a = std::chrono::steady_clock::now();
      for (const auto& d : docs) all.push_back(tok->encode(d, false));
      auto b = std::chrono::steady_clock::now();
      size_t out_bytes = 0;
      for (const auto& ids : all) out_bytes += tok->decode(ids, false).size();
      auto c = std::chrono::steady_clock::now();
      n_ids = 0;
      for (const auto& ids : all) n_ids += ids.size();
      best_enc = std::min(best_enc, std::chrono::duration<double>(b - a).count());
      best_dec = std::min(best_dec, std::chrono::duration<double>(c - b).count());
      if (out_bytes == 0 && bytes != 0) std::fprintf(stderr, "warning: empty decode\n");
    }
    const double mb = bytes / 1e6;
    std::printf("%-10s %12s %12s %12s\n", "phase", "seconds", "MB/s", "tokens/s");
    std::printf("%-10s %12.3f %12s %12s\n", "load", load_s, "-", "-");
    std::printf("%-10s %12.3f %12.2f %12.0f\n", "encode", best_enc, mb / best_enc, n_ids / best_enc);
    std::printf("%-10s %12.3f %12.2f %12.0f\n", "decode", best_dec, mb / best_dec, n_ids / best_dec);
    std::printf("{\"bytes\": %zu, \"tokens\": %zu, \"load_s\": %.3f, \"encode_mb_s\": %.3f, "
                "\"decode_mb_s\": %.3f}\n",
                bytes, n_ids, load_s, mb / best_enc, mb / best_dec);
  } catch (const zeroth::Error& e) {
    std::fprintf(stderr, "zeroth: %s\n", e.what());
    return e.exit_code();
  }
  return 0;
}
