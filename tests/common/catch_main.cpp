// Shared Catch2 v2 main for zeroth's test binaries.
//
// Extra flag, consumed before Catch sees the command line:
//   --require-gpu   exit 77 (CTest: skipped) with a printed reason when no CUDA
//                   device is usable, instead of running the tests.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "zeroth/gpu_probe.h"

int main(int argc, char** argv) {
  std::vector<char*> args;
  bool require_gpu = false;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--require-gpu") == 0) {
      require_gpu = true;
      continue;
    }
    args.push_back(argv[i]);
  }
  if (require_gpu) {
    std::string why;
    if (!zeroth::gpu_available(&why)) {
      std::printf("SKIPPED: no usable CUDA device (%s); GPU tests run only where a GPU is present\n",
                  why.c_str());
      std::fflush(stdout);
      return 77;
    }
  }
  return Catch::Session().run(static_cast<int>(args.size()), args.data());
}
