// `zeroth sft`: supervised fine-tuning on prompt/response JSONL (loss on response
// tokens only), the R1 cold-start stage. Flags and run setup are those of
// `zeroth pretrain` (run_lm_command in cmd_pretrain.cpp). Must not: contain training
// logic (src/train does).
#include <string>
#include <vector>

#include "cli/cli.h"
#include "zeroth/train.h"

namespace zeroth {
namespace cli {

int run_lm_command(LmStage stage, const std::vector<std::string>& argv);  // cmd_pretrain.cpp

int cmd_sft(const std::vector<std::string>& args) { return run_lm_command(LmStage::Sft, args); }

}  // namespace cli
}  // namespace zeroth
