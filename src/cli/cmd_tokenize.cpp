// `zeroth tokenize`: text <-> token ids for JSONL files with a model's tokenizer.
// Encoding: each {"text": ...} line gets "ids"; with --decode, each {"ids": [...]} line
// gets "text". Other keys are kept, in order. Must not: load a model or sample.
// Errors: a bad line is a DataError naming file:line (every line is checked before the
// output is written, and the output appears atomically).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/io_util.h"
#include "cli/cli.h"
#include "zeroth/error.h"
#include "zeroth/tokenizer.h"

namespace zeroth {
namespace cli {

static const char kTokenizeUsage[] =
    "usage: zeroth tokenize --tokenizer PATH --input FILE.jsonl --output OUT.jsonl\n"
    "                       [--decode] [--no-special]\n"
    "\n"
    "  --tokenizer PATH   tokenizer.json, or a model directory holding one\n"
    "  --input FILE       JSONL: {\"text\": \"...\"} per line (or {\"ids\": [...]} with --decode);\n"
    "                     other keys are kept\n"
    "  --output OUT       JSONL: each line with \"ids\" added (or \"text\" with --decode)\n"
    "  --decode           ids -> text instead of text -> ids\n"
    "  --no-special       encoding: do not add the tokenizer's BOS/EOS;\n"
    "                     decoding: drop special tokens from the text\n";

int cmd_tokenize(const std::vector<std::string>& argv) {
  Args args("tokenize", argv, {"tokenizer", "input", "output", "decode", "no-special"},
            {"decode", "no-special"});
  if (args.help()) {
    std::printf("%s", kTokenizeUsage);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(strformat("unexpected argument '%s' (see 'zeroth tokenize --help')",
                               args.positional()[0].c_str()));
  const std::string tok_path = args.required("tokenizer");
  const std::string input = args.required("input");
  const std::string output = args.required("output");
  io::check_input_file(input, "a JSONL file");
  io::check_output_file(output, "output");
  const bool decode = args.has("decode"), no_special = args.has("no-special");
  std::unique_ptr<Tokenizer> tok = load_tokenizer(tok_path);
  const int64_t vocab = tok->vocab_size();

  std::ifstream in(input);
  if (!in) throw DataError(strformat("%s: cannot open for reading", input.c_str()));
  std::vector<std::string> lines;
  std::string text;
  for (int64_t lineno = 1; std::getline(in, text); ++lineno) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = strformat("%s:%lld", input.c_str(), (long long)lineno);
    nlohmann::ordered_json obj = io::parse_json_input<nlohmann::ordered_json>(text, where);
    const char* key = decode ? "ids" : "text";
    if (!obj.is_object() || !obj.contains(key))
      throw DataError(strformat("%s: expected an object with key \"%s\", found %s", where.c_str(),
                                key, obj.is_object() ? "an object without it" : obj.type_name()));
    if (decode) {
      const auto& a = obj["ids"];
      if (!a.is_array())
        throw DataError(strformat("%s: \"ids\": expected an array of token ids, found %s",
                                  where.c_str(), a.type_name()));
      std::vector<int32_t> ids;
      for (size_t i = 0; i < a.size(); ++i) {
        if (!a[i].is_number_integer() || a[i].get<int64_t>() < 0 || a[i].get<int64_t>() >= vocab)
          throw DataError(strformat("%s: \"ids\"[%zu]: expected an integer in [0, %lld), found %s",
                                    where.c_str(), i, (long long)vocab, a[i].dump().c_str()));
        ids.push_back(int32_t(a[i].get<int64_t>()));
      }
      obj["text"] = tok->decode(ids, no_special);
    } else {
      const auto& t = obj["text"];
      if (!t.is_string())
        throw DataError(strformat("%s: \"text\": expected a string, found %s", where.c_str(),
                                  t.type_name()));
      try {
        obj["ids"] = tok->encode(t.get<std::string>(), !no_special);
      } catch (const DataError& e) {
        throw DataError(strformat("%s: \"text\": %s", where.c_str(), e.what()));
      }
    }
    lines.push_back(obj.dump());
  }

  io::write_file_atomic(output, [&](std::ostream& out) {
    for (const std::string& l : lines) out << l << '\n';
  });
  std::fprintf(stderr, "zeroth tokenize: %zu lines %s -> %s\n", lines.size(),
               decode ? "decoded" : "encoded", output.c_str());
  return 0;
}

}  // namespace cli
}  // namespace zeroth
