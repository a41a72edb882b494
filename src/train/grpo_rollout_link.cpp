// The rollout -> trainer hand-over of rl.rollout_ranks (grpo_rollout_link.h).
#include "grpo_rollout_link.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>

#include "zeroth/backend.h"
#include "zeroth/comm.h"
#include "zeroth/error.h"
#include "zeroth/prompt_data.h"
#include "zeroth/tensor.h"

namespace zeroth {
namespace grpo_detail {

namespace {

// Little-endian, host layout: both ends are the same binary on the same kind of machine.
class Writer {
 public:
  template <class T>
  void put(T v) {
    static_assert(std::is_trivially_copyable<T>::value, "plain values only");
    const size_t at = out_.size();
    out_.resize(at + sizeof(T));
    std::memcpy(out_.data() + at, &v, sizeof(T));
  }
  template <class T>
  void put_vec(const std::vector<T>& v) {
    put<int64_t>(int64_t(v.size()));
    const size_t at = out_.size();
    out_.resize(at + v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(out_.data() + at, v.data(), v.size() * sizeof(T));
  }
  std::vector<uint8_t>& bytes() { return out_; }

 private:
  std::vector<uint8_t> out_;
};

class Reader {
 public:
  explicit Reader(const std::vector<uint8_t>& in) : in_(in) {}
  template <class T>
  T get() {
    ZT_ASSERT(at_ + sizeof(T) <= in_.size(), "rollout message: read past its end (%zu bytes)", in_.size());
    T v;
    std::memcpy(&v, in_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  template <class T>
  std::vector<T> get_vec() {
    const int64_t n = get<int64_t>();
    ZT_ASSERT(n >= 0 && at_ + size_t(n) * sizeof(T) <= in_.size(), "rollout message: bad length %lld",
              (long long)n);
    std::vector<T> v(static_cast<size_t>(n));
    if (n > 0) std::memcpy(v.data(), in_.data() + at_, size_t(n) * sizeof(T));
    at_ += size_t(n) * sizeof(T);
    return v;
  }
  bool done() const { return at_ == in_.size(); }

 private:
  const std::vector<uint8_t>& in_;
  size_t at_ = 0;
};

constexpr int kTagSize = 41, kTagBytes = 42;

// The trainer's fields of groups; the completions' texts stay where they were scored (the
// rewards are already in the advantages). Groups are moved before the update, so the
// old-log-prob pass has not filled its fields yet.
void put_groups(Writer& w, const std::vector<const Group*>& groups) {
  w.put<int64_t>(int64_t(groups.size()));
  for (const Group* g : groups) {
    ZT_ASSERT(g->old_logprob.empty(), "group %lld: moved after the old-log-prob pass", (long long)g->global_index);
    w.put(g->global_index);
    w.put_vec(g->prompt);
    w.put_vec(g->advantage);
    w.put_vec(g->in_loss);
    w.put<int64_t>(int64_t(g->completions.size()));
    for (const Completion& c : g->completions) {
      w.put(c.prompt_index);
      w.put(c.sample_index);
      w.put(c.sequence_id);
      w.put(int32_t(c.finish));
      w.put_vec(c.ids);
      w.put_vec(c.logprobs);
    }
  }
}

std::vector<Group> get_groups(Reader& rd) {
  const int64_t n = rd.get<int64_t>();
  ZT_ASSERT(n >= 0, "rollout message: %lld groups", (long long)n);
  std::vector<Group> groups(static_cast<size_t>(n));
  for (Group& g : groups) {
    g.global_index = rd.get<int64_t>();
    g.prompt = rd.get_vec<int32_t>();
    g.advantage = rd.get_vec<double>();
    g.in_loss = rd.get_vec<uint8_t>();
    const int64_t G = rd.get<int64_t>();
    ZT_ASSERT(G >= 0, "rollout message: %lld completions", (long long)G);
    g.completions.resize(size_t(G));
    for (Completion& c : g.completions) {
      c.prompt_index = rd.get<int64_t>();
      c.sample_index = rd.get<int64_t>();
      c.sequence_id = rd.get<uint64_t>();
      c.finish = FinishReason(rd.get<int32_t>());
      c.ids = rd.get_vec<int32_t>();
      c.logprobs = rd.get_vec<float>();
    }
  }
  return groups;
}

}  // namespace

void move_groups(Communicator& team, Backend& backend, std::vector<Group>& groups, const std::vector<int>& owner) {
  const int me = team.rank(), n = team.size();
  std::vector<std::vector<const Group*>> out(static_cast<size_t>(n));
  std::vector<Group> kept;
  for (const Group& g : groups) {
    ZT_ASSERT(g.global_index >= 0 && size_t(g.global_index) < owner.size(), "group %lld of %zu",
              (long long)g.global_index, owner.size());
    const int to = owner[size_t(g.global_index)];
    ZT_ASSERT(to >= 0 && to < n, "group %lld to rank %d of %d", (long long)g.global_index, to, n);
    if (to != me) out[size_t(to)].push_back(&g);
  }
  // Every rank's chunk (this rank's own too, with no groups, so no chunk and no tensor is
  // empty): a byte count in two I32 words, then the encoded groups in whole words. One
  // all_to_all_v of the word counts, then one of the words.
  std::vector<int32_t> words;
  std::vector<int64_t> send_counts(static_cast<size_t>(n), 0);
  for (int p = 0; p < n; ++p) {
    Writer w;
    put_groups(w, out[size_t(p)]);
    std::vector<uint8_t>& bytes = w.bytes();
    const int64_t used = int64_t(bytes.size());
    bytes.resize((bytes.size() + 3) / 4 * 4, 0);
    const size_t at = words.size();
    words.resize(at + 2 + bytes.size() / 4);
    std::memcpy(&words[at], &used, sizeof(used));
    std::memcpy(&words[at + 2], bytes.data(), bytes.size());
    send_counts[size_t(p)] = int64_t(words.size() - at);
  }
  Tensor sc = Tensor::empty(backend, {n}, DType::I64), rc = Tensor::empty(backend, {n}, DType::I64);
  sc.copy_from_host(send_counts.data(), send_counts.size() * sizeof(int64_t));
  const std::vector<int64_t> ones(size_t(n), 1);
  team.all_to_all_v(sc, ones, rc, ones);
  std::vector<int64_t> recv_counts(static_cast<size_t>(n));
  rc.copy_to_host(recv_counts.data(), recv_counts.size() * sizeof(int64_t));
  int64_t total_in = 0;
  for (int64_t c : recv_counts) {
    ZT_ASSERT(c >= 2, "group exchange: a chunk of %lld words", (long long)c);
    total_in += c;
  }
  Tensor sw = Tensor::empty(backend, {int64_t(words.size())}, DType::I32);
  Tensor rw = Tensor::empty(backend, {total_in}, DType::I32);
  sw.copy_from_host(words.data(), words.size() * sizeof(int32_t));
  team.all_to_all_v(sw, send_counts, rw, recv_counts);
  std::vector<int32_t> in(static_cast<size_t>(total_in));
  rw.copy_to_host(in.data(), in.size() * sizeof(int32_t));

  for (Group& g : groups)
    if (owner[size_t(g.global_index)] == me) kept.push_back(std::move(g));
  size_t at = 0;
  for (int p = 0; p < n; ++p) {
    const size_t count = size_t(recv_counts[size_t(p)]);
    int64_t used = 0;
    std::memcpy(&used, &in[at], sizeof(used));
    ZT_ASSERT(used >= 0 && size_t(used) <= (count - 2) * 4, "group exchange: %lld bytes in %zu words from rank %d",
              (long long)used, count, p);
    std::vector<uint8_t> bytes(static_cast<size_t>(used));
    std::memcpy(bytes.data(), &in[at + 2], size_t(used));
    Reader rd(bytes);
    for (Group& g : get_groups(rd)) kept.push_back(std::move(g));
    ZT_ASSERT(rd.done(), "group exchange: %lld bytes from rank %d, not all read", (long long)used, p);
    at += count;
  }
  std::sort(kept.begin(), kept.end(), [](const Group& a, const Group& b) { return a.global_index < b.global_index; });
  groups = std::move(kept);
}

std::vector<uint8_t> encode_step_rollout(const StepRollout& r, int64_t begin, int64_t count) {
  Writer w;
  w.put_vec(r.sums);
  w.put(r.len_max);
  w.put(r.kept_global);
  w.put(r.rounds);
  w.put(r.rollout_s);
  w.put(r.reward_s);
  w.put(r.idle_s);
  w.put(r.cursor.epoch);
  w.put(r.cursor.position);
  w.put_vec(r.skipped);
  w.put(r.mem_rss_gib);
  w.put(r.mem_peak_gib);
  std::vector<const Group*> mine;
  for (const Group& g : r.groups)
    if (g.global_index >= begin && g.global_index < begin + count) mine.push_back(&g);
  put_groups(w, mine);
  return std::move(w.bytes());
}

StepRollout decode_step_rollout(const std::vector<uint8_t>& bytes) {
  Reader rd(bytes);
  StepRollout r;
  r.sums = rd.get_vec<double>();
  r.len_max = rd.get<double>();
  r.kept_global = rd.get<int64_t>();
  r.rounds = rd.get<int64_t>();
  r.rollout_s = rd.get<double>();
  r.reward_s = rd.get<double>();
  r.idle_s = rd.get<double>();
  r.cursor.epoch = rd.get<int64_t>();
  r.cursor.position = rd.get<int64_t>();
  r.skipped = rd.get_vec<int64_t>();
  r.mem_rss_gib = rd.get<double>();
  r.mem_peak_gib = rd.get<double>();
  r.groups = get_groups(rd);
  ZT_ASSERT(rd.done(), "rollout message: %zu bytes, not all read", bytes.size());
  return r;
}

void send_step_rollout(Communicator& world, Backend& backend, int rollout_ranks, const StepRollout& mine) {
  const int trainers = world.size() - rollout_ranks;
  for (int t = 0; t < trainers; ++t) {
    const PromptShard share = prompt_shard(mine.kept_global, t, trainers);
    std::vector<uint8_t> bytes = encode_step_rollout(mine, share.begin, share.count);
    const int64_t n = int64_t(bytes.size());
    Tensor size = Tensor::empty(backend, {1}, DType::I64);
    size.copy_from_host(&n, sizeof(n));
    world.send(size, t, kTagSize);
    // Sent as whole I32 words (the tail zero-padded).
    bytes.resize((bytes.size() + 3) / 4 * 4, 0);
    Tensor payload = Tensor::empty(backend, {int64_t(bytes.size() / 4)}, DType::I32);
    payload.copy_from_host(bytes.data(), bytes.size());
    world.send(payload, t, kTagBytes);
  }
}

StepRollout recv_step_rollout(Communicator& world, Backend& backend, int rollout_ranks) {
  const int first_worker = world.size() - rollout_ranks;
  StepRollout out;
  for (int w = first_worker; w < world.size(); ++w) {
    Tensor size = Tensor::empty(backend, {1}, DType::I64);
    world.recv(size, w, kTagSize);
    int64_t n = 0;
    size.copy_to_host(&n, sizeof(n));
    ZT_ASSERT(n > 0, "rollout message of %lld bytes from rank %d", (long long)n, w);
    std::vector<uint8_t> bytes(size_t((n + 3) / 4 * 4));
    Tensor payload = Tensor::empty(backend, {int64_t(bytes.size() / 4)}, DType::I32);
    world.recv(payload, w, kTagBytes);
    payload.copy_to_host(bytes.data(), bytes.size());
    bytes.resize(size_t(n));
    StepRollout part = decode_step_rollout(bytes);
    if (w == first_worker)
      out = std::move(part);  // the step figures, and its groups
    else
      for (Group& g : part.groups) out.groups.push_back(std::move(g));
  }
  std::sort(out.groups.begin(), out.groups.end(),
            [](const Group& a, const Group& b) { return a.global_index < b.global_index; });
  return out;
}

std::string gather_text(Communicator& team, Backend& backend, const std::string& text) {
  const int n = team.size();
  const int64_t mine = int64_t(text.size());
  Tensor size = Tensor::empty(backend, {1}, DType::I64), sizes = Tensor::empty(backend, {n}, DType::I64);
  size.copy_from_host(&mine, sizeof(mine));
  team.all_gather(size, sizes);
  std::vector<int64_t> len(static_cast<size_t>(n));
  sizes.copy_to_host(len.data(), len.size() * sizeof(int64_t));
  const int64_t words = std::max<int64_t>(1, (*std::max_element(len.begin(), len.end()) + 3) / 4);
  std::vector<int32_t> buf(static_cast<size_t>(words), 0);
  if (!text.empty()) std::memcpy(buf.data(), text.data(), text.size());
  Tensor in = Tensor::empty(backend, {words}, DType::I32), out = Tensor::empty(backend, {words * n}, DType::I32);
  in.copy_from_host(buf.data(), buf.size() * sizeof(int32_t));
  team.all_gather(in, out);
  if (team.rank() != 0) return "";
  std::vector<int32_t> all(static_cast<size_t>(words * n));
  out.copy_to_host(all.data(), all.size() * sizeof(int32_t));
  std::string joined;
  for (int p = 0; p < n; ++p)
    joined.append(reinterpret_cast<const char*>(all.data() + size_t(p) * size_t(words)), size_t(len[size_t(p)]));
  return joined;
}

PolicyBroadcast::PolicyBroadcast(Communicator& world, int rollout_ranks, int expert_parallel,
                                 const ModelConfig& config, Backend& backend)
    : config_(config), backend_(backend), parts_(expert_parallel) {
  const int rank = world.rank();
  worker_ = rank >= world.size() - rollout_ranks;
  for (int q = 0; q < parts_; ++q)
    comms_.push_back(world.split(worker_ || rank == q ? 0 : kSplitNoColor, rank));
}

PolicyBroadcast::~PolicyBroadcast() = default;

void PolicyBroadcast::run(ParamSet& params) {
  if (parts_ == 1) {
    if (comms_[0]) comms_[0]->broadcast(params.flat, 0);
    return;
  }
  if (!worker_) {
    for (int q = 0; q < parts_; ++q)
      if (comms_[size_t(q)]) comms_[size_t(q)]->broadcast(params.flat, comms_[size_t(q)]->rank());
    return;
  }
  if (!scratch_) {
    const ExpertShard shard0 = ExpertShard::of(config_, 0, parts_);
    scratch_ = std::make_unique<ParamSet>(make_param_set(config_, backend_, DType::F32, shard0));
    std::map<std::string, size_t> whole;
    for (size_t i = 0; i < params.entries.size(); ++i) whole[params.entries[i].name] = i;
    copies_.resize(size_t(parts_));
    for (int q = 0; q < parts_; ++q)
      for (const ParamEntry& e : scratch_->entries) {
        if (!e.expert && q > 0) continue;  // the dense tensors: from shard 0
        const std::string name = e.expert ? shift_expert_name(e.name, int64_t(q) * shard0.count) : e.name;
        const auto it = whole.find(name);
        ZT_ASSERT(it != whole.end(), "policy broadcast: %s not in the whole model", name.c_str());
        copies_[size_t(q)].emplace_back(e.view, params.entries[it->second].view);
      }
  }
  for (int q = 0; q < parts_; ++q) {
    // (the trainer is rank 0 of this communicator: ranked by world rank, trainer q < workers)
    comms_[size_t(q)]->broadcast(scratch_->flat, 0);
    for (auto& [src, dst] : copies_[size_t(q)]) backend_.copy(src, dst);
  }
}

}  // namespace grpo_detail
}  // namespace zeroth
