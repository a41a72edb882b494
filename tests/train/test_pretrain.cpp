// Tests of the language-model training stages (train.h, data.h): corpus packing, the
// seeded sampler and its cursor, SFT rows and masks, short `zeroth pretrain` / `zeroth
// sft` runs of the tiny model (loss decreases, HF checkpoints load back with identical
// logits, bit-exact resume) and config errors (exit code 2).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "zeroth/backend.h"
#include "zeroth/comm.h"
#include "zeroth/config.h"
#include "zeroth/data.h"
#include "zeroth/error.h"
#include "zeroth/log.h"
#include "zeroth/model.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"
#include "zeroth/run_stop.h"
#include "zeroth/tokenizer.h"
#include "zeroth/train.h"

namespace zeroth {
namespace cli {
int cmd_pretrain(const std::vector<std::string>& args);
int cmd_sft(const std::vector<std::string>& args);
}  // namespace cli
}  // namespace zeroth

using namespace zeroth;
namespace fs = std::filesystem;

static const std::string kSrc = ZEROTH_SOURCE_DIR;

static std::unique_ptr<Tokenizer> bytes_tok() { return make_byte_tokenizer(zeroth_byte_tokenizer_config()); }

static std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("zeroth_test_pretrain_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

static std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// Overrides that make configs/<name>-tiny.yaml independent of the working directory.
static std::vector<std::string> tiny_overrides(const std::string& run_dir, const std::string& data) {
  return {"model.init=" + kSrc + "/configs/models/tiny.json", "data.path=" + data,
          "run.run_dir=" + run_dir, "run.threads=1"};
}

static std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST_CASE("pretraining corpus packs documents separated by EOS into overlapping sequences") {
  auto tok = bytes_tok();
  const std::string dir = temp_dir("pack");
  const std::string path = write_file(dir, "c.txt", "abc\n\nde\nfghij\n");
  const SequenceDataset ds = load_pretrain_corpus(path, "text", "text", *tok, 257, 4);
  // <bos> a b c <eos> <bos> d e <eos> <bos> f g h i j <eos> = 16 tokens -> (16-1)/3 = 5.
  const std::vector<int32_t> all = {256, 'a', 'b', 'c', 257, 256, 'd', 'e', 257, 256, 'f', 'g', 'h', 'i', 'j', 257};
  CHECK(ds.documents == 3);
  REQUIRE(ds.count == 5);
  for (int64_t i = 0; i < ds.count; ++i) {
    int32_t ids[4];
    float mask[4];
    ds.fill(i, ids, mask);
    for (int t = 0; t < 4; ++t) CHECK(ids[t] == all[size_t(i * 3 + t)]);
    CHECK(ds.length(i) == 4);  // packed sequences have no padding
    CHECK(mask[0] == 1.0f);
    CHECK(mask[2] == 1.0f);
    CHECK(mask[3] == 0.0f);
  }
  // jsonl: the field is read; a bad line names file:line.
  const std::string jl = write_file(dir, "c.jsonl", "{\"text\": \"abc\"}\n{\"body\": \"x\"}\n");
  try {
    load_pretrain_corpus(jl, "jsonl", "text", *tok, 257, 2);
    FAIL("expected a DataError");
  } catch (const DataError& e) {
    CHECK_THAT(e.what(), Catch::Contains(jl + ":2:") && Catch::Contains("\"text\""));
  }
  CHECK_THROWS_AS(load_pretrain_corpus(path, "text", "text", *tok, 257, 64), DataError);  // too short
}

TEST_CASE("the sampler shuffles per epoch from the seed and resumes from its cursor") {
  BatchSampler a(10, 42, true);
  std::vector<int64_t> first = a.next(7);
  const std::vector<int64_t> e0 = a.epoch_order(0), e1 = a.epoch_order(1);
  CHECK(e0 != e1);
  std::vector<int64_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 10; ++i) CHECK(sorted[size_t(i)] == i);
  CHECK(std::vector<int64_t>(e0.begin(), e0.begin() + 7) == first);
  const DataCursor c = a.cursor();
  CHECK(c.epoch == 0);
  CHECK(c.position == 7);
  const std::vector<int64_t> rest = a.next(6);  // crosses into epoch 1
  CHECK(a.cursor().epoch == 1);
  CHECK(a.cursor().position == 3);
  BatchSampler b(10, 42, true, c);
  CHECK(b.next(6) == rest);
  CHECK(BatchSampler(10, 43, true).epoch_order(0) != e0);
  CHECK(BatchSampler(10, 42, false).next(3) == std::vector<int64_t>{0, 1, 2});
}

