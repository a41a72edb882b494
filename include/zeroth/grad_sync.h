// GradSync: data-parallel reduction of gradients (and MoE expert loads) across the
// ranks of a data-parallel communicator.
//
// Owns: the bucketing of a ParamSet's flat gradient buffer (contiguous ranges cut at
// parameter boundaries, about `bucket_bytes` each; a parameter larger than a bucket
// is split) and the order of the all-reduces (buckets in flat order, every rank the
// same). This is the place where overlapping the reduction with the backward pass
// goes later: a bucket can be launched as soon as the last gradient inside it is
// final. Must not: compute anything on the gradients besides the reduction, or pick a
// communicator itself (the data-parallel group is passed in, STYLE.md practice 6).
//
// ZeRO stage 1 (run.zero_stage 1, `shard` below): instead of an all-reduce, each bucket
// is reduce-scattered, so every rank ends up with the reduced gradients of its own piece
// of the model only (owned()); the optimizer updates that piece (optim.h,
// OptimizerShard) and all_gather() then hands every rank's updated piece to all. The
// traffic equals the all-reduce's (a reduce-scatter plus an all-gather); the optimizer's
// moments shrink to 1/D of the model per rank.
//
// Synchronisation: as the communicator's (mpi/local: the data are reduced when the
// call returns; nccl: enqueued on the backend's stream).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "zeroth/comm.h"
#include "zeroth/model_params.h"

namespace zeroth {

class AdamW;

constexpr size_t kDefaultGradBucketBytes = 25u << 20;  // 25 MiB, as PyTorch DDP

// One bucket: elements [offset, offset + numel) of the flat buffer.
struct GradBucket {
  int64_t offset = 0;
  int64_t numel = 0;
  bool expert = false;  // routed experts' gradients (with split_experts only)
};

class GradSync {
 public:
  // Buckets for `layout` (a ParamSet of the gradients' layout; any dtype: bucket sizes
  // are computed from its flat dtype). bucket_bytes > 0.
  //
  // Expert parallelism: when `layout` holds a shard of the routed experts
  // (ParamSet::experts.count > 0), their gradients already sum the contributions of
  // every rank of the expert group, so they are reduced over `expert_data` instead: the
  // ranks that hold the same experts, one per expert group (nullptr or size 1: there is
  // one expert group, nothing to reduce). Every other gradient is reduced over `comm`
  // (all data-parallel ranks). Experts and the rest never share a bucket then.
  //
  // shard (ZeRO-1): bucket b is cut into g equal pieces, g the size of the group that
  // reduces it (`comm`, or `expert_data` for routed experts), and rank i of that group
  // owns piece i (the last rank also the < g elements left over). The owned ranges of all
  // ranks together hold every element of the model exactly once (a routed expert's
  // elements once per expert group, whose experts differ).
  GradSync(Communicator& comm, const ParamSet& layout,
           size_t bucket_bytes = kDefaultGradBucketBytes, Communicator* expert_data = nullptr,
           bool shard = false);

  // grads.flat = op over ranks of grads.flat, bucket by bucket in order. grads must have
  // the layout given to the constructor and live on comm's device. op: Sum or Avg (Sum
  // only with sharded experts: an average over `comm` would need their sum scaled).
  void all_reduce(ParamSet& grads, ReduceOp op);

  // ZeRO-1 (a GradSync made with shard): the owned ranges of grads.flat receive op over
  // ranks (bucket by bucket, in order: one reduce-scatter per bucket and an all-reduce of
  // its few left-over elements); the rest of grads.flat keeps this rank's own gradients
  // (not reduced: nothing may read them). Same arguments and op rules as all_reduce.
  void reduce_scatter(ParamSet& grads, ReduceOp op);
  // ZeRO-1: every rank's owned ranges of params.flat (as its optimizer left them) to every
  // rank of the groups that own them, so params are whole and the same on every rank
  // again. params: the layout given to the constructor, on comm's device, any dtype.
  void all_gather(ParamSet& params);

  // The ranges of the flat buffer this rank owns, in flat order, adjacent ones merged:
  // with shard as described at the constructor, without it the whole buffer.
  const std::vector<FlatRange>& owned() const { return owned_; }
  bool sharded() const { return shard_; }
  const std::vector<GradBucket>& buckets() const { return buckets_; }
  Communicator& comm() { return comm_; }

 private:
  Communicator& comm_;
  Communicator* expert_data_ = nullptr;
  bool sharded_experts_ = false;
  bool shard_ = false;
  int64_t flat_numel_ = 0;
  std::vector<GradBucket> buckets_;  // cover [0, flat_numel_) in order, no overlap
  std::vector<FlatRange> owned_;
  Tensor staging_;  // ZeRO-1: one rank's piece of a bucket (reduce-scatter out, all-gather in)

  // The group that reduces bucket b (nullptr: nothing to reduce, this rank holds b alone).
  Communicator* group_of(const GradBucket& b) const;
  void check_flat(const ParamSet& ps, const char* what) const;
  Tensor staging(const Tensor& like, int64_t numel);
};

// Cuts [0, layout.flat.numel()) into consecutive buckets of at most bucket_elems
// elements: parameters (with the alignment gap after each) are packed greedily in flat
// order, a new bucket starting at a parameter that does not fit (or, with
// split_experts, at a change between routed-expert and other parameters); a parameter
// longer than bucket_elems is split into bucket_elems pieces. Exposed for tests.
std::vector<GradBucket> make_grad_buckets(const ParamSet& layout, int64_t bucket_elems,
                                          bool split_experts = false);

// One data-parallel optimizer step: `grads` reduced over the ranks (sync.all_reduce with
// Sum, or ZeRO-1 sync.reduce_scatter), optimizer.step(params, grads, lr), then (ZeRO-1)
// sync.all_gather(params). Returns optimizer.step's norm (the same on every rank; not
// finite: nothing was updated). The optimizer must be sharded exactly when sync is (its
// OptimizerShard made from sync.owned()).
float reduce_and_step(GradSync& sync, AdamW& optimizer, ParamSet& params, ParamSet& grads, double lr);

// Sums the per-layer expert loads (Model::moe_stats()[i].load) over the ranks of
// `comm`, in place, in one host all-reduce, so every rank can call
// Model::update_router_bias with the global batch's loads. Every rank must pass the
// same number of layers and experts per layer (a mismatch is a caller bug).
void all_reduce_loads(Communicator& comm, std::vector<std::vector<int64_t>>& loads);

}  // namespace zeroth
