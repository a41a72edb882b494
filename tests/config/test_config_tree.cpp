// Tests of config_node.h: YAML parsing with positions, defaults chains (relative
// paths, order, cycles, missing files), merge rules, --set overrides, emitting,
// and key suggestions. Fixtures live in tests/config/data.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_structs.h"
#include "zeroth/config_node.h"

using namespace zeroth;
using zeroth::test::TrainFile;

static const std::string kData = ZEROTH_TEST_DATA_DIR "/config/data/";

template <class F>
static std::string error_of(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_CASE("parse_config_yaml records 1-based positions of keys and values", "[config]") {
  ConfigNode root = parse_config_yaml("a:\n  b: 1\n  c: [x, \"y\"]\n", "t.yaml");
  REQUIRE(root.kind == ConfigNode::Kind::Map);
  const ConfigNode::Entry* a = root.find("a");
  REQUIRE(a != nullptr);
  CHECK(a->key_pos.str() == "t.yaml:1:1");
  const ConfigNode::Entry* b = a->value.find("b");
  REQUIRE(b != nullptr);
  CHECK(b->key_pos.str() == "t.yaml:2:3");
  CHECK(b->value.pos.str() == "t.yaml:2:6");
  CHECK(b->value.scalar == "1");
  const ConfigNode& c = a->value.find("c")->value;
  REQUIRE(c.items.size() == 2);
  CHECK(c.items[1].pos.str() == "t.yaml:3:10");
  CHECK_FALSE(c.items[0].quoted);
  CHECK(c.items[1].quoted);
}

TEST_CASE("YAML syntax errors and duplicate keys become ConfigError with file:line", "[config]") {
  CHECK(error_of([] { parse_config_yaml("a:\n  b: 1\n c: [\n", "bad.yaml"); }) ==
        "bad.yaml:3:2: YAML syntax error: end of map not found");
  CHECK(error_of([] { parse_config_yaml("a:\n  b: 1\n  b: 2\n", "dup.yaml"); }) ==
        "dup.yaml:3:3: key 'a.b': key given twice (first at line 2)");
}

TEST_CASE("defaults chains merge in order, relative to the naming file", "[config]") {
  TrainFile f = load_config_as<TrainFile>(kData + "top.yaml", {});
  CHECK(f.train.lr == 0.5);       // other.yaml, after sub/mid.yaml
  CHECK(f.train.steps == 200);    // sub/mid.yaml over ../base.yaml
  CHECK(f.train.name == "top");   // the file itself wins
  CHECK(f.train.tags == std::vector<std::string>{"c"});  // lists replace, not append

  TrainFile r = load_config_as<TrainFile>(kData + "top_reversed.yaml", {});
  CHECK(r.train.lr == 0.1);  // base.yaml (via sub/mid.yaml) now comes after other.yaml
  CHECK(r.train.name == "base");

  ConfigNode tree = load_config_tree(kData + "top.yaml");
  CHECK(tree.find("defaults") == nullptr);
  // Every value remembers the file it came from.
  const ConfigNode& train = tree.find("train")->value;
  CHECK(train.find("lr")->value.pos.str() == kData + "other.yaml:3:7");
  CHECK(train.find("steps")->value.pos.str() == kData + "sub/mid.yaml:4:10");
  CHECK(train.find("name")->value.pos.str() == kData + "top.yaml:4:9");
}

TEST_CASE("defaults errors: cycles, missing files, malformed lists", "[config]") {
  CHECK(error_of([] { load_config_tree(kData + "cycle_a.yaml"); }) ==
        kData + "cycle_b.yaml:1:12: defaults cycle: " + kData + "cycle_a.yaml -> " + kData +
            "cycle_b.yaml -> " + kData + "cycle_a.yaml");
  CHECK(error_of([] { load_config_tree(kData + "self.yaml"); }) ==
        kData + "self.yaml:1:11: defaults cycle: " + kData + "self.yaml -> " + kData + "self.yaml");
  CHECK(error_of([] { load_config_tree(kData + "missing_default.yaml"); }) ==
        kData + "missing_default.yaml:1:12: key 'defaults': cannot read '" + kData +
            "nope.yaml': No such file or directory");
  CHECK(error_of([] { load_config_tree(kData + "bad_defaults.yaml"); }) ==
        kData + "bad_defaults.yaml:1:11: key 'defaults': expected a list of file names, found a map");
  CHECK(error_of([] { load_config_tree(kData + "no_such_file.yaml"); }) ==
        "cannot read config file '" + kData + "no_such_file.yaml': No such file or directory");
  CHECK(error_of([] { load_config_tree(kData + "list_top.yaml"); }) ==
        kData + "list_top.yaml:1:1: expected a map of sections at the top level, found a list");
}

TEST_CASE("config files are bounded: devices, huge files, alias bombs", "[config]") {
  CHECK(error_of([] { load_config_tree(kData + "device_default.yaml"); }) ==
        kData + "device_default.yaml:1:12: key 'defaults': cannot read '/dev/zero': larger than 16 MiB (expected a "
                "YAML config file)");
  CHECK(load_config_tree("/dev/null").entries.empty());  // an empty config: all defaults
  // A file over 16 MiB is not a config (a data file named by mistake).
  const std::string tmp = (std::filesystem::temp_directory_path() / "zeroth_test_big_config.yaml").string();
  {
    std::ofstream out(tmp, std::ios::binary);
    const std::string line = "# " + std::string(1022, 'x') + "\n";
    for (int i = 0; i < 17 * 1024; ++i) out << line;
  }
  CHECK_THAT(error_of([&] { load_config_tree(tmp); }), Catch::Contains("larger than 16 MiB"));
  std::filesystem::remove(tmp);
  // Nested aliases: 8 levels of 10 expand to 10^8 values; refused after the first 100000.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 8; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) bomb += (j ? ", *a" : "*a") + std::to_string(i - 1);
    bomb += "]\n";
  }
  CHECK_THAT(error_of([&] { parse_config_yaml(bomb, "bomb.yaml"); }),
             Catch::StartsWith("bomb.yaml:") && Catch::Contains("expected at most 100000 YAML values"));
}

