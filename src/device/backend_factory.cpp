// make_backend / compute_dtype_for (backend_factory.h).
// Owns: the device-string grammar and the choice between the backends compiled in.
// Must not: create more than the one backend asked for.
#include "zeroth/backend_factory.h"

#include <cstdlib>

#include "zeroth/error.h"
#include "zeroth/gpu_probe.h"
#ifdef ZEROTH_HAVE_CUDA
#include "zeroth/cuda_backend.h"
#endif

namespace zeroth {

std::unique_ptr<Backend> make_backend(const std::string& device, int threads, int local_rank,
                                      const std::string& where) {
  if (device == "cpu") return make_cpu_backend(threads);
  int index = -1;
  if (device == "cuda") {
    index = -1;
  } else if (device.rfind("cuda:", 0) == 0 && device.size() > 5) {
    char* end = nullptr;
    const long v = std::strtol(device.c_str() + 5, &end, 10);
    if (*end != '\0' || v < 0 || v > 1024)
      throw ConfigError(strformat("%s: expected 'cpu', 'cuda' or 'cuda:<index>', found '%s'",
                                  where.c_str(), device.c_str()));
    index = int(v);
  } else {
    throw ConfigError(strformat("%s: expected 'cpu', 'cuda' or 'cuda:<index>', found '%s'",
                                where.c_str(), device.c_str()));
  }
#ifdef ZEROTH_HAVE_CUDA
  std::string why;
  if (!gpu_available(&why))
    throw RuntimeError(strformat("%s is '%s' but no CUDA device is usable here (%s)",
                                 where.c_str(), device.c_str(), why.c_str()));
  if (index < 0) index = local_rank % gpu_count();
  return make_cuda_backend(index);
#else
  (void)local_rank;
  (void)index;
  throw RuntimeError(strformat("%s is '%s' but this zeroth was built without CUDA "
                               "(configure with -DZEROTH_CUDA=ON where nvcc is installed)",
                               where.c_str(), device.c_str()));
#endif
}

DType compute_dtype_for(const Backend& be, const std::string& requested, const std::string& where) {
  if (requested.empty() || requested == "auto")
    return be.device().is_cpu() ? DType::F32 : DType::BF16;
  if (requested == "f32" || requested == "fp32" || requested == "float32") return DType::F32;
  if (requested == "bf16" || requested == "bfloat16") return DType::BF16;
  throw ConfigError(strformat("%s: expected 'auto', 'f32' or 'bf16', found '%s'", where.c_str(),
                              requested.c_str()));
}

}  // namespace zeroth
