// Malformed safetensors files: each corruption is a CheckpointError whose message
// names the file (and the tensor where there is one) and what was wrong; nothing
// crashes. Includes truncation at every byte and seeded random byte mutations (run
// these under ZEROTH_SANITIZE=address,undefined to prove the reader has no UB).
#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <vector>

#include "io_test_util.h"
#include "zeroth/error.h"
#include "zeroth/safetensors.h"

using namespace zeroth;
using zeroth_test::st_bytes;
using zeroth_test::TempDir;
using zeroth_test::write_bytes;

namespace {

// Writes `bytes` to a file and returns the CheckpointError message of opening it
// ("" if it opened).
std::string open_error(const TempDir& tmp, const std::string& bytes) {
  const std::string path = tmp.file("bad.safetensors");
  write_bytes(path, bytes);
  try {
    SafetensorsFile::open(path);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":" + dtype + ",\"shape\":" + shape +
         ",\"data_offsets\":" + offsets + "}";
}

// A valid header: a = F32[2] at [0, 8), b = I64[1] at [8, 16).
const char* kGoodHeader =
    "{\"__metadata__\":{\"k\":\"v\"},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
    "\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[8,16]}}";

}  // namespace

TEST_CASE("the hand-made base file is valid", "[io][safetensors][corrupt]") {
  TempDir tmp;
  CHECK(open_error(tmp, st_bytes(kGoodHeader, std::string(16, '\1'))) == "");
}

TEST_CASE("truncated files are errors at every length", "[io][safetensors][corrupt]") {
  TempDir tmp;
  std::vector<float> a = {1, 2, 3};
  std::vector<int64_t> b = {4};
  SafetensorsWriter w;
  w.add("a", DType::F32, {3}, a.data());
  w.add("b", DType::I64, {1}, b.data());
  w.write(tmp.file("good.safetensors"));
  const std::string good = zeroth_test::read_bytes(tmp.file("good.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, good.data(), 8);

  for (size_t len = 0; len < good.size(); ++len) {
    INFO("truncated to " << len << " of " << good.size() << " bytes");
    const std::string msg = open_error(tmp, good.substr(0, len));
    CHECK(msg.find("bad.safetensors") != std::string::npos);
    if (len < 8)
      CHECK(msg.find("expected at least 8") != std::string::npos);
    else if (len < 8 + n)
      CHECK(msg.find("runs past the end of the file") != std::string::npos);
    else
      CHECK(msg.find("data_offsets") != std::string::npos);  // inside the data
  }
  CHECK(open_error(tmp, good) == "");
}

TEST_CASE("bad header length or JSON", "[io][safetensors][corrupt]") {
  TempDir tmp;
  std::string big(8, '\0');
  big[7] = '\x7f';  // ~9e18
  CHECK_THAT(open_error(tmp, big + "{}"), Catch::Contains("larger than the limit"));
  std::string past = st_bytes("{}", "");
  past[0] = 100;  // header says 100 bytes, file has 2
  CHECK_THAT(open_error(tmp, past), Catch::Contains("header length 100 runs past the end"));
  CHECK_THAT(open_error(tmp, st_bytes("", "")), Catch::Contains("JSON object"));
  CHECK_THAT(open_error(tmp, st_bytes("{not json}", "")), Catch::Contains("not valid JSON"));
  CHECK_THAT(open_error(tmp, st_bytes("{} trailing", "")), Catch::Contains("not valid JSON"));
  CHECK_THAT(open_error(tmp, st_bytes("{\"a\":\"\xff\"}", "")), Catch::Contains("not valid JSON"));
  CHECK_THAT(open_error(tmp, st_bytes("[1, 2]", "")), Catch::Contains("JSON object"));
  CHECK_THAT(open_error(tmp, st_bytes("\"str\"", "")), Catch::Contains("JSON object"));
  CHECK_THAT(open_error(tmp, st_bytes("{\"a\":1}", "")),
             Catch::Contains("tensor 'a'") && Catch::Contains("expected an object"));
  CHECK_THAT(open_error(tmp, st_bytes("{\"a\":{\"dtype\":\"F32\",\"shape\":[]}}", "")),
             Catch::Contains("missing key 'data_offsets'"));
}

TEST_CASE("unknown dtype", "[io][safetensors][corrupt]") {
  TempDir tmp;
  CHECK_THAT(open_error(tmp, st_bytes("{" + entry("w", "\"F64\"", "[1]", "[0,8]") + "}",
                                      std::string(8, '\0'))),
             Catch::Contains("tensor 'w'") && Catch::Contains("unsupported dtype \"F64\"") &&
                 Catch::Contains("F32, BF16, F16, I32, I64"));
  CHECK_THAT(
      open_error(tmp, st_bytes("{" + entry("w", "7", "[1]", "[0,4]") + "}", std::string(4, '\0'))),
      Catch::Contains("unsupported dtype 7"));
}

TEST_CASE("bad shapes", "[io][safetensors][corrupt]") {
  TempDir tmp;
  const std::string d8(8, '\0');
  CHECK_THAT(open_error(tmp, st_bytes("{" + entry("w", "\"F32\"", "[-2]", "[0,8]") + "}", d8)),
             Catch::Contains("tensor 'w'") && Catch::Contains("non-negative integers, found -2"));
  CHECK_THAT(open_error(tmp, st_bytes("{" + entry("w", "\"F32\"", "[2.0]", "[0,8]") + "}", d8)),
             Catch::Contains("non-negative integers, found 2.0"));
  CHECK_THAT(open_error(tmp, st_bytes("{" + entry("w", "\"F32\"", "[\"2\"]", "[0,8]") + "}", d8)),
             Catch::Contains("non-negative integers"));
  CHECK_THAT(open_error(tmp, st_bytes("{" + entry("w", "\"F32\"", "2", "[0,8]") + "}", d8)),
             Catch::Contains("shape: expected an array"));
  CHECK_THAT(
      open_error(
          tmp, st_bytes("{" + entry("w", "\"F32\"", "[18446744073709551615]", "[0,8]") + "}", d8)),
      Catch::Contains("non-negative integers"));
  // numel * 4 overflows 64 bits: must not wrap around to a small size.
  CHECK_THAT(
      open_error(
          tmp, st_bytes("{" + entry("w", "\"F32\"", "[4611686018427387904,4]", "[0,0]") + "}", "")),
      Catch::Contains("larger than 2^64 bytes"));
  CHECK_THAT(
      open_error(tmp,
                 st_bytes("{" + entry("w", "\"F32\"", "[4611686018427387904]", "[0,0]") + "}", "")),
      Catch::Contains("larger than 2^64 bytes"));
}

TEST_CASE("bad offsets: range and order and form and size mismatch", "[io][safetensors][corrupt]") {
  TempDir tmp;
  const std::string d8(8, '\0');
  CHECK_THAT(open_error(tmp, st_bytes("{" + entry("w", "\"F32\"", "[2]", "[0,100]") + "}", d8)),
             Catch::Contains("tensor 'w'") && Catch::Contains("out of range") &&
                 Catch::Contains("has 8 bytes"));
  CHECK_THAT(open_error(tmp, st_bytes("{" +
                                          entry("w", "\"F32\"", "[2]",
                                                "[18446744073709551608,18446744073709551615]") +
                                          "}",
                                      d8)),
             Catch::Contains("data_offsets: expected [begin, end]"));
  CHECK_THAT(open_error(tmp, st_bytes("{" + entry("w", "\"F32\"", "[0]", "[8,0]") + "}", d8)),
             Catch::Contains("begin is after end"));
  CHECK_THAT(open_error(tmp, st_bytes("{" + entry("w", "\"F32\"", "[2]", "[0]") + "}", d8)),
             Catch::Contains("data_offsets: expected [begin, end]"));
  CHECK_THAT(open_error(tmp, st_bytes("{" + entry("w", "\"F32\"", "[2]", "[0,8,9]") + "}", d8)),
             Catch::Contains("data_offsets: expected [begin, end]"));
  CHECK_THAT(open_error(tmp, st_bytes("{" + entry("w", "\"F32\"", "[2]", "[-1,7]") + "}", d8)),
             Catch::Contains("data_offsets: expected [begin, end]"));
  CHECK_THAT(open_error(tmp, st_bytes("{" + entry("w", "\"F32\"", "[2]", "[0,\"8\"]") + "}", d8)),
             Catch::Contains("data_offsets: expected [begin, end]"));
  CHECK_THAT(
      open_error(tmp, st_bytes("{" + entry("w", "\"F32\"", "[3]", "[0,8]") + "}", d8)),
      Catch::Contains("tensor 'w'") && Catch::Contains("span 8 bytes, expected 12 for F32[3]"));
}

TEST_CASE("overlapping tensors and gaps and uncovered bytes", "[io][safetensors][corrupt]") {
  TempDir tmp;
  CHECK_THAT(open_error(tmp, st_bytes("{" + entry("a", "\"F32\"", "[2]", "[0,8]") + "," +
                                          entry("b", "\"I64\"", "[1]", "[4,12]") + "}",
                                      std::string(12, '\0'))),
             Catch::Contains("tensor 'b'") && Catch::Contains("overlap tensor 'a'"));
  // The same bytes claimed twice.
  CHECK_THAT(open_error(tmp, st_bytes("{" + entry("a", "\"F32\"", "[2]", "[0,8]") + "," +
                                          entry("b", "\"I64\"", "[1]", "[0,8]") + "}",
                                      std::string(8, '\0'))),
             Catch::Contains("overlap"));
  CHECK_THAT(open_error(tmp, st_bytes("{" + entry("a", "\"F32\"", "[2]", "[0,8]") + "," +
                                          entry("b", "\"I64\"", "[1]", "[12,20]") + "}",
                                      std::string(20, '\0'))),
             Catch::Contains("bytes [8, 12) of the data buffer belong to no tensor") &&
                 Catch::Contains("'b'"));
  CHECK_THAT(open_error(tmp, st_bytes(kGoodHeader, std::string(24, '\0'))),
             Catch::Contains("bytes [16, 24) at the end of the data buffer belong to no tensor"));
  CHECK_THAT(open_error(tmp, st_bytes("{}", "x")), Catch::Contains("bytes [0, 1) at the end"));
}

TEST_CASE("metadata values must be strings", "[io][safetensors][corrupt]") {
  TempDir tmp;
  CHECK_THAT(open_error(tmp, st_bytes("{\"__metadata__\":{\"step\":17}}", "")),
             Catch::Contains("__metadata__ key 'step': expected a string, found 17"));
  CHECK_THAT(open_error(tmp, st_bytes("{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}", "")),
             Catch::Contains("expected a string"));
  CHECK_THAT(open_error(tmp, st_bytes("{\"__metadata__\":[\"x\"]}", "")),
             Catch::Contains("__metadata__: expected an object"));
}

TEST_CASE("deeply nested JSON is an error and not a stack overflow", "[io][safetensors][corrupt]") {
  TempDir tmp;
  const size_t depth = 200000;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  CHECK_THAT(open_error(tmp, st_bytes("{\"a\":" + nested + "}", "")),
             Catch::Contains("tensor 'a'") && Catch::Contains("expected an object"));
  CHECK_THAT(open_error(tmp, st_bytes("{\"a\":{\"dtype\":\"F32\",\"shape\":" + nested +
                                          ",\"data_offsets\":[0,0]}}",
                                      "")),
             Catch::Contains("non-negative integers"));
  CHECK_THAT(open_error(tmp, st_bytes("{\"__metadata__\":{\"k\":" + nested + "}}", "")),
             Catch::Contains("expected a string"));
}

TEST_CASE("random byte mutations never crash", "[io][safetensors][corrupt]") {
  TempDir tmp;
  const std::string good = st_bytes(kGoodHeader, std::string(16, '\2'));
  std::mt19937 rng(12345);
  int opened = 0, rejected = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::string bytes = good;
    const int flips = 1 + int(rng() % 3);
    for (int k = 0; k < flips; ++k) {
      size_t pos = rng() % bytes.size();
      // Mostly printable characters, so that mutations land inside valid-looking JSON.
      bytes[pos] = (rng() % 4 == 0) ? char(rng() & 0xff) : "0123456789[]{},:\"-.e "[rng() % 21];
    }
    const std::string path = tmp.file("fuzz.safetensors");
    write_bytes(path, bytes);
    try {
      SafetensorsFile f = SafetensorsFile::open(path);
      for (const std::string& name : f.names()) {  // every tensor must be readable
        const SafetensorsInfo& i = f.info(name);
        std::vector<uint8_t> buf(i.nbytes + 1);
        f.read_into(name, buf.data(), i.dtype, i.shape);
      }
      ++opened;
    } catch (const CheckpointError&) {
      ++rejected;
    }
  }
  CHECK(opened + rejected == 2000);
  CHECK(rejected > 1000);
}
