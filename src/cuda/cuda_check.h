// Check macros for the CUDA runtime and cuBLAS, built on ZT_CHECK_LIB (error.h).
//
// Owns: ZT_CUDA_CHECK, ZT_CUDA_CHECK_LAUNCH and ZT_CUBLAS_CHECK. A failure throws
// RuntimeError "CUDA error at file:line: call failed: cudaErrorX: text". Must not:
// swallow errors or check anything other than a library status.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string>

#include "zeroth/error.h"

#define ZT_CUDA_CHECK(call)                                                              \
  ZT_CHECK_LIB("CUDA", call, zt_status_ == cudaSuccess,                                  \
               std::string(cudaGetErrorName(zt_status_)) + ": " +                        \
                   cudaGetErrorString(zt_status_))

// After a kernel launch: reports a bad launch configuration or an earlier
// asynchronous fault that is already known to the runtime.
#define ZT_CUDA_CHECK_LAUNCH() ZT_CUDA_CHECK(cudaGetLastError())

#define ZT_CUBLAS_CHECK(call)                                                            \
  ZT_CHECK_LIB("cuBLAS", call, zt_status_ == CUBLAS_STATUS_SUCCESS,                      \
               std::string(cublasGetStatusString(zt_status_)))
