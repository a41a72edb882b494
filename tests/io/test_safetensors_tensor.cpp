// The Tensor entry points: read_into / read_into_converting into CPU-backend tensors,
// add(name, Tensor), and their shape/dtype checks.
#include <catch2/catch.hpp>
#include <vector>

#include "io_test_util.h"
#include "zeroth/backend.h"
#include "zeroth/error.h"
#include "zeroth/safetensors.h"
#include "zeroth/tensor.h"

using namespace zeroth;
using zeroth_test::TempDir;

TEST_CASE("Tensor round trip through a file", "[io][safetensors][tensor]") {
  std::unique_ptr<Backend> cpu = make_cpu_backend(1);
  TempDir tmp;
  std::vector<float> src = {1, 2, 3, 4, 5, 6};
  Tensor t = Tensor::empty(*cpu, {2, 3}, DType::F32);
  t.copy_from_host(src.data(), src.size() * 4);
  std::vector<int64_t> ids = {7, -8};
  Tensor v = Tensor::view_of(ids.data(), {2}, DType::I64);

  SafetensorsWriter w;
  w.add("model.embed_tokens.weight", t);
  w.add("ids", v);
  ids = {0, 0};  // add(Tensor) copied
  w.add("scalar", Tensor::zeros(*cpu, {}, DType::BF16));
  w.write(tmp.file("t.safetensors"));
  SafetensorsFile f = SafetensorsFile::open(tmp.file("t.safetensors"));
  CHECK(f.info("scalar").shape.empty());

  Tensor back = Tensor::zeros(*cpu, {2, 3}, DType::F32);
  f.read_into("model.embed_tokens.weight", back);
  CHECK(back.to_float_vector() == src);
  Tensor ids_back = Tensor::zeros(*cpu, {2}, DType::I64);
  f.read_into("ids", ids_back);
  CHECK(ids_back.data<int64_t>()[0] == 7);
  CHECK(ids_back.data<int64_t>()[1] == -8);

  // Converting read into bf16 and f16 tensors.
  Tensor bf = Tensor::zeros(*cpu, {2, 3}, DType::BF16);
  f.read_into_converting("model.embed_tokens.weight", bf);
  CHECK(bf.to_float_vector() == src);
  Tensor hf = Tensor::zeros(*cpu, {2, 3}, DType::F16);
  f.read_into_converting("model.embed_tokens.weight", hf);
  CHECK(hf.to_float_vector() == src);
}

TEST_CASE("read_into a Tensor of the wrong shape or dtype names both",
          "[io][safetensors][tensor]") {
  std::unique_ptr<Backend> cpu = make_cpu_backend(1);
  TempDir tmp;
  std::vector<uint16_t> w16(6, 0x3f80);
  SafetensorsWriter w;
  w.add("model.layers.0.self_attn.o_proj.weight", DType::BF16, {2, 3}, w16.data());
  w.write(tmp.file("m.safetensors"));
  SafetensorsFile f = SafetensorsFile::open(tmp.file("m.safetensors"));

  Tensor wrong_shape = Tensor::zeros(*cpu, {3, 2}, DType::BF16);
  CHECK_THROWS_WITH(f.read_into("model.layers.0.self_attn.o_proj.weight", wrong_shape),
                    Catch::Contains("m.safetensors") &&
                        Catch::Contains("model.layers.0.self_attn.o_proj.weight") &&
                        Catch::Contains("expected BF16[3, 2], found BF16[2, 3]"));
  Tensor wrong_dtype = Tensor::zeros(*cpu, {2, 3}, DType::F32);
  CHECK_THROWS_WITH(f.read_into("model.layers.0.self_attn.o_proj.weight", wrong_dtype),
                    Catch::Contains("expected F32[2, 3], found BF16[2, 3]"));
  CHECK(wrong_dtype.to_float_vector() == std::vector<float>(6, 0.0f));  // untouched
  f.read_into_converting("model.layers.0.self_attn.o_proj.weight", wrong_dtype);
  CHECK(wrong_dtype.to_float_vector() == std::vector<float>(6, 1.0f));
  CHECK_THROWS_AS(f.read_into_converting("model.layers.0.self_attn.o_proj.weight", wrong_shape),
                  CheckpointError);
  Tensor ints = Tensor::zeros(*cpu, {2, 3}, DType::I32);
  CHECK_THROWS_AS(f.read_into_converting("model.layers.0.self_attn.o_proj.weight", ints),
                  CheckpointError);
  Tensor undefined;
  CHECK_THROWS_WITH(f.read_into("model.layers.0.self_attn.o_proj.weight", undefined),
                    Catch::Contains("undefined"));

  // Through a sharded checkpoint as well.
  w.write_sharded(tmp.file("ck"), 1 << 20);
  ShardedSafetensors ck = ShardedSafetensors::open(tmp.file("ck"));
  Tensor ok = Tensor::zeros(*cpu, {2, 3}, DType::BF16);
  ck.read_into("model.layers.0.self_attn.o_proj.weight", ok);
  CHECK(ok.to_float_vector() == std::vector<float>(6, 1.0f));
  CHECK_THROWS_AS(ck.read_into("model.layers.0.self_attn.o_proj.weight", wrong_shape),
                  CheckpointError);
}
