// Tests of the safetensors format on the raw-pointer API: round trips of every dtype
// (scalars and empty tensors included), metadata, header alignment, a byte-exact
// comparison with a file assembled by hand from the spec, reading files laid out
// differently from ours (other writers), float conversion and writer errors.
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "io_test_util.h"
#include "zeroth/error.h"
#include "zeroth/safetensors.h"

using namespace zeroth;
using zeroth_test::read_bytes;
using zeroth_test::st_bytes;
using zeroth_test::TempDir;
using zeroth_test::write_bytes;

TEST_CASE("round trip of every dtype with scalars and empty tensors", "[io][safetensors]") {
  TempDir tmp;
  std::vector<float> f32 = {1.5f, -2.25f, 3.0f, 0.0f, -0.0f, 1e-30f};
  std::vector<uint16_t> bf16 = {float_to_bf16(1.0f), float_to_bf16(-3.5f), 0x7fc0, 0x0001};
  std::vector<uint16_t> f16 = {float_to_f16(0.5f), float_to_f16(65504.0f), 0x0001};
  std::vector<int32_t> i32 = {-7, 0, 2147483647, -2147483647 - 1};
  std::vector<int64_t> i64 = {int64_t(1) << 40, -1, 0};
  float scalar = 42.0f;

  SafetensorsWriter w;
  w.add("model.embed_tokens.weight", DType::F32, {2, 3}, f32.data());
  w.add("model.layers.0.mlp.gate.weight", DType::BF16, {4}, bf16.data());
  w.add("h", DType::F16, {3, 1}, f16.data());
  w.add("ids", DType::I32, {2, 2}, i32.data());
  w.add("pos", DType::I64, {3}, i64.data());
  w.add("scalar", DType::F32, {}, &scalar);
  w.add("empty", DType::BF16, {0, 5}, nullptr);
  w.add("empty_i64", DType::I64, {3, 0}, nullptr);
  w.set_metadata("step", "17");
  const std::string path = tmp.file("rt.safetensors");
  w.write(path);
  CHECK_FALSE(zeroth_test::file_exists(path + ".tmp"));

  SafetensorsFile f = SafetensorsFile::open(path);
  CHECK(f.size() == 8);
  CHECK(f.names() == std::vector<std::string>{"empty", "empty_i64", "h", "ids",
                                              "model.embed_tokens.weight",
                                              "model.layers.0.mlp.gate.weight", "pos", "scalar"});
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.metadata().at("step") == "17");
  CHECK(f.has("pos"));
  CHECK_FALSE(f.has("missing"));

  const SafetensorsInfo& e = f.info("model.embed_tokens.weight");
  CHECK(e.dtype == DType::F32);
  CHECK(e.shape == Shape{2, 3});
  CHECK(e.nbytes == 24);

  std::vector<float> f32_back(6);
  f.read_into("model.embed_tokens.weight", f32_back.data(), DType::F32, {2, 3});
  CHECK(std::memcmp(f32_back.data(), f32.data(), 24) == 0);  // bitwise, -0.0 included
  std::vector<uint16_t> bf16_back(4), f16_back(3);
  f.read_into("model.layers.0.mlp.gate.weight", bf16_back.data(), DType::BF16, {4});
  CHECK(bf16_back == bf16);
  f.read_into("h", f16_back.data(), DType::F16, {3, 1});
  CHECK(f16_back == f16);
  std::vector<int32_t> i32_back(4);
  f.read_into("ids", i32_back.data(), DType::I32, {2, 2});
  CHECK(i32_back == i32);
  std::vector<int64_t> i64_back(3);
  f.read_into("pos", i64_back.data(), DType::I64, {3});
  CHECK(i64_back == i64);
  float scalar_back = 0;
  f.read_into("scalar", &scalar_back, DType::F32, {});
  CHECK(scalar_back == 42.0f);
  CHECK(f.info("scalar").shape.empty());
  CHECK(f.info("scalar").nbytes == 4);
  CHECK(f.info("empty").shape == Shape{0, 5});
  CHECK(f.info("empty").nbytes == 0);
  f.read_into("empty", nullptr, DType::BF16, {0, 5});
  CHECK(f.info("empty_i64").dtype == DType::I64);

  // data() points into the mapping.
  int64_t first = 0;
  std::memcpy(&first, f.data("pos"), 8);
  CHECK(first == int64_t(1) << 40);
}

