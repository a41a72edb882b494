// GradSync: bucketed all-reduce of a ParamSet's flat gradients (or, ZeRO-1, the
// reduce-scatter of the gradients and the all-gather of the updated parameters), and the
// all-reduce of MoE expert loads (grad_sync.h).
//
// Owns: bucket boundaries, which rank owns which piece of a bucket, and the order of the
// collectives. Must not: scale, clip or otherwise touch the gradients beyond the
// reduction (reduce_and_step only calls the optimizer between the collectives).
#include <algorithm>
#include <cmath>
#include <utility>

#include "zeroth/error.h"
#include "zeroth/grad_sync.h"
#include "zeroth/optim.h"

namespace zeroth {

std::vector<GradBucket> make_grad_buckets(const ParamSet& layout, int64_t bucket_elems,
                                          bool split_experts) {
  ZT_ASSERT(bucket_elems > 0, "bucket size must be positive");
  const int64_t total = layout.flat.numel();
  const char* base = static_cast<const char*>(layout.flat.data_ptr());
  // Parameter starts in flat order (with whether a routed expert starts there); each
  // segment runs to the next start (gaps included).
  std::vector<std::pair<int64_t, bool>> starts{{0, false}};
  for (const ParamEntry& e : layout.entries) {
    const char* p = static_cast<const char*>(e.view.data_ptr());
    ZT_ASSERT(p >= base, "entry %s is not a view of flat", e.name.c_str());
    starts.push_back({int64_t(p - base) / int64_t(layout.flat.element_size()), split_experts && e.expert});
  }
  std::sort(starts.begin(), starts.end());
  // One start per offset: a parameter at offset 0 replaces the {0, false} start above.
  std::vector<std::pair<int64_t, bool>> uniq;
  for (const auto& s : starts) {
    if (!uniq.empty() && uniq.back().first == s.first) uniq.back() = s;
    else uniq.push_back(s);
  }
  uniq.push_back({total, false});

  std::vector<GradBucket> out;
  GradBucket cur;
  for (size_t i = 0; i + 1 < uniq.size(); ++i) {
    int64_t seg_begin = uniq[i].first;
    const int64_t seg_end = uniq[i + 1].first;
    const bool expert = uniq[i].second;
    if (seg_end <= seg_begin) continue;
    if (cur.numel > 0 &&
        (cur.numel + (seg_end - seg_begin) > bucket_elems || cur.expert != expert)) {
      out.push_back(cur);
      cur = GradBucket{seg_begin, 0, expert};
    }
    if (cur.numel == 0) {
      cur.offset = seg_begin;
      cur.expert = expert;
    }
    while (seg_end - seg_begin > bucket_elems - cur.numel) {  // split a long parameter
      const int64_t take = bucket_elems - cur.numel;
      cur.numel += take;
      seg_begin += take;
      out.push_back(cur);
      cur = GradBucket{seg_begin, 0, expert};
    }
    cur.numel += seg_end - seg_begin;
  }
  if (cur.numel > 0) out.push_back(cur);
  return out;
}

GradSync::GradSync(Communicator& comm, const ParamSet& layout, size_t bucket_bytes,
                   Communicator* expert_data, bool shard)
    : comm_(comm),
      expert_data_(expert_data),
      sharded_experts_(layout.experts.count > 0),
      shard_(shard),
      flat_numel_(layout.flat.numel()) {
  ZT_ASSERT(bucket_bytes > 0, "GradSync: bucket_bytes must be positive");
  ZT_ASSERT(!expert_data || sharded_experts_,
            "GradSync: an expert data-parallel group for a layout that holds every expert");
  if (expert_data)
    ZT_ASSERT(expert_data->device() == comm.device() && comm.size() % expert_data->size() == 0,
              "GradSync: expert data-parallel group of %d ranks on %s, data-parallel group of %d on %s",
              expert_data->size(), expert_data->device().str().c_str(), comm.size(),
              comm.device().str().c_str());
  const int64_t elems = std::max<int64_t>(1, int64_t(bucket_bytes / layout.flat.element_size()));
  buckets_ = make_grad_buckets(layout, elems, sharded_experts_);
  auto own = [&](int64_t offset, int64_t numel) {
    if (numel <= 0) return;
    if (!owned_.empty() && owned_.back().offset + owned_.back().numel == offset)
      owned_.back().numel += numel;
    else
      owned_.push_back({offset, numel});
  };
  for (const GradBucket& b : buckets_) {
    Communicator* g = shard_ ? group_of(b) : nullptr;
    if (!g) {
      own(b.offset, b.numel);
      continue;
    }
    const int64_t q = b.numel / g->size(), r = g->rank();
    own(b.offset + r * q, r == g->size() - 1 ? b.numel - r * q : q);
  }
}

Communicator* GradSync::group_of(const GradBucket& b) const {
  Communicator* g = b.expert ? expert_data_ : &comm_;
  return g && g->size() > 1 ? g : nullptr;
}

void GradSync::check_flat(const ParamSet& ps, const char* what) const {
  ZT_ASSERT(ps.flat.numel() == flat_numel_, "GradSync: %s have %lld elements, expected %lld", what,
            (long long)ps.flat.numel(), (long long)flat_numel_);
  ZT_ASSERT(ps.flat.device() == comm_.device(), "GradSync: %s on %s, communicator on %s", what,
            ps.flat.device().str().c_str(), comm_.device().str().c_str());
}

Tensor GradSync::staging(const Tensor& like, int64_t numel) {
  if (!staging_.defined() || staging_.dtype() != like.dtype() || staging_.numel() < numel) {
    int64_t most = 0;  // the largest piece of any bucket: one allocation per dtype
    for (const GradBucket& b : buckets_)
      if (Communicator* g = group_of(b)) most = std::max(most, b.numel / g->size());
    ZT_ASSERT(like.backend() != nullptr, "GradSync: %s is not a backend tensor", like.str().c_str());
    staging_ = Tensor::empty(*like.backend(), {std::max(most, numel)}, like.dtype());
  }
  return staging_.narrow(0, 0, numel);
}

void GradSync::all_reduce(ParamSet& grads, ReduceOp op) {
  ZT_ASSERT(op == ReduceOp::Sum || op == ReduceOp::Avg, "GradSync: op must be sum or avg, got %s",
            reduce_op_name(op));
  check_flat(grads, "gradients");
  ZT_ASSERT(!sharded_experts_ || op == ReduceOp::Sum,
            "GradSync: sharded experts are reduced with sum only, got %s", reduce_op_name(op));
  if (comm_.size() == 1) return;  // Sum and Avg over one rank are the identity
  const bool experts_reduce = expert_data_ && expert_data_->size() > 1;
  for (const GradBucket& b : buckets_) {
    Tensor chunk = grads.flat.narrow(0, b.offset, b.numel);
    if (!b.expert) comm_.all_reduce(chunk, op);
    else if (experts_reduce) expert_data_->all_reduce(chunk, op);
  }
}

void GradSync::reduce_scatter(ParamSet& grads, ReduceOp op) {
  ZT_ASSERT(shard_, "GradSync::reduce_scatter: made without shard (ZeRO-1)");
  ZT_ASSERT(op == ReduceOp::Sum || op == ReduceOp::Avg, "GradSync: op must be sum or avg, got %s",
            reduce_op_name(op));
  check_flat(grads, "gradients");
  ZT_ASSERT(!sharded_experts_ || op == ReduceOp::Sum,
            "GradSync: sharded experts are reduced with sum only, got %s", reduce_op_name(op));
  for (const GradBucket& b : buckets_) {
    Communicator* g = group_of(b);
    if (!g) continue;
    const int64_t n = g->size(), q = b.numel / n;
    if (q > 0) {
      Tensor piece = staging(grads.flat, q);
      g->reduce_scatter(grads.flat.narrow(0, b.offset, n * q), piece, op);
      Tensor mine = grads.flat.narrow(0, b.offset + g->rank() * q, q);
      grads.flat.backend()->copy(piece, mine);
    }
    if (b.numel > n * q) {
      Tensor tail = grads.flat.narrow(0, b.offset + n * q, b.numel - n * q);
      g->all_reduce(tail, op);
    }
  }
}

void GradSync::all_gather(ParamSet& params) {
  ZT_ASSERT(shard_, "GradSync::all_gather: made without shard (ZeRO-1)");
  check_flat(params, "parameters");
  for (const GradBucket& b : buckets_) {
    Communicator* g = group_of(b);
    if (!g) continue;
    const int64_t n = g->size(), q = b.numel / n;
    if (q > 0) {
      Tensor piece = staging(params.flat, q);
      params.flat.backend()->copy(params.flat.narrow(0, b.offset + g->rank() * q, q), piece);
      Tensor whole = params.flat.narrow(0, b.offset, n * q);
      g->all_gather(piece, whole);
    }
    if (b.numel > n * q) {
      Tensor tail = params.flat.narrow(0, b.offset + n * q, b.numel - n * q);
      g->broadcast(tail, int(n) - 1);
    }
  }
}

float reduce_and_step(GradSync& sync, AdamW& optimizer, ParamSet& params, ParamSet& grads, double lr) {
  ZT_ASSERT(sync.sharded() == optimizer.sharded(), "reduce_and_step: GradSync %s ZeRO-sharded, AdamW %s",
            sync.sharded() ? "is" : "is not", optimizer.sharded() ? "is" : "is not");
  if (!sync.sharded()) {
    sync.all_reduce(grads, ReduceOp::Sum);
    return optimizer.step(params, grads, lr);
  }
  sync.reduce_scatter(grads, ReduceOp::Sum);
  const float norm = optimizer.step(params, grads, lr);
  if (std::isfinite(norm)) sync.all_gather(params);  // else nothing moved, on every rank
  return norm;
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
