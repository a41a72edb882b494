// `zeroth bench rollout`: rollout throughput of a model (random init from a config, or a
// model directory): for each batch size B, B prompts of --prompt random tokens are
// prefilled together and --new-tokens tokens sampled for each (temperature 1, no stop
// rule) by generate() with B slots, so every step decodes all B sequences. Reports
// prefill tokens/s, decode tokens/s, decode GFLOP/s and its fraction of the sgemm peak
// measured in the same process; with --ref, also runs the PyTorch reference
// (scripts/reference/bench_rollout_ref.py) on the same weights and threads and reports
// the speed ratio. Prints a table and one JSON object.
// Must not: assert on speed, or change what generate() computes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "train/bench_timing_backend.h"
#include "zeroth/backend.h"
#include "zeroth/backend_factory.h"
#include "zeroth/bench.h"
#include "zeroth/error.h"
#include "zeroth/model.h"
#include "zeroth/model_config.h"
#include "zeroth/model_infer.h"
#include "zeroth/model_params.h"
#include "zeroth/rollout.h"

namespace zeroth {
namespace cli {

static const char kBenchRolloutUsage[] =
    "usage: zeroth bench rollout [--model-config FILE | --model DIR] [--batch 1,16,64]\n"
    "                            [--prompt 128] [--new-tokens 512] [--threads N] [--seed S]\n"
    "                            [--repeat R] [--gemm-n 2048] [--ref] [--ref-python P]\n"
    "                            [--ref-script F]\n"
    "                            [--breakdown] [--device cpu|cuda[:i]]\n"
    "                            [--graphs auto|always|off | --no-graphs]\n"
    "                            [--save-model DIR] [--json FILE]\n"
    "\n"
    "  --model-config FILE  HF config.json, weights initialised at random\n"
    "                       (default configs/models/bench-small.json)\n"
    "  --model DIR          a HF model directory instead (weights loaded)\n"
    "  --batch B,...        decode batch sizes: B prompts, one sample each, B cache slots\n"
    "                       (default 1,16,64)\n"
    "  --prompt T           prompt tokens (default 128)\n"
    "  --new-tokens N       tokens generated per sequence (default 512)\n"
    "  --threads N          CPU threads (default: all cores)\n"
    "  --repeat R           time every batch size R times and keep the fastest decode (and,\n"
    "                       with --ref, the reference's fastest): on a shared machine the\n"
    "                       best of a few runs is the figure that repeats (default 1)\n"
    "  --gemm-n N           square sgemm measured as the peak, before and after, best kept\n"
    "                       (default 2048; 0 skips it)\n"
    "  --ref                also time the PyTorch reference (same weights, written to a\n"
    "                       temporary directory; same threads, batch and lengths; with\n"
    "                       OMP_WAIT_POLICY=PASSIVE, its fastest, unless the variable is set)\n"
    "  --ref-python P       Python with torch (default /usr/bin/python3)\n"
    "  --ref-script F       default scripts/reference/bench_rollout_ref.py\n"
    "  --breakdown          one more run at the largest batch with every backend op of\n"
    "                       the decode steps timed (CPU); the rest is host work (sampling,\n"
    "                       log-probs, copies of the logits)\n"
    "  --device D           cpu (default) or cuda / cuda:<i>. On CUDA the sgemm peak is\n"
    "                       replaced by the device-to-device copy bandwidth measured in\n"
    "                       the same process, and batch 1 reports the HBM bandwidth its\n"
    "                       decode achieves: (fp32 weights a token reads + its KV-cache\n"
    "                       reads) per step / step time, against that copy bandwidth\n"
    "  --graphs G           CUDA decode steps: auto (default) replays one recorded graph\n"
    "                       per step where it pays (graph_pays), always records every\n"
    "                       batch size, off issues every op eagerly\n"
    "                       (ModelInference::set_graphs)\n"
    "  --no-graphs          the same as --graphs off\n"
    "  --save-model DIR     also write the model it times (config.json + safetensors) to\n"
    "                       DIR, for scripts/reference/bench_rollout_hf.py\n"
    "  --json FILE          write the JSON there instead of after the table\n"
    "\n"
    "Decode FLOPs per token = 2 x the weights a token multiplies by (the absorbed MLA\n"
    "form has the same count as kv_b_proj) + attention over its context, 2 x H x ctx x\n"
    "(2 Rkv + Dr); prefill FLOPs = forward of train_step_flops. Set\n"
    "OMP_WAIT_POLICY=PASSIVE on a shared machine (docs/perf.md).\n";

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}


struct RolloutRow {
  int64_t batch = 0;
  double prefill_s = 0.0, decode_s = 0.0;
  double prefill_tok_s = 0.0, decode_tok_s = 0.0;
  double decode_gflops = 0.0, prefill_gflops = 0.0;
  double step_ms = 0.0;  // mean decode step
  int64_t decode_steps = 0;
};

// Decode FLOPs of `steps` steps of B sequences that start with `prompt` cached tokens.
double decode_flops(const ModelConfig& c, int64_t B, int64_t prompt, int64_t steps) {
  const double per_token = 2.0 * double(train_step_flops(c, 1, 1).matmul_params);
  const double H = double(c.num_attention_heads), Rkv = double(c.kv_lora_rank);
  const double Dr = double(c.qk_rope_head_dim), L = double(c.num_hidden_layers);
  double ctx_sum = 0.0;  // step s attends to prompt + s + 1 positions
  for (int64_t s = 0; s < steps; ++s) ctx_sum += double(prompt + s + 1);
  return double(B) * (per_token * double(steps) + 2.0 * H * (2.0 * Rkv + Dr) * L * ctx_sum);
}

RolloutRow run_one(Model& model, int64_t B, int64_t prompt, int64_t new_tokens, uint64_t seed,
                   ModelInference::DecodeGraphs graphs, bench::TimingBackend* timing = nullptr) {
  const ModelConfig& c = model.config();
  ModelInference engine(model, B, prompt + new_tokens);
  engine.set_graphs(graphs);
  std::mt19937_64 rng(seed + uint64_t(B));
  std::vector<std::vector<int32_t>> prompts{size_t(B)};
  for (auto& p : prompts)
    for (int64_t t = 0; t < prompt; ++t) p.push_back(int32_t(rng() % uint64_t(c.vocab_size)));
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.seed = seed;
  StopParams stop;
  stop.max_new_tokens = new_tokens;
  double t_prefill = 0.0;
  GenerateStats st;
  const double t0 = now_s();
  generate(engine, nullptr, prompts, 1, sp, stop, 0, &st, [&](const GenerateProgress&) {
    if (t_prefill != 0.0) return;
    t_prefill = now_s();  // the first report follows the one prefill
    if (timing) timing->set_enabled(true);
  });
  if (timing) timing->set_enabled(false);
  const double t1 = now_s();
  ZT_ASSERT(st.prefill_calls == 1 && st.max_batch == B, "bench rollout: %lld prefills, batch %lld",
            (long long)st.prefill_calls, (long long)st.max_batch);
  RolloutRow r;
  r.batch = B;
  r.prefill_s = t_prefill - t0;
  r.decode_s = t1 - t_prefill;
  r.decode_steps = st.decode_steps;
  r.prefill_tok_s = double(B * prompt) / r.prefill_s;
  r.decode_tok_s = double(st.decode_tokens) / r.decode_s;
  r.step_ms = st.decode_steps ? 1e3 * r.decode_s / double(st.decode_steps) : 0.0;
  const TrainFlops pf = train_step_flops(c, B, prompt);
  r.prefill_gflops = (pf.matmul + pf.attention) / 3.0 / r.prefill_s / 1e9;
  r.decode_gflops = decode_flops(c, B, prompt, st.decode_steps) / r.decode_s / 1e9;
  return r;
}

// Device-to-device copy bandwidth (GB/s, read + write bytes): best of 5 timed rounds of
// 10 copies of a 512 MiB buffer, between synchronizations.
double copy_bandwidth_gbs(Backend& be) {
  const int64_t n = int64_t(128) << 20;  // floats
  Tensor a = Tensor::empty(be, {n}, DType::F32), b = Tensor::empty(be, {n}, DType::F32);
  be.fill(a, 1.0);
  be.copy(a, b);
  be.synchronize();
  double best = 0.0;
  for (int round = 0; round < 5; ++round) {
    const double t0 = now_s();
    for (int i = 0; i < 10; ++i) be.copy(i % 2 ? b : a, i % 2 ? a : b);
    be.synchronize();
    best = std::max(best, 10.0 * 2.0 * double(n) * 4.0 / (now_s() - t0) / 1e9);
  }
  return best;
}

// Bytes one batch-1 decode step reads: every fp32 weight the token multiplies by (the
// k routed experts it picks, not all of them) and the latent cache of its context
// (mean context over the run's steps).
double batch1_step_bytes(const ModelConfig& c, int64_t prompt, int64_t steps) {
  const double weights = 4.0 * double(train_step_flops(c, 1, 1).matmul_params);
  const double ctx = double(prompt) + double(steps + 1) / 2.0;
  return weights + ctx * double(MlaKvCache::bytes_per_token(c, DType::F32));
}

// Runs the reference script; returns its JSON (one object on its last stdout line).
nlohmann::json run_reference(const std::string& python, const std::string& script,
                             const std::string& config_json, const std::string& weights,
                             const std::vector<int64_t>& batches, int64_t prompt,
                             int64_t new_tokens, int threads, uint64_t seed, int64_t repeat) {
  std::string list;
  for (int64_t b : batches) list += (list.empty() ? "" : ",") + std::to_string(b);
  // PyTorch's OpenMP workers spin between ops while its Python thread runs: on 2 cores
  // that halves its decode (measured, docs/perf.md), so it runs with passive waiting,
  // its fastest, unless the caller chose a policy.
  const std::string cmd = strformat(
      "%s'%s' '%s' --config '%s' --weights '%s' --batch %s --prompt %lld --new-tokens %lld "
      "--threads %d --seed %llu --repeat %lld",
      std::getenv("OMP_WAIT_POLICY") ? "" : "OMP_WAIT_POLICY=PASSIVE ", python.c_str(), script.c_str(),
      config_json.c_str(), weights.c_str(), list.c_str(), (long long)prompt, (long long)new_tokens, threads,
      (unsigned long long)seed, (long long)repeat);
  std::fprintf(stderr, "bench rollout: running the reference: %s\n", cmd.c_str());
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw RuntimeError(strformat("--ref: cannot run '%s'", cmd.c_str()));
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int rc = pclose(p);
  if (rc != 0)
    throw RuntimeError(strformat("--ref: the reference exited with status %d (command: %s)", rc,
                                 cmd.c_str()));
  const size_t nl = out.find_last_of('\n', out.size() >= 2 ? out.size() - 2 : 0);
  const std::string last = nl == std::string::npos ? out : out.substr(nl + 1);
  try {
    return nlohmann::json::parse(last);
  } catch (const nlohmann::json::parse_error&) {
    throw RuntimeError(strformat("--ref: the reference printed no JSON line: %s", out.c_str()));
  }
}

}  // namespace

