// Training data for the language-model stages (pretraining and SFT): text corpora and
// prompt/response JSONL turned into fixed-length token sequences with loss masks, and
// the seeded sampler that orders them epoch by epoch with a resumable cursor.
//
// Owns: reading corpus files (errors name file:line), tokenising, packing, SFT
// templating/truncation/padding, the per-epoch shuffle and the cursor.
// Must not: touch the model, a backend or a communicator: every rank builds the same
// dataset and sampler and takes its own slice of each global batch.
//
// Sequence convention (that of Model::cross_entropy_step): a sequence is T token ids and
// a mask of T floats; mask[t] weights the prediction made at position t of token t+1, so
// mask[T-1] is always 0.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace zeroth {

class Tokenizer;

// Fixed-length sequences of T tokens. Two storage forms:
//  * packed (pretraining): one token stream; sequence i is stream[i*(T-1), i*(T-1)+T)
//    (consecutive sequences share one token, so every transition is trained once);
//    its mask is 1 everywhere except the last column.
//  * rows (SFT): ids (count, T) and mask (count, T) stored explicitly.
struct SequenceDataset {
  int64_t seq_len = 0;  // T
  int64_t count = 0;    // number of sequences
  bool packed = false;
  std::vector<int32_t> stream;  // packed: every document's tokens, each followed by EOS
  std::vector<int32_t> ids;     // rows: (count, T)
  std::vector<float> mask;      // rows: (count, T)
  std::vector<int64_t> lengths; // rows: (count) real tokens of each row (the rest is padding)
  int64_t documents = 0;        // documents or examples read
  int64_t truncated = 0;        // rows: examples cut to T tokens

  // Writes sequence `index` (< count) into ids_out (T) and mask_out (T).
  void fill(int64_t index, int32_t* ids_out, float* mask_out) const;
  // Real tokens of sequence `index`: T for packed sequences, the row's length for rows.
  int64_t length(int64_t index) const { return packed ? seq_len : lengths[size_t(index)]; }
};

// Pretraining corpus -> packed sequences of `seq_len` (>= 2) tokens.
// format "text": one document per line (empty lines skipped); "jsonl": one object per
// line with the document in the string `text_field`. Each document is encoded with the
// tokenizer's special tokens (BOS where it adds one) and followed by `eos_id`.
// Throws DataError naming file:line for unreadable files, invalid JSON, a missing or
// non-string field, invalid UTF-8, or a corpus too short for one sequence.
SequenceDataset load_pretrain_corpus(const std::string& path, const std::string& format,
                                     const std::string& text_field, const Tokenizer& tokenizer,
                                     int32_t eos_id, int64_t seq_len);

// How SFT examples become sequences.
struct SftFormat {
  std::string prompt_field = "prompt";
  std::string response_field = "response";
  std::string prompt_template = "{prompt}";  // "{prompt}" is replaced by the prompt text
  bool add_eos = true;   // append EOS after the response (it is trained on)
  int32_t eos_id = -1;
  int32_t pad_id = -1;   // fills the sequence after the example (mask 0)
  // The config keys error messages name (zeroth train's cold start: cold_start.*).
  std::string data_keys = "data";
  std::string seq_len_key = "train.seq_len";
};

// One SFT example as token ids: prompt (template applied, tokenizer specials such as
// BOS added) and response (no specials; EOS appended when asked).
struct SftExample {
  std::vector<int32_t> prompt, response;
};

SftExample encode_sft_example(const std::string& prompt, const std::string& response,
                              const SftFormat& format, const Tokenizer& tokenizer);

// Appends one example as a row of T tokens: prompt then response, cut to T tokens
// (counted in dataset.truncated) and padded with pad_id; the mask is 1 exactly where the
// next token is a response token (the response's own tokens and its EOS).
void append_sft_row(const SftExample& example, int32_t pad_id, SequenceDataset& dataset);

// SFT JSONL (one {prompt_field: str, response_field: str} object per line) -> rows of
// `seq_len` tokens. Throws DataError naming file:line for bad lines, and for an example
// whose prompt alone fills the sequence (nothing would be trained on it).
SequenceDataset load_sft_dataset(const std::string& path, const SftFormat& format,
                                 const Tokenizer& tokenizer, int64_t seq_len);

// Where the sampler stands: `position` sequences of epoch `epoch` have been served.
struct DataCursor {
  int64_t epoch = 0;
  int64_t position = 0;
};

// Serves sequence indices in a per-epoch order: a Fisher-Yates shuffle of [0, count)
// from a SplitMix64 stream keyed by (seed, epoch), or the identity without shuffle.
// The order depends only on (count, seed, epoch), so a sampler made with a saved
// cursor continues exactly where the saved one stopped.
class BatchSampler {
 public:
  BatchSampler(int64_t count, uint64_t seed, bool shuffle, DataCursor cursor = {});
  // The next n indices; crosses into the next epoch (reshuffled) when one ends.
  std::vector<int64_t> next(int64_t n);
  DataCursor cursor() const { return cursor_; }
  // The order of epoch `epoch` (count indices).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  int64_t count_;
  uint64_t seed_;
  bool shuffle_;
  DataCursor cursor_;
  std::vector<int64_t> order_;  // of cursor_.epoch
};

}  // namespace zeroth
