// init_params: HF initialisation of a ParamSet, deterministic from a seed.
//
// Each HF-named tensor gets its own SplitMix64 stream, keyed by the seed and the FNV-1a
// hash of its name: element pair j uses outputs 2j and 2j+1 of the stream (counter-based,
// so any thread computes any element) and Box-Muller turns them into two N(0, 1)
// values. Values are made on the host in double, rounded once to the ParamSet's dtype
// and copied to the device, so they do not depend on the backend or the thread count,
// and an expert's weights do not depend on how many experts there are.
// Must not: allocate the layout (model_params.cpp) or read files.
#include <cmath>
#include <cstring>
#include <vector>

#include "io/io_util.h"
#include "zeroth/error.h"
#include "zeroth/model_params.h"

namespace zeroth {

namespace {

constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ull;

uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return h;
}

// out[i] = std * N(0, 1) of stream `key`, element i.
void fill_normal(uint64_t key, double std_dev, std::vector<float>& out) {
  const int64_t n = int64_t(out.size());
  const int64_t pairs = (n + 1) / 2;
  float* dst = out.data();
#pragma omp parallel for schedule(static) if (pairs > 32768)
  for (int64_t j = 0; j < pairs; ++j) {
    const uint64_t a = splitmix64_mix(key + uint64_t(2 * j + 1) * kGamma);
    const uint64_t b = splitmix64_mix(key + uint64_t(2 * j + 2) * kGamma);
    const double u1 = (double(a >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = double(b >> 11) * 0x1.0p-53;          // [0, 1)
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double t = 2.0 * M_PI * u2;
    dst[2 * j] = float(std_dev * r * std::cos(t));
    if (2 * j + 1 < n) dst[2 * j + 1] = float(std_dev * r * std::sin(t));
  }
}

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

void upload(const std::vector<float>& host, Tensor& dst) {
  ZT_ASSERT(int64_t(host.size()) == dst.numel() && dst.is_contiguous(), "init of %s",
            dst.str().c_str());
  if (dst.dtype() == DType::F32) {
    dst.copy_from_host(host.data(), host.size() * sizeof(float));
    return;
  }
  std::vector<uint8_t> conv(dst.nbytes());
  io::convert_floats(host.data(), DType::F32, conv.data(), dst.dtype(), host.size());
  dst.copy_from_host(conv.data(), conv.size());
}

}  // namespace

void init_params(const ModelConfig& config, ParamSet& params, uint64_t seed) {
  const uint64_t seed_key = splitmix64_mix(seed + kGamma);
  std::vector<float> host;
  for (ParamEntry& e : params.entries) {
    host.assign(size_t(e.view.numel()), 0.0f);
    if (ends_with(e.name, "norm.weight")) {  // *_layernorm and model.norm
      std::fill(host.begin(), host.end(), 1.0f);
    } else if (ends_with(e.name, "e_score_correction_bias")) {
      // zeros: the aux-loss-free balancing starts neutral
    } else {
      fill_normal(seed_key ^ fnv1a64(e.name), config.initializer_range, host);
      // HF: nn.Embedding(padding_idx=pad_token_id) keeps that row zero.
      if (e.name == "model.embed_tokens.weight" && config.pad_token_id) {
        const int64_t C = e.view.size(1);
        std::fill(host.begin() + *config.pad_token_id * C, host.begin() + (*config.pad_token_id + 1) * C,
                  0.0f);
      }
    }
    upload(host, e.view);
  }
}

}  // namespace zeroth
