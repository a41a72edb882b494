// Run metrics (metrics.h): CRC-32C known answers, metrics.jsonl round trip and resume
// truncation, tfevents framing decoded by an independent reader here (with the generated
// protobuf classes), and the console progress line.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "proto/tensorboard.pb.h"
#include "zeroth/error.h"
#include "zeroth/metrics.h"

using namespace zeroth;
namespace fs = std::filesystem;

namespace {

std::string fresh_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("zeroth_test_metrics_" + name);
  fs::remove_all(p);
  return p.string();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

std::vector<std::string> event_files(const std::string& tb_dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(tb_dir)) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t get_le(const std::string& s, size_t at, int bytes) {
  uint64_t x = 0;
  for (int i = 0; i < bytes; ++i) x |= uint64_t(uint8_t(s[at + size_t(i)])) << (8 * i);
  return x;
}

// An independent TFRecord reader: checks both masked CRCs of every record and returns
// the payloads. Throws std::runtime_error on any framing or checksum mismatch.
std::vector<std::string> read_records(const std::string& bytes) {
  auto mask = [](uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; };
  std::vector<std::string> out;
  size_t at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < 12) throw std::runtime_error("truncated record header");
    const uint64_t len = get_le(bytes, at, 8);
    if (uint32_t(get_le(bytes, at + 8, 4)) != mask(crc32c(bytes.data() + at, 8)))
      throw std::runtime_error("length crc mismatch");
    if (bytes.size() - at - 12 < len + 4) throw std::runtime_error("truncated record data");
    const std::string data = bytes.substr(at + 12, size_t(len));
    if (uint32_t(get_le(bytes, at + 12 + size_t(len), 4)) != mask(crc32c(data.data(), data.size())))
      throw std::runtime_error("data crc mismatch");
    out.push_back(data);
    at += 12 + size_t(len) + 4;
  }
  return out;
}

struct Scalars {
  int64_t step;
  std::map<std::string, float> values;
};

// Decodes an events file: checks the version record, returns the scalar events and the
// step of a SessionLog START (-1 without one).
std::vector<Scalars> read_scalars(const std::string& path, int64_t* restart_step = nullptr) {
  if (restart_step) *restart_step = -1;
  const std::vector<std::string> records = read_records(slurp(path));
  REQUIRE(!records.empty());
  tb::Event first;
  REQUIRE(first.ParseFromString(records[0]));
  CHECK(first.what_case() == tb::Event::kFileVersion);
  CHECK(first.file_version() == "brain.Event:2");
  CHECK(first.wall_time() > 1.6e9);
  std::vector<Scalars> out;
  for (size_t i = 1; i < records.size(); ++i) {
    tb::Event ev;
    REQUIRE(ev.ParseFromString(records[i]));
    if (ev.what_case() == tb::Event::kSessionLog) {  // only right after the version
      CHECK(i == 1);
      CHECK(ev.session_log().status() == tb::SessionLog::START);
      if (restart_step) *restart_step = ev.step();
      continue;
    }
    REQUIRE(ev.what_case() == tb::Event::kSummary);
    Scalars s{ev.step(), {}};
    for (const auto& v : ev.summary().value()) {
      REQUIRE(v.value_case() == tb::Summary::Value::kSimpleValue);
      s.values[v.tag()] = v.simple_value();
    }
    out.push_back(s);
  }
  return out;
}

MetricMap step_metrics(int64_t step) {
  return {{"reward_mean", 0.1 * double(step) + 1.0 / 3.0},
          {"kl", 1e-7 * double(step)},
          {"response_len_mean", 100.0 + double(step)},
          {"clip_frac", 0.0}};
}

}  // namespace

