// Tests of ParamSet layout, init_params, HF checkpoint load/save and `zeroth ckpt`:
// golden weights load bit-exactly (byte-compared with the file), save -> load round
// trips (single file and sharded, F32 and BF16), refusals (other config, missing,
// unexpected and mis-shaped tensors), MTP layers ignored, init determinism and
// statistics, and the CLI's exit codes and files.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <omp.h>
#include <map>
#include <set>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include "zeroth/backend.h"
#include "zeroth/error.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"
#include "zeroth/safetensors.h"
#include "temp_dir.h"
#include "zeroth/tokenizer.h"

using namespace zeroth;
namespace fs = std::filesystem;

namespace {

const std::string kGolden = std::string(ZEROTH_TEST_DATA_DIR) + "/golden/";
const std::string kModels = std::string(ZEROTH_SOURCE_DIR) + "/configs/models/";

Backend& cpu() {
  static std::unique_ptr<Backend> be = make_cpu_backend();
  return *be;
}

struct TempDir : zeroth_test::TempDir {
  TempDir() : zeroth_test::TempDir("zeroth_test_model_params") {}
};

std::vector<uint8_t> bytes_of(const Tensor& t) {
  std::vector<uint8_t> b(t.nbytes());
  t.copy_to_host(b.data(), b.size());
  return b;
}

const ParamEntry& entry(const ParamSet& ps, const std::string& name) {
  for (const ParamEntry& e : ps.entries)
    if (e.name == name) return e;
  FAIL("no entry " << name);
  return ps.entries.front();
}

// The flat buffer's bytes: the whole ParamSet, padding included.
std::vector<uint8_t> all_bytes(const ParamSet& ps) { return bytes_of(ps.flat); }

int run_cli(const std::string& args, std::string* output = nullptr) {
  const std::string log = "/tmp/zeroth_test_model_params_cli_" + std::to_string(getpid()) + ".log";
  const std::string cmd = std::string(ZEROTH_BINARY) + " " + args + " > " + log + " 2>&1";
  const int status = std::system(cmd.c_str());
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(log.c_str());
  if (output) *output = text;
  UNSCOPED_INFO("zeroth " << args << "\n" << text);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

ModelConfig tiny() { return read_model_config(kModels + "tiny.json"); }

}  // namespace

TEST_CASE("make_param_set lays out every parameter once, aligned, with HF names", "[model_params]") {
  for (const char* name : {"tiny_q_full_tied", "tiny_q_lora_untied", "tiny_yarn_aux"}) {
    INFO(name);
    const ModelConfig c = read_model_config(kGolden + name);
    ParamSet ps = make_param_set(c, cpu());
    int64_t numel = 0;
    std::set<std::string> names;
    std::vector<std::pair<const char*, const char*>> ranges;
    const char* base = static_cast<const char*>(ps.flat.data_ptr());
    for (const ParamEntry& e : ps.entries) {
      CHECK(names.insert(e.name).second);
      CHECK(e.view.is_contiguous());
      const char* p = static_cast<const char*>(e.view.data_ptr());
      CHECK(p >= base);
      CHECK(p + e.view.nbytes() <= base + ps.flat.nbytes());
      numel += e.view.numel();
      ranges.push_back({p, p + e.view.nbytes()});
      const bool norm = e.name.find("norm.weight") != std::string::npos;
      const bool bias = e.name.find("e_score_correction_bias") != std::string::npos;
      CHECK(e.weight_decay == !(norm || bias));
      CHECK(e.trainable == !bias);
    }
    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 1; i < ranges.size(); ++i) CHECK(ranges[i - 1].second <= ranges[i].first);
    CHECK(numel == c.num_parameters());
    // Matches the golden file's names exactly (HF omits the tied lm_head).
    const SafetensorsFile f = SafetensorsFile::open(kGolden + name + "/model.safetensors");
    const std::vector<std::string> file_names = f.names();
    CHECK(std::set<std::string>(file_names.begin(), file_names.end()) == names);
    // Stacked experts: entry e is row e of the stacked tensor.
    const MoeParams& m = ps.params.layers[1].moe;
    REQUIRE(ps.params.layers[1].is_moe);
    REQUIRE(!ps.params.layers[0].is_moe);
    CHECK(m.experts_gate.shape() == Shape{c.n_routed_experts, c.moe_intermediate_size, c.hidden_size});
    CHECK(m.experts_down.shape() == Shape{c.n_routed_experts, c.hidden_size, c.moe_intermediate_size});
    CHECK(entry(ps, "model.layers.1.mlp.experts.3.down_proj.weight").view.data_ptr() ==
          m.experts_down.select(0, 3).data_ptr());
    if (c.tie_word_embeddings) CHECK(ps.params.lm_head.data_ptr() == ps.params.embed.data_ptr());
    else CHECK(ps.params.lm_head.data_ptr() != ps.params.embed.data_ptr());
    CHECK(ps.params.layers[0].attn.q_proj.defined() == !c.q_lora_rank);
    CHECK(ps.params.layers[0].attn.q_a_norm.defined() == bool(c.q_lora_rank));
    // Offsets are multiples of kParamAlignElems and the ParamSet starts zeroed.
    for (const ParamEntry& e : ps.entries)
      if (e.name.find(".experts.") == std::string::npos)
        CHECK((static_cast<const char*>(e.view.data_ptr()) - base) % (kParamAlignElems * 4) == 0);
    const std::vector<float> flat = ps.flat.to_float_vector();
    CHECK(std::all_of(flat.begin(), flat.end(), [](float v) { return v == 0.0f; }));
  }
}

