// PromptSampler, named RNG stream keys and the data-parallel shard of a global prompt
// batch (prompt_data.h). Must not: read files or communicate (every rank draws the same
// global batch and keeps its shard).
#include <algorithm>
#include <string>
#include <vector>

#include "zeroth/error.h"
#include "zeroth/prompt_data.h"

namespace zeroth {

uint64_t rng_stream_key(uint64_t seed, const std::string& name) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull;  // SplitMix64 of the seed
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a of the name
  for (unsigned char ch : name) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return z ^ h;
}

static int64_t checked_count(const PromptDataset& data) {
  if (data.records.empty()) throw DataError("the prompt sampler needs at least one prompt, found none");
  return data.size();
}

PromptSampler::PromptSampler(const PromptDataset& data, uint64_t run_seed, bool shuffle, DataCursor cursor)
    : data_(&data), sampler_(checked_count(data), rng_stream_key(run_seed, "prompts"), shuffle, cursor) {}

std::vector<int64_t> PromptSampler::next_indices(int64_t n) {
  ZT_ASSERT(n >= 0);
  return sampler_.next(n);
}

std::vector<const PromptRecord*> PromptSampler::next_batch(int64_t n) {
  std::vector<const PromptRecord*> out;
  for (int64_t i : next_indices(n)) out.push_back(&data_->records[size_t(i)]);
  return out;
}

PromptShard prompt_shard(int64_t global, int rank, int world) {
  ZT_ASSERT(global >= 0 && world >= 1 && rank >= 0 && rank < world, "shard %d of %d, batch %lld", rank, world,
            (long long)global);
  const int64_t base = global / world, extra = global % world;
  PromptShard s;
  s.count = base + (rank < extra ? 1 : 0);
  s.begin = int64_t(rank) * base + std::min<int64_t>(rank, extra);
  return s;
}

}  // namespace zeroth
