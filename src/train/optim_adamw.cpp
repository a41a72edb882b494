// AdamW over a ParamSet: global gradient norm, clipping, per-range adamw_step (optim.h).
//
// Owns: the moments (of the whole layout, or of the ZeRO-1 owned ranges), the step
// count, the grouping of parameters into update ranges (adjacent entries with the same
// treatment merged, so a model costs a handful of backend calls rather than one per HF
// tensor), and the checkpoint state.
// Must not: communicate (except the squared norm over the expert group under expert
// parallelism, or over the data-parallel group under ZeRO-1), or read the device except
// the one squared-norm read per step.
#include <algorithm>
#include <cmath>
#include <regex>

#include "zeroth/error.h"
#include "zeroth/log.h"
#include "zeroth/optim.h"

namespace zeroth {

namespace {

int64_t entry_offset(const ParamSet& ps, const ParamEntry& e) {
  const char* base = static_cast<const char*>(ps.flat.data_ptr());
  const char* p = static_cast<const char*>(e.view.data_ptr());
  ZT_ASSERT(e.view.is_contiguous() && p >= base, "entry %s is not a contiguous view of flat",
            e.name.c_str());
  return int64_t(p - base) / int64_t(ps.flat.element_size());
}

}  // namespace

AdamW::AdamW(const OptimConfig& config, const ModelConfig& model, Backend& backend,
             ExpertShard shard, Communicator* expert_group, const OptimizerShard* zero)
    : config_(config), be_(backend) {
  config_.validate();
  norm_sq_ = Tensor::zeros(backend, {2}, DType::F32);
  // The layout: the caller's (ZeRO) or the moments' own (without ZeRO, m_ is one whole
  // F32 ParamSet of the model).
  ParamSet own;
  const ParamSet* layout = nullptr;
  if (zero) {
    ZT_ASSERT(zero->layout && zero->group, "AdamW: an OptimizerShard needs a layout and a group");
    layout = zero->layout;
    ZT_ASSERT(layout->experts.first == shard.first && layout->experts.local(model) == shard.local(model),
              "AdamW: the OptimizerShard's layout holds other experts than the ExpertShard");
    sharded_ = true;
    zero_group_ = zero->group;
  } else {
    own = make_param_set(model, backend, DType::F32, shard);
    layout = &own;
  }
  layout_numel_ = layout->flat.numel();
  if (!zero && expert_group && expert_group->size() > 1) {
    ZT_ASSERT(shard.count > 0 && !shard.whole(model),
              "AdamW: an expert group of %d ranks with a layout that holds every expert",
              expert_group->size());
    expert_group_ = expert_group;
  }

  // The held pieces and the moment buffers.
  if (zero) {
    int64_t local = 0, end = 0;
    for (const FlatRange& r : zero->owned) {
      ZT_ASSERT(r.offset >= end && r.numel >= 0 && r.offset + r.numel <= layout_numel_,
                "AdamW: owned ranges must be sorted, disjoint and inside the %lld elements",
                (long long)layout_numel_);
      end = r.offset + r.numel;
      if (r.numel == 0) continue;
      pieces_.push_back({r.offset, r.numel, local});
      local += r.numel;
    }
    m_ = Tensor::zeros(backend, {local}, DType::F32);
    v_ = Tensor::zeros(backend, {local}, DType::F32);
    ZT_LOG_INFO("optim: ZeRO-1 over %d ranks: this rank keeps the AdamW moments of %lld of %lld elements "
                "(%.1f MiB instead of %.1f MiB)",
                zero_group_->size(), (long long)local, (long long)layout_numel_,
                double(local) * 8.0 / 1048576.0, double(layout_numel_) * 8.0 / 1048576.0);
  } else {
    pieces_.push_back({0, layout_numel_, 0});
    m_ = own.flat;
    v_ = Tensor::zeros(backend, {layout_numel_}, DType::F32);
  }

  // Every parameter (for checkpoints by name) and the trainable ones, in flat order.
  struct Item {
    int64_t offset, numel;
    bool decay, expert;
  };
  std::vector<Item> items;
  std::vector<std::regex> frozen;
  for (const std::string& f : config_.frozen) frozen.emplace_back(f);
  std::vector<int64_t> hits(frozen.size(), 0);
  for (const ParamEntry& e : layout->entries) {
    const int64_t offset = entry_offset(*layout, e);
    slots_.push_back({e.name, offset, e.view.numel(), e.expert});
    bool freeze = false;
    for (size_t i = 0; i < frozen.size(); ++i)
      if (std::regex_search(e.name, frozen[i])) {
        freeze = true;
        ++hits[i];
      }
    if (freeze) ++frozen_tensors_;
    if (e.trainable && !freeze)
      items.push_back({offset, e.view.numel(), e.weight_decay, e.expert && expert_group_});
  }
  std::sort(slots_.begin(), slots_.end(), [](const Slot& a, const Slot& b) { return a.offset < b.offset; });
  // A pattern may name only experts that other ranks of the expert group hold.
  if (!shard.whole(model))
    for (size_t i = 0; i < frozen.size(); ++i)
      for (int64_t l = 0; l < model.num_hidden_layers && hits[i] == 0; ++l) {
        if (!model.is_moe_layer(l)) continue;
        for (int64_t e = 0; e < model.n_routed_experts && hits[i] == 0; ++e)
          for (const char* w : {"gate_proj", "up_proj", "down_proj"})
            if (std::regex_search("model.layers." + std::to_string(l) + ".mlp.experts." +
                                      std::to_string(e) + "." + w + ".weight",
                                  frozen[i]))
              hits[i] = 1;
      }
  for (size_t i = 0; i < frozen.size(); ++i)
    ZT_THROW_IF_NOT(hits[i] > 0, ConfigError,
                    "key 'optim.frozen': pattern '%s' matches no parameter of the model (HF tensor "
                    "names, e.g. %s)",
                    config_.frozen[i].c_str(), slots_.empty() ? "none" : layout->entries.back().name.c_str());
  if (frozen_tensors_ > 0)
    ZT_LOG_INFO("optim.frozen: %lld of %zu parameter tensors frozen", (long long)frozen_tensors_,
                layout->entries.size());
  std::sort(items.begin(), items.end(),
            [](const Item& a, const Item& b) { return a.offset < b.offset; });
  // The trainable items cut to the held pieces; adjacent runs with the same treatment
  // (contiguous in the parameters and in the moments) merged.
  size_t pi = 0;
  for (const Item& it : items) {
    ZT_ASSERT(ranges_.empty() || ranges_.back().offset + ranges_.back().numel <= it.offset,
              "overlapping parameter entries");
    while (pi < pieces_.size() && pieces_[pi].offset + pieces_[pi].numel <= it.offset) ++pi;
    for (size_t k = pi; k < pieces_.size() && pieces_[k].offset < it.offset + it.numel; ++k) {
      const Piece& pc = pieces_[k];
      const int64_t begin = std::max(it.offset, pc.offset);
      const int64_t end = std::min(it.offset + it.numel, pc.offset + pc.numel);
      const int64_t local = pc.local + (begin - pc.offset);
      if (!ranges_.empty()) {
        UpdateRange& last = ranges_.back();
        if (last.decay == it.decay && last.expert == it.expert && last.offset + last.numel == begin &&
            last.local + last.numel == local) {
          last.numel += end - begin;
          continue;
        }
      }
      ranges_.push_back({begin, end - begin, local, it.decay, it.expert});
    }
  }
}

float AdamW::step(ParamSet& params, const ParamSet& grads, double lr, ParamSet* bf16_copy) {
  check_layout(params, "params");
  check_layout(grads, "grads");
  ZT_ASSERT(params.flat.dtype() == DType::F32, "AdamW::step: params must be F32 master weights, got %s",
            params.flat.str().c_str());
  if (bf16_copy) {
    check_layout(*bf16_copy, "bf16_copy");
    ZT_ASSERT(bf16_copy->flat.dtype() == DType::BF16, "AdamW::step: bf16_copy is %s",
              bf16_copy->flat.str().c_str());
  }

  // Global L2 norm of the trainable gradients: one host read.
  float norm_sq = 0.0f;
  if (zero_group_) {
    // ZeRO-1: the owned ranges of the group's ranks hold every element once.
    Tensor all = norm_sq_.narrow(0, 0, 1);
    be_.fill(all, 0.0);
    for (const UpdateRange& r : ranges_) be_.sum_squares(grads.flat.narrow(0, r.offset, r.numel), all, true);
    float host = 0.0f;
    be_.copy_to_host(&host, norm_sq_.data_ptr(), sizeof(float));
    double total = host;
    zero_group_->all_reduce_host(&total, 1, ReduceOp::Sum);
    norm_sq = float(total);
  } else if (!expert_group_) {
    Tensor all = norm_sq_.narrow(0, 0, 1);
    for (size_t i = 0; i < ranges_.size(); ++i)
      be_.sum_squares(grads.flat.narrow(0, ranges_[i].offset, ranges_[i].numel), all, i > 0);
    if (!ranges_.empty()) be_.copy_to_host(&norm_sq, norm_sq_.data_ptr(), sizeof(float));
  } else {
    // Expert parallelism: the others' part is the same on every rank of the group; the
    // experts' parts are disjoint shards, summed over the group.
    be_.fill(norm_sq_, 0.0);
    Tensor parts[2] = {norm_sq_.narrow(0, 0, 1), norm_sq_.narrow(0, 1, 1)};
    for (const UpdateRange& r : ranges_)
      be_.sum_squares(grads.flat.narrow(0, r.offset, r.numel), parts[r.expert ? 1 : 0], true);
    float host[2] = {0.0f, 0.0f};
    be_.copy_to_host(host, norm_sq_.data_ptr(), sizeof(host));
    double experts = host[1];
    expert_group_->all_reduce_host(&experts, 1, ReduceOp::Sum);
    norm_sq = float(double(host[0]) + experts);
  }
  const float norm = std::sqrt(norm_sq);
  if (!std::isfinite(norm)) return norm;

  float grad_scale = 1.0f;
  if (config_.grad_clip > 0.0) {
    const double coef = config_.grad_clip / (double(norm) + 1e-6);
    if (coef < 1.0) grad_scale = float(coef);
  }

  ++step_;
  Backend::AdamWArgs args;
  args.lr = float(lr);
  args.beta1 = float(config_.beta1);
  args.beta2 = float(config_.beta2);
  args.eps = float(config_.eps);
  args.grad_scale = grad_scale;
  args.bias_correction1 = float(1.0 - std::pow(config_.beta1, double(step_)));
  args.bias_correction2 = float(1.0 - std::pow(config_.beta2, double(step_)));
  for (const UpdateRange& r : ranges_) {
    args.weight_decay = r.decay ? float(config_.weight_decay) : 0.0f;
    Tensor p = params.flat.narrow(0, r.offset, r.numel);
    Tensor m = m_.narrow(0, r.local, r.numel);
    Tensor v = v_.narrow(0, r.local, r.numel);
    Tensor copy = bf16_copy ? bf16_copy->flat.narrow(0, r.offset, r.numel) : Tensor();
    be_.adamw_step(p, grads.flat.narrow(0, r.offset, r.numel), m, v, args, copy);
  }
  return norm;
}

void AdamW::check_layout(const ParamSet& ps, const char* what) const {
  ZT_ASSERT(ps.flat.defined() && ps.flat.numel() == layout_numel_ && ps.entries.size() == slots_.size(),
            "AdamW::step: %s (%s, %zu entries) does not have the optimizer's layout (%lld elements, %zu "
            "entries)",
            what, ps.flat.defined() ? ps.flat.str().c_str() : "undefined", ps.entries.size(),
            (long long)layout_numel_, slots_.size());
}

AdamWState AdamW::state() const { return AdamWState{step_, m_, v_}; }

void AdamW::load_state(const AdamWState& state) {
  ZT_ASSERT(!sharded_, "AdamW::load_state: a ZeRO-sharded optimizer loads by name");
  ZT_THROW_IF_NOT(state.step >= 0, CheckpointError,
                  "optimizer state: expected a step count >= 0, found %lld", (long long)state.step);
  auto load = [&](const Tensor& src, Tensor& dst, const char* what) {
    ZT_THROW_IF_NOT(src.defined() && src.dtype() == DType::F32 && src.numel() == dst.numel(),
                    CheckpointError,
                    "optimizer state: expected %s as f32 with %lld elements (the model's "
                    "parameter layout), found %s",
                    what, (long long)dst.numel(), src.defined() ? src.str().c_str() : "nothing");
    ZT_ASSERT(src.is_contiguous(), "optimizer state %s must be contiguous", what);
    if (src.device() == be_.device())
      be_.copy(src, dst);
    else if (src.device().is_cpu())
      dst.copy_from_host(src.data_ptr(), src.nbytes());
    else
      ZT_ASSERT(false, "optimizer state %s is on %s, expected the host or %s", what,
                src.device().str().c_str(), be_.device().str().c_str());
  };
  load(state.m, m_, "m");
  load(state.v, v_, "v");
  step_ = state.step;
}

void AdamW::visit_pieces(
    const std::function<void(const Slot&, int64_t begin, int64_t n, int64_t local)>& fn) const {
  size_t pi = 0;
  for (const Slot& s : slots_) {
    while (pi < pieces_.size() && pieces_[pi].offset + pieces_[pi].numel <= s.offset) ++pi;
    for (size_t k = pi; k < pieces_.size() && pieces_[k].offset < s.offset + s.numel; ++k) {
      const Piece& pc = pieces_[k];
      const int64_t begin = std::max(s.offset, pc.offset);
      const int64_t end = std::min(s.offset + s.numel, pc.offset + pc.numel);
      fn(s, begin - s.offset, end - begin, pc.local + (begin - pc.offset));
    }
  }
}

void AdamW::for_each_piece(const std::function<void(const MomentPiece&)>& fn) const {
  visit_pieces([&](const Slot& s, int64_t begin, int64_t n, int64_t local) {
    MomentPiece p;
    p.name = &s.name;
    p.numel = s.numel;
    p.expert = s.expert;
    p.offset = s.offset;
    p.begin = begin;
    p.m = m_.narrow(0, local, n);
    p.v = v_.narrow(0, local, n);
    fn(p);
  });
}

void AdamW::load_state_by_name(int64_t step, const std::function<void(const MomentPiece&)>& fill) {
  ZT_THROW_IF_NOT(step >= 0, CheckpointError,
                  "optimizer state: expected a step count >= 0, found %lld", (long long)step);
  be_.fill(m_, 0.0);
  be_.fill(v_, 0.0);
  for_each_piece(fill);
  step_ = step;
}

}  // namespace zeroth