TEST_CASE("golden weights load exactly into F32 and round to BF16", "[model_params]") {
  for (const char* name : {"tiny_q_full_tied", "tiny_q_lora_untied", "tiny_yarn_aux"}) {
    INFO(name);
    const std::string dir = kGolden + name;
    const ModelConfig c = read_model_config(dir);
    ParamSet ps = make_param_set(c, cpu());
    load_hf_weights(dir, c, ps);
    const SafetensorsFile f = SafetensorsFile::open(dir + "/model.safetensors");
    for (const ParamEntry& e : ps.entries) {
      INFO(e.name);
      REQUIRE(f.info(e.name).nbytes == e.view.nbytes());
      CHECK(std::memcmp(bytes_of(e.view).data(), f.data(e.name), e.view.nbytes()) == 0);
    }
    ParamSet pb = make_param_set(c, cpu(), DType::BF16);
    load_hf_weights(dir, c, pb);
    const ParamEntry& eb = entry(pb, "model.layers.2.mlp.experts.5.up_proj.weight");
    const ParamEntry& ef = entry(ps, "model.layers.2.mlp.experts.5.up_proj.weight");
    const std::vector<float> fv = ef.view.to_float_vector();
    std::vector<uint16_t> bv(size_t(eb.view.numel()));
    eb.view.copy_to_host(bv.data(), bv.size() * 2);
    for (size_t i = 0; i < bv.size(); ++i) CHECK(bv[i] == float_to_bf16(fv[i]));
  }
}

