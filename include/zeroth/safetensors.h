// safetensors files: reading (memory-mapped, lazy, validated), writing (atomic), and
// Hugging Face sharded checkpoints (model.safetensors.index.json).
//
// Owns: the on-disk format (8-byte little-endian header length N, N bytes of JSON
// header padded with spaces, then the data buffer), its validation, the HF shard
// naming and index file. Files written here load in HF `safetensors`/`transformers`
// and HF-written files load here (dtypes F32, BF16, F16, I32, I64, and F8_E4M3, which
// only reads as raw bytes: load_hf_weights dequantizes it with its block scales).
// Must not: know about models, parameter names or parallel layouts; allocate device
// memory itself (Tensor variants copy into tensors the caller made).
//
// Every malformed or mismatched file is a CheckpointError naming the file, the tensor
// and what was expected vs found; nothing in a file can make the reader crash. (The
// one exception is a file truncated by another process *after* open: the mapping then
// faults on access, as with any mmap reader.)
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "zeroth/dtype.h"
#include "zeroth/tensor.h"

namespace zeroth {

// Upper bound on the JSON header length, as in HF safetensors.
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100000000;

// One tensor's entry in a safetensors header.
struct SafetensorsInfo {
  DType dtype = DType::F32;
  Shape shape;          // may be [] (a scalar) or contain zeros (an empty tensor)
  uint64_t begin = 0;   // byte offset of the first element in the data buffer
  uint64_t nbytes = 0;  // numel * dtype_size
};

// A read-only, memory-mapped safetensors file. Opening maps the file and validates
// the whole header; tensor bytes are not touched until asked for. Cheap to copy (the
// mapping is shared and unmapped with the last copy). Const methods are thread-safe.
class SafetensorsFile {
 public:
  // Maps and validates `path`. CheckpointError for a missing/unreadable or malformed
  // file: size < 8, header length > 100 MB or past the end of the file, header not a
  // JSON object, unknown dtype, bad shape, offsets out of range, overlapping, leaving
  // gaps or not matching the shape, non-string metadata.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const;
  std::vector<std::string> names() const;  // sorted
  bool has(const std::string& name) const;
  size_t size() const;  // number of tensors
  // CheckpointError if `name` is not in the file.
  const SafetensorsInfo& info(const std::string& name) const;
  // Pointer into the mapping, valid while any copy of this object lives. NOT aligned
  // to the element size in general (files from other writers may pack tensors of
  // different dtypes back to back): read through memcpy.
  const void* data(const std::string& name) const;
  // The "__metadata__" map (empty if absent).
  const std::map<std::string, std::string>& metadata() const;

  // CheckpointError (naming the file, the tensor, and both shapes/dtypes) unless the
  // tensor exists with exactly this dtype and shape.
  void expect(const std::string& name, DType dtype, const Shape& shape) const;

  // Host copies. `dst` holds shape_numel(shape) elements of `dtype`; the file's tensor
  // must have exactly that dtype and shape (see expect()).
  void read_into(const std::string& name, void* dst, DType dtype, const Shape& shape) const;
  // As read_into, but when both dtypes are floating point (F32/BF16/F16) and differ,
  // converts element by element (round to nearest even). Integer dtypes must match.
  void read_into_converting(const std::string& name, void* dst, DType dtype,
                            const Shape& shape) const;

  // Tensor variants: `dst` must be defined and contiguous, on any device; the data
  // goes in through dst.copy_from_host.
  void read_into(const std::string& name, Tensor& dst) const;
  void read_into_converting(const std::string& name, Tensor& dst) const;

 private:
  struct Mapping;
  SafetensorsFile() = default;
  std::shared_ptr<const Mapping> map_;
};

// Collects tensors and writes one safetensors file, or an HF sharded checkpoint.
//
// Layout written: the header is compact JSON with "__metadata__" first, then the
// tensors in data order, padded with spaces so the data buffer starts at a multiple
// of 8. Data order is by element size descending, then by name, so every tensor is
// aligned to its element size. The same inputs always give the same bytes.
// Metadata starts as {"format": "pt"}, which transformers requires to load a file.
class SafetensorsWriter {
 public:
  SafetensorsWriter();