TEST_CASE("header is padded so data starts at a multiple of 8 and tensors are aligned",
          "[io][safetensors]") {
  TempDir tmp;
  for (int name_len = 1; name_len <= 9; ++name_len) {
    std::vector<uint16_t> h = {1, 2, 3};
    std::vector<float> f = {1, 2, 3};
    std::vector<int64_t> l = {5};
    SafetensorsWriter w;
    w.add(std::string(size_t(name_len), 'x'), DType::BF16, {3}, h.data());
    w.add("f", DType::F32, {3}, f.data());
    w.add("l", DType::I64, {1}, l.data());
    const std::string path = tmp.file("a.safetensors");
    w.write(path);
    const std::string bytes = read_bytes(path);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);  // this host is little-endian, as the format
    INFO("name length " << name_len << ", header " << n);
    CHECK(n % 8 == 0);
    CHECK(bytes.size() == 8 + n + 3 * 2 + 3 * 4 + 8);
    const std::string header = bytes.substr(8, n);
    CHECK(header.find_last_not_of(' ') == header.rfind('}'));  // only spaces after the JSON
    SafetensorsFile file = SafetensorsFile::open(path);
    for (const std::string& name : file.names()) {
      const SafetensorsInfo& i = file.info(name);
      CHECK(i.begin % dtype_size(i.dtype) == 0);
    }
  }
}

TEST_CASE("writer output is byte-exact against a file assembled from the spec",
          "[io][safetensors]") {
  // Data order: element size descending, then name: b (I64), s (F32), a (BF16), e (F16).
  const std::string header =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
      "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]},"
      "\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]},"
      "\"e\":{\"dtype\":\"F16\",\"shape\":[0,3],\"data_offsets\":[16,16]}}";
  REQUIRE(header.size() == 251);  // + 5 spaces = 256 = 0x100
  const std::string expected = std::string("\x00\x01\x00\x00\x00\x00\x00\x00", 8) + header +
                               "     " +
                               std::string("\x07\x00\x00\x00\x00\x00\x00\x00", 8) +  // b = 7
                               std::string("\x00\x00\xc0\x3f", 4) +                  // s = 1.5f
                               std::string("\x80\x3f\x00\xc0", 4);  // a = {1.0, -2.0} bf16
  TempDir tmp;
  int64_t b = 7;
  float s = 1.5f;
  uint16_t a[2] = {0x3f80, 0xc000};
  SafetensorsWriter w;
  w.add("e", DType::F16, {0, 3}, nullptr);
  w.add("a", DType::BF16, {2}, a);
  w.add("s", DType::F32, {}, &s);
  w.add("b", DType::I64, {1}, &b);
  const std::string path = tmp.file("exact.safetensors");
  w.write(path);
  CHECK(read_bytes(path) == expected);

  // And the hand-made bytes read back as the values they spell.
  write_bytes(tmp.file("hand.safetensors"), expected);
  SafetensorsFile f = SafetensorsFile::open(tmp.file("hand.safetensors"));
  int64_t b_back = 0;
  f.read_into("b", &b_back, DType::I64, {1});
  CHECK(b_back == 7);
  float a_back[2];
  f.read_into_converting("a", a_back, DType::F32, {2});
  CHECK(a_back[0] == 1.0f);
  CHECK(a_back[1] == -2.0f);
  CHECK(f.metadata().size() == 1);
}

TEST_CASE("reads files laid out by other writers", "[io][safetensors]") {
  // Pretty JSON, keys in another order, no metadata, no padding, tensors packed so
  // the F32 one is not 4-byte aligned in the file.
  const std::string header =
      "{\n  \"w\": {\"shape\": [2], \"data_offsets\": [2, 10], \"dtype\": \"F32\"},\n"
      "  \"h\": {\"data_offsets\": [0, 2], \"dtype\": \"F16\", \"shape\": [1]}\n}";
  float w[2] = {3.0f, -1.0f};
  uint16_t h = float_to_f16(2.0f);
  std::string data(10, '\0');
  std::memcpy(&data[0], &h, 2);
  std::memcpy(&data[2], w, 8);
  TempDir tmp;
  const std::string path = tmp.file("other.safetensors");
  write_bytes(path, st_bytes(header, data));
  SafetensorsFile f = SafetensorsFile::open(path);
  CHECK(f.metadata().empty());
  float w_back[2];
  f.read_into("w", w_back, DType::F32, {2});
  CHECK(w_back[0] == 3.0f);
  CHECK(w_back[1] == -1.0f);

  // An empty file (no tensors) with a null __metadata__ is valid too.
  write_bytes(path, st_bytes("{\"__metadata__\":null}   ", ""));
  SafetensorsFile e = SafetensorsFile::open(path);
  CHECK(e.size() == 0);
  CHECK(e.metadata().empty());
}