TEST_CASE("save then load is bit-exact, single-file and sharded", "[model_params]") {
  const ModelConfig c = read_model_config(kGolden + "tiny_yarn_aux");
  ParamSet a = make_param_set(c, cpu());
  init_params(c, a, 11);
  {
    TempDir d;
    save_hf_weights(d.path, c, a);
    CHECK(fs::exists(d / "model.safetensors"));
    CHECK(!fs::exists(d / "model.safetensors.index.json"));
    CHECK(read_model_config(d.path).torch_dtype == "float32");
    ParamSet b = make_param_set(c, cpu());
    load_hf_weights(d.path, c, b);
    CHECK(all_bytes(a) == all_bytes(b));
  }
  {
    TempDir d;
    save_hf_weights(d.path, c, a, DType::F32, 20000);
    CHECK(fs::exists(d / "model.safetensors.index.json"));
    const ShardedSafetensors st = ShardedSafetensors::open(d.path);
    CHECK(st.shard_files().size() >= 3);
    ParamSet b = make_param_set(c, cpu());
    load_hf_weights(d.path, c, b);
    CHECK(all_bytes(a) == all_bytes(b));
  }
  {
    TempDir d;
    save_hf_weights(d.path, c, a, DType::BF16);
    CHECK(read_model_config(d.path).torch_dtype == "bfloat16");
    CHECK(ShardedSafetensors::open(d.path).info("model.norm.weight").dtype == DType::BF16);
    ParamSet b = make_param_set(c, cpu());
    load_hf_weights(d.path, c, b);
    const std::vector<float> av = a.flat.to_float_vector(), bv = b.flat.to_float_vector();
    for (size_t i = 0; i < av.size(); ++i) REQUIRE(bv[i] == bf16_to_float(float_to_bf16(av[i])));
  }
}

TEST_CASE("an expert shard holds its experts: layout, init and loading a whole checkpoint", "[model_params]") {
  const ModelConfig c = read_model_config(kGolden + "tiny_q_lora_untied");  // E 12
  ParamSet whole = make_param_set(c, cpu());
  load_hf_weights(kGolden + "tiny_q_lora_untied", c, whole);
  std::map<std::string, const ParamEntry*> by_name;
  for (const ParamEntry& e : whole.entries) by_name[e.name] = &e;

  const ExpertShard shard = ExpertShard::of(c, 1, 3);  // experts 4..7 of 12
  CHECK(shard.first == 4);
  CHECK(shard.count == 4);
  CHECK_FALSE(shard.whole(c));
  CHECK(ExpertShard{}.whole(c));
  CHECK_THROWS_WITH(ExpertShard::of(c, 0, 5), Catch::Contains("n_routed_experts (12)"));

  ParamSet part = make_param_set(c, cpu(), DType::F32, shard);
  CHECK(part.experts.first == 4);
  int experts = 0;
  for (const ParamEntry& e : part.entries) {
    INFO(e.name);
    REQUIRE(by_name.count(e.name) == 1);  // every name is one of the whole model's
    CHECK(e.view.shape() == by_name[e.name]->view.shape());
    CHECK(e.expert == (e.name.find(".mlp.experts.") != std::string::npos));
    CHECK(e.expert == by_name[e.name]->expert);
    if (e.expert) {
      ++experts;
      const size_t at = e.name.find(".mlp.experts.") + 13;
      const int idx = std::stoi(e.name.substr(at));
      CHECK((idx >= 4 && idx < 8));
    }
  }
  const int64_t moe_layers = c.num_hidden_layers - c.first_k_dense_replace;
  CHECK(experts == int(moe_layers * 4 * 3));
  CHECK(part.params.layers.back().moe.experts_up.size(0) == 4);
  CHECK(part.params.layers.back().moe.router.size(0) == 12);  // the router stays whole

  // Loading the whole checkpoint reads this shard's experts and skips the others'.
  load_hf_weights(kGolden + "tiny_q_lora_untied", c, part);
  for (const ParamEntry& e : part.entries) {
    INFO(e.name);
    CHECK(bytes_of(e.view) == bytes_of(by_name[e.name]->view));
  }
  // init is per name, so a shard's experts equal the whole model's.
  ParamSet a = make_param_set(c, cpu()), b = make_param_set(c, cpu(), DType::F32, shard);
  init_params(c, a, 3);
  init_params(c, b, 3);
  std::map<std::string, const ParamEntry*> init_by_name;
  for (const ParamEntry& e : a.entries) init_by_name[e.name] = &e;
  for (const ParamEntry& e : b.entries) CHECK(bytes_of(e.view) == bytes_of(init_by_name[e.name]->view));
}

