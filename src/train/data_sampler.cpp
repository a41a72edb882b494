// BatchSampler: the per-epoch seeded order of sequences and its resumable cursor (data.h).
// Must not: read data or know about ranks (callers slice the global batch).
#include <vector>

#include "zeroth/data.h"
#include "zeroth/error.h"

namespace zeroth {

static uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

BatchSampler::BatchSampler(int64_t count, uint64_t seed, bool shuffle, DataCursor cursor)
    : count_(count), seed_(seed), shuffle_(shuffle), cursor_(cursor) {
  ZT_ASSERT(count > 0 && cursor.epoch >= 0 && cursor.position >= 0);
  if (cursor_.position >= count_)
    throw CheckpointError(strformat("data cursor position %lld is past the %lld sequences of the "
                                    "dataset (was the data changed since the checkpoint?)",
                                    (long long)cursor_.position, (long long)count_));
  order_ = epoch_order(cursor_.epoch);
}

std::vector<int64_t> BatchSampler::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(static_cast<size_t>(count_));
  for (int64_t i = 0; i < count_; ++i) order[size_t(i)] = i;
  if (!shuffle_) return order;
  uint64_t state = seed_ ^ (0xD1B54A32D192ED03ull * uint64_t(epoch + 1));
  splitmix64(state);
  for (int64_t i = count_ - 1; i > 0; --i) {
    const int64_t j = int64_t(splitmix64(state) % uint64_t(i + 1));
    std::swap(order[size_t(i)], order[size_t(j)]);
  }
  return order;
}

std::vector<int64_t> BatchSampler::next(int64_t n) {
  std::vector<int64_t> out;
  out.reserve(size_t(n));
  while (int64_t(out.size()) < n) {
    out.push_back(order_[size_t(cursor_.position)]);
    if (++cursor_.position == count_) {
      ++cursor_.epoch;
      cursor_.position = 0;
      order_ = epoch_order(cursor_.epoch);
    }
  }
  return out;
}

}  // namespace zeroth
