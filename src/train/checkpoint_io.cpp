// Training checkpoints (train.h): HF model directories with tokenizer files, optimizer
// state and trainer state, each written to a temporary directory and renamed into place;
// with expert parallelism written by the ranks of the first expert group together (the
// optimizer state in parts of HF-named moments, readable at any expert-parallel size).
// Must not: decide when to save (the loop does) or define the weight format
// (model_params.h) or the optimizer's state (optim.h).
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <system_error>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "zeroth/error.h"
#include "zeroth/log.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"
#include "zeroth/optim.h"
#include "zeroth/safetensors.h"
#include "zeroth/train.h"

namespace zeroth {

namespace fs = std::filesystem;

static constexpr int kTrainerStateVersion = 1;

std::string byte_tokenizer_json() {
  const ByteTokenizerConfig c = zeroth_byte_tokenizer_config();
  nlohmann::json model = {{"type", "ZerothBytes"}, {"special_tokens", c.special_tokens},
                          {"bos_token", c.bos_token}, {"eos_token", c.eos_token},
                          {"pad_token", c.pad_token}, {"add_bos", c.add_bos},
                          {"add_eos", c.add_eos}};
  return nlohmann::json({{"version", "1.0"}, {"model", model}}).dump(2) + "\n";
}

static void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  if (!out) throw RuntimeError(strformat("%s: cannot write", path.c_str()));
}

static void write_optimizer(const std::string& path, const AdamW& optimizer) {
  ZT_ASSERT(!optimizer.sharded(), "write_optimizer: a ZeRO-sharded optimizer is written in parts");
  const AdamWState st = optimizer.state();
  SafetensorsWriter w;
  w.add("adamw.m", st.m);
  w.add("adamw.v", st.v);
  w.set_metadata("adamw.step", std::to_string(st.step));
  w.write(path);
}

static void write_trainer_state(const std::string& dir, const TrainerState& state) {
  nlohmann::json js = {{"format_version", kTrainerStateVersion},
                       {"step", state.step},
                       {"data_epoch", state.cursor.epoch},
                       {"data_position", state.cursor.position},
                       {"stage", state.stage}};
  write_text(dir + "/trainer_state.json", js.dump(2) + "\n");
}

static void load_optimizer_file(const std::string& path, AdamW& optimizer);
namespace {  // expert-parallel optimizer parts (defined with the collective versions below)
std::vector<std::string> optimizer_parts(const std::string& dir);
void load_optimizer_parts(const std::string& dir, const std::vector<std::string>& files, AdamW& optimizer);
}  // namespace

static void fresh_dir(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) throw RuntimeError(strformat("%s: cannot remove: %s", dir.c_str(), ec.message().c_str()));
  fs::create_directories(dir, ec);
  if (ec) throw RuntimeError(strformat("%s: cannot create: %s", dir.c_str(), ec.message().c_str()));
}

// Replaces `dir` by the complete `tmp`.
static void publish_dir(const std::string& tmp, const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (!ec) fs::rename(tmp, dir, ec);
  if (ec)
    throw RuntimeError(strformat("cannot rename %s to %s: %s", tmp.c_str(), dir.c_str(), ec.message().c_str()));
}

static void write_model_files(const std::string& dir, const ModelConfig& config, const ParamSet& params,
                              const TokenizerFiles& tokenizer) {
  write_text(dir + "/tokenizer.json", tokenizer.tokenizer_json);
  if (!tokenizer.tokenizer_config_json.empty())
    write_text(dir + "/tokenizer_config.json", tokenizer.tokenizer_config_json);
  save_hf_weights(dir, config, params, DType::F32);  // config.json last
}

void save_model_dir(const std::string& dir, const ModelConfig& config, const ParamSet& params,
                    const TokenizerFiles& tokenizer) {
  const std::string tmp = dir + ".tmp";
  fresh_dir(tmp);
  write_model_files(tmp, config, params, tokenizer);
  publish_dir(tmp, dir);
}

