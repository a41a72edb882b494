// sweep.h: the plan of a sweep directory (every trial validated by resolving its train
// config, OUT/<trial>/config.yaml, OUT/sweep.json) and the state of a trial read from the
// files in its directory (DONE, FAILED, RUNNING, checkpoints, metrics.jsonl).
// Must not: start processes (sweep_exec.cpp does).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "zeroth/error.h"
#include "zeroth/config.h"
#include "zeroth/grpo_trainer.h"
#include "zeroth/sweep.h"

namespace zeroth {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

// A YAML single-quoted scalar (so names with ',' '=' and paths stay one string).
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

void write_text_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + strformat(".tmp.%ld", static_cast<long>(::getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw RuntimeError(strformat("cannot write '%s'", tmp.c_str()));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw RuntimeError(strformat("cannot rename '%s' to '%s': %s", tmp.c_str(), path.c_str(), std::strerror(err)));
  }
}

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// A trial has started once it has left anything a run writes.
bool trial_started(const std::string& dir) {
  return fs::exists(dir + "/metrics.jsonl") || fs::exists(dir + "/checkpoints") || fs::exists(dir + "/DONE") ||
         fs::exists(dir + "/FAILED");
}

std::string hostname() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

}  // namespace

SweepPlan plan_sweep(const SweepSpec& spec, const std::string& out_dir) {
  SweepPlan plan;
  plan.sweep_file = spec.path;
  plan.base = spec.base;
  plan.out_dir = fs::absolute(out_dir).lexically_normal().string();
  while (plan.out_dir.size() > 1 && plan.out_dir.back() == '/') plan.out_dir.pop_back();
  plan.metric = spec.metric;
  plan.mode = spec.mode;
  plan.fixed = spec.fixed;
  const std::vector<SweepTrial> trials = expand_sweep(spec, &plan.rejected);

  // Resolve every trial before anything is written.
  std::vector<std::string> yaml;
  for (const auto& t : trials) {
    SweepPlan::Trial pt;
    pt.name = t.name;
    for (const auto& kv : t.params) pt.params.emplace_back(kv.first, kv.second.yaml);
    pt.overrides = spec.fixed;
    for (const auto& o : t.overrides()) pt.overrides.push_back(o);
    const std::string dir = plan.out_dir + "/" + t.name;
    pt.overrides.push_back("run.name=" + quoted(t.name));
    pt.overrides.push_back("run.run_dir=" + quoted(dir));
    try {
      yaml.push_back(dump_config_yaml(load_config(spec.base, pt.overrides)));
      // train.steps from the resolved text (independent of the config struct's layout).
      const ConfigNode tree = parse_config_yaml(yaml.back(), dir + "/config.yaml");
      const ConfigNode::Entry* train = tree.find("train");
      const ConfigNode::Entry* steps = train ? train->value.find("steps") : nullptr;
      if (steps) pt.steps = std::strtoll(steps->value.scalar.c_str(), nullptr, 10);
    } catch (const ConfigError& e) {
      throw ConfigError(strformat("%s: trial %d '%s' (base %s): %s", spec.path.c_str(), t.index, t.name.c_str(),
                                  spec.base.c_str(), e.what()));
    }
    plan.trials.push_back(std::move(pt));
  }

  // A started trial must keep its overrides: a changed sweep needs another directory.
  if (fs::exists(plan.out_dir + "/sweep.json")) {
    SweepPlan old;
    try {
      old = read_sweep_plan(plan.out_dir);
    } catch (const DataError&) {
      old = SweepPlan{};
    }
    for (const auto& t : plan.trials) {
      for (const auto& o : old.trials) {
        if (o.name != t.name || o.overrides == t.overrides) continue;
        if (trial_started(plan.out_dir + "/" + t.name))
          throw ConfigError(strformat("%s: trial '%s' has already run in %s with other settings (the sweep file "
                                      "or its base changed); use another --out or remove that trial's directory",
                                      spec.path.c_str(), t.name.c_str(), plan.out_dir.c_str()));
      }
    }
    // One sweep per directory: a started trial of the sweep there must stay in the plan
    // (a new sweep.json without it would hide it from status and report).
    for (const auto& o : old.trials) {
      bool kept = false;
      for (const auto& t : plan.trials) kept = kept || t.name == o.name;
      if (!kept && trial_started(plan.out_dir + "/" + o.name))
        throw ConfigError(strformat("%s: %s holds another sweep (its trial '%s' has run and is not in this one); a "
                                    "sweep directory holds one sweep: use another --out",
                                    spec.path.c_str(), plan.out_dir.c_str(), o.name.c_str()));
    }
  }

  std::error_code ec;
  fs::create_directories(plan.out_dir, ec);
  if (ec) throw RuntimeError(strformat("cannot create '%s': %s", plan.out_dir.c_str(), ec.message().c_str()));
  ojson js;
  js["sweep_file"] = fs::absolute(spec.path).lexically_normal().string();
  js["base"] = fs::absolute(spec.base).lexically_normal().string();
  js["out_dir"] = plan.out_dir;
  js["metric"] = plan.metric;
  js["mode"] = plan.mode;
  js["fixed"] = plan.fixed;
  js["rejected_by_constraints"] = plan.rejected;
  js["trials"] = ojson::array();
  for (size_t i = 0; i < plan.trials.size(); ++i) {
    const auto& t = plan.trials[i];
    const std::string dir = plan.out_dir + "/" + t.name;
    fs::create_directories(dir, ec);
    if (ec) throw RuntimeError(strformat("cannot create '%s': %s", dir.c_str(), ec.message().c_str()));
    if (!trial_started(dir)) write_text_atomic(dir + "/config.yaml", yaml[i]);
    ojson jt;
    jt["index"] = i;
    jt["name"] = t.name;
    jt["params"] = ojson::array();
    for (const auto& kv : t.params) jt["params"].push_back({kv.first, kv.second});
    jt["overrides"] = t.overrides;
    jt["steps"] = t.steps;
    js["trials"].push_back(jt);
  }
  write_text_atomic(plan.out_dir + "/sweep.json", js.dump(2) + "\n");
  return plan;
}