TEST_CASE("a diverged model (non-finite weights) is not saved", "[model_params]") {
  const ModelConfig c = tiny();
  for (DType dt : {DType::F32, DType::BF16}) {
    ParamSet ps = make_param_set(c, cpu());
    init_params(c, ps, 1);
    Tensor& w = ps.params.layers[1].attn.o_proj;
    std::vector<float> h(size_t(w.numel()));
    w.copy_to_host(h.data(), h.size() * sizeof(float));
    h[3] = NAN;
    h[7] = INFINITY;
    w.copy_from_host(h.data(), h.size() * sizeof(float));
    TempDir d;
    CHECK_THROWS_WITH(save_hf_weights(d.path, c, ps, dt),
                      Catch::Contains("tensor 'model.layers.1.self_attn.o_proj.weight' has 2 non-finite value(s)") &&
                          Catch::Contains("diverged; not saving it"));
    CHECK(fs::is_empty(d.path));  // nothing written: the previous checkpoint stays the newest
  }
}

TEST_CASE("a checkpoint with non-finite weights is refused when it loads (F32, BF16, F16)", "[model_params]") {
  const ModelConfig c = read_model_config(kGolden + "tiny_q_full_tied");
  const SafetensorsFile f = SafetensorsFile::open(kGolden + "tiny_q_full_tied/model.safetensors");
  const std::string bad = "model.layers.1.self_attn.kv_a_proj_with_mqa.weight";
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    INFO(dtype_name(dt));
    TempDir d;
    SafetensorsWriter w;
    for (const std::string& n : f.names()) {
      const SafetensorsInfo& info = f.info(n);
      const int64_t numel = shape_numel(info.shape);
      std::vector<float> v(static_cast<size_t>(numel));
      std::memcpy(v.data(), f.data(n), v.size() * sizeof(float));
      if (n == bad) {
        v[5] = NAN;
        v[9] = -INFINITY;
      }
      std::vector<uint8_t> conv(size_t(numel) * dtype_size(dt));
      for (int64_t i = 0; i < numel; ++i) {
        if (dt == DType::F32) {
          std::memcpy(&conv[size_t(4 * i)], &v[size_t(i)], 4);
          continue;
        }
        const uint16_t h = dt == DType::BF16 ? float_to_bf16(v[size_t(i)]) : float_to_f16(v[size_t(i)]);
        std::memcpy(&conv[size_t(2 * i)], &h, 2);
      }
      w.add_copy(n, dt, info.shape, conv.data());
    }
    w.write(d / "model.safetensors");
    ParamSet ps = make_param_set(c, cpu());
    CHECK_THROWS_WITH(load_hf_weights(d.path, c, ps),
                      Catch::Contains("tensor '" + bad + "' has 2 non-finite value(s)") &&
                          Catch::Contains("the model has diverged"));
  }
}

TEST_CASE("a checkpoint of another model is refused with the differing keys", "[model_params]") {
  const ModelConfig c = read_model_config(kGolden + "tiny_q_lora_untied");
  ModelConfig other = c;
  other.moe_intermediate_size = 16;
  other.n_routed_experts = 8;
  ParamSet ps = make_param_set(other, cpu());
  try {
    load_hf_weights(kGolden + "tiny_q_lora_untied", other, ps);
    FAIL("loaded a checkpoint of another model");
  } catch (const CheckpointError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("tiny_q_lora_untied/config.json") != std::string::npos);
    CHECK(msg.find("different model") != std::string::npos);
    CHECK(msg.find("moe_intermediate_size: expected 16, found 8") != std::string::npos);
    CHECK(msg.find("n_routed_experts: expected 8, found 12") != std::string::npos);
  }
}

