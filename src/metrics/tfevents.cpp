// TensorBoard events files (metrics.h): CRC-32C, TFRecord framing and the Event/Summary
// protobufs of proto/tensorboard.proto.
// Must not: know what a metric means, or write anything but scalars.
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "proto/tensorboard.pb.h"
#include "zeroth/error.h"
#include "zeroth/metrics.h"

namespace zeroth {

namespace fs = std::filesystem;

namespace {

// Table for the reflected CRC-32C polynomial, one byte at a time.
struct Crc32cTable {
  uint32_t v[256];
  Crc32cTable() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      v[i] = c;
    }
  }
};

const Crc32cTable& crc_table() {
  static const Crc32cTable table;
  return table;
}

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

void put_le(std::string* out, uint64_t x, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(char((x >> (8 * i)) & 0xffu));
}

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  const Crc32cTable& t = crc_table();
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = t.v[(c ^ p[i]) & 0xffu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

TfEventsWriter::TfEventsWriter(const std::string& dir, int64_t start_step) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw RuntimeError(strformat("%s: cannot create directory: %s", dir.c_str(), ec.message().c_str()));
  const double now = unix_seconds();
  const std::string base = strformat("%s/events.out.tfevents.%010lld.%s", dir.c_str(), (long long)now,
                                     host_name().c_str());
  path_ = base;
  for (int i = 1; fs::exists(path_); ++i) path_ = strformat("%s.%d", base.c_str(), i);
  file_ = std::fopen(path_.c_str(), "wb");
  if (!file_) throw RuntimeError(strformat("%s: cannot open for writing: %s", path_.c_str(), std::strerror(errno)));

  tb::Event ev;
  ev.set_wall_time(now);
  ev.set_file_version("brain.Event:2");
  write_record(ev.SerializeAsString());
  if (start_step >= 0) {
    tb::Event start;
    start.set_wall_time(now);
    start.set_step(start_step);
    start.mutable_session_log()->set_status(tb::SessionLog::START);
    write_record(start.SerializeAsString());
  }
}

TfEventsWriter::~TfEventsWriter() {
  if (file_) std::fclose(file_);
}

void TfEventsWriter::write_scalars(int64_t step, const MetricMap& values) {
  tb::Event ev;
  ev.set_wall_time(unix_seconds());
  ev.set_step(step);
  tb::Summary* summary = ev.mutable_summary();
  for (const auto& [key, value] : values) {
    tb::Summary::Value* v = summary->add_value();
    v->set_tag(key);
    v->set_simple_value(float(value));
  }
  write_record(ev.SerializeAsString());
}

void TfEventsWriter::write_record(const std::string& data) {
  std::string rec;
  rec.reserve(data.size() + 16);
  put_le(&rec, uint64_t(data.size()), 8);
  put_le(&rec, masked_crc32c(rec.data(), 8), 4);
  rec += data;
  put_le(&rec, masked_crc32c(data.data(), data.size()), 4);
  if (std::fwrite(rec.data(), 1, rec.size(), file_) != rec.size() || std::fflush(file_) != 0)
    throw RuntimeError(strformat("%s: write failed: %s", path_.c_str(), std::strerror(errno)));
}

}  // namespace zeroth