std::string save_train_checkpoint(const std::string& run_dir, const ModelConfig& config,
                                  const ParamSet& params, const TokenizerFiles& tokenizer,
                                  const AdamW& optimizer, const TrainerState& state) {
  const std::string root = run_dir + "/checkpoints";
  const std::string name = strformat("step_%lld", (long long)state.step);
  const std::string tmp = root + "/." + name + ".tmp";
  const std::string dir = root + "/" + name;
  fresh_dir(tmp);
  write_model_files(tmp, config, params, tokenizer);

  write_optimizer(tmp + "/optimizer.safetensors", optimizer);
  write_trainer_state(tmp, state);
  publish_dir(tmp, dir);
  return dir;
}

namespace {

// N of a directory named step_N (1 to 18 digits), or -1 for any other name.
long long step_of_dir_name(const std::string& name) {
  if (name.rfind("step_", 0) != 0 || name.size() == 5 || name.size() > 23 ||
      name.find_first_not_of("0123456789", 5) != std::string::npos)
    return -1;
  return std::stoll(name.substr(5));
}

struct StepDir {
  long long step;
  std::string path;
  bool complete;  // holds the marker
};

// The checkpoints/step_N directories of run_dir, by step.
std::vector<StepDir> step_dirs(const std::string& run_dir, const std::string& marker) {
  std::vector<StepDir> out;
  const fs::path root = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const long long step = step_of_dir_name(e.path().filename().string());
    if (step < 0 || !e.is_directory()) continue;
    out.push_back({step, e.path().string(), fs::exists(e.path() / marker)});
  }
  std::sort(out.begin(), out.end(), [](const StepDir& a, const StepDir& b) { return a.step < b.step; });
  return out;
}

}  // namespace

std::string latest_checkpoint(const std::string& run_dir, const std::string& marker) {
  const std::vector<StepDir> dirs = step_dirs(run_dir, marker);
  std::string newest;
  for (const StepDir& d : dirs)
    if (d.complete) newest = d.path;
  // A newer step_N without its marker (a save cut short, or a damaged copy) is passed
  // over: say so, since the steps after the one used are trained again.
  bool past_newest = newest.empty();
  for (const StepDir& d : dirs) {
    if (past_newest && !d.complete)
      ZT_LOG_WARN("%s is incomplete (no %s): passed over%s", d.path.c_str(), marker.c_str(),
                  newest.empty() ? "" : (" for " + newest).c_str());
    past_newest = past_newest || d.path == newest;
  }
  return newest;
}

std::vector<std::pair<int64_t, std::string>> complete_checkpoints(const std::string& run_dir,
                                                                  const std::string& marker) {
  std::vector<std::pair<int64_t, std::string>> out;
  for (const StepDir& d : step_dirs(run_dir, marker))
    if (d.complete) out.emplace_back(int64_t(d.step), d.path);
  return out;
}

void prepare_fresh_run_dir(const std::string& run_dir, bool overwrite, int rank, const char* command) {
  std::vector<std::string> found;
  std::error_code ec;
  const fs::path ck = fs::path(run_dir) / "checkpoints";
  if (fs::is_directory(ck, ec))
    for (const auto& e : fs::directory_iterator(ck, ec)) {
      (void)e;
      found.push_back("checkpoints/");
      break;
    }
  if (fs::exists(fs::path(run_dir) / "final", ec)) found.push_back("final/");
  if (found.empty()) return;
  if (!overwrite) {
    std::string what;
    for (const std::string& f : found) what += (what.empty() ? "" : ", ") + f;
    throw UsageError(strformat("run directory '%s' already holds a run (%s): continue it with 'zeroth %s --resume %s', "
                               "choose another --run-dir, or add --overwrite to delete that run and start over",
                               run_dir.c_str(), what.c_str(), command, run_dir.c_str()));
  }
  if (rank != 0) return;
  for (const char* name : {"checkpoints", "final", "cold_start", "metrics.jsonl", "tb"}) {
    const fs::path p = fs::path(run_dir) / name;
    fs::remove_all(p, ec);
    if (ec) throw RuntimeError(strformat("--overwrite: cannot remove %s: %s", p.c_str(), ec.message().c_str()));
  }
  ZT_LOG_WARN("%s: --overwrite: removed the previous run's checkpoints, final model and metrics in %s", command,
              run_dir.c_str());
}

