// The run configuration: one typed struct per YAML section, and the functions that
// load, dump, write and document it.
//
// A config file is YAML; it may extend others with `defaults: [base.yaml, ...]`
// (relative to the file; later files win, the file itself wins over its defaults)
// and `--set section.key=value` overrides it from the command line. Every error
// names file:line:column, the key, what was expected and what was found.
//
// Adding a section (e.g. `grpo:`):
//   1. define `struct GrpoConfig { ...fields with defaults...; template <class V>
//      void visit(V& v) { v.field("kl_coef", kl_coef, "...").min(0); ... } };`
//      (optionally `void validate() const` for cross-field checks, throwing
//      ConfigError that names the keys, and `void finalize()` for derived defaults);
//   2. add the member `GrpoConfig grpo;` to Config and one line to Config::visit:
//      `v.field("grpo", grpo, "GRPO algorithm");`
//   3. run scripts/update-config-docs.sh to regenerate the reference in docs/config.md.
// Adding a key is step 1's one `v.field` line plus step 3. See config_reflect.h for
// the supported types and constraints.
//
// Owns: the sections and the Config-level API. Must not: parse YAML by hand or
// validate keys outside `visit`/`validate` (config_reflect.h does it from the list).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "zeroth/config_reflect.h"

namespace zeroth {

// `run:` what the run is called, where it writes, how it logs, where it runs.
struct RunConfig {
  std::string name = "run";
  uint64_t seed = 1;
  std::string device = "cpu";
  int threads = 0;
  std::string log_level = "info";
  bool log_all_ranks = false;
  std::string run_dir = "runs/<name>";

  template <class V>
  void visit(V& v) {
    v.field("name", name, "Run name, used in logs and in the default run directory");
    v.field("seed", seed, "Master seed from which every RNG stream is derived").min(0);
    v.field("device", device, "Where ops run").one_of({"cpu", "cuda"});
    v.field("threads", threads, "CPU threads per process (0 = all cores)").min(0);
    v.field("log_level", log_level, "Lowest level of log line printed")
        .one_of({"debug", "info", "warn", "error"});
    v.field("log_all_ranks", log_all_ranks, "Log on every rank, not only rank 0");
    v.field("run_dir", run_dir,
            "Directory for checkpoints, logs and the resolved config.yaml; '<name>' is replaced by run.name");
  }
  // Replaces "<name>" in run_dir by the run name.
  void finalize();
  // The name must be non-empty and usable as a directory name.
  void validate() const;
};

// The whole configuration: one member per section.
struct Config {
  RunConfig run;

  template <class V>
  void visit(V& v) {
    v.field("run", run, "Run identity, logging and placement");
  }
};

// Loads `path` with its `defaults:` chain, applies `overrides` ("section.key=value",
// in order) and checks every key. Throws ConfigError.
Config load_config(const std::string& path, const std::vector<std::string>& overrides);

// Every key (defaults included) as YAML; load_config of it gives the same Config.
std::string dump_config_yaml(const Config& config);

// Writes dump_config_yaml(config) to `run_dir`/config.yaml atomically (a temporary
// file in run_dir, then rename), creating run_dir. Throws RuntimeError on I/O failure.
void write_resolved_config(const Config& config, const std::string& run_dir);

// The Markdown reference of every section and key (the generated part of docs/config.md).
std::string config_docs_markdown();

}  // namespace zeroth