TEST_CASE("SFT rows train on response tokens and EOS only, and bad lines name file:line") {
  auto tok = bytes_tok();
  SftFormat f;
  f.prompt_template = "Q:{prompt}|";
  f.eos_id = 257;
  f.pad_id = 258;
  const SftExample ex = encode_sft_example("ab", "xy", f, *tok);
  CHECK(ex.prompt == std::vector<int32_t>{256, 'Q', ':', 'a', 'b', '|'});
  CHECK(ex.response == std::vector<int32_t>{'x', 'y', 257});
  SequenceDataset ds;
  ds.seq_len = 12;
  append_sft_row(ex, 258, ds);
  // positions: 0..5 prompt, 6 x, 7 y, 8 eos, 9.. pad; mask[t] trains the prediction of t+1.
  const std::vector<float> want = {0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0};
  CHECK(ds.mask == want);
  CHECK(ds.ids[8] == 257);
  CHECK(ds.ids[11] == 258);
  CHECK(ds.length(0) == 9);  // real tokens: prompt, response, EOS (the loop's row length)
  ds.seq_len = 8;  // truncation keeps the prompt and cuts the response
  ds.ids.clear();
  ds.mask.clear();
  ds.lengths.clear();
  ds.count = 0;
  append_sft_row(ex, 258, ds);
  CHECK(ds.truncated == 1);
  CHECK(ds.length(0) == 8);
  CHECK(ds.mask == std::vector<float>{0, 0, 0, 0, 0, 1, 1, 0});

  const std::string dir = temp_dir("sftbad");
  const std::string p = write_file(dir, "s.jsonl", "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": 3, \"response\": \"b\"}\n");
  try {
    load_sft_dataset(p, f, *tok, 16);
    FAIL("expected a DataError");
  } catch (const DataError& e) {
    CHECK_THAT(e.what(), Catch::Contains(p + ":2:") && Catch::Contains("\"prompt\""));
  }
  const std::string lp = write_file(dir, "long.jsonl", "{\"prompt\": \"a long prompt\", \"response\": \"b\"}\n");
  CHECK_THROWS_AS(load_sft_dataset(lp, f, *tok, 8), DataError);
}

TEST_CASE("the SFT mask removes every prompt prediction from the gradient") {
  // Gradients with the SFT mask do not change when the (masked) prompt predictions get
  // other targets, and do change when those predictions are trained too.
  auto be = make_cpu_backend(1);
  const ModelConfig mc = read_model_config(kSrc + "/configs/models/tiny.json");
  Model model(mc, *be);
  init_params(mc, model.params(), 5);
  auto tok = bytes_tok();
  SftFormat f;
  f.eos_id = 257;
  SequenceDataset ds;
  ds.seq_len = 16;
  append_sft_row(encode_sft_example("hello", "world", f, *tok), 258, ds);
  const int64_t T = 16;
  Tensor ids = Tensor::empty(*be, {1, T}, DType::I32);
  ids.copy_from_host(ds.ids.data(), size_t(T) * 4);
  auto grads_for = [&](const std::vector<int32_t>& targets, const std::vector<float>& dlp) {
    Tensor tt = Tensor::empty(*be, {T}, DType::I32), lp = Tensor::empty(*be, {T}, DType::F32),
           d = Tensor::empty(*be, {T}, DType::F32);
    tt.copy_from_host(targets.data(), size_t(T) * 4);
    d.copy_from_host(dlp.data(), size_t(T) * 4);
    model.zero_grad();
    model.forward(ids);
    model.token_logprobs(tt, 1.0f, lp, nullptr);
    model.backward_from_logprob_grad(d, nullptr);
    return model.grads().flat.to_float_vector();
  };
  std::vector<int32_t> targets(size_t(T), -1), other(size_t(T), -1);
  std::vector<float> dlp(size_t(T), 0.0f), dlp_all(size_t(T), 0.0f);
  for (int64_t t = 0; t + 1 < T; ++t) {
    targets[size_t(t)] = ds.ids[size_t(t + 1)];
    other[size_t(t)] = ds.mask[size_t(t)] != 0.0f ? targets[size_t(t)] : 7;  // prompt targets changed
    dlp[size_t(t)] = -ds.mask[size_t(t)];
    dlp_all[size_t(t)] = -1.0f;
  }
  const std::vector<float> g = grads_for(targets, dlp);
  CHECK(grads_for(other, dlp) == g);
  CHECK(grads_for(targets, dlp_all) != g);
}