std::vector<std::string> prune_checkpoints(const std::string& run_dir, int64_t keep, const std::string& marker) {
  std::vector<std::string> removed;
  if (keep <= 0) return removed;
  const auto all = complete_checkpoints(run_dir, marker);
  for (size_t i = 0; i + size_t(keep) < all.size(); ++i) {
    std::error_code ec;
    fs::remove_all(all[i].second, ec);
    if (ec)
      throw RuntimeError(strformat("cannot remove old checkpoint %s (train.keep_checkpoints): %s",
                                   all[i].second.c_str(), ec.message().c_str()));
    removed.push_back(all[i].second);
  }
  return removed;
}

void check_resume_steps(const std::string& checkpoint_dir, int64_t step, int64_t steps, const std::string& key) {
  if (step > steps)
    throw ConfigError(strformat("key '%s': expected at least %lld (%s is at step %lld), found %lld; "
                                "--set %s=N to continue the run", key.c_str(),
                                (long long)step, checkpoint_dir.c_str(), (long long)step, (long long)steps,
                                key.c_str()));
}

TrainerState read_trainer_state(const std::string& checkpoint_dir) {
  const std::string path = checkpoint_dir + "/trainer_state.json";
  std::ifstream in(path);
  if (!in) throw CheckpointError(strformat("%s: cannot open for reading", path.c_str()));
  nlohmann::json js;
  try {
    in >> js;
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(strformat("%s: invalid JSON: %s", path.c_str(), e.what()));
  }
  auto get_int = [&](const char* key) -> int64_t {
    if (!js.is_object() || !js.contains(key) || !js[key].is_number_integer() || js[key].get<int64_t>() < 0)
      throw CheckpointError(strformat("%s: key '%s': expected an integer >= 0, found %s", path.c_str(), key,
                                      js.is_object() && js.contains(key) ? js[key].dump().c_str() : "nothing"));
    return js[key].get<int64_t>();
  };
  if (get_int("format_version") != kTrainerStateVersion)
    throw CheckpointError(strformat("%s: key 'format_version': expected %d, found %lld", path.c_str(),
                                    kTrainerStateVersion, (long long)get_int("format_version")));
  TrainerState st;
  st.step = get_int("step");
  // checkpoints/step_N holds step N: another step means a copied or edited checkpoint.
  const long long dir_step = step_of_dir_name(fs::path(checkpoint_dir).filename().string());
  if (dir_step >= 0 && dir_step != st.step)
    throw CheckpointError(strformat("%s: key 'step': expected %lld (the directory's step), found %lld", path.c_str(),
                                    dir_step, (long long)st.step));
  st.cursor.epoch = get_int("data_epoch");
  st.cursor.position = get_int("data_position");
  if (!js.contains("stage") || !js["stage"].is_string())
    throw CheckpointError(strformat("%s: key 'stage': expected a string, found %s", path.c_str(),
                                    js.contains("stage") ? js["stage"].dump().c_str() : "nothing"));
  st.stage = js["stage"].get<std::string>();
  return st;
}

void load_optimizer_state(const std::string& checkpoint_dir, AdamW& optimizer) {
  const std::string path = checkpoint_dir + "/optimizer.safetensors";
  std::error_code ec;
  if (!fs::exists(path, ec)) {  // an expert-parallel checkpoint holds its state in parts
    const std::vector<std::string> parts = optimizer_parts(checkpoint_dir);
    if (!parts.empty()) {
      load_optimizer_parts(checkpoint_dir, parts, optimizer);
      return;
    }
  }
  load_optimizer_file(path, optimizer);
}

