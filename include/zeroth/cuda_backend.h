// The CUDA backend's public face: a factory and the stream accessor.
//
// Owns: the two entry points other modules use to reach the CUDA backend (the
// implementation lives in src/cuda/ and kernels/). Must not: include any CUDA
// header, so that code built without nvcc can include it. The functions exist only
// in builds with ZEROTH_HAVE_CUDA (they are defined in the zeroth_cuda library);
// callers guard their use with `#ifdef ZEROTH_HAVE_CUDA`.
#pragma once

#include <memory>

#include "zeroth/backend.h"

namespace zeroth {

// A backend on CUDA device `device_index`, enqueuing every op on its own
// non-blocking stream. Throws RuntimeError naming the device ("cuda:3") when the
// device cannot be used: no driver or device, index out of range, or kernels not
// compiled for its architecture (ZEROTH_CUDA_ARCHITECTURES).
std::unique_ptr<Backend> make_cuda_backend(int device_index);

// The cudaStream_t (as void*) that `be` enqueues on, for NCCL calls and kernels
// outside the backend that must be ordered with its ops. Aborts (ZT_ASSERT) if `be`
// is not a CUDA backend.
void* cuda_stream_of(Backend& be);

}  // namespace zeroth