TEST_CASE("crc32c matches the published CRC-32C check values", "[metrics]") {
  CHECK(crc32c("123456789", 9) == 0xE3069283u);
  CHECK(crc32c("", 0) == 0u);
  // RFC 3720 (iSCSI) appendix B.4.
  unsigned char buf[32];
  std::memset(buf, 0, sizeof(buf));
  CHECK(crc32c(buf, 32) == 0x8A9136AAu);
  std::memset(buf, 0xff, sizeof(buf));
  CHECK(crc32c(buf, 32) == 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(i);
  CHECK(crc32c(buf, 32) == 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(31 - i);
  CHECK(crc32c(buf, 32) == 0x113FDB5Cu);
  const uint32_t c = crc32c("123456789", 9);
  CHECK(masked_crc32c("123456789", 9) == ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

TEST_CASE("metrics.jsonl: one flushed object per step, step first, non-finite as null", "[metrics]") {
  const std::string dir = fresh_dir("jsonl");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<MetricMap> rows = {
      {{"zeta", 1.0}, {"alpha", 0.1}, {"mid", 1e-300}},
      {{"zeta", 2.0 / 3.0}, {"alpha", nan}, {"mid", -inf}},
      {{"eval_accuracy", 0.25}},
  };
  {
    MetricsWriter w(dir, 0);
    CHECK(w.writes());
    w.log(1, rows[0]);
    w.log(2, rows[1]);
    // Flushed per line: readable while the writer is open.
    CHECK(lines_of(slurp(dir + "/metrics.jsonl")).size() == 2);
    w.log(2, rows[2]);  // an eval row may repeat its step
    CHECK(w.nonfinite_count() == 2);
  }
  const std::vector<std::string> lines = lines_of(slurp(dir + "/metrics.jsonl"));
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].rfind("{\"step\":1,\"alpha\":", 0) == 0);  // step first, then keys in order
  CHECK(lines[1] == "{\"step\":2,\"alpha\":null,\"mid\":null,\"zeta\":0.6666666666666666}");
  const int64_t steps[] = {1, 2, 2};
  for (size_t i = 0; i < lines.size(); ++i) {
    const nlohmann::json j = nlohmann::json::parse(lines[i]);
    CHECK(j["step"].get<int64_t>() == steps[i]);
    CHECK(j.size() == rows[i].size() + 1);
    for (const auto& [key, value] : rows[i]) {
      INFO(key);
      if (std::isfinite(value))
        CHECK(j[key].get<double>() == value);  // exact: doubles round-trip
      else
        CHECK(j[key].is_null());
    }
  }
}

TEST_CASE("metrics: ranks other than 0 write nothing", "[metrics]") {
  const std::string dir = fresh_dir("rank1");
  MetricsWriter w(dir, 1);
  CHECK_FALSE(w.writes());
  w.log(1, step_metrics(1));
  CHECK(w.events_path().empty());
  CHECK_FALSE(fs::exists(dir));
}

TEST_CASE("metrics: a resumed run's metrics.jsonl equals an uninterrupted run's", "[metrics]") {
  const std::string a = fresh_dir("resume_a"), b = fresh_dir("resume_b");
  {
    MetricsWriter w(a, 0);
    for (int64_t s = 1; s <= 10; ++s) w.log(s, step_metrics(s));
  }
  {
    MetricsWriter w(b, 0);
    for (int64_t s = 1; s <= 8; ++s) w.log(s, step_metrics(s));
  }
  {  // the crash cut the next line short
    std::ofstream out(b + "/metrics.jsonl", std::ios::app | std::ios::binary);
    out << "{\"step\":9,\"reward_m";
  }
  {
    MetricsWriterOptions opt;
    opt.resume_step = 5;  // the last checkpoint
    MetricsWriter w(b, 0, opt);
    CHECK(w.kept_lines() == 5);
    for (int64_t s = 6; s <= 10; ++s) w.log(s, step_metrics(s));
  }
  CHECK(slurp(a + "/metrics.jsonl") == slurp(b + "/metrics.jsonl"));
  CHECK(lines_of(slurp(b + "/metrics.jsonl")).size() == 10);

  // TensorBoard: a second events file, whose points start after the resume step.
  const std::vector<std::string> files = event_files(b + "/tb");
  REQUIRE(files.size() == 2);
  int64_t restart_first = 0, restart_second = 0;
  const std::vector<Scalars> first = read_scalars(files[0], &restart_first);
  const std::vector<Scalars> second = read_scalars(files[1], &restart_second);
  CHECK(first.size() == 8);
  CHECK(restart_first == 0);
  CHECK(restart_second == 6);  // TensorBoard drops the first file's steps 6..8
  REQUIRE(second.size() == 5);
  CHECK(second.front().step == 6);

  // A fresh (non-resume) open replaces the file.
  { MetricsWriter w(b, 0); }
  CHECK(slurp(b + "/metrics.jsonl").empty());
}

TEST_CASE("metrics: truncate_metrics_jsonl keeps steps <= the resume step and rejects damage", "[metrics]") {
  const std::string dir = fresh_dir("truncate");
  fs::create_directories(dir);
  const std::string path = dir + "/metrics.jsonl";
  CHECK(truncate_metrics_jsonl(path, 3) == 0);  // no file: nothing kept
  auto write = [&](const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  };
  write("{\"step\":1}\n{\"step\":2}\n{\"step\":2,\"eval_accuracy\":0.5}\n{\"step\":3}\n");
  CHECK(truncate_metrics_jsonl(path, 2) == 3);
  CHECK(slurp(path) == "{\"step\":1}\n{\"step\":2}\n{\"step\":2,\"eval_accuracy\":0.5}\n");
  CHECK(truncate_metrics_jsonl(path, 0) == 0);
  CHECK(slurp(path).empty());

  write("{\"step\":1}\nnot json\n{\"step\":3}\n");
  CHECK_THROWS_AS(truncate_metrics_jsonl(path, 5), DataError);
  CHECK_THROWS_WITH(truncate_metrics_jsonl(path, 5), Catch::Contains("metrics.jsonl:2:"));
  write("{\"step\":1}\n{\"step\":\"2\"}\n");
  CHECK_THROWS_AS(truncate_metrics_jsonl(path, 5), DataError);
}

TEST_CASE("tfevents: framing, CRCs and the scalars decode with the generated classes", "[metrics]") {
  const std::string dir = fresh_dir("tfevents");
  std::string path;
  {
    MetricsWriter w(dir, 0);
    path = w.events_path();
    for (int64_t s = 1; s <= 3; ++s) w.log(s, step_metrics(s));
    w.log(4, {{"loss", std::numeric_limits<double>::quiet_NaN()}, {"zero", 0.0}});
  }
  REQUIRE(fs::path(path).parent_path() == fs::path(dir) / "tb");
  CHECK(fs::path(path).filename().string().rfind("events.out.tfevents.", 0) == 0);
  const std::vector<Scalars> ev = read_scalars(path);
  REQUIRE(ev.size() == 4);
  for (int64_t s = 1; s <= 3; ++s) {
    const Scalars& e = ev[size_t(s - 1)];
    CHECK(e.step == s);
    const MetricMap want = step_metrics(s);
    REQUIRE(e.values.size() == want.size());
    for (const auto& [key, value] : want) {
      INFO(key);
      REQUIRE(e.values.count(key) == 1);
      CHECK(e.values.at(key) == float(value));
    }
  }
  CHECK(std::isnan(ev[3].values.at("loss")));
  CHECK(ev[3].values.at("zero") == 0.0f);  // written although it is the proto3 default

  // The reader can fail: flip one payload bit, then one length bit.
  std::string bytes = slurp(path);
  std::string bad = bytes;
  bad[bad.size() - 10] ^= 0x01;
  CHECK_THROWS_WITH(read_records(bad), "data crc mismatch");
  bad = bytes;
  bad[0] ^= 0x01;
  CHECK_THROWS_WITH(read_records(bad), "length crc mismatch");
}

TEST_CASE("format_progress_line: compact, ordered, missing keys left out", "[metrics]") {
  const MetricMap m = {{"reward_mean", 0.41234},       {"accuracy", 0.38},   {"format_rate", 0.951},
                       {"kl", 0.0012345},              {"response_len_mean", 143.4},
                       {"tokens_per_s", 812.2},        {"unlisted", 7.0}};
  CHECK(format_progress_line(12, 400, m) ==
        "step 12/400 | reward 0.412 | acc 0.380 | fmt 0.95 | kl 0.00123 | len 143 | tok/s 812");
  CHECK(format_progress_line(3, 0, {{"kl", std::numeric_limits<double>::quiet_NaN()},
                                    {"grad_norm", -std::numeric_limits<double>::infinity()}}) ==
        "step 3 | kl nan | gnorm -inf");
  CHECK(format_progress_line(5, 10, m, {{"unlisted", "u", 1}, {"accuracy", "a", -1}}) ==
        "step 5/10 | u 7.0 | a 0.38");
}