SweepPlan read_sweep_plan(const std::string& out_dir) {
  const std::string path = out_dir + "/sweep.json";
  std::ifstream in(path);
  if (!in) throw DataError(strformat("%s: cannot read the sweep plan (is '%s' a sweep directory?)", path.c_str(),
                                     out_dir.c_str()));
  SweepPlan plan;
  try {
    ojson js = ojson::parse(in);
    plan.sweep_file = js.at("sweep_file").get<std::string>();
    plan.base = js.at("base").get<std::string>();
    plan.out_dir = fs::absolute(out_dir).lexically_normal().string();
    while (plan.out_dir.size() > 1 && plan.out_dir.back() == '/') plan.out_dir.pop_back();
    plan.metric = js.at("metric").get<std::string>();
    plan.mode = js.at("mode").get<std::string>();
    plan.fixed = js.at("fixed").get<std::vector<std::string>>();
    plan.rejected = js.value("rejected_by_constraints", 0);
    for (const auto& jt : js.at("trials")) {
      SweepPlan::Trial t;
      t.name = jt.at("name").get<std::string>();
      for (const auto& kv : jt.at("params")) t.params.emplace_back(kv.at(0).get<std::string>(), kv.at(1).get<std::string>());
      t.overrides = jt.at("overrides").get<std::vector<std::string>>();
      t.steps = jt.at("steps").get<int64_t>();
      if (t.name.empty() || t.name.find('/') != std::string::npos || t.name == "." || t.name == "..")
        throw DataError("bad trial name '" + t.name + "'");
      plan.trials.push_back(std::move(t));
    }
  } catch (const nlohmann::json::exception& e) {
    throw DataError(strformat("%s: not a sweep plan: %s", path.c_str(), e.what()));
  } catch (const DataError& e) {
    throw DataError(strformat("%s: %s", path.c_str(), e.what()));
  }
  return plan;
}

TrialState read_trial_state(const std::string& dir) {
  TrialState s;
  s.has_checkpoint = !latest_grpo_checkpoint(dir).empty();
  {
    std::ifstream in(dir + "/metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      try {
        auto j = nlohmann::json::parse(line);
        if (j.contains("step") && j["step"].is_number()) s.last_step = j["step"].get<int64_t>();
      } catch (const nlohmann::json::exception&) {
        // a line cut short by a crash
      }
    }
  }
  if (fs::exists(dir + "/DONE")) {
    s.state = "done";
    s.detail = first_line(dir + "/DONE");
    return s;
  }
  if (fs::exists(dir + "/RUNNING")) {
    // "host pid": alive when on this host and the process exists; on another host
    // (a Slurm node) it cannot be checked from here and counts as running.
    std::istringstream in(first_line(dir + "/RUNNING"));
    std::string host;
    long pid = 0;
    in >> host >> pid;
    const bool here = host == hostname();
    const bool alive = !here || (pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM));
    if (alive) {
      s.state = "running";
      s.detail = strformat("pid %ld on %s", pid, host.c_str());
      return s;
    }
  }
  if (fs::exists(dir + "/FAILED")) {
    s.state = "failed";
    s.detail = first_line(dir + "/FAILED");
  } else if (s.last_step >= 0 || s.has_checkpoint) {
    s.state = "interrupted";
  } else {
    s.state = "pending";
  }
  return s;
}

}  // namespace zeroth
