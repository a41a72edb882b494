// FP8 checkpoints, the format DeepSeek-V3/R1 are published in: F8_E4M3 weights with
// per-block `*_scale_inv` scales and config.json's quantization_config. Checks the e4m3
// decoding against the format's definition, that load_hf_weights dequantizes every
// element as fp8(q) * scale_inv[r / br, c / bc] (ragged edge blocks, sharded files, an
// expert shard, BF16 parameters), and the CheckpointErrors for what can be wrong.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "temp_dir.h"
#include "zeroth/backend.h"
#include "zeroth/error.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"
#include "zeroth/safetensors.h"

using namespace zeroth;
namespace fs = std::filesystem;

namespace {

const std::string kGoldenDir = std::string(ZEROTH_TEST_DATA_DIR) + "/golden/tiny_q_lora_untied";

Backend& cpu() {
  static std::unique_ptr<Backend> be = make_cpu_backend();
  return *be;
}

struct TempDir : zeroth_test::TempDir {
  TempDir() : zeroth_test::TempDir("zeroth_test_fp8") {}
};

std::vector<float> floats_of(const Tensor& t) {
  REQUIRE(t.dtype() == DType::F32);
  std::vector<float> v(size_t(t.numel()));
  t.copy_to_host(v.data(), v.size() * sizeof(float));
  return v;
}

// The e4m3 value of a code from the definition (OCP FP8, "fn": no infinities).
double e4m3_reference(uint8_t b) {
  const int s = b >> 7, e = (b >> 3) & 15, m = b & 7;
  const double mag = e == 0 ? m / 8.0 * std::pow(2.0, -6) : (1.0 + m / 8.0) * std::pow(2.0, e - 7);
  return s ? -mag : mag;
}

// Which tensors DeepSeek-V3's checkpoint stores in FP8: the 2-D linear weights but the
// embedding, the lm_head and the routers.
bool quantized_in_v3(const std::string& name, const Shape& shape) {
  return shape.size() == 2 && name != "model.embed_tokens.weight" && name != "lm_head.weight" &&
         name.find(".mlp.gate.weight") == std::string::npos;
}

struct Fp8Tensor {
  Shape shape;
  std::vector<uint8_t> q;
  std::vector<float> scale;  // (ceil(R / br), ceil(C / bc))
};

// Writes the golden tiny model as an FP8 checkpoint with blocks of br x bc into `dir`
// (sharded at `shard_bytes`); random codes (no NaN) and scales. `quant` is the
// quantization_config written into config.json (null: none). Returns the FP8 tensors.
std::map<std::string, Fp8Tensor> write_fp8_checkpoint(const std::string& dir, int64_t br, int64_t bc,
                                                      const nlohmann::json& quant, uint64_t shard_bytes,
                                                      const std::string& drop = "") {
  const SafetensorsFile golden = SafetensorsFile::open(kGoldenDir + "/model.safetensors");
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> code(0, 253);  // 0x7F and 0xFF (NaN) mapped away below
  std::uniform_real_distribution<float> sc(1e-4f, 3e-3f);
  std::map<std::string, Fp8Tensor> fp8;
  SafetensorsWriter w;
  for (const std::string& n : golden.names()) {
    const SafetensorsInfo& info = golden.info(n);
    if (!quantized_in_v3(n, info.shape)) {
      w.add(n, info.dtype, info.shape, golden.data(n));
      continue;
    }
    Fp8Tensor& t = fp8[n];
    t.shape = info.shape;
    t.q.resize(size_t(shape_numel(info.shape)));
    for (uint8_t& b : t.q) {
      const int v = code(rng);
      b = uint8_t(v >= 0x7F ? v + 1 : v);
    }
    const int64_t nbr = (info.shape[0] + br - 1) / br, nbc = (info.shape[1] + bc - 1) / bc;
    t.scale.resize(size_t(nbr * nbc));
    for (float& s : t.scale) s = sc(rng);
    w.add(n, DType::F8E4M3, info.shape, t.q.data());
    if (n + "_scale_inv" != drop) w.add(n + "_scale_inv", DType::F32, {nbr, nbc}, t.scale.data());
  }
  w.write_sharded(dir, shard_bytes);
  std::ifstream in(kGoldenDir + "/config.json");
  nlohmann::json cfg = nlohmann::json::parse(in);
  if (!quant.is_null()) cfg["quantization_config"] = quant;
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  return fp8;
}

nlohmann::json v3_quant(int64_t br, int64_t bc) {
  return {{"activation_scheme", "dynamic"}, {"fmt", "e4m3"}, {"quant_method", "fp8"},
          {"weight_block_size", {br, bc}}};
}

}  // namespace