TEST_CASE("missing, unexpected and mis-shaped tensors are CheckpointErrors", "[model_params]") {
  const ModelConfig c = read_model_config(kGolden + "tiny_q_full_tied");
  const SafetensorsFile f = SafetensorsFile::open(kGolden + "tiny_q_full_tied/model.safetensors");
  // Writes the golden tensors into a directory without config.json, edited by `edit`.
  auto write_dir = [&](const TempDir& d, const std::string& drop, const std::string& extra,
                       const Shape& extra_shape) {
    SafetensorsWriter w;
    for (const std::string& n : f.names())
      if (n != drop) w.add(n, f.info(n).dtype, f.info(n).shape, f.data(n));
    std::vector<float> zeros(size_t(shape_numel(extra_shape)), 0.0f);
    if (!extra.empty()) w.add_copy(extra, DType::F32, extra_shape, zeros.data());
    w.write(d / "model.safetensors");
  };
  ParamSet ps = make_param_set(c, cpu());
  {
    TempDir d;
    write_dir(d, "model.layers.2.mlp.experts.7.up_proj.weight", "", {});
    CHECK_THROWS_WITH(load_hf_weights(d.path, c, ps),
                      Catch::Contains("1 missing tensor: 'model.layers.2.mlp.experts.7.up_proj.weight' "
                                      "(expected [8, 32])"));
  }
  {
    TempDir d;
    write_dir(d, "", "model.layers.1.self_attn.q_b_proj.weight", {48, 24});
    CHECK_THROWS_WITH(load_hf_weights(d.path, c, ps),
                      Catch::Contains("1 unexpected tensor for this model config: "
                                      "'model.layers.1.self_attn.q_b_proj.weight' [48, 24]"));
  }
  {
    TempDir d;
    write_dir(d, "model.norm.weight", "model.norm.weight", {31});
    CHECK_THROWS_WITH(load_hf_weights(d.path, c, ps),
                      Catch::Contains("tensor 'model.norm.weight': expected shape [32], found [31]"));
  }
  {
    // HF's multi-token-prediction layer (index L) is ignored when the config has one.
    TempDir d;
    write_dir(d, "", "model.layers.3.mlp.gate.weight", {8, 32});
    CHECK_THROWS_AS(load_hf_weights(d.path, c, ps), CheckpointError);
    ModelConfig mtp = c;
    mtp.num_nextn_predict_layers = 1;
    load_hf_weights(d.path, mtp, ps);
    CHECK(std::memcmp(bytes_of(ps.params.final_norm).data(), f.data("model.norm.weight"), 32 * 4) == 0);
  }
  {
    // A tied model's lm_head.weight is tolerated (HF re-ties it to the embedding).
    TempDir d;
    write_dir(d, "", "lm_head.weight", {64, 32});
    load_hf_weights(d.path, c, ps);
    CHECK(std::memcmp(bytes_of(ps.params.lm_head).data(), f.data("model.embed_tokens.weight"),
                      64 * 32 * 4) == 0);
  }
  CHECK_THROWS_AS(load_hf_weights("/nonexistent_zeroth_dir", c, ps), CheckpointError);
}

TEST_CASE("init_params is deterministic, per-name and thread-independent", "[model_params]") {
  const ModelConfig c = tiny();
  ParamSet a = make_param_set(c, cpu()), b = make_param_set(c, cpu());
  init_params(c, a, 1234);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  init_params(c, b, 1234);
  omp_set_num_threads(threads);
  CHECK(all_bytes(a) == all_bytes(b));
  init_params(c, b, 1235);
  const std::vector<float> av = a.flat.to_float_vector(), bv = b.flat.to_float_vector();
  size_t differ = 0;
  for (size_t i = 0; i < av.size(); ++i) differ += av[i] != bv[i];
  CHECK(differ > av.size() / 2);
  // An expert's weights depend on its name only, not on the number of experts.
  ModelConfig more = c;
  more.n_routed_experts = 16;
  ParamSet m = make_param_set(more, cpu());
  init_params(more, m, 1234);
  const char* probe = "model.layers.2.mlp.experts.3.gate_proj.weight";
  CHECK(bytes_of(entry(m, probe).view) == bytes_of(entry(a, probe).view));
  // BF16 init is the F32 init rounded once.
  ParamSet h = make_param_set(c, cpu(), DType::BF16);
  init_params(c, h, 1234);
  std::vector<uint16_t> hv(size_t(h.flat.numel()));
  h.flat.copy_to_host(hv.data(), hv.size() * 2);
  for (size_t i = 0; i < av.size(); ++i) REQUIRE(hv[i] == float_to_bf16(av[i]));
}

