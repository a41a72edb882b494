// train_bpe_tokenizer (tokenizer.h): learns a byte-level BPE vocabulary from documents and
// writes it as a Hugging Face tokenizer.json (+ tokenizer_config.json) that
// load_tokenizer, and Hugging Face `tokenizers`, read.
//
// Owns: the merge loop. Pre-tokenization is the same tok::PreTokenizer that encoding uses
// (built from the JSON this file writes), so training and encoding split text alike.
// Algorithm: the usual BPE trainer. Count the distinct pre-tokens (as byte-level symbol
// sequences), count adjacent symbol pairs weighted by pre-token frequency, repeatedly merge
// the most frequent pair (ties: the pair of smaller ids, i.e. the older symbols, first)
// into a new symbol, updating only the pre-tokens that contain it.
// Must not: depend on hash-map iteration order (the output is a function of the input and
// the options only).
#include <algorithm>
#include <cstdio>
#include <deque>
#include <fstream>
#include <queue>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"
#include "zeroth/error.h"
#include "zeroth/tokenizer.h"

namespace zeroth {

namespace {

using ojson = nlohmann::ordered_json;

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

struct Word {
  std::vector<int32_t> syms;
  int64_t freq = 0;
};

ojson pre_tokenizer_json(const std::string& pattern) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           ojson::array({{{"type", "Split"},
                          {"pattern", {{"Regex", pattern}}},
                          {"behavior", "Isolated"},
                          {"invert", false}},
                         {{"type", "ByteLevel"},
                          {"add_prefix_space", false},
                          {"trim_offsets", false},
                          {"use_regex", false}}})}};
}

void write_text_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw DataError(strformat("%s: cannot write the file", tmp.c_str()));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw DataError(strformat("%s: cannot rename %s into place", path.c_str(), tmp.c_str()));
}

}  // namespace

