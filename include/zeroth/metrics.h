// Run metrics: one JSON object per step in RUN_DIR/metrics.jsonl, TensorBoard scalars in
// RUN_DIR/tb/events.out.tfevents.*, and the one-line console summary of a step.
//
// Owns: the metrics.jsonl format (the `step` key first, then the metrics in key order;
//   NaN and infinities written as null and counted), its truncation when a run resumes,
//   the tfevents writer (TFRecord framing with masked CRC32C, Event/Summary protobufs from
//   proto/tensorboard.proto) and format_progress_line.
// Must not: communicate. Callers reduce their metrics over the ranks first (so every rank
//   holds the global values); only rank 0 writes, every other rank's writer is a no-op.
//   It does not decide which metrics exist: the trainer names them.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace zeroth {

// A step's metrics by name ("reward_mean", "kl", "eval_accuracy", ...).
using MetricMap = std::map<std::string, double>;

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses it.
// crc32c("123456789") == 0xE3069283.
uint32_t crc32c(const void* data, size_t n);
// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t n);

// One TensorBoard events file: each record is
//   uint64 length (little endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
// and data is a serialized Event. The first record is the file version "brain.Event:2".
class TfEventsWriter {
 public:
  // Creates DIR (and parents) and a new file DIR/events.out.tfevents.<unix seconds>.<host>
  // (with a ".N" suffix if that name exists). With start_step >= 0 the second record is a
  // SessionLog START at that step: TensorBoard then drops the points older files of the
  // directory hold at steps >= start_step (a resumed run rewrites them). Recent TensorBoard
  // ignores the first START of a run, so every file of a run needs one for the purge to
  // happen. Throws RuntimeError when it cannot create the file.
  explicit TfEventsWriter(const std::string& dir, int64_t start_step = -1);
  ~TfEventsWriter();
  TfEventsWriter(const TfEventsWriter&) = delete;
  TfEventsWriter& operator=(const TfEventsWriter&) = delete;

  // Writes one Event at `step` with a Summary holding every value as a float scalar
  // (simple_value) tagged with its key; flushes the file.
  void write_scalars(int64_t step, const MetricMap& values);
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);
  std::string path_;
  std::FILE* file_ = nullptr;
};

struct MetricsWriterOptions {
  bool jsonl = true;        // write RUN_DIR/metrics.jsonl
  bool tensorboard = true;  // write RUN_DIR/tb/events.out.tfevents.*
  // < 0: a new run; an existing metrics.jsonl is replaced.
  // >= 0: the run resumes after this step; metrics.jsonl keeps its lines up to the last one
  //   whose step is <= resume_step and drops the rest (so, written on from there, it equals
  //   the file of an uninterrupted run).
  // TensorBoard gets a new events file either way, starting with a SessionLog START at
  // resume_step + 1 (0 for a new run), on which TensorBoard drops what older files in tb/
  // hold from that step on.
  int64_t resume_step = -1;
};

class MetricsWriter {
 public:
  // On rank 0 creates RUN_DIR if needed and opens the files; on other ranks opens nothing.
  // Throws RuntimeError (cannot create or open) or DataError (a metrics.jsonl to resume
  // whose lines before the last are not JSON objects with an integer `step`).
  MetricsWriter(const std::string& run_dir, int rank, const MetricsWriterOptions& options = {});
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Appends {"step": step, "<key>": value, ...} (keys in order, non-finite values as null)
  // as one flushed line, and the same values as TensorBoard scalars. Steps must not
  // decrease from one call to the next (an eval row may repeat its step); "step" is not a
  // valid key. No-op on ranks other than 0.
  void log(int64_t step, const MetricMap& values);

  bool writes() const { return active_; }       // true on rank 0
  int64_t nonfinite_count() const { return nonfinite_; }  // values written as null so far
  int64_t kept_lines() const { return kept_lines_; }      // lines kept from a resumed file
  const std::string& jsonl_path() const { return jsonl_path_; }
  std::string events_path() const;  // empty when TensorBoard output is off or rank != 0

 private:
  bool active_ = false;
  std::string jsonl_path_;
  std::FILE* jsonl_ = nullptr;
  TfEventsWriter* events_ = nullptr;
  int64_t last_step_ = INT64_MIN;
  int64_t nonfinite_ = 0;
  int64_t kept_lines_ = 0;
};

// Keeps the first lines of the metrics.jsonl at `path` up to the last one whose step is
// <= max_step and cuts the file after it. Returns the number of lines kept (0 when the file
// does not exist). A last line without its newline (a write cut short) is dropped; a line
// before it that is not a JSON object with an integer "step" is a DataError.
int64_t truncate_metrics_jsonl(const std::string& path, int64_t max_step);

// One field of the console progress line.
struct ProgressField {
  std::string key;    // metric name
  std::string label;  // printed before the value
  int precision = 3;  // digits after the point; -1: three significant digits (%.3g)
};

// The GRPO loop's main metrics: reward, accuracy, format rate, KL, entropy, response
// length, clip fraction, gradient norm, tokens/s, eval accuracy.
std::vector<ProgressField> default_progress_fields();

// "step 12/400 | reward 0.412 | acc 0.380 | fmt 0.95 | kl 0.00123 | len 143 | tok/s 812"
// Fields whose key is missing from `values` are left out; total_steps <= 0 prints only the
// step; non-finite values print as nan / inf / -inf.
std::string format_progress_line(int64_t step, int64_t total_steps, const MetricMap& values,
                                 const std::vector<ProgressField>& fields = default_progress_fields());

}  // namespace zeroth