TEST_CASE("zeroth pretrain: the tiny model's loss falls, and checkpoints are HF model dirs with identical logits") {
  log_configure(LogOptions{LogLevel::Warn});
  const std::string run = temp_dir("run");
  std::vector<std::string> args = {"--config", kSrc + "/configs/pretrain-tiny.yaml"};
  for (const auto& o : tiny_overrides(run, kSrc + "/tests/train/data/tiny_corpus.txt")) {
    args.push_back("--set");
    args.push_back(o);
  }
  REQUIRE(cli::cmd_pretrain(args) == 0);
  const std::vector<std::string> lines = read_lines(run + "/metrics.jsonl");
  REQUIRE(lines.size() == 20);
  auto loss_of = [](const std::string& l) { return std::stod(l.substr(l.find("\"loss\":") + 7)); };
  const double first = loss_of(lines.front()), last = loss_of(lines.back());
  CHECK(first > 5.0);  // about ln(320) at init
  CHECK(last < first - 1.5);
  CHECK(fs::exists(run + "/config.yaml"));
  CHECK(fs::exists(run + "/checkpoints/step_10/optimizer.safetensors"));
  CHECK(latest_checkpoint(run) == run + "/checkpoints/step_20");
  CHECK(read_trainer_state(run + "/checkpoints/step_20").step == 20);

  // final/ is a usable HF model directory: config, tokenizer and weights load back, and
  // its logits equal those of the last checkpoint's weights (same step).
  auto be = make_cpu_backend(1);
  const ModelConfig mc = read_model_config(run + "/final");
  CHECK(load_tokenizer(run + "/final")->special_ids().eos == 257);
  Model a(mc, *be), b(mc, *be), init(mc, *be);
  load_hf_weights(run + "/final", mc, a.params());
  load_hf_weights(run + "/checkpoints/step_20", mc, b.params());
  init_params(mc, init.params(), 1);
  CHECK(a.params().flat.to_float_vector() != init.params().flat.to_float_vector());
  std::vector<int32_t> text = bytes_tok()->encode("the cat sat on the mat.", true);
  Tensor ids = Tensor::empty(*be, {1, int64_t(text.size())}, DType::I32);
  ids.copy_from_host(text.data(), text.size() * 4);
  a.forward(ids);
  b.forward(ids);
  CHECK(a.logits().to_float_vector() == b.logits().to_float_vector());

  // save_model_dir round trip of a trained model: identical logits.
  const std::string copy = run + "/copy";
  save_model_dir(copy, mc, a.params(), TokenizerFiles{byte_tokenizer_json(), ""});
  Model c(mc, *be);
  load_hf_weights(copy, mc, c.params());
  c.forward(ids);
  CHECK(c.logits().to_float_vector() == a.logits().to_float_vector());
}

TEST_CASE("zeroth pretrain --resume continues bit-exactly") {
  log_configure(LogOptions{LogLevel::Warn});
  const std::string data = kSrc + "/tests/train/data/tiny_corpus.txt";
  const std::string full = temp_dir("full"), part = temp_dir("part");
  auto run = [&](const std::string& dir, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"--config", kSrc + "/configs/pretrain-tiny.yaml"};
    std::vector<std::string> sets = tiny_overrides(dir, data);
    sets.insert(sets.end(), {"train.steps=6", "train.save_every=3", "train.batch_size=2"});
    sets.insert(sets.end(), extra.begin(), extra.end());
    for (const auto& o : sets) args.insert(args.end(), {"--set", o});
    return cli::cmd_pretrain(args);
  };
  REQUIRE(run(full, {}) == 0);
  REQUIRE(run(part, {"train.steps=3"}) == 0);
  // Continue `part` to step 6 (its config.yaml says 3 steps: override it).
  REQUIRE(cli::cmd_pretrain({"--resume", part, "--set", "train.steps=6"}) == 0);
  const auto a = read_lines(full + "/metrics.jsonl"), b = read_lines(part + "/metrics.jsonl");
  REQUIRE(a.size() == 6);
  REQUIRE(b.size() == 6);
  for (size_t i = 0; i < 6; ++i) {
    // Everything but the timing fields.
    auto strip = [](const std::string& l) {
      return std::regex_replace(l, std::regex("\"(tokens_per_s|mem_rss_gib|mem_peak_gib)\":[^,}]*,?"), "");
    };
    CHECK(strip(a[i]) == strip(b[i]));
  }
  auto be = make_cpu_backend(1);
  const ModelConfig mc = read_model_config(full + "/final");
  Model x(mc, *be), y(mc, *be);
  load_hf_weights(full + "/final", mc, x.params());
  load_hf_weights(part + "/final", mc, y.params());
  CHECK(x.params().flat.to_float_vector() == y.params().flat.to_float_vector());
}

