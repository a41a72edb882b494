// `zeroth config show|check|docs`: print the resolved configuration, validate it,
// or print the Markdown reference of every key.
// Must not: interpret config keys itself (zeroth/config.h does); errors propagate as
// ConfigError / UsageError and main() maps them to exit code 2.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "zeroth/config.h"
#include "zeroth/error.h"
#include "zeroth/prompt.h"

namespace zeroth {
namespace cli {

static const char kConfigUsage[] =
    "usage: zeroth config show  --config FILE [--set section.key=value ...]\n"
    "       zeroth config check --config FILE [--set section.key=value ...]\n"
    "       zeroth config docs\n"
    "\n"
    "  show   print the resolved configuration (defaults: chain merged, --set applied,\n"
    "         every key listed) as YAML\n"
    "  check  validate the configuration and print \"ok\"\n"
    "  docs   print the Markdown reference of every section and key\n"
    "\n"
    "--set takes a YAML value and may repeat; later ones win:\n"
    "  --set run.seed=7 --set run.device=cuda\n"
    "Errors (unknown key, wrong type, out of range) exit with code 2.\n";

int cmd_config(const std::vector<std::string>& argv) {
  Args args("config", argv, {"config", "set"}, {}, {"set"});
  if (args.help()) {
    std::printf("%s", kConfigUsage);
    return 0;
  }
  const auto& pos = args.positional();
  if (pos.empty())
    throw UsageError("expected an action: show, check or docs (see 'zeroth config --help')");
  if (pos.size() > 1)
    throw UsageError(strformat("unexpected argument '%s' (the config file is given with --config FILE)",
                               pos[1].c_str()));
  const std::string& action = pos[0];
  if (action == "docs") {
    if (args.has("config") || args.has("set"))
      throw UsageError("'config docs' takes no --config or --set");
    std::printf("%s", config_docs_markdown().c_str());
    return 0;
  }
  if (action != "show" && action != "check")
    throw UsageError(strformat("unknown action '%s' (expected show, check or docs)",
                               action.c_str()));
  Config config = load_config(args.required("config"), args.all("set"));
  // The prompt template is parsed where the rollout is built: here too, so that `check`
  // fails on what train/eval/generate would refuse.
  PromptTemplate(config.rollout.prompt_template, "key 'rollout.prompt_template'");
  if (action == "show") std::printf("%s", dump_config_yaml(config).c_str());
  else std::printf("ok\n");
  return 0;
}

}  // namespace cli
}  // namespace zeroth