BpeTrainResult train_bpe_tokenizer(const std::vector<std::string>& documents,
                                   const BpeTrainOptions& opt, const std::string& out_dir) {
  const int32_t n_special = int32_t(opt.special_tokens.size());
  ZT_THROW_IF_NOT(opt.vocab_size >= 256 + n_special, ConfigError,
                  "train-tokenizer: vocab size %d is below the 256 byte tokens + %d special tokens",
                  opt.vocab_size, n_special);
  ZT_THROW_IF_NOT(opt.min_frequency >= 1, ConfigError,
                  "train-tokenizer: min frequency must be >= 1, found %lld",
                  (long long)opt.min_frequency);
  {
    std::set<std::string> seen;
    for (const std::string& s : opt.special_tokens) {
      ZT_THROW_IF_NOT(!s.empty() && tok::utf8_find_invalid(s) == std::string::npos, ConfigError,
                      "train-tokenizer: special token '%s' must be non-empty UTF-8", s.c_str());
      ZT_THROW_IF_NOT(seen.insert(s).second, ConfigError,
                      "train-tokenizer: special token '%s' is given twice", s.c_str());
    }
    for (const std::string* name : {&opt.bos_token, &opt.eos_token, &opt.pad_token})
      ZT_THROW_IF_NOT(name->empty() || seen.count(*name), ConfigError,
                      "train-tokenizer: '%s' is named as BOS/EOS/PAD but is not a special token",
                      name->c_str());
  }
  const ojson pre_json = pre_tokenizer_json(opt.pattern);
  tok::PreTokenizer pre(nlohmann::json::parse(pre_json.dump()), "train-tokenizer --pattern");

  // Distinct pre-tokens and their counts. Special tokens written in a document are not
  // split (encoding matches them first), so they are cut out of the text here too.
  std::unordered_map<std::string, int64_t> counts;
  std::vector<std::string_view> pieces;
  std::deque<std::string> arena;
  int64_t total_pretokens = 0;
  auto count_text = [&](std::string_view text) {
    pieces.clear();
    arena.clear();
    pre.split(text, &pieces, &arena);
    for (std::string_view p : pieces) {
      ++counts[std::string(p)];
      ++total_pretokens;
    }
  };
  for (size_t d = 0; d < documents.size(); ++d) {
    const std::string& doc = documents[d];
    ZT_THROW_IF_NOT(tok::utf8_find_invalid(doc) == std::string::npos, DataError,
                    "train-tokenizer: document %zu is not valid UTF-8", d + 1);
    size_t start = 0;
    while (start < doc.size()) {
      size_t best = std::string::npos, best_len = 0;
      for (const std::string& s : opt.special_tokens) {
        const size_t at = doc.find(s, start);
        if (at < best || (at == best && s.size() > best_len)) best = at, best_len = s.size();
      }
      const size_t end = best == std::string::npos ? doc.size() : best;
      if (end > start) count_text(std::string_view(doc).substr(start, end - start));
      if (best == std::string::npos) break;
      start = best + best_len;
    }
  }

  // Symbols: ids 0..255 are the bytes (as their byte-level characters), then merges.
  std::vector<std::string> sym_str(256);
  for (int b = 0; b < 256; ++b) {
    std::string s;
    tok::utf8_append(tok::byte_to_unicode(uint8_t(b)), &s);
    sym_str[size_t(b)] = s;
  }
  // Words in a fixed order (sorted by bytes), whatever the hash map's order.
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words(sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) {
    for (unsigned char c : sorted[i].first) words[i].syms.push_back(int32_t(c));
    words[i].freq = sorted[i].second;
  }

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;  // may hold stale entries
  for (size_t w = 0; w < words.size(); ++w) {
    const std::vector<int32_t>& s = words[w].syms;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t k = pair_key(s[i], s[i + 1]);
      pair_count[k] += words[w].freq;
      std::vector<int32_t>& ws = pair_words[k];
      if (ws.empty() || ws.back() != int32_t(w)) ws.push_back(int32_t(w));
    }
  }
  // Max-heap of (count, pair) with lazy deletion: an entry is current only if its count
  // equals pair_count. Ties go to the smaller key (older symbols first).
  struct Entry {
    int64_t count;
    uint64_t key;
    bool operator<(const Entry& o) const { return count != o.count ? count < o.count : key > o.key; }
  };
  std::priority_queue<Entry> heap;
  {
    std::vector<std::pair<uint64_t, int64_t>> init(pair_count.begin(), pair_count.end());
    std::sort(init.begin(), init.end());
    for (const auto& kv : init) heap.push({kv.second, kv.first});
  }

  const int32_t target = opt.vocab_size - n_special;
  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<uint64_t> changed;
  while (int32_t(sym_str.size()) < target && !heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    auto it = pair_count.find(top.key);
    if (it == pair_count.end() || it->second != top.count) continue;  // stale
    if (top.count < opt.min_frequency) break;
    const int32_t a = int32_t(top.key >> 32), b = int32_t(uint32_t(top.key));
    const int32_t merged = int32_t(sym_str.size());
    sym_str.push_back(sym_str[size_t(a)] + sym_str[size_t(b)]);
    merges.push_back({a, b});

    std::vector<int32_t> ws = std::move(pair_words[top.key]);
    pair_words.erase(top.key);
    changed.clear();
    for (int32_t w : ws) {
      std::vector<int32_t>& s = words[size_t(w)].syms;
      const int64_t f = words[size_t(w)].freq;
      bool has = false;
      for (size_t i = 0; i + 1 < s.size() && !has; ++i) has = s[i] == a && s[i + 1] == b;
      if (!has) continue;  // a stale index entry (the word was merged already)
      // Take the word's pairs out, merge it left to right, put its new pairs in.
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t k = pair_key(s[i], s[i + 1]);
        if ((pair_count[k] -= f) == 0) pair_count.erase(k);
        changed.push_back(k);
      }
      std::vector<int32_t> out;
      out.reserve(s.size());
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          out.push_back(merged);
          i += 2;
        } else {
          out.push_back(s[i++]);
        }
      }
      s.swap(out);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t k = pair_key(s[i], s[i + 1]);
        pair_count[k] += f;
        changed.push_back(k);
        std::vector<int32_t>& pw = pair_words[k];
        if (pw.empty() || pw.back() != w) pw.push_back(w);
      }
    }
    // Every pair whose count moved gets an entry with its current count (its older
    // entries are now stale and will be skipped).
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    for (uint64_t k : changed) {
      auto c = pair_count.find(k);
      if (c != pair_count.end()) heap.push({c->second, k});
    }
  }

  // tokenizer.json
  ojson vocab = ojson::object();
  for (size_t i = 0; i < sym_str.size(); ++i) vocab[sym_str[i]] = int32_t(i);
  ojson merge_list = ojson::array();
  for (const auto& m : merges) merge_list.push_back(sym_str[size_t(m.first)] + " " + sym_str[size_t(m.second)]);
  ojson added = ojson::array();
  for (int32_t i = 0; i < n_special; ++i)
    added.push_back({{"id", int32_t(sym_str.size()) + i},
                     {"content", opt.special_tokens[size_t(i)]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  ojson tj = {{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", added},
              {"normalizer", nullptr},
              {"pre_tokenizer", pre_json},
              {"post_processor", nullptr},
              {"decoder",
               {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", merge_list}}}};
  ojson cfg = {{"tokenizer_class", "PreTrainedTokenizerFast"},
               {"add_bos_token", opt.add_bos},
               {"add_eos_token", false}};
  if (!opt.bos_token.empty()) cfg["bos_token"] = opt.bos_token;
  if (!opt.eos_token.empty()) cfg["eos_token"] = opt.eos_token;
  if (!opt.pad_token.empty()) cfg["pad_token"] = opt.pad_token;
  write_text_file(out_dir + "/tokenizer.json", tj.dump(1) + "\n");
  write_text_file(out_dir + "/tokenizer_config.json", cfg.dump(2) + "\n");

  BpeTrainResult r;
  r.vocab_size = int32_t(sym_str.size()) + n_special;
  r.merges = int64_t(merges.size());
  r.distinct_pretokens = int64_t(words.size());
  r.pretokens = total_pretokens;
  return r;
}

}  // namespace zeroth
