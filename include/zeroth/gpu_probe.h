// Whether a CUDA device is usable in this process. Safe to call in a build without
// CUDA (returns false) and on a machine without a driver (cudaGetDeviceCount's
// "insufficient driver" / "no device" mean "no GPU", not a failure).
#pragma once

#include <string>

namespace zeroth {

// True when the build has CUDA and at least one device answers. Otherwise false,
// and *why (if given) says why in a few words.
bool gpu_available(std::string* why = nullptr);

// Number of usable CUDA devices (0 when none or no CUDA build).
int gpu_count();

}  // namespace zeroth