TEST_CASE("init_params: normal(0, initializer_range), norms 1, router bias 0, pad row 0", "[model_params]") {
  const ModelConfig c = read_model_config(kModels + "demo-small.json");
  REQUIRE(c.pad_token_id);
  ParamSet ps = make_param_set(c, cpu());
  init_params(c, ps, 7);
  for (const ParamEntry& e : ps.entries) {
    const std::vector<float> v = e.view.to_float_vector();
    INFO(e.name);
    if (e.name.find("norm.weight") != std::string::npos) {
      CHECK(std::all_of(v.begin(), v.end(), [](float x) { return x == 1.0f; }));
    } else if (e.name.find("e_score_correction_bias") != std::string::npos) {
      CHECK(std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; }));
    } else if (v.size() >= 65536) {
      double s = 0, s2 = 0, s4 = 0;
      size_t beyond3 = 0;
      for (float x : v) {
        s += x;
        s2 += double(x) * x;
        s4 += double(x) * x * x * x;
        beyond3 += std::fabs(x) > 3 * c.initializer_range;
      }
      const double n = double(v.size()), var = s2 / n;
      // Standard errors: mean sd/sqrt(n), std about sd/sqrt(2n); 6 sigma bounds.
      CHECK(std::fabs(s / n) < 6 * c.initializer_range / std::sqrt(n));
      CHECK(std::fabs(std::sqrt(var) / c.initializer_range - 1) < 6 / std::sqrt(2 * n));
      CHECK(s4 / n / (var * var) == Approx(3.0).epsilon(0.05));  // Gaussian kurtosis
      CHECK(double(beyond3) / n == Approx(0.0027).margin(0.001));
    }
  }
  const std::vector<float> pad =
      ps.params.embed.narrow(0, *c.pad_token_id, 1).to_float_vector();
  CHECK(std::all_of(pad.begin(), pad.end(), [](float x) { return x == 0.0f; }));
  const std::vector<float> row0 = ps.params.embed.narrow(0, 0, 1).to_float_vector();
  CHECK(std::any_of(row0.begin(), row0.end(), [](float x) { return x != 0.0f; }));
}

TEST_CASE("zeroth ckpt init writes a loadable model directory, info describes it", "[model_params][cli]") {
  TempDir d;
  const std::string out = d / "model";
  REQUIRE(run_cli("ckpt init --config " + kModels + "tiny.json --seed 5 --out " + out +
                  " --tokenizer bytes") == 0);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"})
    CHECK(fs::exists(out + "/" + f));
  const ModelConfig c = read_model_config(out);
  ParamSet loaded = make_param_set(c, cpu()), fresh = make_param_set(c, cpu());
  load_hf_weights(out, c, loaded);
  init_params(c, fresh, 5);
  CHECK(all_bytes(loaded) == all_bytes(fresh));
  std::unique_ptr<Tokenizer> tok = load_tokenizer(out);
  CHECK(tok->vocab_size() == 259);
  CHECK(tok->special_ids().eos == 257);
  CHECK(tok->encode("hi", true) == std::vector<int32_t>{256, 'h', 'i'});

  std::string text;
  REQUIRE(run_cli("ckpt info " + out, &text) == 0);
  CHECK(text.find(strformat("parameters: %lld total, %lld active per token",
                            (long long)c.num_parameters(), (long long)c.num_active_parameters())) !=
        std::string::npos);
  CHECK(text.find(strformat("%llu bytes", (unsigned long long)c.num_parameters() * 4)) != std::string::npos);
  CHECK(text.find("tokenizer: 259 ids") != std::string::npos);

  // Copying a tokenizer directory, BF16 weights, --force over an existing model.
  CHECK(run_cli("ckpt init --config " + kModels + "tiny.json --seed 5 --out " + out +
                " --tokenizer " + out) == 2);  // exists: refused without --force
  const std::string out2 = d / "model2";
  REQUIRE(run_cli("ckpt init --config " + kModels + "tiny.json --seed 6 --out " + out2 +
                  " --dtype bf16 --tokenizer " + out + "/tokenizer.json") == 0);
  CHECK(ShardedSafetensors::open(out2).info("lm_head.weight").dtype == DType::BF16);
  CHECK(load_tokenizer(out2)->vocab_size() == 259);
  REQUIRE(run_cli("ckpt init --config " + kModels + "tiny.json --seed 6 --out " + out2 + " --force") == 0);
}