TEST_CASE("f8e4m3_to_float: every code as the format defines it", "[model_params][fp8]") {
  int nan = 0;
  std::set<float> finite;
  for (int v = 0; v < 256; ++v) {
    const uint8_t b = uint8_t(v);
    const float f = f8e4m3_to_float(b);
    INFO("code 0x" << std::hex << v);
    if ((b & 0x7F) == 0x7F) {
      CHECK(std::isnan(f));
      ++nan;
      continue;
    }
    CHECK(double(f) == e4m3_reference(b));
    finite.insert(f);
  }
  CHECK(nan == 2);
  CHECK(finite.size() == 253);  // +0 and -0 compare equal
  CHECK(f8e4m3_to_float(0x38) == 1.0f);
  CHECK(f8e4m3_to_float(0x3C) == 1.5f);
  CHECK(f8e4m3_to_float(0x7E) == 448.0f);   // the largest
  CHECK(f8e4m3_to_float(0xFE) == -448.0f);
  CHECK(f8e4m3_to_float(0x08) == std::ldexp(1.0f, -6));  // the smallest normal
  CHECK(f8e4m3_to_float(0x01) == std::ldexp(1.0f, -9));  // the smallest subnormal
  CHECK(std::signbit(f8e4m3_to_float(0x80)));
  DType t;
  REQUIRE(dtype_from_name("F8_E4M3", &t));
  CHECK(t == DType::F8E4M3);
  CHECK(dtype_size(t) == 1);
  CHECK_FALSE(dtype_is_float(t));  // meaningless without its scales
}

TEST_CASE("an FP8 checkpoint (DeepSeek-V3's format) loads dequantized with its block scales",
          "[model_params][fp8]") {
  const ModelConfig c = read_model_config(kGoldenDir);
  const SafetensorsFile golden = SafetensorsFile::open(kGoldenDir + "/model.safetensors");
  TempDir d;
  // Blocks of 5 x 7: every weight has ragged edge blocks; shards of 8 KB put weights and
  // their scales in different files.
  const auto fp8 = write_fp8_checkpoint(d.path, 5, 7, v3_quant(5, 7), 8000);
  REQUIRE(fs::exists(d.path + "/model.safetensors.index.json"));
  REQUIRE(fp8.size() > 20);

  auto expected = [&](const std::string& name) {
    const Fp8Tensor& t = fp8.at(name);
    const int64_t R = t.shape[0], C = t.shape[1], nbc = (C + 6) / 7;
    std::vector<float> v(size_t(R * C));
    for (int64_t r = 0; r < R; ++r)
      for (int64_t col = 0; col < C; ++col)
        v[size_t(r * C + col)] = float(e4m3_reference(t.q[size_t(r * C + col)])) * t.scale[size_t((r / 5) * nbc + col / 7)];
    return v;
  };
  ParamSet ps = make_param_set(c, cpu());
  load_hf_weights(d.path, c, ps);
  int checked = 0;
  for (const ParamEntry& e : ps.entries) {
    INFO(e.name);
    const std::vector<float> got = floats_of(e.view);
    if (fp8.count(e.name)) {
      CHECK(got == expected(e.name));
      ++checked;
    } else {
      CHECK(std::memcmp(got.data(), golden.data(e.name), got.size() * sizeof(float)) == 0);
    }
  }
  CHECK(checked == int(fp8.size()));

  // An expert shard reads its experts' weights and scales only.
  ParamSet part = make_param_set(c, cpu(), DType::F32, ExpertShard::of(c, 1, 3));
  load_hf_weights(d.path, c, part);
  int experts = 0;
  for (const ParamEntry& e : part.entries)
    if (e.expert) {
      INFO(e.name);
      CHECK(floats_of(e.view) == expected(e.name));
      ++experts;
    }
  CHECK(experts > 0);

  // BF16 parameters get the dequantized value rounded once.
  ParamSet bf = make_param_set(c, cpu(), DType::BF16);
  load_hf_weights(d.path, c, bf);
  const std::string name = "model.layers.1.self_attn.q_b_proj.weight";
  for (const ParamEntry& e : bf.entries)
    if (e.name == name) {
      std::vector<uint16_t> h(size_t(e.view.numel()));
      e.view.copy_to_host(h.data(), h.size() * 2);
      const std::vector<float> want = expected(name);
      for (size_t i = 0; i < h.size(); ++i) REQUIRE(h[i] == float_to_bf16(want[i]));
    }

  // HF's default block is 128 x 128 when config.json names none.
  TempDir d128;
  const auto fp8_128 = write_fp8_checkpoint(d128.path, 128, 128, nlohmann::json(), 1u << 30);
  load_hf_weights(d128.path, c, ps);
  for (const ParamEntry& e : ps.entries)
    if (fp8_128.count(e.name)) {
      const Fp8Tensor& t = fp8_128.at(e.name);
      const std::vector<float> got = floats_of(e.view);
      for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == float(e4m3_reference(t.q[i])) * t.scale[0]);
    }
}

