// MlaKvCache: storage and slot bookkeeping of the MLA latent KV cache (model_infer.h).
// Owns: one (S, Tmax, Rkv + Dr) tensor per layer and the host-side slot lengths.
// Must not: compute attention or know which sequence a slot belongs to (rollout does).
#include "zeroth/error.h"
#include "zeroth/model_infer.h"

namespace zeroth {

MlaKvCache::MlaKvCache(const ModelConfig& cfg, Backend& be, int64_t num_slots, int64_t max_len)
    : be_(be), max_len_(max_len) {
  ZT_ASSERT(num_slots > 0 && max_len > 0, "MlaKvCache: num_slots %lld and max_len %lld must be > 0",
            (long long)num_slots, (long long)max_len);
  const int64_t row = cfg.kv_lora_rank + cfg.qk_rope_head_dim;
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l)
    layers_.push_back(Tensor::empty(be, {num_slots, max_len, row}, DType::F32));
  length_.assign(size_t(num_slots), 0);
}

int64_t MlaKvCache::bytes_per_token(const ModelConfig& cfg, DType dtype) {
  return cfg.num_hidden_layers * (cfg.kv_lora_rank + cfg.qk_rope_head_dim) *
         int64_t(dtype_size(dtype));
}

int64_t MlaKvCache::length(int64_t slot) const {
  ZT_ASSERT(slot >= 0 && slot < num_slots(), "slot %lld out of [0, %lld)", (long long)slot,
            (long long)num_slots());
  return length_[size_t(slot)];
}

void MlaKvCache::clear(int64_t slot) { set_length(slot, 0); }

void MlaKvCache::set_length(int64_t slot, int64_t length) {
  ZT_ASSERT(slot >= 0 && slot < num_slots(), "slot %lld out of [0, %lld)", (long long)slot,
            (long long)num_slots());
  ZT_ASSERT(length >= 0 && length <= max_len_, "slot length %lld out of [0, %lld]",
            (long long)length, (long long)max_len_);
  length_[size_t(slot)] = length;
}

void MlaKvCache::copy_slot(int64_t src, int64_t dst) {
  const int64_t n = length(src);
  ZT_ASSERT(dst >= 0 && dst < num_slots(), "slot %lld out of [0, %lld)", (long long)dst,
            (long long)num_slots());
  if (src == dst) return;
  for (Tensor& t : layers_) {
    if (n == 0) break;
    Tensor from = t.select(0, src).narrow(0, 0, n);  // (n, Rkv + Dr), contiguous
    Tensor to = t.select(0, dst).narrow(0, 0, n);
    be_.copy(from, to);
  }
  length_[size_t(dst)] = n;
}

}  // namespace zeroth
