// MetricsWriter (metrics.h): RUN_DIR/metrics.jsonl and the TensorBoard events file of a run,
// written by rank 0; the truncation of metrics.jsonl when a run resumes.
// Must not: reduce over ranks (callers pass global values) or choose the metrics.
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include <nlohmann/json.hpp>

#include "zeroth/error.h"
#include "zeroth/log.h"
#include "zeroth/metrics.h"

namespace zeroth {

namespace fs = std::filesystem;

int64_t truncate_metrics_jsonl(const std::string& path, int64_t max_step) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw RuntimeError(strformat("%s: cannot open for reading", path.c_str()));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  in.close();

  size_t pos = 0, keep_bytes = 0;
  int64_t kept = 0, line_no = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {  // a last line cut short (the process was killed writing it)
      ZT_LOG_WARN("%s:%lld: dropping a last line cut short (%zu bytes without a newline)", path.c_str(),
                  (long long)line_no + 1, text.size() - pos);
      break;
    }
    ++line_no;
    const std::string line = text.substr(pos, nl - pos);
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("step") || !j["step"].is_number_integer())
      throw DataError(strformat("%s:%lld: expected a JSON object with an integer \"step\", found '%.80s'",
                                path.c_str(), (long long)line_no, line.c_str()));
    if (j["step"].get<int64_t>() > max_step) break;
    ++kept;
    pos = nl + 1;
    keep_bytes = pos;
  }
  if (keep_bytes != text.size()) {
    fs::resize_file(path, keep_bytes, ec);
    if (ec) throw RuntimeError(strformat("%s: cannot truncate: %s", path.c_str(), ec.message().c_str()));
  }
  return kept;
}

MetricsWriter::MetricsWriter(const std::string& run_dir, int rank, const MetricsWriterOptions& options) {
  if (rank != 0) return;
  active_ = true;
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) throw RuntimeError(strformat("%s: cannot create directory: %s", run_dir.c_str(), ec.message().c_str()));
  if (options.jsonl) {
    jsonl_path_ = run_dir + "/metrics.jsonl";
    if (options.resume_step >= 0) {
      kept_lines_ = truncate_metrics_jsonl(jsonl_path_, options.resume_step);
      ZT_LOG_INFO("metrics: %s keeps %lld line(s) up to step %lld", jsonl_path_.c_str(), (long long)kept_lines_,
                  (long long)options.resume_step);
    }
    jsonl_ = std::fopen(jsonl_path_.c_str(), options.resume_step >= 0 ? "ab" : "wb");
    if (!jsonl_)
      throw RuntimeError(strformat("%s: cannot open for writing: %s", jsonl_path_.c_str(), std::strerror(errno)));
  }
  if (options.tensorboard)
    events_ = new TfEventsWriter(run_dir + "/tb", options.resume_step >= 0 ? options.resume_step + 1 : 0);
}

MetricsWriter::~MetricsWriter() {
  if (jsonl_) std::fclose(jsonl_);
  delete events_;
  if (nonfinite_ > 0)
    ZT_LOG_WARN("metrics: %lld non-finite value(s) were written as null to %s", (long long)nonfinite_,
                jsonl_path_.c_str());
}

std::string MetricsWriter::events_path() const { return events_ ? events_->path() : std::string(); }

void MetricsWriter::log(int64_t step, const MetricMap& values) {
  ZT_ASSERT(step >= last_step_, "metrics step %lld after step %lld", (long long)step, (long long)last_step_);
  ZT_ASSERT(values.count("step") == 0, "'step' is not a metric name");
  last_step_ = step;
  if (!active_) return;

  nlohmann::ordered_json j;
  j["step"] = step;
  std::string bad;
  for (const auto& [key, value] : values) {
    if (std::isfinite(value)) {
      j[key] = value;
    } else {
      j[key] = nullptr;
      ++nonfinite_;
      bad += (bad.empty() ? "" : ", ") + key;
    }
  }
  if (!bad.empty()) ZT_LOG_WARN("metrics: step %lld: non-finite %s (written as null)", (long long)step, bad.c_str());
  if (jsonl_) {
    const std::string line = j.dump() + "\n";
    if (std::fwrite(line.data(), 1, line.size(), jsonl_) != line.size() || std::fflush(jsonl_) != 0)
      throw RuntimeError(strformat("%s: write failed: %s", jsonl_path_.c_str(), std::strerror(errno)));
  }
  if (events_) events_->write_scalars(step, values);
}

}  // namespace zeroth