// A time limit small enough to stop at every step boundary: each invocation does one
// step, saves it (between train.save_every's checkpoints too), exits with kExitStopped and
// writes no final/; the chain of --resume runs equals the uninterrupted run bit for bit.
TEST_CASE("zeroth pretrain: stopped by the time limit at every step and resumed equals one run") {
  log_configure(LogOptions{LogLevel::Warn});
  const std::string data = kSrc + "/tests/train/data/tiny_corpus.txt";
  const std::string full = temp_dir("stop_full"), part = temp_dir("stop_part");
  auto args_for = [&](const std::string& dir, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"--config", kSrc + "/configs/pretrain-tiny.yaml"};
    std::vector<std::string> sets = tiny_overrides(dir, data);
    sets.insert(sets.end(), {"train.steps=4", "train.save_every=3", "train.batch_size=2"});
    sets.insert(sets.end(), extra.begin(), extra.end());
    for (const auto& o : sets) args.insert(args.end(), {"--set", o});
    return args;
  };
  REQUIRE(cli::cmd_pretrain(args_for(full, {})) == 0);
  REQUIRE(cli::cmd_pretrain(args_for(part, {"train.time_limit_minutes=1e-9"})) == kExitStopped);
  CHECK(read_trainer_state(part + "/checkpoints/step_1").step == 1);
  CHECK_FALSE(fs::exists(part + "/final"));
  CHECK(read_lines(part + "/metrics.jsonl").size() == 1);
  CHECK(cli::cmd_pretrain({"--resume", part}) == kExitStopped);  // step 2
  CHECK(cli::cmd_pretrain({"--resume", part}) == kExitStopped);  // step 3 (a save_every step)
  CHECK(cli::cmd_pretrain({"--resume", part}) == 0);             // step 4, the last: no stop
  // train.save_every_minutes: a checkpoint at every step once the interval has passed.
  const std::string timed = temp_dir("stop_timed");
  REQUIRE(cli::cmd_pretrain(args_for(timed, {"train.save_every_minutes=1e-9"})) == 0);
  for (int step : {1, 2, 3, 4}) CHECK(read_trainer_state(timed + "/checkpoints/step_" + std::to_string(step)).step == step);
  const auto a = read_lines(full + "/metrics.jsonl"), b = read_lines(part + "/metrics.jsonl");
  REQUIRE(a.size() == 4);
  REQUIRE(b.size() == 4);
  auto strip = [](const std::string& l) { return std::regex_replace(l, std::regex("\"(tokens_per_s|mem_rss_gib|mem_peak_gib)\":[^,}]*,?"), ""); };
  for (size_t i = 0; i < 4; ++i) CHECK(strip(a[i]) == strip(b[i]));
  std::ifstream fa(full + "/final/model.safetensors", std::ios::binary), fb(part + "/final/model.safetensors", std::ios::binary);
  const std::string wa((std::istreambuf_iterator<char>(fa)), {}), wb((std::istreambuf_iterator<char>(fb)), {});
  CHECK((!wa.empty() && wa == wb));
}