TEST_CASE("read_into_converting converts between float dtypes only", "[io][safetensors]") {
  TempDir tmp;
  std::vector<float> f32 = {1.0f, -0.5f, 3.140625f, 65504.0f};
  std::vector<int32_t> i32 = {1, 2};
  SafetensorsWriter w;
  w.add("x", DType::F32, {2, 2}, f32.data());
  w.add("i", DType::I32, {2}, i32.data());
  const std::string path = tmp.file("c.safetensors");
  w.write(path);
  SafetensorsFile f = SafetensorsFile::open(path);

  std::vector<uint16_t> bf(4), hf(4);
  f.read_into_converting("x", bf.data(), DType::BF16, {2, 2});
  for (size_t k = 0; k < 4; ++k) CHECK(bf[k] == float_to_bf16(f32[k]));
  f.read_into_converting("x", hf.data(), DType::F16, {2, 2});
  for (size_t k = 0; k < 4; ++k) CHECK(f16_to_float(hf[k]) == f32[k]);
  std::vector<float> same(4);
  f.read_into_converting("x", same.data(), DType::F32, {2, 2});
  CHECK(same == f32);

  CHECK_THROWS_AS(f.read_into_converting("x", bf.data(), DType::BF16, {4}), CheckpointError);
  std::vector<int64_t> l(2);
  CHECK_THROWS_WITH(f.read_into_converting("i", l.data(), DType::I64, {2}),
                    Catch::Contains("expected I64[2], found I32[2]"));
  CHECK_THROWS_AS(f.read_into_converting("x", l.data(), DType::I64, {2, 2}), CheckpointError);
}

TEST_CASE("shape or dtype mismatch on read is a CheckpointError naming both", "[io][safetensors]") {
  TempDir tmp;
  std::vector<uint16_t> v(6, 0);
  SafetensorsWriter w;
  w.add("model.norm.weight", DType::BF16, {2, 3}, v.data());
  const std::string path = tmp.file("m.safetensors");
  w.write(path);
  SafetensorsFile f = SafetensorsFile::open(path);
  std::vector<float> dst(6);
  CHECK_THROWS_WITH(f.read_into("model.norm.weight", dst.data(), DType::F32, {2, 3}),
                    Catch::Contains(path) && Catch::Contains("model.norm.weight") &&
                        Catch::Contains("expected F32[2, 3], found BF16[2, 3]"));
  CHECK_THROWS_WITH(f.read_into("model.norm.weight", dst.data(), DType::BF16, {3, 2}),
                    Catch::Contains("expected BF16[3, 2], found BF16[2, 3]"));
  CHECK_THROWS_WITH(f.expect("model.norm.weight", DType::BF16, {6}),
                    Catch::Contains("expected BF16[6]"));
  CHECK_NOTHROW(f.expect("model.norm.weight", DType::BF16, {2, 3}));
  CHECK_THROWS_WITH(f.info("model.norm.bias"),
                    Catch::Contains("no tensor named 'model.norm.bias'") && Catch::Contains(path));
  CHECK_THROWS_AS(f.data("nope"), CheckpointError);
}

TEST_CASE("writer rejects bad names and shapes and add_copy copies", "[io][safetensors]") {
  float x = 1.0f;
  SafetensorsWriter w;
  w.add("a", DType::F32, {}, &x);
  CHECK_THROWS_WITH(w.add("a", DType::F32, {}, &x), Catch::Contains("duplicate tensor name 'a'"));
  CHECK_THROWS_AS(w.add("", DType::F32, {}, &x), CheckpointError);
  CHECK_THROWS_AS(w.add("__metadata__", DType::F32, {}, &x), CheckpointError);
  CHECK_THROWS_AS(w.add("bad\xff", DType::F32, {}, &x), CheckpointError);
  CHECK_THROWS_WITH(w.add("neg", DType::F32, {2, -1}, &x), Catch::Contains("bad shape F32[2, -1]"));
  CHECK_THROWS_AS(w.add_copy("neg", DType::F32, {-3}, &x), CheckpointError);
  CHECK_THROWS_AS(w.add("huge", DType::F32, {int64_t(1) << 62, 8}, &x), CheckpointError);
  CHECK_THROWS_AS(w.set_metadata("k", "bad\xfe"), CheckpointError);
  CHECK(w.size() == 1);

  std::vector<int32_t> buf = {1, 2, 3};
  w.add_copy("copied", DType::I32, {3}, buf.data());
  buf = {9, 9, 9};
  TempDir tmp;
  w.write(tmp.file("c.safetensors"));
  SafetensorsFile f = SafetensorsFile::open(tmp.file("c.safetensors"));
  std::vector<int32_t> back(3);
  f.read_into("copied", back.data(), DType::I32, {3});
  CHECK(back == std::vector<int32_t>{1, 2, 3});
  CHECK(w.total_bytes() == 4 + 12);

  // Writing twice gives the same bytes (deterministic), and over an existing file.
  const std::string first = read_bytes(tmp.file("c.safetensors"));
  w.write(tmp.file("c.safetensors"));
  CHECK(read_bytes(tmp.file("c.safetensors")) == first);

  // A write that cannot happen is a RuntimeError and leaves nothing behind.
  CHECK_THROWS_AS(w.write(tmp.file("no/such/dir/x.safetensors")), RuntimeError);
}

TEST_CASE("opening a missing file or a directory is a CheckpointError", "[io][safetensors]") {
  TempDir tmp;
  CHECK_THROWS_WITH(SafetensorsFile::open(tmp.file("absent.safetensors")),
                    Catch::Contains("absent.safetensors") && Catch::Contains("No such file"));
  CHECK_THROWS_WITH(SafetensorsFile::open(tmp.path()), Catch::Contains("not a regular file"));
}
