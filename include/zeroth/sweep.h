// Hyperparameter sweeps of `zeroth train` (`zeroth sweep`, docs/sweeps.md): a sweep file
// (a base train config, fixed overrides, grid axes, zipped lists, random samples,
// constraints, the ranking metric) expanded into named trials, each validated by
// resolving the base config with its overrides; a plan directory (OUT/sweep.json,
// OUT/<trial>/config.yaml); executors that run the trials as child processes (locally or
// under launch/zeroth-local.sh) or as a Slurm job array; trial states from the files a
// run leaves (DONE, FAILED, RUNNING, checkpoints, metrics.jsonl); status/report tables.
//
// Owns: the sweep file format, expansion order and trial names, the constraint
// expression language, the plan files and completion markers, process management of
// trials, the report tables (console, CSV, Markdown).
// Must not: train (it runs `zeroth train` as a child process), or know what a config key
// means (load_train_config validates every trial).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "zeroth/config_node.h"

namespace zeroth {

// One swept parameter value: `yaml` is what --set receives (flow YAML), `label` the short
// text used in the trial name, `number` its value when numeric (for constraints).
struct SweepValue {
  std::string yaml;
  std::string label;
  bool is_number = false;
  bool is_bool = false;
  double number = 0.0;
};

// One trial: the swept keys in declaration order (grid axes, zip groups, random params).
struct SweepTrial {
  int index = 0;
  std::string name;  // filesystem-safe, unique, e.g. "kl_coef=0.001,clip_high=0.28"
  std::vector<std::pair<std::string, SweepValue>> params;
  // "key=yaml" for each param (the fixed `set:` overrides come first in SweepSpec::fixed).
  std::vector<std::string> overrides() const;
};

// `executor:` defaults of a sweep file (the command line wins).
struct SweepExecutorDefaults {
  std::string name = "local";  // local | mpirun | slurm
  int parallel = 0;            // trials at a time (0 = unset: local/mpirun 1; slurm: no array throttle)
  int np = 1;                  // ranks per trial (mpirun)
  std::vector<std::string> sbatch;  // extra #SBATCH options for the slurm array ("--nodes=4")
};

// A parsed sweep file.
struct SweepSpec {
  std::string path;  // the sweep file
  std::string base;  // the base train config, resolved against the sweep file's directory
  std::vector<std::string> fixed;  // `set:` as "key=yaml", in file order
  struct Axis {                    // a grid axis or one zip group (keys share one index)
    std::vector<std::string> keys;
    std::vector<std::vector<SweepValue>> values;  // [key][i]
    size_t size() const { return values.empty() ? 0 : values[0].size(); }
  };
  std::vector<Axis> axes;  // grid axes then zip groups, in file order
  struct RandomParam {
    std::string key;
    std::string kind;  // uniform | log_uniform | randint | choice
    double lo = 0, hi = 0;
    std::vector<SweepValue> choices;
  };
  int64_t random_count = 0;
  uint64_t random_seed = 0;
  std::vector<RandomParam> random;
  struct Constraint {
    std::string text;
    SourcePos pos;
  };
  std::vector<Constraint> constraints;
  std::string metric = "eval_accuracy";
  std::string mode = "max";  // max | min
  SweepExecutorDefaults executor;
};

// Reads a sweep file. Throws ConfigError "<file>:line:col: key 'axes.x': ..." for a
// malformed file (unknown top-level keys, lists of unequal length in a zip group, a bad
// random distribution, an unparsable constraint).
SweepSpec load_sweep_spec(const std::string& path);

// The trials in a deterministic order: the cartesian product of the axes (the first axis
// varies slowest) times the random samples (drawn in order from random.seed), minus those
// a constraint rejects. Constraint names are swept keys (or, where the key is not swept,
// the base config's value after `set:`). Throws ConfigError when no trial is left.
std::vector<SweepTrial> expand_sweep(const SweepSpec& spec, int* rejected = nullptr);

// Evaluates one constraint expression: numbers, 'strings', true/false, key names,
// + - * / ( ), < <= > >= == !=, and/or/not (also && || !). `lookup` returns false for an
// unknown name. Throws ConfigError (message without position) on syntax errors, unknown
// names and type errors.
struct SweepExprValue {
  enum class Kind { Number, Bool, String } kind = Kind::Number;
  double number = 0;
  bool boolean = false;
  std::string text;
};
bool eval_sweep_constraint(const std::string& expr,
                           const std::function<bool(const std::string&, SweepExprValue*)>& lookup);

// The plan of a sweep directory: the trials, each with the resolved train.steps.
struct SweepPlan {
  std::string sweep_file, base, out_dir, metric, mode;
  std::vector<std::string> fixed;
  struct Trial {
    std::string name;
    std::vector<std::pair<std::string, std::string>> params;  // key, yaml value
    std::vector<std::string> overrides;                        // fixed + params + run.*
    int64_t steps = 0;
  };
  std::vector<Trial> trials;
  int rejected = 0;  // trials dropped by constraints
};

// Expands the sweep, resolves every trial's config (base + fixed + params + run.name and
// run.run_dir = OUT/<name>) BEFORE anything is written (a ConfigError names the sweep file
// and the trial), then writes OUT/<name>/config.yaml for every trial that has not started
// and OUT/sweep.json. A trial that has started (metrics, checkpoints or DONE) under a
// different plan is a ConfigError (use another --out).
SweepPlan plan_sweep(const SweepSpec& spec, const std::string& out_dir);
// Reads OUT/sweep.json. Throws DataError.
SweepPlan read_sweep_plan(const std::string& out_dir);

// What a trial directory says about its run.
struct TrialState {
  std::string state;  // pending | running | interrupted | failed | done
  std::string detail;  // "exit 1", "signal 9", "pid 123 on host"
  bool has_checkpoint = false;  // a complete GRPO checkpoint (train --resume works)
  int64_t last_step = -1;       // last step in metrics.jsonl (-1: none)
};
TrialState read_trial_state(const std::string& trial_dir);

// How the trials run.
struct SweepRunOptions {
  std::string executor = "local";  // local | mpirun | slurm
  int parallel = 1;
  int np = 1;
  bool dry_run = false;
  int cores = 0;  // 0: the machine's
  // The program that is `zeroth` for the trials: argv prefix before "train ..." (default:
  // this executable). A non-empty `train_shell` (ZEROTH_SWEEP_TRAIN_CMD) is a shell command
  // prefix used instead: /bin/sh -c '<train_shell> "$@"' sh train ... (tests use it).
  std::string zeroth_bin;
  std::string train_shell;
  std::string launch_dir;  // launch/ of the checkout (default: found from zeroth_bin or cwd)
  std::vector<std::string> sbatch_options;  // extra #SBATCH options
  std::string sbatch_bin = "sbatch";
};

struct SweepRunResult {
  int done = 0, failed = 0, skipped = 0, started = 0;
  int stopped = 0;  // trials that stopped early with a checkpoint (exit 75; resumed next time)
  int signal = 0;   // the signal that stopped the sweep (local/mpirun), 0 = none
  std::vector<std::string> commands;  // what ran (or would run, --dry-run), one per trial
  std::string sbatch_script;          // slurm: the script written
};

// Runs the plan's trials that are not done: DONE is skipped, a trial with a complete
// checkpoint is resumed (`train --resume D`), any other starts fresh (`train --config
// D/config.yaml --run-dir D`). Local/mpirun: `parallel` children at a time with
// run.threads = cores / (parallel * np); each child's output goes to D/train.log; D/DONE
// (or D/FAILED) gets the exit status. A failure does not stop the other trials. Slurm:
// writes OUT/sweep.sbatch (a job array, one task per trial not done) and submits it with
// sbatch (not with dry_run). Progress goes to stdout.
SweepRunResult run_sweep(const SweepPlan& plan, const SweepRunOptions& options);

// `rel` ("launch/zeroth-local.sh", "scripts/plot-metrics.py") in the checkout: under
// $ZEROTH_ROOT, up to three directories above `bin` (build/zeroth), or the working
// directory; "" when not found.
std::string find_checkout_file(const std::string& rel, const std::string& bin);

// One row of `zeroth sweep status/report`.
struct SweepReportRow {
  int rank = 0;  // 1-based, 0 = no value of the metric
  std::string name;
  std::vector<std::pair<std::string, std::string>> params;
  TrialState state;
  int64_t steps = 0;                  // planned
  bool has_final = false, has_best = false;
  double final_value = 0, best_value = 0;
  int64_t best_step = -1;
  std::map<std::string, double> last;  // last value of every metric
};

struct SweepReport {
  std::string metric, mode, by;  // by: final | best
  std::vector<std::string> param_keys;
  std::vector<std::string> extra_metrics;  // reward_mean, accuracy, format_rate when present
  std::vector<SweepReportRow> rows;        // ranked (report) or in plan order (status)
};

// Reads every trial's state and metrics.jsonl. `metric` and `mode` "" = the plan's; `by`
// final|best ("" = final). `ranked`: sort by the metric, trials without it last.
SweepReport build_sweep_report(const std::string& out_dir, const std::string& metric,
                               const std::string& by, bool ranked, const std::string& mode = "");
std::string format_sweep_table(const SweepReport& report);  // console (aligned columns)
std::string format_sweep_csv(const SweepReport& report);
std::string format_sweep_markdown(const SweepReport& report);

}  // namespace zeroth