TEST_CASE("FP8 checkpoints: missing or mis-shaped scales and other quantizations are CheckpointErrors",
          "[model_params][fp8]") {
  const ModelConfig c = read_model_config(kGoldenDir);
  ParamSet ps = make_param_set(c, cpu());
  const std::string w = "model.layers.2.mlp.experts.3.down_proj.weight";
  {
    TempDir d;
    write_fp8_checkpoint(d.path, 5, 7, v3_quant(5, 7), 1u << 30, w + "_scale_inv");
    CHECK_THROWS_WITH(load_hf_weights(d.path, c, ps),
                      Catch::Contains("tensor '" + w + "' is F8_E4M3 but its block scales '" + w +
                                      "_scale_inv' are missing"));
  }
  {
    // Scales written for 5 x 7 blocks, config.json says 4 x 7: down_proj (32, 8) needs (8, 2).
    TempDir d;
    write_fp8_checkpoint(d.path, 5, 7, v3_quant(4, 7), 1u << 30);
    CHECK_THROWS_WITH(load_hf_weights(d.path, c, ps),
                      Catch::Contains("block scales of shape [8, ") && Catch::Contains("blocks of 4 x 7"));
  }
  {
    TempDir d;
    nlohmann::json q = v3_quant(5, 7);
    q["quant_method"] = "bitsandbytes";
    write_fp8_checkpoint(d.path, 5, 7, q, 1u << 30);
    CHECK_THROWS_WITH(load_hf_weights(d.path, c, ps),
                      Catch::Contains("config.json: key 'quantization_config.quant_method': expected \"fp8\"") &&
                          Catch::Contains("found \"bitsandbytes\""));
  }
  {
    TempDir d;
    nlohmann::json q = v3_quant(5, 7);
    q["weight_block_size"] = {0, 7};
    write_fp8_checkpoint(d.path, 5, 7, q, 1u << 30);
    CHECK_THROWS_WITH(load_hf_weights(d.path, c, ps),
                      Catch::Contains("key 'quantization_config.weight_block_size': expected [rows, cols] of two "
                                      "positive integers"));
  }
  {
    // An FP8 tensor that is not a 2-D weight (a norm).
    const SafetensorsFile golden = SafetensorsFile::open(kGoldenDir + "/model.safetensors");
    TempDir d;
    SafetensorsWriter wr;
    std::vector<uint8_t> q(32, 0x38);
    for (const std::string& n : golden.names())
      if (n == "model.norm.weight")
        wr.add_copy(n, DType::F8E4M3, {32}, q.data());
      else
        wr.add(n, golden.info(n).dtype, golden.info(n).shape, golden.data(n));
    wr.write(d.path + "/model.safetensors");
    CHECK_THROWS_WITH(load_hf_weights(d.path, c, ps),
                      Catch::Contains("tensor 'model.norm.weight': an F8_E4M3 tensor must be a 2-D weight"));
  }
}
