// add_memory_metrics (train.h): host memory of the ranks in a step's metrics row.
#include "zeroth/comm.h"
#include "zeroth/memory_usage.h"
#include "zeroth/train.h"

namespace zeroth {

void add_memory_metrics(Communicator& ranks, std::map<std::string, double>& m) {
  const HostMemory mem = host_memory();
  double v[2] = {double(mem.rss_bytes), double(mem.peak_bytes)};
  ranks.all_reduce_host(v, 2, ReduceOp::Max);
  constexpr double kGiB = double(int64_t(1) << 30);
  if (v[0] > 0) m["mem_rss_gib"] = v[0] / kGiB;
  if (v[1] > 0) m["mem_peak_gib"] = v[1] / kGiB;
}

}  // namespace zeroth