// The optimizer step count in a file's metadata ('adamw.step', a whole integer >= 0), or -1.
static long long metadata_step(const SafetensorsFile& f) {
  auto it = f.metadata().find("adamw.step");
  if (it == f.metadata().end()) return -1;
  size_t used = 0;
  long long step = -1;
  try {
    step = std::stoll(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  return used == it->second.size() ? step : -1;
}

// optimizer.safetensors: the moments as flat buffers of the whole model's layout (written
// without expert parallelism and ZeRO). A ZeRO-1 optimizer takes its pieces of them.
static void load_optimizer_file(const std::string& path, AdamW& optimizer) {
  SafetensorsFile f = SafetensorsFile::open(path);
  const Shape shape = {optimizer.layout_numel()};
  f.expect("adamw.m", DType::F32, shape);
  f.expect("adamw.v", DType::F32, shape);
  const long long step = metadata_step(f);
  if (step < 0) {
    auto it = f.metadata().find("adamw.step");
    throw CheckpointError(strformat("%s: metadata 'adamw.step': expected an integer >= 0, found %s", path.c_str(),
                                    it == f.metadata().end() ? "nothing" : ("'" + it->second + "'").c_str()));
  }
  if (!optimizer.sharded()) {
    AdamWState st;
    st.step = step;
    st.m = Tensor::view_of(const_cast<void*>(f.data("adamw.m")), shape, DType::F32);
    st.v = Tensor::view_of(const_cast<void*>(f.data("adamw.v")), shape, DType::F32);
    optimizer.load_state(st);
    return;
  }
  const char* m = static_cast<const char*>(f.data("adamw.m"));
  const char* v = static_cast<const char*>(f.data("adamw.v"));
  optimizer.load_state_by_name(step, [&](const MomentPiece& p) {
    const int64_t at = (p.offset + p.begin) * int64_t(sizeof(float));
    Tensor dm = p.m, dv = p.v;
    dm.copy_from_host(m + at, dm.nbytes());
    dv.copy_from_host(v + at, dv.nbytes());
  });
}

// ---- collective versions (expert parallelism) ----

namespace {

std::string optimizer_part_name(int part, int parts) {
  return strformat("optimizer-%05d-of-%05d.safetensors", part + 1, parts);
}

// A part of the optimizer state, by HF name: "adamw.m.<name>" / "adamw.v.<name>" for a
// whole parameter's moments, "adamw.m.<name>@<begin>" (1-D) for the part from element
// <begin> on that a ZeRO-1 rank holds. Expert parallelism: part q of the first expert
// group holds its experts (`experts_only`: q > 0) and, part 0, every other parameter.
// ZeRO-1: rank k of the data-parallel ranks writes part k with everything it owns. So a
// later run can pick its own pieces at any expert-parallel size, ZeRO stage or rank count.
void write_optimizer_part(const std::string& path, const AdamW& optimizer, bool experts_only) {
  SafetensorsWriter w;
  optimizer.for_each_piece([&](const MomentPiece& p) {
    if (experts_only && !p.expert) return;
    const std::string suffix = p.begin == 0 && p.m.numel() == p.numel ? std::string()
                                                                       : strformat("@%lld", (long long)p.begin);
    w.add("adamw.m." + *p.name + suffix, p.m);
    w.add("adamw.v." + *p.name + suffix, p.v);
  });
  w.set_metadata("adamw.step", std::to_string(optimizer.step_count()));
  w.write(path);
}

// The expert-parallel optimizer parts of a checkpoint: the files optimizer-*-of-K
// (every part of one K), or empty when there are none.
std::vector<std::string> optimizer_parts(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("optimizer-", 0) == 0 && n.size() > 30 && n.compare(n.size() - 12, 12, ".safetensors") == 0)
      found.push_back(n);
  }
  std::sort(found.begin(), found.end());
  if (found.empty()) return found;
  const int parts = std::atoi(found[0].c_str() + 19);
  for (int q = 0; q < parts; ++q)
    if (std::find(found.begin(), found.end(), optimizer_part_name(q, parts)) == found.end())
      throw CheckpointError(strformat("%s: expected %s (the optimizer state is in %d parts), found no such file",
                                      dir.c_str(), optimizer_part_name(q, parts).c_str(), parts));
  std::vector<std::string> out;
  for (int q = 0; q < parts; ++q) out.push_back(dir + "/" + optimizer_part_name(q, parts));
  return out;
}

// Reads this optimizer's moments, piece by piece, from the named parts (whole
// parameters or ZeRO-1 pieces, in any mix: see write_optimizer_part).
void load_optimizer_parts(const std::string& dir, const std::vector<std::string>& files, AdamW& optimizer) {
  std::vector<SafetensorsFile> fs_;
  for (const std::string& f : files) fs_.push_back(SafetensorsFile::open(f));
  long long step = -1;
  for (const SafetensorsFile& f : fs_) {
    auto it = f.metadata().find("adamw.step");
    const long long s = metadata_step(f);
    ZT_THROW_IF_NOT(s >= 0 && (step < 0 || s == step), CheckpointError,
                    "%s: metadata 'adamw.step': expected the same integer >= 0 in every part, found %s",
                    f.path().c_str(), it == f.metadata().end() ? "nothing" : ("'" + it->second + "'").c_str());
    step = s;
  }
  // "m"/"v" -> HF name -> the stored pieces of its moments.
  struct Src {
    int64_t begin, numel;
    bool whole;  // stored without "@<begin>": the parameter's every element
    const char* data;
    const std::string* file;
  };
  std::map<std::string, std::vector<Src>> index[2];
  for (const SafetensorsFile& f : fs_)
    for (const std::string& key : f.names()) {
      if (key.rfind("adamw.", 0) != 0 || key.size() < 9 || (key[6] != 'm' && key[6] != 'v') || key[7] != '.')
        continue;
      std::string name = key.substr(8);
      int64_t begin = 0;
      const size_t at = name.rfind('@');
      const bool whole = at == std::string::npos;
      if (!whole) {
        const std::string digits = name.substr(at + 1);
        ZT_THROW_IF_NOT(!digits.empty() && digits.size() <= 18 && digits.find_first_not_of("0123456789") == std::string::npos,
                        CheckpointError, "%s: tensor '%s': expected '<name>@<first element>'", f.path().c_str(), key.c_str());
        begin = std::stoll(digits);
        name.resize(at);
      }
      const SafetensorsInfo& info = f.info(key);
      ZT_THROW_IF_NOT(info.dtype == DType::F32, CheckpointError, "%s: tensor '%s': expected F32, found %s",
                      f.path().c_str(), key.c_str(), dtype_name(info.dtype));
      index[key[6] == 'm' ? 0 : 1][name].push_back(
          {begin, shape_numel(info.shape), whole, static_cast<const char*>(f.data(key)), &f.path()});
    }
  optimizer.load_state_by_name(step, [&](const MomentPiece& p) {
    for (int w = 0; w < 2; ++w) {
      const char* which = w == 0 ? "m" : "v";
      auto it = index[w].find(*p.name);
      ZT_THROW_IF_NOT(it != index[w].end(), CheckpointError,
                      "%s: the optimizer parts hold no 'adamw.%s.%s' (a checkpoint of another model?)", dir.c_str(),
                      which, p.name->c_str());
      const Tensor& dst = w == 0 ? p.m : p.v;
      const int64_t lo = p.begin, hi = p.begin + dst.numel();
      int64_t covered = 0;
      for (const Src& s : it->second) {
        ZT_THROW_IF_NOT(s.whole ? s.numel == p.numel : s.begin + s.numel <= p.numel, CheckpointError,
                        "%s: 'adamw.%s.%s' holds elements [%lld, %lld), the parameter has %lld (a checkpoint "
                        "of another model?)",
                        s.file->c_str(), which, p.name->c_str(), (long long)s.begin,
                        (long long)(s.begin + s.numel), (long long)p.numel);
        const int64_t a = std::max(lo, s.begin), b = std::min(hi, s.begin + s.numel);
        if (a >= b) continue;
        Tensor part = dst.narrow(0, a - lo, b - a);
        part.copy_from_host(s.data + (a - s.begin) * int64_t(sizeof(float)), size_t(b - a) * sizeof(float));
        covered += b - a;
      }
      ZT_THROW_IF_NOT(covered == hi - lo, CheckpointError,
                      "%s: the optimizer parts hold %lld of elements [%lld, %lld) of 'adamw.%s.%s' (parts "
                      "missing or overlapping)",
                      dir.c_str(), (long long)covered, (long long)lo, (long long)hi, which, p.name->c_str());
    }
  });
}

// Rank 0 makes `tmp`; the first expert group writes its weight parts (without expert
// parallelism rank 0 writes the model files), and, with `optimizer`, the optimizer parts
// are written (every rank its own under ZeRO-1, else the first expert group's); rank 0
// then writes the tokenizer, the index and config.json. Collective over groups.data;
// returns after the parts are written and rank 0 has finished the model files.
void write_parts(const std::string& tmp, const ModelConfig& config, const ParamSet& params,
                 const TokenizerFiles& tokenizer, const AdamW* optimizer, const ProcessGroups& groups) {
  Communicator& world = *groups.data;
  const int P = groups.expert_parallel;
  if (world.rank() == 0) fresh_dir(tmp);
  world.barrier();
  if (P == 1) {
    if (world.rank() == 0) write_model_files(tmp, config, params, tokenizer);
  } else if (world.rank() < P) {  // the first expert group: world ranks 0..P-1
    save_hf_weights_part(tmp, config, params, groups.expert_rank(), P);
  }
  if (optimizer && optimizer->sharded())
    write_optimizer_part(tmp + "/" + optimizer_part_name(world.rank(), world.size()), *optimizer, false);
  else if (optimizer && P > 1 && world.rank() < P)
    write_optimizer_part(tmp + "/" + optimizer_part_name(groups.expert_rank(), P), *optimizer,
                         groups.expert_rank() > 0);
  world.barrier();
  if (world.rank() == 0 && P > 1) {
    write_text(tmp + "/tokenizer.json", tokenizer.tokenizer_json);
    if (!tokenizer.tokenizer_config_json.empty())
      write_text(tmp + "/tokenizer_config.json", tokenizer.tokenizer_config_json);
    save_hf_parts_index(tmp, config, params, P);  // config.json last
  }
}

}  // namespace

