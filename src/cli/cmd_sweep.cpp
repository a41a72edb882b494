// `zeroth sweep`: run a hyperparameter sweep of `zeroth train` (grid, zip, random search)
// from one sweep file, locally, under mpirun or as a Slurm job array; `zeroth sweep
// status DIR` and `zeroth sweep report DIR` tabulate and rank the trials (docs/sweeps.md).
// Must not: contain sweep logic (src/train/sweep_*.cpp, zeroth/sweep.h).
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "zeroth/error.h"
#include "zeroth/run_stop.h"
#include "zeroth/sweep.h"

namespace zeroth {
namespace cli {

namespace fs = std::filesystem;

static const char kSweepUsage[] =
    "usage: zeroth sweep --config SWEEP.yaml --out DIR [--executor local|mpirun|slurm]\n"
    "                    [--parallel N] [--np K] [--dry-run]\n"
    "       zeroth sweep status DIR\n"
    "       zeroth sweep report DIR [--metric M] [--mode max|min] [--by final|best] [--csv F]\n"
    "                           [--md F] [--plot F.png]\n"
    "\n"
    "Runs `zeroth train` once per trial of a sweep file (docs/sweeps.md): a base train\n"
    "config, fixed `set:` overrides, grid `axes:`, `zip:` groups, `random:` samples and\n"
    "`constraints:`. Every trial's config is resolved (and checked) before anything runs;\n"
    "DIR/<trial>/ gets its config.yaml and run, DIR/sweep.json the plan.\n"
    "\n"
    "  --config S      the sweep file\n"
    "  --out DIR       the sweep directory (running the same sweep again skips finished\n"
    "                  trials and resumes interrupted ones from their checkpoints)\n"
    "  --executor E    local: child processes on this machine (default, or executor.name);\n"
    "                  mpirun: each trial under launch/zeroth-local.sh -np K;\n"
    "                  slurm: write DIR/sweep.sbatch (a job array, one task per trial) and\n"
    "                  submit it with sbatch\n"
    "  --parallel N    trials at a time (local, mpirun; default 1); each gets\n"
    "                  run.threads = cores / (N x K). slurm: the array's throttle (%N)\n"
    "  --np K          ranks per trial (mpirun; default 1)\n"
    "  --dry-run       write the plan, print the commands (slurm: the script), run nothing\n"
    "\n"
    "status: every trial's values, state (pending, running, interrupted, failed, done) and\n"
    "last step. report: the same ranked by the sweep's metric (default eval_accuracy, mode\n"
    "max; --metric, --mode to change), ranked by the final value (--by best: the best\n"
    "value of any step); --csv and --md write the table,\n"
    "--plot overlays the trials' curves with scripts/plot-metrics.py (needs matplotlib).\n"
    "\n"
    "ZEROTH_SWEEP_TRAIN_CMD, when set, is a shell command run instead of `zeroth` (and the\n"
    "launcher) for each trial: `$ZEROTH_SWEEP_TRAIN_CMD train ...` (for tests).\n"
    "Exit status: 0 when every trial is done or was submitted, 1 when a trial failed, 75 when\n"
    "the sweep or a trial was stopped early (SIGINT/SIGTERM/SIGUSR1: the running trials stop at\n"
    "their next step with a checkpoint; run the same command again to continue).\n";

static int positive(const std::string& flag, const std::string& v, int min) {
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || x < min || x > 100000)
    throw UsageError(strformat("--%s: expected an integer >= %d, found '%s'", flag.c_str(), min, v.c_str()));
  return static_cast<int>(x);
}

static void write_out(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw RuntimeError(strformat("cannot write '%s'", path.c_str()));
  std::printf("wrote %s\n", path.c_str());
}

// scripts/plot-metrics.py over every trial's metrics.jsonl; returns its exit status.
static int plot(const SweepReport& r, const std::string& out_dir, const std::string& png) {
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const std::string script = find_checkout_file("scripts/plot-metrics.py", self);
  if (script.empty()) {
    std::printf("note: scripts/plot-metrics.py not found (set ZEROTH_ROOT to the checkout); no plot written\n");
    return 0;
  }
  std::string python = "python3";
  if (const char* p = std::getenv("ZEROTH_PYTHON")) {
    python = p;
  } else if (::access("/usr/bin/python3", X_OK) == 0) {
    python = "/usr/bin/python3";
  }
  std::vector<std::string> argv = {python, script};
  const SweepPlan plan = read_sweep_plan(out_dir);
  size_t files = 0;
  for (const auto& row : r.rows) {
    const std::string f = plan.out_dir + "/" + row.name + "/metrics.jsonl";
    if (fs::exists(f)) {
      argv.push_back(f);
      ++files;
    }
  }
  if (files == 0) {
    std::printf("note: no trial has a metrics.jsonl yet; no plot written\n");
    return 0;
  }
  std::string keys = "reward_mean,accuracy,format_rate," + r.metric;
  argv.insert(argv.end(), {"-o", png, "--keys", keys, "--title", "sweep " + plan.out_dir});
  std::vector<char*> a;
  for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) throw RuntimeError(strformat("fork: %s", std::strerror(errno)));
  if (pid == 0) {
    ::execvp(a[0], a.data());
    std::fprintf(stderr, "cannot run '%s': %s\n", a[0], std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  if (rc == 0) {
    std::printf("wrote %s\n", png.c_str());
  } else if (rc == 3) {
    std::printf("note: matplotlib is not installed for %s; no plot written (apt-get install "
                "python3-matplotlib)\n", python.c_str());
  } else {
    std::fprintf(stderr, "zeroth sweep: warning: %s exited with status %d; no plot written\n", script.c_str(), rc);
  }
  return rc;
}

static int sweep_status_or_report(bool report, const std::vector<std::string>& argv) {
  const char* name = report ? "sweep report" : "sweep status";
  Args args(name, argv, report ? std::vector<std::string>{"metric", "mode", "by", "csv", "md", "plot"}
                               : std::vector<std::string>{"metric"});
  if (args.help()) {
    std::printf("%s", kSweepUsage);
    return 0;
  }
  if (args.positional().size() != 1)
    throw UsageError(strformat("expected one sweep directory (see 'zeroth sweep --help')"));
  const std::string dir = args.positional()[0];
  const SweepReport r = build_sweep_report(dir, args.get("metric"), args.get("by"), report, args.get("mode"));
  std::printf("%s", format_sweep_table(r).c_str());
  if (args.has("csv")) write_out(args.get("csv"), format_sweep_csv(r));
  if (args.has("md")) write_out(args.get("md"), format_sweep_markdown(r));
  if (args.has("plot")) plot(r, dir, args.get("plot"));
  return 0;
}

int cmd_sweep(const std::vector<std::string>& argv) {
  if (!argv.empty() && (argv[0] == "status" || argv[0] == "report"))
    return sweep_status_or_report(argv[0] == "report", std::vector<std::string>(argv.begin() + 1, argv.end()));
  Args args("sweep", argv, {"config", "out", "executor", "parallel", "np"}, {"dry-run"});
  if (args.help()) {
    std::printf("%s", kSweepUsage);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(strformat("unexpected argument '%s' (see 'zeroth sweep --help')", args.positional()[0].c_str()));
  const SweepSpec spec = load_sweep_spec(args.required("config"));
  const std::string out = args.required("out");

  SweepRunOptions o;
  o.executor = args.get("executor", spec.executor.name);
  o.parallel = args.has("parallel") ? positive("parallel", args.get("parallel"), 1) : spec.executor.parallel;
  if (o.executor != "slurm" && o.parallel < 1) o.parallel = 1;
  o.np = args.has("np") ? positive("np", args.get("np"), 1) : spec.executor.np;
  o.dry_run = args.has("dry-run");
  o.sbatch_options = spec.executor.sbatch;
  if (const char* cmd = std::getenv("ZEROTH_SWEEP_TRAIN_CMD")) o.train_shell = cmd;
  if (const char* sb = std::getenv("ZEROTH_SBATCH")) o.sbatch_bin = sb;
  if (o.executor != "local" && o.executor != "mpirun" && o.executor != "slurm")
    throw UsageError(strformat("--executor: expected local, mpirun or slurm, found '%s'", o.executor.c_str()));

  const SweepPlan plan = plan_sweep(spec, out);
  std::printf("zeroth sweep: %zu trial(s) in %s (%d rejected by constraints); executor %s\n", plan.trials.size(),
              plan.out_dir.c_str(), plan.rejected, o.executor.c_str());
  std::fflush(stdout);
  const SweepRunResult r = run_sweep(plan, o);
  if (o.dry_run || o.executor == "slurm") return 0;
  std::printf("zeroth sweep: %d done, %d failed%s (%zu trials); 'zeroth sweep report %s' ranks them\n", r.done,
              r.failed, r.stopped ? strformat(", %d stopped with a checkpoint", r.stopped).c_str() : "",
              plan.trials.size(), out.c_str());
  if (r.failed > 0) return 1;
  if (r.signal || r.stopped) {
    std::printf("zeroth sweep: stopped early; run the same command again to continue\n");
    return kExitStopped;
  }
  return 0;
}

}  // namespace cli
}  // namespace zeroth
