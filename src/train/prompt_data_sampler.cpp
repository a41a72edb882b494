// PromptSampler (with the weighted mix of sources and skipped prompts), named RNG stream
// keys and the data-parallel shard of a global prompt batch (prompt_data.h). Must not:
// read files or communicate (every rank draws the same global batch and keeps its shard).
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "zeroth/error.h"
#include "zeroth/log.h"
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

std::vector<int64_t> mix_quotas(const std::vector<double>& weights, int64_t n) {
  double total = 0;
  for (double w : weights) {
    ZT_ASSERT(w >= 0 && std::isfinite(w), "mix weight %g", w);
    total += w;
  }
  ZT_ASSERT(total > 0 && n >= 0, "mix of %lld prompts over weights summing to %g", (long long)n, total);
  std::vector<int64_t> quota(weights.size());
  std::vector<std::pair<double, size_t>> rest;  // (remainder, source)
  int64_t given = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const double exact = double(n) * weights[i] / total;
    quota[i] = int64_t(std::floor(exact));
    given += quota[i];
    rest.push_back({exact - double(quota[i]), i});
  }
  std::stable_sort(rest.begin(), rest.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < n; ++k, ++given) ++quota[rest[k % rest.size()].second];
  return quota;
}

PromptSampler::PromptSampler(const PromptDataset& data, uint64_t run_seed, bool shuffle, DataCursor cursor)
    : data_(&data),
      sampler_(checked_count(data), rng_stream_key(run_seed, "prompts"), shuffle, cursor),
      run_seed_(run_seed),
      shuffle_(shuffle) {
  if (!data.weighted()) return;
  ZT_ASSERT(data.source_weights.size() == data.source_names.size(), "%zu weights for %zu sources",
            data.source_weights.size(), data.source_names.size());
  by_source_.resize(data.source_names.size());
  for (int64_t i = 0; i < data.size(); ++i) by_source_[size_t(data.records[size_t(i)].source)].push_back(i);
  quotas_ = mix_quotas(data.source_weights, data.size());
  for (size_t s = 0; s < by_source_.size(); ++s)
    if (quotas_[s] > 0 && by_source_[s].empty())
      throw DataError(strformat("prompts.sources[%zu] ('%s'): weight %g but no training prompt left to sample "
                                "(all dropped by the filters)",
                                s, data.source_names[s].c_str(), data.source_weights[s]));
}

std::vector<int64_t> PromptSampler::epoch_draws(int64_t epoch) const {
  std::vector<int64_t> draws;
  draws.reserve(size_t(data_->size()));
  for (size_t s = 0; s < by_source_.size(); ++s) {
    const std::vector<int64_t>& recs = by_source_[s];
    if (quotas_[s] == 0) continue;
    const int64_t size = int64_t(recs.size());
    // The source's own passes: a seeded permutation of its records per pass.
    const BatchSampler passes(size, rng_stream_key(run_seed_, "prompts/mix/" + data_->source_names[s]), shuffle_);
    int64_t pass = -1;
    std::vector<int64_t> order;
    for (int64_t j = epoch * quotas_[s]; j < (epoch + 1) * quotas_[s]; ++j) {
      if (j / size != pass) {
        pass = j / size;
        order = passes.epoch_order(pass);
      }
      draws.push_back(recs[size_t(order[size_t(j % size)])]);
    }
  }
  ZT_ASSERT(int64_t(draws.size()) == data_->size());
  return draws;
}

std::vector<int64_t> PromptSampler::mixed_epoch(int64_t epoch) const {
  ZT_ASSERT(data_->weighted(), "mixed_epoch of an unweighted dataset");
  const std::vector<int64_t> draws = epoch_draws(epoch);
  const BatchSampler order(data_->size(), rng_stream_key(run_seed_, "prompts"), shuffle_);
  std::vector<int64_t> out;
  for (int64_t p : order.epoch_order(epoch)) out.push_back(draws[size_t(p)]);
  return out;
}

int64_t PromptSampler::next_index() {
  if (!data_->weighted()) return sampler_.next(1)[0];
  const int64_t epoch = sampler_.cursor().epoch;  // the epoch of the next index
  if (epoch != draws_epoch_) {
    draws_ = epoch_draws(epoch);
    draws_epoch_ = epoch;
  }
  return draws_[size_t(sampler_.next(1)[0])];
}

std::vector<int64_t> PromptSampler::next_indices(int64_t n) {
  ZT_ASSERT(n >= 0);
  if (skipped_count_ == 0 && !data_->weighted()) return sampler_.next(n);
  std::vector<int64_t> out;
  while (int64_t(out.size()) < n) {
    if (skipped_count_ == data_->size()) {
      ZT_LOG_WARN("rl.skip_solved: every one of the %lld training prompts has been solved; sampling all of them "
                  "again", (long long)data_->size());
      set_skipped({});
    }
    const int64_t i = next_index();
    if (skipped_count_ == 0 || !skipped_[size_t(i)]) out.push_back(i);
  }
  return out;
}

void PromptSampler::skip(int64_t record) {
  ZT_ASSERT(record >= 0 && record < data_->size(), "skip record %lld of %lld", (long long)record,
            (long long)data_->size());
  if (skipped_.empty()) skipped_.assign(size_t(data_->size()), 0);
  if (!skipped_[size_t(record)]) ++skipped_count_;
  skipped_[size_t(record)] = 1;
}

void PromptSampler::set_skipped(const std::vector<int64_t>& records) {
  skipped_.clear();
  skipped_count_ = 0;
  for (int64_t r : records) skip(r);
}

std::vector<int64_t> PromptSampler::skipped() const {
  std::vector<int64_t> out;
  for (size_t i = 0; i < skipped_.size(); ++i)
    if (skipped_[i]) out.push_back(int64_t(i));
  return out;
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