void save_model_dir(const std::string& dir, const ModelConfig& config, const ParamSet& params,
                    const TokenizerFiles& tokenizer, const ProcessGroups& groups) {
  Communicator& world = *groups.data;
  if (groups.expert_parallel == 1) {
    if (world.rank() == 0) save_model_dir(dir, config, params, tokenizer);
  } else {
    write_parts(dir + ".tmp", config, params, tokenizer, nullptr, groups);
    if (world.rank() == 0) publish_dir(dir + ".tmp", dir);
  }
  world.barrier();
}

std::string save_train_checkpoint(const std::string& run_dir, const ModelConfig& config,
                                  const ParamSet& params, const TokenizerFiles& tokenizer,
                                  const AdamW& optimizer, const TrainerState& state,
                                  const ProcessGroups& groups) {
  Communicator& world = *groups.data;
  const std::string name = strformat("step_%lld", (long long)state.step);
  const std::string dir = run_dir + "/checkpoints/" + name;
  if (groups.expert_parallel == 1 && !optimizer.sharded()) {
    if (world.rank() == 0) save_train_checkpoint(run_dir, config, params, tokenizer, optimizer, state);
    world.barrier();
    return dir;
  }
  const std::string tmp = run_dir + "/checkpoints/." + name + ".tmp";
  write_parts(tmp, config, params, tokenizer, &optimizer, groups);
  if (world.rank() == 0) {
    write_trainer_state(tmp, state);
    publish_dir(tmp, dir);
  }
  world.barrier();
  return dir;
}

void load_optimizer_state(const std::string& checkpoint_dir, AdamW& optimizer,
                          const ProcessGroups& groups) {
  // Parts (written with expert parallelism or ZeRO-1) are read by name at any size; the
  // flat file of a run without them only fits the whole model's layout.
  ZT_THROW_IF_NOT(groups.expert_parallel == 1 || !fs::exists(checkpoint_dir + "/optimizer.safetensors"),
                  CheckpointError,
                  "%s: optimizer.safetensors was written with run.expert_parallel 1 (one flat buffer of "
                  "the whole model); resuming it with run.expert_parallel %d is not supported: resume with "
                  "1, or start a new run from the checkpoint's weights (model.init)",
                  checkpoint_dir.c_str(), groups.expert_parallel);
  load_optimizer_state(checkpoint_dir, optimizer);
}

}  // namespace zeroth