TEST_CASE("train.keep_checkpoints keeps the newest complete checkpoints and resumes from them") {
  log_configure(LogOptions{LogLevel::Warn});
  // prune_checkpoints alone: complete = holding the marker; others are left alone.
  const std::string fake = temp_dir("prune");
  for (const char* d : {"step_2", "step_10", "step_9", "step_11", "step_x", ".step_12.tmp"}) {
    fs::create_directories(fake + "/checkpoints/" + d);
    if (std::string(d) != "step_11") std::ofstream(fake + "/checkpoints/" + d + "/trainer_state.json") << "{}";
  }
  CHECK(prune_checkpoints(fake, 0).empty());
  const std::vector<std::string> removed = prune_checkpoints(fake, 2);
  REQUIRE(removed.size() == 1);
  CHECK(removed[0] == fake + "/checkpoints/step_2");
  for (const char* d : {"step_10", "step_9", "step_11", "step_x", ".step_12.tmp"})
    CHECK(fs::exists(fake + "/checkpoints/" + d));
  CHECK(latest_checkpoint(fake) == fake + "/checkpoints/step_10");

  // zeroth pretrain: a checkpoint every step, the newest 2 kept; --resume continues.
  const std::string data = kSrc + "/tests/train/data/tiny_corpus.txt";
  const std::string dir = temp_dir("keep");
  std::vector<std::string> args = {"--config", kSrc + "/configs/pretrain-tiny.yaml"};
  std::vector<std::string> sets = tiny_overrides(dir, data);
  sets.insert(sets.end(), {"train.steps=4", "train.save_every=1", "train.batch_size=2", "train.keep_checkpoints=2"});
  for (const auto& o : sets) args.insert(args.end(), {"--set", o});
  REQUIRE(cli::cmd_pretrain(args) == 0);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir + "/checkpoints")) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  CHECK(left == std::vector<std::string>{"step_3", "step_4"});
  REQUIRE(cli::cmd_pretrain({"--resume", dir, "--set", "train.steps=5"}) == 0);
  CHECK(fs::exists(dir + "/checkpoints/step_5/trainer_state.json"));
  CHECK(!fs::exists(dir + "/checkpoints/step_3"));
}

TEST_CASE("a new run does not overwrite another run's directory unless --overwrite") {
  log_configure(LogOptions{LogLevel::Warn});
  const std::string data = kSrc + "/tests/train/data/tiny_corpus.txt";
  const std::string dir = temp_dir("fresh");
  auto args_for = [&](const std::vector<std::string>& extra_sets, const std::vector<std::string>& flags) {
    std::vector<std::string> args = {"--config", kSrc + "/configs/pretrain-tiny.yaml"};
    std::vector<std::string> sets = tiny_overrides(dir, data);
    sets.insert(sets.end(), {"train.batch_size=2", "train.save_every=1"});
    sets.insert(sets.end(), extra_sets.begin(), extra_sets.end());
    for (const auto& o : sets) args.insert(args.end(), {"--set", o});
    args.insert(args.end(), flags.begin(), flags.end());
    return args;
  };
  REQUIRE(cli::cmd_pretrain(args_for({"train.steps=2"}, {})) == 0);
  REQUIRE(fs::exists(dir + "/checkpoints/step_2"));
  // The same --run-dir again: refused, naming what is there and the ways out.
  try {
    cli::cmd_pretrain(args_for({"train.steps=1"}, {}));
    FAIL("a second run overwrote the first");
  } catch (const UsageError& e) {
    CHECK_THAT(e.what(), Catch::Contains("run directory '" + dir + "' already holds a run (checkpoints/, final/)") &&
                             Catch::Contains("--resume " + dir) && Catch::Contains("--overwrite"));
  }
  CHECK(fs::exists(dir + "/checkpoints/step_2"));  // untouched
  // --overwrite: the old run's checkpoints and metrics go; the new run is alone there.
  REQUIRE(cli::cmd_pretrain(args_for({"train.steps=1"}, {"--overwrite"})) == 0);
  CHECK(fs::exists(dir + "/checkpoints/step_1"));
  CHECK_FALSE(fs::exists(dir + "/checkpoints/step_2"));
  CHECK(read_lines(dir + "/metrics.jsonl").size() == 1);
  // --resume continues its own directory: another --run-dir or --overwrite is an error.
  CHECK_THROWS_WITH(cli::cmd_pretrain({"--resume", dir, "--run-dir", dir + "/other"}),
                    Catch::Contains("a resumed run continues in its own directory"));
  CHECK_THROWS_WITH(cli::cmd_pretrain({"--resume", dir, "--overwrite"}), Catch::Contains("cannot go with --resume"));
  REQUIRE(cli::cmd_pretrain({"--resume", dir, "--run-dir", dir, "--set", "train.steps=2"}) == 0);
  CHECK(fs::exists(dir + "/checkpoints/step_2/trainer_state.json"));
  // A resume needs train.steps >= the checkpoint's step; a trainer_state.json whose step is
  // not its directory's is refused.
  CHECK_THROWS_WITH(cli::cmd_pretrain({"--resume", dir, "--set", "train.steps=1"}),
                    Catch::Contains("key 'train.steps': expected at least 2"));
  {
    const std::string ts = dir + "/checkpoints/step_2/trainer_state.json";
    nlohmann::json js = nlohmann::json::parse(std::ifstream(ts));
    const nlohmann::json saved = js;
    js["step"] = 7;
    std::ofstream(ts) << js.dump();
    CHECK_THROWS_WITH(cli::cmd_pretrain({"--resume", dir, "--set", "train.steps=8"}),
                      Catch::Contains("key 'step': expected 2 (the directory's step), found 7"));
    std::ofstream(ts) << saved.dump();
  }
  // The keys that chose the model keep their recorded values on resume (the same file under
  // another spelling is the same value).
  REQUIRE(cli::cmd_pretrain({"--resume", dir, "--set", "model.init=" + kSrc + "/configs/models/../models/tiny.json"}) ==
          0);
  CHECK_THROWS_WITH(cli::cmd_pretrain({"--resume", dir, "--set", "model.tokenizer=" + kSrc + "/configs/demo/base"}),
                    Catch::Contains("key 'model.tokenizer'") && Catch::Contains(dir + "/config.yaml records"));
}

