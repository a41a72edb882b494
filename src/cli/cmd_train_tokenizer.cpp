// `zeroth train-tokenizer`: learns a byte-level BPE tokenizer from a corpus and writes it
// as a Hugging Face tokenizer.json (train_bpe_tokenizer, tokenizer.h). The CPU demo uses
// it to give its base model a vocabulary of the corpus's words (docs/demo.md).
// Must not: touch a model.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/io_util.h"
#include "cli/cli.h"
#include "zeroth/error.h"
#include "zeroth/tokenizer.h"

namespace zeroth {
namespace cli {

static const char kTrainTokenizerUsage[] =
    "usage: zeroth train-tokenizer --input FILE --out DIR [--vocab-size 1024]\n"
    "                              [--field F] [--pattern REGEX] [--special T1,T2,...]\n"
    "                              [--bos T] [--eos T] [--pad T] [--no-add-bos]\n"
    "                              [--min-frequency 2] [--force]\n"
    "\n"
    "  --input FILE        the corpus: one document per line (a .jsonl file: the --field\n"
    "                      string of each line)\n"
    "  --out DIR           writes DIR/tokenizer.json and DIR/tokenizer_config.json\n"
    "                      (created if missing); model.tokenizer or a model directory can\n"
    "                      then name it\n"
    "  --vocab-size N      the whole vocabulary: 256 byte tokens + merges + special tokens\n"
    "                      (default 1024); fewer when no pair is left to merge\n"
    "  --field F           .jsonl input: the text field (default text)\n"
    "  --pattern REGEX     the pre-tokenizer's Split regex (default: contractions, letter\n"
    "                      runs, single digits, symbol runs with a leading space, spaces)\n"
    "  --special LIST      special tokens, given the last ids in this order\n"
    "                      (default <|bos|>,<|eos|>,<|pad|>; '' for none)\n"
    "  --bos/--eos/--pad T which special token plays each role (defaults: the three above;\n"
    "                      '' for none)\n"
    "  --no-add-bos        do not prepend BOS when encoding with special tokens\n"
    "  --min-frequency N   never merge a pair seen fewer than N times (default 2)\n"
    "  --force             replace an existing DIR/tokenizer.json (without it, an error:\n"
    "                      a model directory's tokenizer must keep matching its weights)\n";

int cmd_train_tokenizer(const std::vector<std::string>& argv) {
  Args args("train-tokenizer", argv,
            {"input", "out", "vocab-size", "field", "pattern", "special", "bos", "eos", "pad",
             "no-add-bos", "min-frequency", "force"},
            {"no-add-bos", "force"});
  if (args.help()) {
    std::printf("%s", kTrainTokenizerUsage);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(strformat("unexpected argument '%s' (see 'zeroth train-tokenizer --help')",
                               args.positional()[0].c_str()));
  const std::string input = args.required("input");
  const std::string out = args.required("out");
  if (std::filesystem::exists(std::filesystem::path(out) / "tokenizer.json") && !args.has("force"))
    throw UsageError(strformat("--out %s already holds a tokenizer.json (a model directory's tokenizer must keep "
                               "matching its weights); add --force to replace it",
                               out.c_str()));
  BpeTrainOptions opt;
  opt.vocab_size = int32_t(parse_int_flag("vocab-size", args.get("vocab-size", "1024"), 1));
  opt.min_frequency = parse_int_flag("min-frequency", args.get("min-frequency", "2"), 1);
  if (args.has("pattern")) opt.pattern = args.get("pattern");
  if (args.has("special")) {
    opt.special_tokens.clear();
    std::stringstream ss(args.get("special"));
    for (std::string t; std::getline(ss, t, ',');) {
      if (t.empty())
        throw UsageError(strformat("--special '%s': expected comma-separated tokens, found an empty one",
                                   args.get("special").c_str()));
      opt.special_tokens.push_back(t);
    }
    // --special '' : no special tokens at all (then no BOS/EOS/PAD roles either).
    // Roles default to the first three of a custom list only when named.
    opt.bos_token = opt.eos_token = opt.pad_token = "";
  }
  if (args.has("bos")) opt.bos_token = args.get("bos");
  if (args.has("eos")) opt.eos_token = args.get("eos");
  if (args.has("pad")) opt.pad_token = args.get("pad");
  opt.add_bos = !args.has("no-add-bos") && !opt.bos_token.empty();

  io::check_input_file(input, "a text or JSONL corpus file");
  std::ifstream in(input, std::ios::binary);
  if (!in) throw DataError(strformat("%s: cannot open the corpus", input.c_str()));
  const bool jsonl = input.size() >= 6 && input.compare(input.size() - 6, 6, ".jsonl") == 0;
  const std::string field = args.get("field", "text");
  std::vector<std::string> docs;
  int64_t line_no = 0, bytes = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (jsonl) {
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      nlohmann::json j = io::parse_json_input<nlohmann::json>(line, strformat("%s:%lld", input.c_str(), (long long)line_no));
      if (!j.is_object() || !j.contains(field) || !j[field].is_string())
        throw DataError(strformat("%s:%lld: expected an object with a string \"%s\"", input.c_str(),
                                  (long long)line_no, field.c_str()));
      line = j[field].get<std::string>();
    }
    if (line.empty()) continue;
    bytes += int64_t(line.size());
    docs.push_back(std::move(line));
  }
  ZT_THROW_IF_NOT(!docs.empty(), DataError, "%s: no documents", input.c_str());
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  ZT_THROW_IF_NOT(!ec, DataError, "--out %s: cannot create the directory (%s)", out.c_str(),
                  ec.message().c_str());
  const BpeTrainResult r = train_bpe_tokenizer(docs, opt, out);
  std::fprintf(stderr,
               "zeroth train-tokenizer: %zu documents (%lld bytes, %lld pre-tokens, %lld distinct) -> "
               "%s/tokenizer.json: %d tokens (%lld merges + 256 bytes + %zu special)\n",
               docs.size(), (long long)bytes, (long long)r.pretokens, (long long)r.distinct_pretokens,
               out.c_str(), r.vocab_size, (long long)r.merges, opt.special_tokens.size());
  return 0;
}

}  // namespace cli
}  // namespace zeroth