int bench_rollout(const std::vector<std::string>& argv) {
  Args args("bench rollout", argv,
            {"model-config", "model", "batch", "prompt", "new-tokens", "threads", "seed", "gemm-n",
             "repeat", "ref", "ref-python", "ref-script", "breakdown", "json", "device", "save-model",
             "no-graphs", "graphs"},
            {"ref", "breakdown", "no-graphs"});
  if (args.help()) {
    std::printf("%s", kBenchRolloutUsage);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(strformat("bench rollout: unexpected argument '%s'", args.positional()[0].c_str()));
  if (args.has("model") && args.has("model-config"))
    throw UsageError("bench rollout: give --model or --model-config, not both");
  const std::string source = args.has("model") ? args.get("model")
                                               : args.get("model-config", "configs/models/bench-small.json");
  std::vector<int64_t> batches;
  {
    std::stringstream ss(args.get("batch", "1,16,64"));
    for (std::string item; std::getline(ss, item, ',');) batches.push_back(parse_int_flag("batch", item, 1));
    if (batches.empty()) throw UsageError("--batch: expected a comma-separated list, found ''");
  }
  const int64_t prompt = parse_int_flag("prompt", args.get("prompt", "128"), 1);
  const int64_t new_tokens = parse_int_flag("new-tokens", args.get("new-tokens", "512"), 2);
  const int threads = int(parse_int_flag("threads", args.get("threads", "0"), 0));
  const uint64_t seed = uint64_t(parse_int_flag("seed", args.get("seed", "0"), 0));
  const int64_t gemm_n = parse_int_flag("gemm-n", args.get("gemm-n", "2048"), 0);
  const int64_t repeat = parse_int_flag("repeat", args.get("repeat", "1"), 1);
  using DecodeGraphs = ModelInference::DecodeGraphs;
  const std::string graphs_arg = args.get("graphs", args.has("no-graphs") ? "off" : "auto");
  if (graphs_arg != "auto" && graphs_arg != "always" && graphs_arg != "off")
    throw UsageError(strformat("--graphs: expected auto, always or off, got '%s'", graphs_arg.c_str()));
  if (args.has("no-graphs") && graphs_arg != "off")
    throw UsageError("--no-graphs and --graphs " + graphs_arg + " contradict each other");
  const DecodeGraphs graphs = graphs_arg == "off"      ? DecodeGraphs::kOff
                              : graphs_arg == "always" ? DecodeGraphs::kAlways
                                                       : DecodeGraphs::kAuto;

  const ModelConfig cfg = read_model_config(source);
  if (prompt + new_tokens > cfg.max_position_embeddings)
    throw UsageError(strformat("--prompt + --new-tokens = %lld exceeds max_position_embeddings %lld of %s",
                               (long long)(prompt + new_tokens), (long long)cfg.max_position_embeddings,
                               source.c_str()));
  auto be = make_backend(args.get("device", "cpu"), threads, 0, "--device");
  const bool gpu = !be->device().is_cpu();
  if (gpu && args.has("ref"))
    throw UsageError("bench rollout: --ref times the CPU PyTorch reference; on a GPU use "
                     "scripts/reference/bench_rollout_hf.py (docs/gpu.md)");
  Model model(cfg, *be);
  model.release_grads();  // inference only
  if (args.has("model"))
    load_hf_weights(source, cfg, model.params());
  else
    init_params(cfg, model.params(), seed);

  if (args.has("save-model")) {
    save_hf_weights(args.get("save-model"), cfg, model.params());
    std::fprintf(stderr, "bench rollout: model written to %s\n", args.get("save-model").c_str());
  }
  GemmBenchResult peak;
  double copy_gbs = 0.0;
  if (gpu)
    copy_gbs = copy_bandwidth_gbs(*be);
  else if (gemm_n > 0)
    peak = bench_sgemm(*be, gemm_n, 5);
  std::vector<RolloutRow> rows;
  for (int64_t B : batches) {
    for (int64_t rep = 0; rep < repeat; ++rep) {
      RolloutRow r = run_one(model, B, prompt, new_tokens, seed, graphs);
      std::fprintf(stderr, "bench rollout: batch %lld: decode %.1f tok/s%s\n", (long long)B,
                   r.decode_tok_s,
                   repeat > 1 ? strformat(" (run %lld of %lld)", (long long)rep + 1, (long long)repeat).c_str() : "");
      if (rep == 0)
        rows.push_back(r);
      else if (r.decode_s < rows.back().decode_s)
        rows.back() = r;
    }
  }
  if (gpu) {
    copy_gbs = std::max(copy_gbs, copy_bandwidth_gbs(*be));
  } else if (gemm_n > 0) {
    const GemmBenchResult after = bench_sgemm(*be, gemm_n, 5);
    if (after.gflops > peak.gflops) peak = after;
  }
  // Per-op time of the decode steps at the largest batch: the same weights on a backend
  // that times every call it forwards.
  nlohmann::ordered_json jbreak;
  if (args.has("breakdown")) {
    const int64_t B = *std::max_element(batches.begin(), batches.end());
    bench::TimingBackend tb(*be, cfg.vocab_size);
    Model timed(cfg, tb);
    be->copy(model.params().flat, timed.params().flat);
    const RolloutRow r = run_one(timed, B, prompt, new_tokens, seed, DecodeGraphs::kOff, &tb);
    double ops = 0.0;
    std::vector<std::pair<double, int>> kinds;
    for (int k = 0; k < bench::kNumOpKinds; ++k) {
      ops += tb.seconds(k, 0);
      if (tb.calls(k) > 0) kinds.push_back({tb.seconds(k, 0), k});
    }
    std::sort(kinds.rbegin(), kinds.rend());
    std::printf("decode breakdown, batch %lld: %.3f s in %lld steps (%.2f ms/step)\n", (long long)B,
                r.decode_s, (long long)r.decode_steps, r.step_ms);
    std::printf("  %-14s %10s %8s %7s\n", "op", "s", "calls", "share");
    nlohmann::ordered_json jops = nlohmann::ordered_json::array();
    for (const auto& kv : kinds) {
      std::printf("  %-14s %10.3f %8lld %6.1f%%\n", bench::op_kind_name(kv.second), kv.first,
                  (long long)tb.calls(kv.second), 100.0 * kv.first / r.decode_s);
      jops.push_back({{"op", bench::op_kind_name(kv.second)}, {"s", kv.first},
                      {"calls", tb.calls(kv.second)}});
    }
    std::printf("  %-14s %10.3f %8s %6.1f%%\n\n", "host/other", r.decode_s - ops, "",
                100.0 * (r.decode_s - ops) / r.decode_s);
    jbreak = {{"batch", B}, {"decode_s", r.decode_s}, {"ops", jops}, {"host_s", r.decode_s - ops}};
  }

  nlohmann::json ref;
  std::string tmp_dir;
  if (args.has("ref")) {
    tmp_dir = (std::filesystem::temp_directory_path() /
               ("zeroth_bench_rollout_" + std::to_string(uint64_t(now_s() * 1e6))))
                  .string();
    save_hf_weights(tmp_dir, cfg, model.params());
    try {
      ref = run_reference(args.get("ref-python", "/usr/bin/python3"),
                          args.get("ref-script", "scripts/reference/bench_rollout_ref.py"),
                          tmp_dir + "/config.json", tmp_dir + "/model.safetensors", batches, prompt,
                          new_tokens, threads > 0 ? threads : int(std::thread::hardware_concurrency()), seed,
                          repeat);
    } catch (...) {
      std::error_code ec;
      std::filesystem::remove_all(tmp_dir, ec);
      throw;
    }
    std::error_code ec;
    std::filesystem::remove_all(tmp_dir, ec);
  }
  auto ref_row = [&](int64_t B) -> const nlohmann::json* {
    if (ref.is_null()) return nullptr;
    for (const auto& r : ref["results"])
      if (r["batch"].get<int64_t>() == B) return &r;
    return nullptr;
  };

  std::printf("bench rollout: %s on %s, prompt %lld + %lld new tokens, sampling T=1\n",
              source.c_str(), be->name().c_str(), (long long)prompt, (long long)new_tokens);
  std::printf("  %5s %12s %12s %10s %10s %8s", "batch", "prefill t/s", "decode t/s", "step ms",
              "dec GF/s", gpu ? "HBM GB/s" : "% peak");
  if (!ref.is_null()) std::printf(" %12s %8s", "torch dec/s", "speedup");
  std::printf("\n");
  nlohmann::ordered_json jrows = nlohmann::ordered_json::array();
  for (const RolloutRow& r : rows) {
    const double pct = peak.gflops > 0 ? 100.0 * r.decode_gflops / peak.gflops : 0.0;
    std::printf("  %5lld %12.1f %12.1f %10.2f %10.1f", (long long)r.batch, r.prefill_tok_s,
                r.decode_tok_s, r.step_ms, r.decode_gflops);
    double hbm = 0.0;
    if (gpu && r.batch == 1 && r.decode_steps > 0) {
      hbm = batch1_step_bytes(cfg, prompt, r.decode_steps) / (r.step_ms / 1e3) / 1e9;
      std::printf(" %8.1f", hbm);
    } else if (gpu) {
      std::printf(" %8s", "-");
    } else {
      std::printf(" %7.1f%%", pct);
    }
    nlohmann::ordered_json j = {{"batch", r.batch},
                                {"prefill_s", r.prefill_s},
                                {"prefill_tokens_per_s", r.prefill_tok_s},
                                {"prefill_gflops", r.prefill_gflops},
                                {"decode_s", r.decode_s},
                                {"decode_steps", r.decode_steps},
                                {"decode_tokens_per_s", r.decode_tok_s},
                                {"decode_step_ms", r.step_ms},
                                {"decode_gflops", r.decode_gflops}};
    if (peak.gflops > 0) j["decode_fraction_of_sgemm_peak"] = pct / 100.0;
    if (hbm > 0) {
      j["decode_hbm_gbs"] = hbm;
      j["decode_hbm_fraction_of_copy"] = hbm / copy_gbs;
    }
    if (const nlohmann::json* rr = ref_row(r.batch)) {
      const double tdec = (*rr)["decode_tokens_per_s"].get<double>();
      const double tpre = (*rr)["prefill_tokens_per_s"].get<double>();
      std::printf(" %12.1f %7.2fx", tdec, r.decode_tok_s / tdec);
      j["torch_decode_tokens_per_s"] = tdec;
      j["torch_prefill_tokens_per_s"] = tpre;
      j["decode_speedup_vs_torch"] = r.decode_tok_s / tdec;
      j["prefill_speedup_vs_torch"] = r.prefill_tok_s / tpre;
    }
    std::printf("\n");
    jrows.push_back(j);
  }
  if (peak.gflops > 0) std::printf("  sgemm peak (n=%lld, same process): %.1f GFLOP/s\n", (long long)peak.n, peak.gflops);
  if (gpu)
    std::printf("  device-to-device copy (same process): %.1f GB/s; batch 1 reads %.1f MB per "
                "step (fp32 weights of one token + its KV cache)\n",
                copy_gbs, batch1_step_bytes(cfg, prompt, new_tokens - 1) / 1e6);
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  std::printf("  OpenMP wait policy: %s\n", policy ? policy : "libgomp default (spin, then sleep)");
  if (!ref.is_null())
    std::printf("  reference: PyTorch %s, %s, OMP_WAIT_POLICY=%s\n", ref.value("torch_version", "?").c_str(),
                ref.value("impl", "?").c_str(), policy ? policy : "PASSIVE");
  std::fflush(stdout);

  nlohmann::ordered_json j;
  j["impl"] = "zeroth";
  j["bench"] = "rollout";
  j["config"] = source;
  j["backend"] = be->name();
  j["threads"] = threads;
  j["omp_wait_policy"] = policy ? policy : "default";
  j["prompt"] = prompt;
  j["new_tokens"] = new_tokens;
  j["repeat"] = repeat;
  if (gpu) j["graphs"] = graphs_arg;
  j["matmul_params_per_token"] = train_step_flops(cfg, 1, 1).matmul_params;
  j["kv_bytes_per_token"] = MlaKvCache::bytes_per_token(cfg, DType::F32);
  if (gpu) j["copy_bandwidth_gbs"] = copy_gbs;
  if (peak.gflops > 0) {
    j["sgemm_n"] = peak.n;
    j["sgemm_peak_gflops"] = peak.gflops;
  }
  if (!ref.is_null()) j["torch_version"] = ref.value("torch_version", "");
  j["results"] = jrows;
  if (!jbreak.is_null()) j["decode_breakdown"] = jbreak;
  if (!args.has("json")) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::ofstream out(args.get("json"));
    out << j.dump(2) << "\n";
    if (!out) throw RuntimeError(strformat("--json %s: write failed", args.get("json").c_str()));
  }
  return 0;
}

}  // namespace cli
}  // namespace zeroth
