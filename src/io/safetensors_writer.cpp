// SafetensorsWriter: lays out and writes safetensors files and HF sharded checkpoints.
//
// Owns: the byte layout we emit (header order, padding, tensor order), atomic file
// replacement, HF shard naming, the index file and removal of stale shards.
// Must not: read files back or touch Tensor (safetensors_tensor.cpp does add(Tensor)).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "io/io_util.h"
#include "zeroth/safetensors.h"

namespace zeroth {

using nlohmann::json;

namespace {

const char* kIndexName = "model.safetensors.index.json";
const char* kSingleName = "model.safetensors";

// JSON string literal for `s`; CheckpointError if `s` is not valid UTF-8.
std::string json_string(const std::string& s, const char* what) {
  try {
    return json(s).dump();
  } catch (const json::exception&) {
    throw CheckpointError(
        strformat("safetensors writer: %s is not valid UTF-8: '%s'", what, s.c_str()));
  }
}

// model-00001-of-00003.safetensors
std::string shard_name(size_t i, size_t n) {
  return strformat("model-%05zu-of-%05zu.safetensors", i + 1, n);
}

bool is_our_checkpoint_file(const std::string& f) {
  if (f == kIndexName || f == kSingleName) return true;
  // model-NNNNN-of-NNNNN.safetensors
  if (f.size() != std::strlen("model-00001-of-00001.safetensors")) return false;
  if (f.compare(0, 6, "model-") != 0 || f.compare(11, 4, "-of-") != 0 ||
      f.compare(20, 12, ".safetensors") != 0)
    return false;
  for (size_t i : {6, 7, 8, 9, 10, 15, 16, 17, 18, 19})
    if (f[i] < '0' || f[i] > '9') return false;
  return true;
}

// Writes `bytes` to `path` atomically (path.tmp, fsync, rename, fsync dir).
void write_file_atomic(const std::string& path,
                       const std::vector<std::pair<const void*, uint64_t>>& pieces) {
  const std::string tmp = path + ".tmp";
  int fd = -1;
  ZT_CHECK_SYS(fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), tmp);
  try {
    for (const auto& p : pieces) io::write_all(fd, p.first, p.second, tmp);
    ZT_CHECK_SYS(::fsync(fd), tmp);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  int rc = ::close(fd);
  if (rc != 0) ::unlink(tmp.c_str());
  ZT_CHECK_SYS(rc, tmp);
  rc = ::rename(tmp.c_str(), path.c_str());
  if (rc != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    errno = err;
  }
  ZT_CHECK_SYS(rc, path);
  io::fsync_parent_dir(path);
}

}  // namespace

SafetensorsWriter::SafetensorsWriter() { metadata_["format"] = "pt"; }

void SafetensorsWriter::add_entry(Entry e) {
  if (e.name.empty()) throw CheckpointError("safetensors writer: empty tensor name");
  if (e.name == "__metadata__")
    throw CheckpointError("safetensors writer: '__metadata__' is reserved, not a tensor name");
  json_string(e.name, "tensor name");
  if (index_.count(e.name))
    throw CheckpointError("safetensors writer: duplicate tensor name '" + e.name + "'");
  if (!io::checked_nbytes(e.shape, e.dtype, &e.nbytes))
    throw CheckpointError("safetensors writer: tensor '" + e.name + "': bad shape " +
                          io::dtype_shape_str(e.dtype, e.shape) +
                          " (expected non-negative dimensions, under 2^64 bytes)");
  ZT_ASSERT(e.data != nullptr || e.nbytes == 0, "tensor '%s' has no data", e.name.c_str());
  index_[e.name] = entries_.size();
  entries_.push_back(std::move(e));
}

void SafetensorsWriter::add(const std::string& name, DType dtype, const Shape& shape,
                            const void* data) {
  add_entry(Entry{name, dtype, shape, 0, data, nullptr});
}

void SafetensorsWriter::add_copy(const std::string& name, DType dtype, const Shape& shape,
                                 const void* data) {
  add_entry(Entry{name, dtype, shape, 0, data, nullptr});  // validates, sets nbytes
  Entry& e = entries_.back();
  e.owned = std::make_shared<std::vector<uint8_t>>(e.nbytes);
  if (e.nbytes) std::memcpy(e.owned->data(), data, e.nbytes);
  e.data = e.owned->data();
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  json_string(key, "metadata key");
  json_string(value, "metadata value");
  metadata_[key] = value;
}

uint64_t SafetensorsWriter::total_bytes() const {
  uint64_t n = 0;
  for (const Entry& e : entries_) n += e.nbytes;
  return n;
}

void SafetensorsWriter::write_entries(const std::string& path,
                                      const std::vector<const Entry*>& entries) const {
  std::vector<const Entry*> order = entries;
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    size_t sa = dtype_size(a->dtype), sb = dtype_size(b->dtype);
    if (sa != sb) return sa > sb;
    return a->name < b->name;
  });

  std::string header = "{";
  if (!metadata_.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& kv : metadata_) {
      if (!first) header += ",";
      first = false;
      header +=
          json_string(kv.first, "metadata key") + ":" + json_string(kv.second, "metadata value");
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (const Entry* e : order) {
    if (header.size() > 1) header += ",";
    header += json_string(e->name, "tensor name");
    header += ":{\"dtype\":\"";
    header += dtype_name(e->dtype);
    header += "\",\"shape\":[";
    for (size_t i = 0; i < e->shape.size(); ++i) {
      if (i) header += ",";
      header += std::to_string(e->shape[i]);
    }
    header += strformat("],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                        (unsigned long long)(offset + e->nbytes));
    offset += e->nbytes;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // data starts at a multiple of 8
  if (header.size() > kSafetensorsMaxHeaderBytes)
    throw CheckpointError(
        strformat("safetensors writer: '%s': header would be %zu bytes, over "
                  "the limit of %llu; split into shards",
                  path.c_str(), header.size(), (unsigned long long)kSafetensorsMaxHeaderBytes));

  uint8_t len[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  std::vector<std::pair<const void*, uint64_t>> pieces;
  pieces.emplace_back(len, 8);
  pieces.emplace_back(header.data(), header.size());
  for (const Entry* e : order)
    if (e->nbytes) pieces.emplace_back(e->data, e->nbytes);
  write_file_atomic(path, pieces);
}

void SafetensorsWriter::write(const std::string& path) const {
  std::vector<const Entry*> all;
  for (const Entry& e : entries_) all.push_back(&e);
  write_entries(path, all);
}

std::vector<std::string> SafetensorsWriter::write_sharded(const std::string& dir,
                                                          uint64_t max_shard_bytes) const {
  if (max_shard_bytes == 0)
    throw CheckpointError("safetensors writer: max_shard_bytes must be positive, found 0");
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) ZT_CHECK_SYS(-1, dir);
  if (!io::is_directory(dir))
    throw CheckpointError("safetensors writer: '" + dir + "' exists and is not a directory");

  // Greedy fill in name order (index_ is sorted by name).
  std::vector<std::vector<const Entry*>> shards(1);
  uint64_t fill = 0;
  for (const auto& kv : index_) {
    const Entry* e = &entries_[kv.second];
    if (!shards.back().empty() && fill + e->nbytes > max_shard_bytes) {
      shards.emplace_back();
      fill = 0;
    }
    shards.back().push_back(e);
    fill += e->nbytes;
  }

  std::vector<std::string> written;
  if (shards.size() == 1) {
    write_entries(io::join_path(dir, kSingleName), shards[0]);
    written.push_back(kSingleName);
  } else {
    json weight_map = json::object();
    for (size_t i = 0; i < shards.size(); ++i) {
      const std::string f = shard_name(i, shards.size());
      write_entries(io::join_path(dir, f), shards[i]);
      written.push_back(f);
      for (const Entry* e : shards[i]) weight_map[e->name] = f;
    }
    json index = {{"metadata", {{"total_size", total_bytes()}}}, {"weight_map", weight_map}};
    const std::string text = index.dump(2) + "\n";
    write_file_atomic(io::join_path(dir, kIndexName), {{text.data(), text.size()}});
    written.push_back(kIndexName);
  }

  // Remove files of our naming scheme that this write did not produce.
  std::set<std::string> keep(written.begin(), written.end());
  std::vector<std::string> stale;
  DIR* d = ::opendir(dir.c_str());
  ZT_CHECK_LIB("posix", d, zt_status_ != nullptr, io::errno_message(errno, dir));
  while (struct dirent* ent = ::readdir(d)) {
    std::string f = ent->d_name;
    if (is_our_checkpoint_file(f) && !keep.count(f)) stale.push_back(f);
  }
  ::closedir(d);
  for (const std::string& f : stale) {
    const std::string p = io::join_path(dir, f);
    ZT_CHECK_SYS(::unlink(p.c_str()), p);
  }
  if (!stale.empty()) io::fsync_parent_dir(io::join_path(dir, kIndexName));
  return written;
}

}  // namespace zeroth
