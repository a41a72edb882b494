// ShardedSafetensors: an HF checkpoint (index + shards, or one model.safetensors).
//
// Owns: finding the checkpoint in a directory, parsing and validating the index,
// lazy mapping of shards and checking that each shard holds what the index says.
// Must not: validate a shard's own bytes (SafetensorsFile::open does) or write files.
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "io/io_util.h"
#include "zeroth/safetensors.h"

namespace zeroth {

using nlohmann::json;

struct ShardedSafetensors::State {
  std::string path;                               // index file or single safetensors file
  std::string dir;                                // where shards live
  std::map<std::string, std::string> weight_map;  // tensor -> shard file name
  std::mutex mu;
  std::map<std::string, SafetensorsFile> opened;  // shard file name -> file (never erased)
};

namespace {

[[noreturn]] void fail_index(const std::string& path, const std::string& what) {
  throw CheckpointError("safetensors index '" + path + "': " + what);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A shard must be a relative path inside the index's directory.
bool shard_name_ok(const std::string& f) {
  if (f.empty() || f[0] == '/') return false;
  std::stringstream ss(f);
  std::string part;
  while (std::getline(ss, part, '/'))
    if (part == ".." || part.empty()) return false;
  return f.back() != '/';
}

// Fills `weight_map` from the index at `path`; shards live in `dir`.
void load_index(const std::string& path, const std::string& dir,
                std::map<std::string, std::string>* weight_map) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_index(path, "cannot open: " + io::errno_message(errno, path));
  std::stringstream buf;
  buf << in.rdbuf();
  json idx;
  try {
    idx = json::parse(buf.str());
  } catch (const json::exception& e) {
    fail_index(path, std::string("not valid JSON: ") + e.what());
  }
  if (!idx.is_object()) fail_index(path, "expected a JSON object, found " + io::json_brief(idx));
  if (!idx.contains("weight_map") || !idx["weight_map"].is_object())
    fail_index(path, "expected key 'weight_map' holding an object {tensor: shard file}");
  if (idx.contains("metadata") && !idx["metadata"].is_object() && !idx["metadata"].is_null())
    fail_index(path, "'metadata': expected an object, found " + io::json_brief(idx["metadata"]));
  const json& wm = idx["weight_map"];
  std::set<std::string> shards;
  for (auto it = wm.begin(); it != wm.end(); ++it) {
    if (!it.value().is_string())
      fail_index(path, "weight_map['" + it.key() + "']: expected a shard file name, found " +
                           io::json_brief(it.value()));
    const std::string f = it.value().get<std::string>();
    if (!shard_name_ok(f))
      fail_index(path, "weight_map['" + it.key() + "']: shard '" + f +
                           "' must be a relative path inside the index's directory");
    (*weight_map)[it.key()] = f;
    shards.insert(f);
  }
  for (const std::string& f : shards) {
    const std::string p = io::join_path(dir, f);
    if (!io::is_regular_file(p))
      fail_index(path, "shard '" + f + "' named in weight_map is missing (looked for '" + p + "')");
  }
}

}  // namespace

ShardedSafetensors ShardedSafetensors::open(const std::string& path) {
  const std::string kIndex = "model.safetensors.index.json", kSingle = "model.safetensors";
  auto st = std::make_shared<State>();
  std::string file = path;
  if (io::is_directory(path)) {
    const std::string idx = io::join_path(path, kIndex), single = io::join_path(path, kSingle);
    const bool has_idx = io::is_regular_file(idx), has_single = io::is_regular_file(single);
    if (has_idx && has_single)
      throw CheckpointError("checkpoint directory '" + path + "' holds both " + kIndex + " and " +
                            kSingle + "; expected one (remove the stale one)");
    if (!has_idx && !has_single)
      throw CheckpointError("checkpoint directory '" + path + "': expected " + kIndex + " or " +
                            kSingle + ", found neither");
    file = has_idx ? idx : single;
  } else if (!io::is_regular_file(path)) {
    throw CheckpointError("checkpoint '" + path + "' does not exist (expected a directory, an " +
                          kIndex + " or a .safetensors file)");
  }
  st->path = file;
  st->dir = io::dir_of(file);
  if (ends_with(file, ".index.json")) {
    load_index(file, st->dir, &st->weight_map);
  } else {
    SafetensorsFile f = SafetensorsFile::open(file);
    const size_t slash = file.find_last_of('/');
    const std::string shard = slash == std::string::npos ? file : file.substr(slash + 1);
    for (const std::string& n : f.names()) st->weight_map[n] = shard;
    st->opened.emplace(shard, std::move(f));
  }
  ShardedSafetensors s;
  s.state_ = std::move(st);
  return s;
}

const std::string& ShardedSafetensors::path() const { return state_->path; }

std::vector<std::string> ShardedSafetensors::names() const {
  std::vector<std::string> out;
  out.reserve(state_->weight_map.size());
  for (const auto& kv : state_->weight_map) out.push_back(kv.first);
  return out;
}

bool ShardedSafetensors::has(const std::string& name) const {
  return state_->weight_map.count(name) != 0;
}

size_t ShardedSafetensors::size() const { return state_->weight_map.size(); }

std::vector<std::string> ShardedSafetensors::shard_files() const {
  std::set<std::string> s;
  for (const auto& kv : state_->weight_map) s.insert(kv.second);
  return std::vector<std::string>(s.begin(), s.end());
}

const std::string& ShardedSafetensors::shard_of(const std::string& name) const {
  auto it = state_->weight_map.find(name);
  if (it == state_->weight_map.end())
    throw CheckpointError(strformat("checkpoint '%s': no tensor named '%s' (it has %zu tensors)",
                                    state_->path.c_str(), name.c_str(), state_->weight_map.size()));
  return it->second;
}

const SafetensorsFile& ShardedSafetensors::file_of(const std::string& name) const {
  const std::string& shard = shard_of(name);
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->opened.find(shard);
  if (it != state_->opened.end()) return it->second;
  SafetensorsFile f = SafetensorsFile::open(io::join_path(state_->dir, shard));
  for (const auto& kv : state_->weight_map)
    if (kv.second == shard && !f.has(kv.first))
      fail_index(state_->path, "weight_map puts tensor '" + kv.first + "' in shard '" + shard +
                                   "', but that shard has no such tensor");
  return state_->opened.emplace(shard, std::move(f)).first->second;
}

const SafetensorsInfo& ShardedSafetensors::info(const std::string& name) const {
  return file_of(name).info(name);
}

const void* ShardedSafetensors::data(const std::string& name) const {
  return file_of(name).data(name);
}

void ShardedSafetensors::expect(const std::string& name, DType dtype, const Shape& shape) const {
  file_of(name).expect(name, dtype, shape);
}

void ShardedSafetensors::read_into(const std::string& name, void* dst, DType dtype,
                                   const Shape& shape) const {
  file_of(name).read_into(name, dst, dtype, shape);
}

void ShardedSafetensors::read_into_converting(const std::string& name, void* dst, DType dtype,
                                              const Shape& shape) const {
  file_of(name).read_into_converting(name, dst, dtype, shape);
}

}  // namespace zeroth
