// Tests of config.h (the real Config and its run: section), write_resolved_config,
// docs/config.md being up to date, and the `zeroth config` command run as a process.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "zeroth/config.h"

using namespace zeroth;
namespace fs = std::filesystem;

static const std::string kData = ZEROTH_TEST_DATA_DIR "/config/data/";

static std::string read_all(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh empty directory under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("zeroth_config_test_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

TEST_CASE("Config: run section defaults, defaults chain and run_dir", "[config]") {
  Config c = load_config(kData + "run.yaml", {});
  CHECK(c.run.name == "exp1");
  CHECK(c.run.seed == 42);
  CHECK(c.run.threads == 2);
  CHECK(c.run.device == "cuda");
  CHECK(c.run.log_level == "debug");
  CHECK_FALSE(c.run.log_all_ranks);
  CHECK(c.run.run_dir == "runs/exp1");
  Config d = load_config(kData + "run.yaml", {"run.run_dir=/scratch/<name>/out", "run.log_all_ranks=true"});
  CHECK(d.run.run_dir == "/scratch/exp1/out");
  CHECK(d.run.log_all_ranks);
}

TEST_CASE("Config: errors in the run section", "[config]") {
  auto error_of = [](const std::string& file, const std::vector<std::string>& sets) -> std::string {
    try {
      load_config(file, sets);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  };
  CHECK(error_of(kData + "run_bad.yaml", {}) ==
        kData + "run_bad.yaml:4:3: key 'run.log_levle': unknown key; did you mean 'log_level'?");
  CHECK(error_of(kData + "run.yaml", {"run.sed=3"}) == "--set run.sed=3: key 'run.sed': unknown key; did you mean 'seed'?");
  CHECK(error_of(kData + "run.yaml", {"run.device=gpu"}) ==
        "--set run.device=gpu: key 'run.device': expected one of 'cpu', 'cuda', found 'gpu'; did you mean 'cpu'?");
  CHECK(error_of(kData + "run.yaml", {"run.threads=-2"}) ==
        "--set run.threads=-2: key 'run.threads': expected an integer >= 0, found -2");
  CHECK(error_of(kData + "run.yaml", {"run.name=a/b"}) ==
        "--set run.name=a/b: key 'run.name': expected a non-empty name without '/' (it names a directory), found 'a/b'");
  // A check on a whole section (rewards.math) blames the --set that changed a key in it,
  // not the line of a defaults file where the section starts; an unrelated --set is not blamed.
  const std::string demo = std::string(ZEROTH_SOURCE_DIR) + "/configs/demo/grpo.yaml";
  CHECK_THAT(error_of(demo, {"rewards.math.rel_tol=5"}),
             Catch::StartsWith("--set rewards.math.rel_tol=5: key 'rewards.math': "));
  CHECK_THAT(error_of(demo, {"rewards.format.think_open_in_prompt=false", "rewards.format.answer_open=<think>"}),
             Catch::StartsWith("--set rewards.format.answer_open=<think>: key 'rewards.format.answer_open'"));
}

TEST_CASE("write_resolved_config writes a config.yaml that loads back identically", "[config]") {
  TempDir tmp;
  Config c = load_config(kData + "run.yaml", {"run.seed=123456789012"});
  const std::string run_dir = (tmp.path / "runs" / "exp1").string();
  write_resolved_config(c, run_dir);
  const std::string written = read_all(run_dir + "/config.yaml");
  CHECK(written == dump_config_yaml(c));
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(run_dir)) files += e.path().filename() == "config.yaml" ? 1 : 100;
  CHECK(files == 1);  // no temporary file left behind
  Config back = load_config(run_dir + "/config.yaml", {});
  CHECK(dump_config_yaml(back) == written);
  CHECK(back.run.seed == 123456789012ULL);
  CHECK(back.run.run_dir == "runs/exp1");
  // Overwrites atomically.
  c.run.seed = 5;
  write_resolved_config(c, run_dir);
  CHECK(load_config(run_dir + "/config.yaml", {}).run.seed == 5);
  // A run directory that cannot be created is a RuntimeError naming it.
  std::ofstream(tmp.path / "plain_file") << "x";
  CHECK_THROWS_WITH(write_resolved_config(c, (tmp.path / "plain_file" / "sub").string()),
                    Catch::Contains("cannot create run directory") && Catch::Contains("plain_file/sub"));
}

TEST_CASE("docs/config.md contains the current generated reference", "[config]") {
  const std::string doc = read_all(ZEROTH_SOURCE_DIR "/docs/config.md");
  const std::string begin = "<!-- BEGIN GENERATED: scripts/update-config-docs.sh -->\n";
  const std::string end = "<!-- END GENERATED -->";
  size_t b = doc.find(begin), e = doc.find(end);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  REQUIRE(b < e);
  const std::string generated = doc.substr(b + begin.size(), e - b - begin.size());
  INFO("docs/config.md is out of date: run scripts/update-config-docs.sh (it pastes `zeroth config docs`)");
  CHECK(generated == config_docs_markdown());
}

// Runs the built `zeroth` with `args`; returns the exit code, output in *out.
static int run_zeroth(const std::string& args, std::string* out) {
  std::string cmd = std::string("'") + ZEROTH_BINARY + "' " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  out->clear();
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int status = ::pclose(p);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

TEST_CASE("zeroth config show/check/docs and its exit codes", "[config][cli]") {
  std::string out;
  CHECK(run_zeroth("config check --config '" + kData + "run.yaml'", &out) == 0);
  CHECK(out == "ok\n");
  CHECK(run_zeroth("config show --config '" + kData + "run.yaml' --set run.seed=9", &out) == 0);
  CHECK(out == dump_config_yaml(load_config(kData + "run.yaml", {"run.seed=9"})));
  CHECK(run_zeroth("config docs", &out) == 0);
  CHECK(out == config_docs_markdown());

  CHECK(run_zeroth("config check --config '" + kData + "run_bad.yaml'", &out) == 2);
  CHECK(out == "zeroth config: error: " + kData + "run_bad.yaml:4:3: key 'run.log_levle': unknown key; did you mean 'log_level'?\n");
  CHECK(run_zeroth("config show --config '" + kData + "run.yaml' --set run.sed=3", &out) == 2);
  CHECK(out == "zeroth config: error: --set run.sed=3: key 'run.sed': unknown key; did you mean 'seed'?\n");
  CHECK(run_zeroth("config check", &out) == 2);
  CHECK(out.find("missing required option '--config'") != std::string::npos);
  CHECK(run_zeroth("config frobnicate", &out) == 2);
  CHECK(out == "zeroth config: error: unknown action 'frobnicate' (expected show, check or docs)\n");
  CHECK(run_zeroth("config show x.yaml", &out) == 2);
  CHECK(out == "zeroth config: error: unexpected argument 'x.yaml' (the config file is given with --config FILE)\n");
}
