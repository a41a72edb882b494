// HF sharded checkpoints: write_sharded round trips with several shards and with one,
// the index file's content and naming, stale-file cleanup, and errors for missing
// shards, tensors absent from their shard, ambiguous directories and bad indexes.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <vector>

#include "io_test_util.h"
#include "zeroth/error.h"
#include "zeroth/safetensors.h"

using namespace zeroth;
using zeroth_test::file_exists;
using zeroth_test::read_bytes;
using zeroth_test::st_bytes;
using zeroth_test::TempDir;
using zeroth_test::write_bytes;

namespace {

// Five F32[4] tensors (16 bytes each) whose values encode their index.
struct FiveTensors {
  std::vector<std::vector<float>> values;
  SafetensorsWriter writer;
  FiveTensors() {
    for (int t = 0; t < 5; ++t) {
      values.push_back({float(t), float(t) + 0.5f, float(-t), 100.0f + float(t)});
    }
    for (int t = 0; t < 5; ++t)
      writer.add("model.layers." + std::to_string(t) + ".w", DType::F32, {4}, values[t].data());
  }
};

}  // namespace

TEST_CASE("sharded round trip with several shards", "[io][safetensors][sharded]") {
  TempDir tmp;
  FiveTensors five;
  const std::string dir = tmp.file("ckpt");
  // 40 bytes per shard: two 16-byte tensors each, so 3 shards.
  std::vector<std::string> files = five.writer.write_sharded(dir, 40);
  CHECK(files == std::vector<std::string>{
                     "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                     "model-00003-of-00003.safetensors", "model.safetensors.index.json"});
  const nlohmann::json index =
      nlohmann::json::parse(read_bytes(dir + "/model.safetensors.index.json"));
  CHECK(index["metadata"]["total_size"] == 80);
  CHECK(index["weight_map"]["model.layers.0.w"] == "model-00001-of-00003.safetensors");
  CHECK(index["weight_map"]["model.layers.2.w"] == "model-00002-of-00003.safetensors");
  CHECK(index["weight_map"]["model.layers.4.w"] == "model-00003-of-00003.safetensors");
  // Each shard is a complete file carrying the metadata.
  CHECK(SafetensorsFile::open(dir + "/model-00002-of-00003.safetensors").metadata().at("format") ==
        "pt");

  for (const std::string& where : {dir, dir + "/model.safetensors.index.json"}) {
    ShardedSafetensors ck = ShardedSafetensors::open(where);
    CHECK(ck.size() == 5);
    CHECK(ck.names().front() == "model.layers.0.w");
    CHECK(ck.shard_files().size() == 3);
    CHECK(ck.shard_of("model.layers.3.w") == "model-00002-of-00003.safetensors");
    for (int t = 0; t < 5; ++t) {
      const std::string name = "model.layers." + std::to_string(t) + ".w";
      CHECK(ck.has(name));
      CHECK(ck.info(name).shape == Shape{4});
      std::vector<float> back(4);
      ck.read_into(name, back.data(), DType::F32, {4});
      CHECK(back == five.values[t]);
    }
    CHECK_THROWS_WITH(ck.info("lm_head.weight"),
                      Catch::Contains("no tensor named 'lm_head.weight'"));
    std::vector<uint16_t> bf(4);
    CHECK_THROWS_AS(ck.read_into("model.layers.1.w", bf.data(), DType::BF16, {4}), CheckpointError);
    ck.read_into_converting("model.layers.1.w", bf.data(), DType::BF16, {4});
    CHECK(bf16_to_float(bf[1]) == 1.5f);
  }
}

TEST_CASE("one shard is written as model.safetensors and stale files are removed",
          "[io][safetensors][sharded]") {
  TempDir tmp;
  FiveTensors five;
  const std::string dir = tmp.file("ckpt");
  five.writer.write_sharded(dir, 40);  // 3 shards + index
  write_bytes(dir + "/model-00007-of-00009.safetensors", "old");
  write_bytes(dir + "/notes.txt", "keep me");
  std::vector<std::string> files = five.writer.write_sharded(dir, 1000);
  CHECK(files == std::vector<std::string>{"model.safetensors"});
  CHECK(file_exists(dir + "/model.safetensors"));
  CHECK_FALSE(file_exists(dir + "/model.safetensors.index.json"));
  CHECK_FALSE(file_exists(dir + "/model-00001-of-00003.safetensors"));
  CHECK_FALSE(file_exists(dir + "/model-00007-of-00009.safetensors"));
  CHECK(file_exists(dir + "/notes.txt"));

  ShardedSafetensors ck = ShardedSafetensors::open(dir);
  CHECK(ck.size() == 5);
  CHECK(ck.shard_files() == std::vector<std::string>{"model.safetensors"});
  std::vector<float> back(4);
  ck.read_into("model.layers.4.w", back.data(), DType::F32, {4});
  CHECK(back == five.values[4]);
  // A single file can be opened by its own path as well.
  CHECK(ShardedSafetensors::open(dir + "/model.safetensors").size() == 5);

  // Going back to shards removes the single file (HF would prefer it over the index).
  five.writer.write_sharded(dir, 16);
  CHECK_FALSE(file_exists(dir + "/model.safetensors"));
  CHECK(ShardedSafetensors::open(dir).shard_files().size() == 5);
}

TEST_CASE("a tensor larger than the shard limit gets a shard of its own",
          "[io][safetensors][sharded]") {
  TempDir tmp;
  std::vector<float> big(64, 1.0f), small = {2.0f};
  SafetensorsWriter w;
  w.add("a", DType::F32, {1}, small.data());
  w.add("b", DType::F32, {64}, big.data());
  w.add("c", DType::F32, {1}, small.data());
  std::vector<std::string> files = w.write_sharded(tmp.file("d"), 100);
  REQUIRE(files.size() == 4);
  ShardedSafetensors ck = ShardedSafetensors::open(tmp.file("d"));
  CHECK(ck.shard_of("a") == "model-00001-of-00003.safetensors");
  CHECK(ck.shard_of("b") == "model-00002-of-00003.safetensors");
  CHECK(ck.shard_of("c") == "model-00003-of-00003.safetensors");
  CHECK_THROWS_AS(w.write_sharded(tmp.file("e"), 0), CheckpointError);
}

TEST_CASE("missing shards and tensors absent from their shard are errors",
          "[io][safetensors][sharded]") {
  TempDir tmp;
  FiveTensors five;
  const std::string dir = tmp.file("ckpt");
  five.writer.write_sharded(dir, 40);
  const std::string index_path = dir + "/model.safetensors.index.json";

  ::unlink((dir + "/model-00002-of-00003.safetensors").c_str());
  CHECK_THROWS_WITH(ShardedSafetensors::open(dir),
                    Catch::Contains(index_path) &&
                        Catch::Contains("shard 'model-00002-of-00003.safetensors'") &&
                        Catch::Contains("missing"));

  // The index claims a tensor that its shard does not have: found when that shard is
  // first mapped, whichever of its tensors is asked for.
  five.writer.write_sharded(dir, 40);
  nlohmann::json index = nlohmann::json::parse(read_bytes(index_path));
  index["weight_map"]["model.layers.9.w"] = "model-00003-of-00003.safetensors";
  write_bytes(index_path, index.dump(2));
  ShardedSafetensors ck = ShardedSafetensors::open(dir);
  std::vector<float> back(4);
  ck.read_into("model.layers.0.w", back.data(), DType::F32, {4});  // shard 1 is fine
  CHECK_THROWS_WITH(ck.read_into("model.layers.4.w", back.data(), DType::F32, {4}),
                    Catch::Contains("'model.layers.9.w'") &&
                        Catch::Contains("model-00003-of-00003.safetensors") &&
                        Catch::Contains("no such tensor"));
  CHECK_THROWS_AS(ck.info("model.layers.9.w"), CheckpointError);
}

TEST_CASE("bad checkpoint directories and index files", "[io][safetensors][sharded]") {
  TempDir tmp;
  CHECK_THROWS_WITH(ShardedSafetensors::open(tmp.file("nothing")),
                    Catch::Contains("does not exist"));
  CHECK_THROWS_WITH(ShardedSafetensors::open(tmp.path()), Catch::Contains("found neither"));

  FiveTensors five;
  const std::string dir = tmp.file("ckpt");
  five.writer.write_sharded(dir, 40);
  five.writer.write(dir + "/model.safetensors");
  CHECK_THROWS_WITH(ShardedSafetensors::open(dir), Catch::Contains("holds both"));
  ::unlink((dir + "/model.safetensors").c_str());

  const std::string index_path = dir + "/model.safetensors.index.json";
  auto index_error = [&](const std::string& text) -> std::string {
    write_bytes(index_path, text);
    try {
      ShardedSafetensors::open(dir);
    } catch (const CheckpointError& e) {
      return e.what();
    }
    return "";
  };
  CHECK_THAT(index_error("{\"weight_map\": "), Catch::Contains("not valid JSON"));
  CHECK_THAT(index_error("[]"), Catch::Contains("expected a JSON object"));
  CHECK_THAT(index_error("{\"metadata\": {}}"), Catch::Contains("'weight_map'"));
  CHECK_THAT(index_error("{\"weight_map\": {\"a\": 3}}"),
             Catch::Contains("weight_map['a']: expected a shard file name"));
  CHECK_THAT(index_error("{\"weight_map\": {\"a\": \"../model.safetensors\"}}"),
             Catch::Contains("relative path inside"));
  CHECK_THAT(index_error("{\"weight_map\": {\"a\": \"/etc/passwd\"}}"),
             Catch::Contains("relative path inside"));
  CHECK(index_error("{\"metadata\": {\"total_size\": 16}, \"weight_map\": "
                    "{\"model.layers.0.w\": \"model-00001-of-00003.safetensors\"}}") == "");

  // A corrupt shard reports the shard's own path.
  write_bytes(dir + "/model-00001-of-00003.safetensors", st_bytes("{}", "xx"));
  ShardedSafetensors ck = ShardedSafetensors::open(dir);
  CHECK_THROWS_WITH(ck.info("model.layers.0.w"),
                    Catch::Contains("model-00001-of-00003.safetensors") &&
                        Catch::Contains("belong to no tensor"));
}
