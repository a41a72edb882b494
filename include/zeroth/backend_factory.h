// make_backend: a Backend from the `run.device` string, for every command and test
// that may run on either device.
//
// Owns: parsing "cpu" / "cuda" / "cuda:<i>" and the per-device defaults (the GPU's
// compute dtype). Must not: be included by model or layer code (they take a Backend&).
#pragma once

#include <memory>
#include <string>

#include "zeroth/backend.h"
#include "zeroth/dtype.h"

namespace zeroth {

// "cpu" (threads <= 0: all cores), "cuda" (device: local_rank modulo the visible GPU
// count, so one rank per GPU on a node), or "cuda:<i>". Throws ConfigError naming
// `where` (e.g. "key 'run.device'") for a malformed string, and RuntimeError when CUDA
// is asked for but the build has no CUDA or no device is usable (with the reason).
std::unique_ptr<Backend> make_backend(const std::string& device, int threads = 0,
                                      int local_rank = 0,
                                      const std::string& where = "device");

// The compute dtype the model uses on a device: BF16 (mixed precision) on CUDA, F32 on
// the CPU (the reference), unless `requested` ("f32" / "bf16") overrides it; "" or
// "auto" means the device default. ConfigError for anything else.
DType compute_dtype_for(const Backend& be, const std::string& requested = "auto",
                        const std::string& where = "compute_dtype");

}  // namespace zeroth
