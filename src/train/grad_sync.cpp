// GradSync: bucketed all-reduce of a ParamSet's flat gradients, and the all-reduce of
// MoE expert loads (grad_sync.h).
//
// Owns: bucket boundaries and the order of the reductions. Must not: scale, clip or
// otherwise touch the gradients beyond the reduction.
#include <algorithm>

#include "zeroth/error.h"
#include "zeroth/grad_sync.h"

namespace zeroth {

std::vector<GradBucket> make_grad_buckets(const ParamSet& layout, int64_t bucket_elems) {
  ZT_ASSERT(bucket_elems > 0, "bucket size must be positive");
  const int64_t total = layout.flat.numel();
  const char* base = static_cast<const char*>(layout.flat.data_ptr());
  // Parameter starts in flat order; each segment runs to the next start (gaps included).
  std::vector<int64_t> starts{0};
  for (const ParamEntry& e : layout.entries) {
    const char* p = static_cast<const char*>(e.view.data_ptr());
    ZT_ASSERT(p >= base, "entry %s is not a view of flat", e.name.c_str());
    starts.push_back(int64_t(p - base) / int64_t(layout.flat.element_size()));
  }
  std::sort(starts.begin(), starts.end());
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  starts.push_back(total);

  std::vector<GradBucket> out;
  GradBucket cur;
  for (size_t i = 0; i + 1 < starts.size(); ++i) {
    int64_t seg_begin = starts[i];
    const int64_t seg_end = starts[i + 1];
    if (seg_end <= seg_begin) continue;
    if (cur.numel > 0 && cur.numel + (seg_end - seg_begin) > bucket_elems) {
      out.push_back(cur);
      cur = GradBucket{seg_begin, 0};
    }
    if (cur.numel == 0) cur.offset = seg_begin;
    while (seg_end - seg_begin > bucket_elems - cur.numel) {  // split a long parameter
      const int64_t take = bucket_elems - cur.numel;
      cur.numel += take;
      seg_begin += take;
      out.push_back(cur);
      cur = GradBucket{seg_begin, 0};
    }
    cur.numel += seg_end - seg_begin;
  }
  if (cur.numel > 0) out.push_back(cur);
  return out;
}

GradSync::GradSync(Communicator& comm, const ParamSet& layout, size_t bucket_bytes)
    : comm_(comm), flat_numel_(layout.flat.numel()) {
  ZT_ASSERT(bucket_bytes > 0, "GradSync: bucket_bytes must be positive");
  const int64_t elems = std::max<int64_t>(1, int64_t(bucket_bytes / layout.flat.element_size()));
  buckets_ = make_grad_buckets(layout, elems);
}

void GradSync::all_reduce(ParamSet& grads, ReduceOp op) {
  ZT_ASSERT(op == ReduceOp::Sum || op == ReduceOp::Avg, "GradSync: op must be sum or avg, got %s",
            reduce_op_name(op));
  ZT_ASSERT(grads.flat.numel() == flat_numel_, "GradSync: gradients have %lld elements, expected %lld",
            (long long)grads.flat.numel(), (long long)flat_numel_);
  ZT_ASSERT(grads.flat.device() == comm_.device(), "GradSync: gradients on %s, communicator on %s",
            grads.flat.device().str().c_str(), comm_.device().str().c_str());
  if (comm_.size() == 1) return;  // Sum and Avg over one rank are the identity
  for (const GradBucket& b : buckets_) {
    Tensor chunk = grads.flat.narrow(0, b.offset, b.numel);
    comm_.all_reduce(chunk, op);
  }
}

void all_reduce_loads(Communicator& comm, std::vector<std::vector<int64_t>>& loads) {
  std::vector<int64_t> flat;
  for (const auto& layer : loads) flat.insert(flat.end(), layer.begin(), layer.end());
  if (flat.empty()) return;
  comm.all_reduce_host(flat.data(), flat.size(), ReduceOp::Sum);
  size_t k = 0;
  for (auto& layer : loads)
    for (auto& x : layer) x = flat[k++];
}

}  // namespace zeroth