  // References `data` (shape_numel(shape) elements of `dtype`, host memory): the
  // caller keeps it alive and unchanged until the last write() / write_sharded()
  // call. Nothing is copied. CheckpointError for a duplicate, empty or "__metadata__"
  // name, a name that is not valid UTF-8, or a negative dimension.
  void add(const std::string& name, DType dtype, const Shape& shape, const void* data);
  // Same, but copies the bytes now; `data` may be freed on return.
  void add_copy(const std::string& name, DType dtype, const Shape& shape, const void* data);
  // Copies the tensor (any device, must be contiguous) to host memory now.
  void add(const std::string& name, const Tensor& t);

  void set_metadata(const std::string& key, const std::string& value);
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  size_t size() const { return entries_.size(); }
  uint64_t total_bytes() const;  // sum of tensor bytes

  // Writes every tensor to `path` atomically: `path.tmp`, fsync, rename, fsync of
  // the directory. A RuntimeError on I/O failure leaves `path` untouched.
  void write(const std::string& path) const;

  // Writes an HF checkpoint into directory `dir` (created if missing, one level):
  // a single `model.safetensors` if all tensors fit in `max_shard_bytes`, else
  // `model-00001-of-0000K.safetensors`... plus `model.safetensors.index.json`
  // ({"metadata": {"total_size": N}, "weight_map": {tensor: shard}}), written last.
  // Tensors fill shards greedily in name order; a tensor larger than the limit gets
  // a shard of its own. Files of this naming scheme left in `dir` by an earlier
  // write are removed afterwards. Returns the file names written (no directory).
  std::vector<std::string> write_sharded(const std::string& dir, uint64_t max_shard_bytes) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t nbytes;
    const void* data;                             // referenced or points into `owned`
    std::shared_ptr<std::vector<uint8_t>> owned;  // set by add_copy / add(Tensor)
  };
  void add_entry(Entry e);
  void write_entries(const std::string& path, const std::vector<const Entry*>& entries) const;

  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;  // name -> position in entries_
  std::map<std::string, std::string> metadata_;
};

// An HF checkpoint: a sharded one (model.safetensors.index.json + shards) or a single
// model.safetensors. Shards are mapped lazily, on first access to one of their
// tensors. Thread-safe.
class ShardedSafetensors {
 public:
  // `path` is a directory holding model.safetensors.index.json or model.safetensors
  // (not both), an index file (*.index.json), or a single *.safetensors file.
  // CheckpointError if nothing loadable is there, the index is malformed, names a
  // shard outside the directory, or names a shard file that does not exist.
  static ShardedSafetensors open(const std::string& path);

  const std::string& path() const;         // the index or single file opened
  std::vector<std::string> names() const;  // sorted
  bool has(const std::string& name) const;
  size_t size() const;
  // Shard file names (no directory), sorted, each once.
  std::vector<std::string> shard_files() const;
  const std::string& shard_of(const std::string& name) const;

  // As SafetensorsFile, after mapping the tensor's shard. CheckpointError also when
  // the shard does not hold a tensor the index maps to it.
  const SafetensorsInfo& info(const std::string& name) const;
  const void* data(const std::string& name) const;
  void expect(const std::string& name, DType dtype, const Shape& shape) const;
  void read_into(const std::string& name, void* dst, DType dtype, const Shape& shape) const;
  void read_into_converting(const std::string& name, void* dst, DType dtype,
                            const Shape& shape) const;
  void read_into(const std::string& name, Tensor& dst) const;
  void read_into_converting(const std::string& name, Tensor& dst) const;

  // The shard holding `name`, mapped on first use.
  const SafetensorsFile& file_of(const std::string& name) const;

 private:
  struct State;
  ShardedSafetensors() = default;
  std::shared_ptr<State> state_;
};

}  // namespace zeroth