TEST_CASE("zeroth sft trains on the tiny prompt/response set and its loss falls") {
  log_configure(LogOptions{LogLevel::Warn});
  const std::string run = temp_dir("sft");
  std::vector<std::string> args = {"--config", kSrc + "/configs/sft-tiny.yaml"};
  for (const auto& o : tiny_overrides(run, kSrc + "/tests/train/data/tiny_sft.jsonl"))
    args.insert(args.end(), {"--set", o});
  REQUIRE(cli::cmd_sft(args) == 0);
  const auto lines = read_lines(run + "/metrics.jsonl");
  REQUIRE(lines.size() == 20);
  auto loss_of = [](const std::string& l) { return std::stod(l.substr(l.find("\"loss\":") + 7)); };
  CHECK(loss_of(lines.back()) < loss_of(lines.front()) - 1.0);
  CHECK(read_trainer_state(run + "/checkpoints/step_20").stage == "sft");
  // A pretrain resume of an SFT run is refused.
  CHECK_THROWS_AS(cli::cmd_pretrain({"--resume", run, "--set", "train.steps=22"}), CheckpointError);
}

TEST_CASE("pretrain/sft config errors are ConfigErrors (exit code 2) naming the key") {
  log_configure(LogOptions{LogLevel::Warn});
  const std::string run = temp_dir("bad");
  const std::string cfg = kSrc + "/configs/pretrain-tiny.yaml";
  const std::string data = kSrc + "/tests/train/data/tiny_corpus.txt";
  auto expect_config_error = [&](std::vector<std::string> sets, const std::string& key) {
    std::vector<std::string> args = {"--config", cfg};
    for (const auto& o : tiny_overrides(run, data)) args.insert(args.end(), {"--set", o});
    for (const auto& o : sets) args.insert(args.end(), {"--set", o});
    try {
      cli::cmd_pretrain(args);
      FAIL("expected a ConfigError for " + key);
    } catch (const ConfigError& e) {
      CHECK(e.exit_code() == 2);
      CHECK_THAT(e.what(), Catch::Contains(key));
    }
  };
  expect_config_error({"train.micro_batch=3"}, "train.micro_batch");
  expect_config_error({"train.seq_len=1"}, "train.seq_len");
  expect_config_error({"train.stepz=3"}, "stepz");
  expect_config_error({"model.init="}, "model.init");
  expect_config_error({"data.path="}, "data.path");
  expect_config_error({"data.template=no placeholder"}, "data.template");
  expect_config_error({"train.seq_len=1000"}, "train.seq_len");  // > max_position_embeddings
  CHECK_THROWS_AS(cli::cmd_sft({"--set", "train.steps=1"}), UsageError);  // no --config
}