TEST_CASE("zeroth ckpt export writes a plain HF model in bf16 or f32 from any layout", "[model_params][cli]") {
  TempDir d;
  const ModelConfig c = tiny();
  // A sharded source with a tokenizer and an optimizer file that must stay behind.
  const std::string src = d / "src";
  REQUIRE(run_cli("ckpt init --config " + kModels + "tiny.json --seed 7 --out " + src + " --tokenizer bytes") == 0);
  ParamSet w = make_param_set(c, cpu());
  load_hf_weights(src, c, w);
  fs::remove(fs::path(src) / "model.safetensors");
  save_hf_weights(src, c, w, DType::F32, 40000);  // several files + an index
  REQUIRE(fs::exists(src + "/model.safetensors.index.json"));
  { std::ofstream(src + "/optimizer.safetensors") << "not a model file"; }
  { std::ofstream(src + "/generation_config.json") << "{\"temperature\": 0.6}\n"; }

  const std::string bf = d / "bf16";
  std::string text;
  REQUIRE(run_cli("ckpt export " + src + " --out " + bf, &text) == 0);
  CHECK(text.find("bf16") != std::string::npos);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"})
    CHECK(fs::exists(bf + "/" + f));
  CHECK(!fs::exists(bf + "/optimizer.safetensors"));
  const ShardedSafetensors st = ShardedSafetensors::open(bf);
  for (const std::string& name : st.names()) CHECK(st.info(name).dtype == DType::BF16);
  CHECK(read_model_config(bf).num_parameters() == c.num_parameters());
  // Each weight is its bf16 rounding: within 2^-8 relative, and not all exact.
  ParamSet back = make_param_set(c, cpu());
  load_hf_weights(bf, c, back);
  const std::vector<float> a = w.flat.to_float_vector(), b = back.flat.to_float_vector();
  size_t far = 0, moved = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    far += std::fabs(a[i] - b[i]) > std::fabs(a[i]) / 256.0f;
    moved += a[i] != b[i];
  }
  CHECK(far == 0);
  CHECK(moved > a.size() / 2);
  CHECK(load_tokenizer(bf)->vocab_size() == 259);

  // f32: the same bytes; into an existing model only with --force; never over DIR itself.
  const std::string f32 = d / "f32";
  REQUIRE(run_cli("ckpt export " + src + " --out " + f32 + " --dtype f32") == 0);
  ParamSet exact = make_param_set(c, cpu());
  load_hf_weights(f32, c, exact);
  CHECK(all_bytes(exact) == all_bytes(w));
  CHECK(run_cli("ckpt export " + src + " --out " + f32, &text) == 2);
  CHECK(text.find("pass --force") != std::string::npos);
  REQUIRE(run_cli("ckpt export " + src + " --out " + f32 + " --force") == 0);
  CHECK(ShardedSafetensors::open(f32).info("lm_head.weight").dtype == DType::BF16);
  CHECK(run_cli("ckpt export " + src + " --out " + src, &text) == 2);
  CHECK(text.find("is the model directory itself") != std::string::npos);
  CHECK(run_cli("ckpt export " + src + " --out " + (d / "x") + " --dtype f16", &text) == 2);
  CHECK(run_cli("ckpt export " + (d / "missing") + " --out " + (d / "x"), &text) == 1);
  CHECK(run_cli("ckpt export --out " + (d / "x")) == 2);
  CHECK(!fs::exists(d / "x"));
}

