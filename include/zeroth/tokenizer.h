// Tokenizers: text <-> token ids.
//
// One interface, two implementations:
//  * BpeTokenizer: Hugging Face `tokenizer.json` byte-level BPE (DeepSeek-V3, Qwen3 and
//    kin), id-for-id identical to Hugging Face `tokenizers` on those files.
//  * ByteTokenizer: 256 byte tokens plus named special tokens, for tiny test models.
// load_tokenizer() picks one from a tokenizer.json path or a model directory.
//
// Text passed to encode() must be valid UTF-8 (Hugging Face only accepts Rust `&str` /
// Python `str`, so there is no reference behaviour for invalid bytes); invalid input is a
// DataError naming the byte offset. decode() always returns valid UTF-8: byte sequences
// that do not form UTF-8 (a cut inside a multi-byte character) become U+FFFD, as in
// Hugging Face. decode_bytes() returns the raw bytes, and TokenStreamDecoder turns a
// stream of ids into text pieces that never split a character.
//
// Tokenizers are immutable after loading; every const method is thread-safe.
// This header must not expose PCRE2, JSON or any other implementation type.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace zeroth {

// Ids of the tokens the model treats specially; -1 where the tokenizer has none.
struct SpecialTokenIds {
  int32_t bos = -1;
  int32_t eos = -1;
  int32_t pad = -1;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `text` (valid UTF-8, else DataError). Special and added tokens written
  // in the text are recognised. With add_special_tokens, BOS/EOS are added where the
  // tokenizer's configuration asks for them (e.g. BOS for DeepSeek-V3, nothing for Qwen3).
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const = 0;

  // Raw bytes of the ids, concatenated; ids with no token are skipped (as Hugging Face
  // does), special tokens too when skip_special_tokens.
  virtual std::string decode_bytes(const int32_t* ids, size_t n, bool skip_special_tokens) const = 0;

  // decode_bytes() made valid UTF-8 (each maximal invalid subpart becomes U+FFFD).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const;
  std::string decode_bytes(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
    return decode_bytes(ids.data(), ids.size(), skip_special_tokens);
  }

  // The id of a token given in vocabulary form (byte-level strings such as "Ġthe" for
  // BPE; special token contents as written), or -1.
  virtual int32_t token_to_id(std::string_view token) const = 0;
  // The vocabulary form of an id, or "" if no token has it.
  virtual std::string id_to_token(int32_t id) const = 0;
  // One past the largest token id (model vocabulary and added tokens together).
  virtual int32_t vocab_size() const = 0;
  // True for special tokens (those skipped by skip_special_tokens).
  virtual bool is_special(int32_t id) const = 0;

  const SpecialTokenIds& special_ids() const { return special_ids_; }

 protected:
  SpecialTokenIds special_ids_;
};

// Turns a stream of generated ids into text. push() returns the text completed by the
// new id: bytes of a multi-byte character cut between tokens are held back until the
// character is complete; bytes that can never become valid are emitted as U+FFFD. The
// concatenation of every push() and finish() equals tokenizer.decode(all ids).
class TokenStreamDecoder {
 public:
  TokenStreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
      : tokenizer_(tokenizer), skip_special_(skip_special_tokens) {}
  std::string push(int32_t id);
  // Flushes the held-back bytes (as U+FFFD) and resets.
  std::string finish();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::string pending_;  // at most 3 bytes of an incomplete character
};

// Byte tokenizer: id b (0..255) is byte b; special tokens follow from id 256 in the
// order given. Special tokens written in text are recognised (longest match first).
struct ByteTokenizerConfig {
  std::vector<std::string> special_tokens;  // e.g. {"<|bos|>", "<|eos|>", "<|pad|>"}
  std::string bos_token, eos_token, pad_token;  // each "" or one of special_tokens
  bool add_bos = false;  // encode(..., add_special_tokens=true) prepends BOS
  bool add_eos = false;  // ... and appends EOS
};
std::unique_ptr<Tokenizer> make_byte_tokenizer(const ByteTokenizerConfig& config);
// zeroth's byte tokenizer for tiny models (`model.tokenizer: bytes`): <|bos|> 256,
// <|eos|> 257, <|pad|> 258, BOS prepended (byte_tokenizer_json writes it for a model dir).
ByteTokenizerConfig zeroth_byte_tokenizer_config();

// Loads a tokenizer from a tokenizer.json file or a directory holding one (with an
// optional tokenizer_config.json beside it, which names bos/eos/pad and add_bos_token /
// add_eos_token). A tokenizer.json whose model.type is "ZerothBytes" makes a
// ByteTokenizer: {"model": {"type": "ZerothBytes", "special_tokens": [...],
// "bos_token": "...", "eos_token": "...", "pad_token": "...", "add_bos": bool,
// "add_eos": bool}}. Malformed or unsupported files throw DataError naming the file.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

// Pre-tokenizer regex of train_bpe_tokenizer by default: English contractions, runs of
// letters (no leading space, so a word is the same token after a space, a '<' or a
// newline), single digits (as DeepSeek-V3 and Qwen split numbers, so that arithmetic sees
// digits), runs of other symbols with an optional leading space, and whitespace.
inline constexpr const char* kBpeTrainDefaultPattern =
    "'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

struct BpeTrainOptions {
  int32_t vocab_size = 1024;  // the whole vocabulary: 256 bytes + merges + special tokens
  std::string pattern = kBpeTrainDefaultPattern;  // a Split regex (PCRE2, Unicode classes)
  std::vector<std::string> special_tokens = {"<|bos|>", "<|eos|>", "<|pad|>"};  // the last ids
  std::string bos_token = "<|bos|>", eos_token = "<|eos|>", pad_token = "<|pad|>";  // or ""
  bool add_bos = true;        // tokenizer_config.json add_bos_token
  int64_t min_frequency = 2;  // a pair seen fewer times is never merged
};

struct BpeTrainResult {
  int32_t vocab_size = 0;           // may be below the option when pairs ran out
  int64_t merges = 0;
  int64_t distinct_pretokens = 0;
  int64_t pretokens = 0;
};

// Trains a byte-level BPE tokenizer on `documents` (valid UTF-8; special tokens written in
// them are left out of the counts) and writes `out_dir`/tokenizer.json (Hugging Face
// format: Split + ByteLevel pre-tokenizer, BPE model with every byte as a base token, the
// special tokens as added tokens after the merges) and `out_dir`/tokenizer_config.json.
// The output depends on the documents and options only. ConfigError for bad options,
// DataError for invalid text or unwritable files.
BpeTrainResult train_bpe_tokenizer(const std::vector<std::string>& documents,
                                   const BpeTrainOptions& options, const std::string& out_dir);

}  // namespace zeroth
