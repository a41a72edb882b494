// `zeroth bench`: measuring programs that print a table (stdout) and one JSON object
// (stdout after the table, or --json FILE). Subcommands: train (forward+backward of a
// random model: tokens/s, GFLOP/s against the sgemm peak measured in the same run,
// per-op breakdown), gemm (sgemm GFLOP/s over sizes), reward (bench_reward.cpp) and
// rollout (bench_rollout.cpp).
// Owns: flag parsing and formatting. Must not: measure anything itself (zeroth/bench.h
// does) or assert on speed.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "zeroth/backend.h"
#include "zeroth/backend_factory.h"
#include "zeroth/bench.h"
#include "zeroth/error.h"
#include "zeroth/model_config.h"

namespace zeroth {
namespace cli {


static const char kBenchUsage[] =
    "usage: zeroth bench <train|gemm|reward|rollout> [options]\n"
    "\n"
    "  train   forward+backward of a randomly initialised model (CPU or CUDA)\n"
    "  gemm    GEMM GFLOP/s of square matrices (CPU or CUDA; f32 or bf16)\n"
    "  reward  math checks/s and sandboxed code runs/s\n"
    "  rollout KV-cached prefill and decode tokens/s (CPU; vs PyTorch with --ref)\n"
    "\n"
    "'zeroth bench <name> --help' lists a benchmark's options.\n";

static const char kBenchTrainUsage[] =
    "usage: zeroth bench train [--model-config FILE] [--batch B] [--seq T] [--threads N]\n"
    "                          [--device cpu|cuda[:i]] [--dtype auto|f32|bf16]\n"
    "                          [--steps S] [--warmup W] [--seed S] [--gemm-n N]\n"
    "                          [--no-breakdown] [--json FILE]\n"
    "\n"
    "  --model-config FILE  HF config.json or model directory\n"
    "                       (default configs/models/bench-small.json)\n"
    "  --batch B, --seq T   batch shape (default 8 x 512)\n"
    "  --threads N          CPU threads (default: all cores)\n"
    "  --device D           cpu (default) or cuda / cuda:<i>\n"
    "  --dtype X            the model's compute dtype: auto = f32 on the CPU, bf16 (mixed\n"
    "                       precision, fp32 masters) on CUDA; the peak GEMM uses it too,\n"
    "                       so on CUDA the percentage is the MFU against bf16 cuBLAS\n"
    "  --steps S            timed steps, best and mean reported (default 3)\n"
    "  --warmup W           untimed steps first (default 1)\n"
    "  --gemm-n N           size of the square GEMM measured as the peak, before and\n"
    "                       after the steps, best of both (default 2048 on the CPU, 8192\n"
    "                       on CUDA; 0 skips it)\n"
    "  --recompute          activation recomputation per block (model.recompute)\n"
    "  --no-breakdown       skip the extra step that times every op (each op between\n"
    "                       two synchronizations, so on CUDA: device time + launch)\n"
    "  --json FILE          write the JSON there instead of after the table\n"
    "\n"
    "FLOPs are counted analytically: 6 x matmul weights per token x tokens (lm_head,\n"
    "attention projections, dense MLPs, routers, shared + top_k routed experts; no\n"
    "embedding) + causal attention 3 x 2 x B*H*T(T+1)/2*(Dqk+Dv) per layer; elementwise\n"
    "ops are not counted.\n";

static const char kBenchGemmUsage[] =
    "usage: zeroth bench gemm [--n N[,N...]] [--reps R] [--threads N] [--device D]\n"
    "                         [--dtype f32|bf16] [--json FILE]\n"
    "\n"
    "  --n N,...     square sizes (default 512,1024,2048; on CUDA 2048,4096,8192)\n"
    "  --device D    cpu (default) or cuda / cuda:<i>\n"
    "  --dtype X     f32 (default on the CPU) or bf16 (default on CUDA; fp32 accumulation)\n"
    "  --reps R      timed calls per size, best reported (default 5)\n"
    "  --threads N   CPU threads (default: all cores)\n"
    "  --json FILE   write the JSON there instead of after the table\n";

namespace {


void emit_json(const nlohmann::ordered_json& j, const Args& args) {
  if (!args.has("json")) {
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  const std::string path = args.get("json");
  std::ofstream out(path);
  if (!out) throw RuntimeError(strformat("--json %s: cannot open for writing", path.c_str()));
  out << j.dump(2) << "\n";
  if (!out) throw RuntimeError(strformat("--json %s: write failed", path.c_str()));
}

int bench_train_cmd(const std::vector<std::string>& argv) {
  Args args("bench train", argv,
            {"model-config", "batch", "seq", "threads", "steps", "warmup", "seed", "gemm-n",
             "no-breakdown", "json", "device", "dtype", "recompute"},
            {"no-breakdown", "recompute"});
  if (args.help()) {
    std::printf("%s", kBenchTrainUsage);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(strformat("bench train: unexpected argument '%s'", args.positional()[0].c_str()));
  const std::string cfg_path = args.get("model-config", "configs/models/bench-small.json");
  const ModelConfig cfg = read_model_config(cfg_path);
  TrainBenchOptions o;
  o.batch = parse_int_flag("batch", args.get("batch", "8"), 1);
  o.seq = parse_int_flag("seq", args.get("seq", "512"), 2);
  o.steps = int(parse_int_flag("steps", args.get("steps", "3"), 1));
  o.warmup = int(parse_int_flag("warmup", args.get("warmup", "1"), 0));
  o.seed = uint64_t(parse_int_flag("seed", args.get("seed", "0"), 0));
  const int threads = int(parse_int_flag("threads", args.get("threads", "0"), 0));
  auto be = make_backend(args.get("device", "cpu"), threads, 0, "--device");
  const bool gpu = !be->device().is_cpu();
  o.breakdown = !args.has("no-breakdown");
  o.recompute = args.has("recompute");
  o.compute = compute_dtype_for(*be, args.get("dtype", "auto"), "--dtype");
  const int64_t gemm_n = parse_int_flag("gemm-n", args.get("gemm-n", gpu ? "8192" : "2048"), 0);
  const char* dt = o.compute == DType::BF16 ? "bf16" : "f32";

  // The peak is measured before and after the model's steps and the better one kept,
  // so a burst of load from other processes during one of them does not set it.
  GemmBenchResult peak;
  if (gemm_n > 0) peak = bench_sgemm(*be, gemm_n, gpu ? 20 : 5, o.compute);
  const TrainBenchResult r = bench_train(cfg, *be, o);
  if (gemm_n > 0) {
    const GemmBenchResult after = bench_sgemm(*be, gemm_n, gpu ? 20 : 5, o.compute);
    if (after.gflops > peak.gflops) peak = after;
  }
  const double pct = peak.gflops > 0.0 ? 100.0 * r.gflops / peak.gflops : 0.0;

  std::printf("bench train: %s on %s, compute %s\n", cfg_path.c_str(), be->name().c_str(), dt);
  std::printf("  params %.1fM (active %.1fM, matmul/token %.1fM), B=%lld T=%lld, %d steps\n",
              double(r.params) / 1e6, double(r.active_params) / 1e6,
              double(r.flops.matmul_params) / 1e6, (long long)r.batch, (long long)r.seq, r.steps);
  std::printf("  %-22s %12s\n", "metric", "value");
  std::printf("  %-22s %12.3f\n", "forward s (best)", r.forward_s_best);
  std::printf("  %-22s %12.3f\n", "backward s (best)", r.backward_s_best);
  std::printf("  %-22s %12.3f\n", "fwd+bwd s (best)", r.step_s_best);
  std::printf("  %-22s %12.3f\n", "fwd+bwd s (mean)", r.step_s_mean);
  std::printf("  %-22s %12.1f\n", "tokens/s", r.tokens_per_s);
  std::printf("  %-22s %12.1f\n", "GFLOP/step", r.flops.total() / 1e9);
  std::printf("  %-22s %12.1f\n", "GFLOP/s", r.gflops);
  if (gemm_n > 0) {
    std::printf("  %-22s %12.1f\n", gpu ? "gemm peak GFLOP/s" : "sgemm peak GFLOP/s", peak.gflops);
    std::printf("  %-22s %11.1f%%\n", gpu ? "MFU (of gemm peak)" : "of sgemm peak", pct);
  }
  std::printf("  %-22s %12.4f\n", "loss (mean NLL)", double(r.loss));
  std::printf("  %-22s %12.1f\n", "peak MiB (backend)", double(r.peak_bytes) / 1048576.0);
  std::printf("  %-22s %12.1f\n", "  of which weights", double(r.weight_bytes) / 1048576.0);
  if (!r.breakdown.empty()) {
    std::printf("\n  per-op time of one profiled step (%.3f s; each op synchronized)\n",
                r.breakdown_step_s);
    std::printf("  %-14s %10s %10s %8s %7s\n", "op", "fwd s", "bwd s", "calls", "share");
    for (const OpTime& t : r.breakdown)
      std::printf("  %-14s %10.3f %10.3f %8lld %6.1f%%\n", t.op.c_str(), t.forward_s,
                  t.backward_s, (long long)t.calls,
                  100.0 * (t.forward_s + t.backward_s) / r.breakdown_step_s);
  }
  std::fflush(stdout);

  nlohmann::ordered_json j;
  j["impl"] = "zeroth";
  j["bench"] = "train";
  j["config"] = cfg_path;
  j["backend"] = be->name();
  j["compute_dtype"] = dt;
  j["threads"] = threads;
  j["batch"] = r.batch;
  j["seq"] = r.seq;
  j["tokens"] = r.tokens;
  j["steps"] = r.steps;
  j["params"] = r.params;
  j["active_params"] = r.active_params;
  j["matmul_params_per_token"] = r.flops.matmul_params;
  j["flops_per_step"] = r.flops.total();
  j["attention_flops_per_step"] = r.flops.attention;
  j["forward_s_best"] = r.forward_s_best;
  j["backward_s_best"] = r.backward_s_best;
  j["fwd_bwd_s_best"] = r.step_s_best;
  j["fwd_bwd_s_mean"] = r.step_s_mean;
  j["fwd_bwd_tokens_per_s"] = r.tokens_per_s;
  j["gflops"] = r.gflops;
  if (gemm_n > 0) {
    j["sgemm_n"] = peak.n;
    j["sgemm_peak_gflops"] = peak.gflops;  // in the compute dtype (bf16 on CUDA)
    j["fraction_of_sgemm_peak"] = pct / 100.0;
    if (gpu) j["mfu"] = pct / 100.0;
  }
  j["loss"] = r.loss;
  j["recompute"] = o.recompute;
  j["peak_bytes"] = r.peak_bytes;
  j["weight_bytes"] = r.weight_bytes;
  if (!r.breakdown.empty()) {
    nlohmann::ordered_json ops = nlohmann::ordered_json::array();
    for (const OpTime& t : r.breakdown)
      ops.push_back({{"op", t.op}, {"forward_s", t.forward_s}, {"backward_s", t.backward_s},
                     {"calls", t.calls}});
    j["breakdown_step_s"] = r.breakdown_step_s;
    j["breakdown"] = ops;
  }
  emit_json(j, args);
  return 0;
}

int bench_gemm_cmd(const std::vector<std::string>& argv) {
  Args args("bench gemm", argv, {"n", "reps", "threads", "json", "device", "dtype"});
  if (args.help()) {
    std::printf("%s", kBenchGemmUsage);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(strformat("bench gemm: unexpected argument '%s'", args.positional()[0].c_str()));
  std::vector<int64_t> sizes;
  const int threads = int(parse_int_flag("threads", args.get("threads", "0"), 0));
  auto be = make_backend(args.get("device", "cpu"), threads, 0, "--device");
  const bool gpu = !be->device().is_cpu();
  const DType dtype = compute_dtype_for(*be, args.get("dtype", "auto"), "--dtype");
  std::stringstream ss(args.get("n", gpu ? "2048,4096,8192" : "512,1024,2048"));
  for (std::string item; std::getline(ss, item, ',');) sizes.push_back(parse_int_flag("n", item, 1));
  if (sizes.empty()) throw UsageError("--n: expected a comma-separated list of sizes, found ''");
  const int reps = int(parse_int_flag("reps", args.get("reps", gpu ? "20" : "5"), 1));
  std::printf("bench gemm: %s C(n,n) = A(n,n) B(n,n) on %s, best of %d\n",
              dtype == DType::BF16 ? "BF16" : "F32", be->name().c_str(), reps);
  std::printf("  %6s %12s %10s\n", "n", "best ms", "GFLOP/s");
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (int64_t n : sizes) {
    const GemmBenchResult r = bench_sgemm(*be, n, reps, dtype);
    std::printf("  %6lld %12.3f %10.1f\n", (long long)n, r.best_s * 1e3, r.gflops);
    rows.push_back({{"n", r.n}, {"best_s", r.best_s}, {"gflops", r.gflops}});
  }
  std::fflush(stdout);
  nlohmann::ordered_json j;
  j["impl"] = "zeroth";
  j["bench"] = "gemm";
  j["backend"] = be->name();
  j["dtype"] = dtype == DType::BF16 ? "bf16" : "f32";
  j["threads"] = threads;
  j["reps"] = reps;
  j["results"] = rows;
  emit_json(j, args);
  return 0;
}

}  // namespace

int cmd_bench(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    std::fprintf(args.empty() ? stderr : stdout, "%s", kBenchUsage);
    return args.empty() ? 2 : 0;
  }
  const std::string which = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (which == "train") return bench_train_cmd(rest);
  if (which == "gemm") return bench_gemm_cmd(rest);
  if (which == "reward") return bench_reward(rest);
  if (which == "rollout") return bench_rollout(rest);
  throw UsageError(strformat("bench: unknown benchmark '%s' (expected train, gemm, reward or rollout)",
                             which.c_str()));
}

}  // namespace cli
}  // namespace zeroth