TEST_CASE("zeroth train-tokenizer does not replace a tokenizer.json without --force", "[model_params][cli]") {
  TempDir d;
  const std::string corpus = std::string(ZEROTH_SOURCE_DIR) + "/tests/train/data/tiny_corpus.txt";
  const std::string args = "train-tokenizer --input " + corpus + " --out " + d.path;
  REQUIRE(run_cli(args + " --vocab-size 300") == 0);
  std::ifstream in(d / "tokenizer.json");
  const std::string first((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string out;
  CHECK(run_cli(args + " --vocab-size 290", &out) == 2);  // another tokenizer: refused
  CHECK(out.find("already holds a tokenizer.json") != std::string::npos);
  std::ifstream again(d / "tokenizer.json");
  CHECK(std::string((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>()) == first);
  CHECK(run_cli(args + " --vocab-size 290 --force") == 0);
  // An empty entry in --special would silently drop the BOS/EOS/PAD tokens.
  CHECK(run_cli(args + " --force --special ,,", &out) == 2);
  CHECK(out.find("found an empty one") != std::string::npos);
  CHECK(run_cli("train-tokenizer --input " + d.path + " --out " + d.path + "/t2", &out) == 1);
  CHECK(out.find("is a directory (expected a text or JSONL corpus file)") != std::string::npos);
}

TEST_CASE("zeroth ckpt rejects bad arguments with exit code 2", "[model_params][cli]") {
  TempDir d;
  const std::string cfg = kModels + "tiny.json";
  std::string text;
  CHECK(run_cli("ckpt", &text) == 2);
  CHECK(run_cli("ckpt frobnicate") == 2);
  CHECK(run_cli("ckpt init --config " + cfg + " --seed 1") == 2);  // no --out
  CHECK(run_cli("ckpt init --config " + cfg + " --out " + (d / "a")) == 2);  // no --seed
  CHECK(run_cli("ckpt init --config " + cfg + " --seed x1 --out " + (d / "a"), &text) == 2);
  CHECK(text.find("--seed: expected a non-negative integer, found 'x1'") != std::string::npos);
  CHECK(run_cli("ckpt init --config " + cfg + " --seed 1 --out " + (d / "a") + " --dtype f16", &text) == 2);
  CHECK(text.find("--dtype: expected f32 or bf16") != std::string::npos);
  CHECK(run_cli("ckpt init --config " + cfg + " --seed 1 --out " + (d / "a") + " --bogus 1") == 2);
  // A model config error (exit 2) names the file and key.
  CHECK(run_cli("ckpt init --config " + kGolden + "tiny_q_full_tied/config.json --seed 1 --out " +
                    (d / "a") + " --tokenizer bytes", &text) == 2);
  CHECK(text.find("key 'vocab_size': expected >= 259") != std::string::npos);
  CHECK(run_cli("ckpt init --config " + kModels + "r1zero-1b.json --seed 1 --out " + (d / "a") +
                    " --tokenizer bytes", &text) == 2);
  CHECK(text.find("key 'bos_token_id': expected 256") != std::string::npos);
  CHECK(!fs::exists(d / "a"));
  CHECK(run_cli("ckpt info") == 2);
  CHECK(run_cli("ckpt info " + (d / "missing")) == 2);  // no config.json: ConfigError
}