TEST_CASE("an error in a default file names that file and line", "[config]") {
  CHECK(error_of([] { load_config_as<TrainFile>(kData + "uses_bad.yaml", {}); }) ==
        kData + "bad_value_base.yaml:3:10: key 'train.steps': expected an integer >= 0, found 'many'");
}

TEST_CASE("merge_config_tree: maps merge key by key, lists and scalars replace", "[config]") {
  ConfigNode base = parse_config_yaml("a: {x: 1, y: [1, 2]}\nb: 3\n", "base.yaml");
  ConfigNode over = parse_config_yaml("a: {y: [9], z: null}\nb: {k: v}\n", "over.yaml");
  merge_config_tree(base, over);
  CHECK(emit_config_flow(base) == "{a: {x: 1, y: [9], z: null}, b: {k: v}}");
  CHECK(base.find("a")->value.find("x")->value.pos.file == "base.yaml");
  CHECK(base.find("a")->value.find("y")->value.pos.file == "over.yaml");
}

TEST_CASE("apply_config_override sets nested keys, lists, null and list items", "[config]") {
  ConfigNode root = parse_config_yaml("a:\n  b: 1\n  l: [{k: 1}, {k: 2}]\n", "t.yaml");
  apply_config_override(root, "a.b=2");
  apply_config_override(root, "a.c.d=[1, 0.1]");
  apply_config_override(root, "a.l[1].k=5");
  apply_config_override(root, "new.x=null");
  apply_config_override(root, "a.b=3");  // later overrides win
  CHECK(emit_config_flow(root) == "{a: {b: 3, l: [{k: 1}, {k: 5}], c: {d: [1, 0.1]}}, new: {x: null}}");
  const ConfigNode::Entry* b = root.find("a")->value.find("b");
  CHECK(b->value.pos.str() == "--set a.b=3");
  CHECK(b->key_pos.str() == "--set a.b=3");
  // A flow map merges into an existing section.
  apply_config_override(root, "a={b: 4}");
  CHECK(emit_config_flow(root.find("a")->value) == "{b: 4, l: [{k: 1}, {k: 5}], c: {d: [1, 0.1]}}");
}

TEST_CASE("apply_config_override rejects malformed specs", "[config]") {
  ConfigNode root = parse_config_yaml("a:\n  l: [1, 2]\n  s: 3\n", "t.yaml");
  CHECK(error_of([&] { apply_config_override(root, "a.b"); }) == "--set a.b: expected section.key=value");
  CHECK(error_of([&] { apply_config_override(root, "=3"); }) == "--set =3: expected section.key=value");
  CHECK(error_of([&] { apply_config_override(root, "a..b=1"); }) ==
        "--set a..b=1: expected section.key=value, found an empty key in 'a..b'");
  CHECK(error_of([&] { apply_config_override(root, "a.l[5]=1"); }) ==
        "--set a.l[5]=1: index 5 is out of range for key 'a.l' (a list of 2)");
  CHECK(error_of([&] { apply_config_override(root, "a.s[0]=1"); }) ==
        "--set a.s[0]=1: key 'a.s' is 3, not a list");
  CHECK(error_of([&] { apply_config_override(root, "a.l[x]=1"); }) ==
        "--set a.l[x]=1: expected a list index like 'key[0]', found 'l[x]'");
  CHECK(error_of([&] { apply_config_override(root, "a.b=[1"); }).rfind("--set a.b=[1: value is not valid YAML", 0) == 0);
}

TEST_CASE("emit_config_yaml quotes what must be quoted and round-trips", "[config]") {
  ConfigNode root = parse_config_yaml("s:\n  q: \"123\"\n  e: \"\"\n  n: null\n  l: [1, 2]\n  m: {}\n", "t.yaml");
  std::string text = emit_config_yaml(root);
  CHECK(text == "s:\n  q: \"123\"\n  e: \"\"\n  n: null\n  l: [1, 2]\n  m: {}\n");
  CHECK(emit_config_yaml(parse_config_yaml(text, "again.yaml")) == text);
}

TEST_CASE("edit_distance and nearest_key", "[config]") {
  CHECK(edit_distance("kl_coeff", "kl_coef") == 1);
  CHECK(edit_distance("sede", "seed") == 1);  // a transposition counts as one edit
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("kitten", "sitting") == 3);
  std::vector<std::string> keys = {"name", "seed", "device", "threads", "kl_coef"};
  CHECK(nearest_key("sed", keys) == "seed");
  CHECK(nearest_key("kl_coeff", keys) == "kl_coef");
  CHECK(nearest_key("Device", keys) == "device");
  CHECK(nearest_key("nosuchsection", keys) == "");
  CHECK(nearest_key("x", keys) == "");
}
