// comm_checks.h: rank-tagged data and the generic checks of every operation.
#include "comm_checks.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "zeroth/dtype.h"
#include "zeroth/error.h"

namespace zeroth {
namespace comm_test {
namespace {

Communicator* g_world = nullptr;  // test-process state only: set once by the test main

bool is_half(DType t) { return t == DType::BF16 || t == DType::F16; }

double sign(int64_t i) { return i % 2 ? -1.0 : 1.0; }

void store(DType t, void* p, size_t i, double v) {
  switch (t) {
    case DType::F32: static_cast<float*>(p)[i] = float(v); return;
    case DType::BF16: static_cast<uint16_t*>(p)[i] = float_to_bf16(float(v)); return;
    case DType::F16: static_cast<uint16_t*>(p)[i] = float_to_f16(float(v)); return;
    case DType::I32: static_cast<int32_t*>(p)[i] = int32_t(v); return;
    case DType::I64: static_cast<int64_t*>(p)[i] = int64_t(v); return;
    case DType::F8E4M3: break;  // storage only
  }
}

double load(DType t, const void* p, size_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::BF16: return bf16_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::F16: return f16_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::I32: return static_cast<const int32_t*>(p)[i];
    case DType::I64: return double(static_cast<const int64_t*>(p)[i]);
    case DType::F8E4M3: break;  // storage only
  }
  return NAN;
}

std::string label(const Communicator& c, DType t, const char* what) {
  return strformat("%s on %s comm (rank %d of %d), %s", what, c.kind(), c.rank(), c.size(),
                   dtype_label(t));
}

// Elements rank s sends to rank p in check_all_to_all_v: uneven, zero for some pairs.
int64_t a2a_count(int s, int p) { return int64_t((s + 2 * p + 1) % 4) * 37; }

}  // namespace

void set_world(Communicator* w) { g_world = w; }
Communicator& world() {
  ZT_ASSERT(g_world != nullptr, "the test main did not set the world communicator");
  return *g_world;
}

const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> kAll = {DType::F32, DType::BF16, DType::F16, DType::I32, DType::I64};
  return kAll;
}

const char* dtype_label(DType t) { return dtype_name(t); }

double tagged(DType t, int src, int dst, int64_t i) {
  if (is_half(t)) return src * 64.0 + dst * 16.0 + double(i % 16);
  return src * 1000000.0 + dst * 1000.0 + double(i % 1000);
}

double contribution(ReduceOp op, DType t, int r, int np, int64_t i) {
  if (op == ReduceOp::Max) {
    // One winner per element: the rank with (r + i) % np == np - 1; negative values.
    double winner_rank_term = double((r + i) % np);
    return is_half(t) ? winner_rank_term * 16.0 + r - 100.0 : winner_rank_term * 1000.0 + r - 5000.0;
  }
  double pow2 = double(int64_t(1) << r);  // distinct per rank
  if (is_half(t)) return sign(i) * pow2 * double(1 + i % 3);
  return sign(i) * (pow2 * 1000.0 + double(i % 997));
}

double expected_reduction(ReduceOp op, DType t, int np, int64_t i) {
  double acc = op == ReduceOp::Max ? -INFINITY : 0.0;
  for (int r = 0; r < np; ++r) {
    double v = contribution(op, t, r, np, i);
    acc = op == ReduceOp::Max ? std::max(acc, v) : acc + v;
  }
  return op == ReduceOp::Avg ? acc / np : acc;
}

Tensor make_tensor(Backend& be, DType t, const std::vector<double>& values) {
  Tensor x = Tensor::empty(be, {int64_t(values.size())}, t);
  std::vector<char> host(x.nbytes());
  for (size_t i = 0; i < values.size(); ++i) store(t, host.data(), i, values[i]);
  x.copy_from_host(host.data(), host.size());
  return x;
}

std::vector<double> read_values(const Tensor& x) {
  std::vector<char> host(x.nbytes());
  x.copy_to_host(host.data(), host.size());
  std::vector<double> v(static_cast<size_t>(x.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = load(x.dtype(), host.data(), i);
  return v;
}

void check_values(const std::vector<double>& got, const std::vector<double>& want,
                  const std::string& what) {
  INFO(what);
  REQUIRE(got.size() == want.size());  // sizes are the caller's, equal on every rank
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i] && !(std::isnan(got[i]) && std::isnan(want[i]))) {
      if (bad == 0) first = i;
      ++bad;
    }
  }
  INFO(strformat("%zu of %zu elements differ; first at %zu: got %.17g, want %.17g", bad, got.size(),
                 first, bad ? got[first] : 0.0, bad ? want[first] : 0.0));
  CHECK(bad == 0);
}

void check_all_reduce(Communicator& c, Backend& be, DType t, ReduceOp op, int64_t n) {
  const int np = c.size(), me = c.rank();
  std::vector<double> mine(static_cast<size_t>(n)), want(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    mine[size_t(i)] = contribution(op, t, me, np, i);
    want[size_t(i)] = expected_reduction(op, t, np, i);
  }
  Tensor x = make_tensor(be, t, mine);
  c.all_reduce(x, op);
  check_values(read_values(x), want,
               label(c, t, strformat("all_reduce %s n=%lld", reduce_op_name(op), (long long)n).c_str()));
}

void check_reduce_scatter(Communicator& c, Backend& be, DType t, ReduceOp op, int64_t n) {
  const int np = c.size(), me = c.rank();
  std::vector<double> in(static_cast<size_t>(n * np)), want(static_cast<size_t>(n));
  for (int64_t j = 0; j < n * np; ++j) in[size_t(j)] = contribution(op, t, me, np, j);
  for (int64_t i = 0; i < n; ++i) want[size_t(i)] = expected_reduction(op, t, np, me * n + i);
  Tensor xin = make_tensor(be, t, in);
  Tensor xout = make_tensor(be, t, std::vector<double>(size_t(n), -1.0));
  c.reduce_scatter(xin, xout, op);
  check_values(read_values(xout), want,
               label(c, t, strformat("reduce_scatter %s n=%lld", reduce_op_name(op), (long long)n).c_str()));
}

void check_all_gather(Communicator& c, Backend& be, DType t, int64_t n) {
  const int np = c.size(), me = c.rank();
  std::vector<double> in(static_cast<size_t>(n)), want(static_cast<size_t>(n * np));
  for (int64_t i = 0; i < n; ++i) in[size_t(i)] = tagged(t, me, 0, i);
  for (int s = 0; s < np; ++s)
    for (int64_t i = 0; i < n; ++i) want[size_t(s * n + i)] = tagged(t, s, 0, i);
  Tensor xin = make_tensor(be, t, in);
  Tensor xout = make_tensor(be, t, std::vector<double>(size_t(n * np), -1.0));
  c.all_gather(xin, xout);
  check_values(read_values(xout), want, label(c, t, "all_gather"));
}

void check_all_to_all_v(Communicator& c, Backend& be, DType t) {
  const int np = c.size(), me = c.rank();
  // 1. Counts exchange: one I64 to each peer.
  std::vector<int64_t> ones(static_cast<size_t>(np), 1);
  std::vector<double> my_counts(static_cast<size_t>(np)), want_counts(static_cast<size_t>(np));
  for (int p = 0; p < np; ++p) {
    my_counts[size_t(p)] = double(a2a_count(me, p));
    want_counts[size_t(p)] = double(a2a_count(p, me));
  }
  Tensor cin = make_tensor(be, DType::I64, my_counts);
  Tensor cout = make_tensor(be, DType::I64, std::vector<double>(size_t(np), -1.0));
  c.all_to_all_v(cin, ones, cout, ones);
  check_values(read_values(cout), want_counts, label(c, DType::I64, "all_to_all_v counts exchange"));

  // 2. Payload: chunk for peer p holds tagged(me, p, k) for k < count.
  std::vector<int64_t> send_counts(static_cast<size_t>(np)), recv_counts(static_cast<size_t>(np));
  std::vector<double> in, want;
  for (int p = 0; p < np; ++p) {
    send_counts[size_t(p)] = a2a_count(me, p);
    recv_counts[size_t(p)] = a2a_count(p, me);
    for (int64_t k = 0; k < send_counts[size_t(p)]; ++k) in.push_back(tagged(t, me, p, k));
    for (int64_t k = 0; k < recv_counts[size_t(p)]; ++k) want.push_back(tagged(t, p, me, k));
  }
  Tensor xin = make_tensor(be, t, in);
  Tensor xout = make_tensor(be, t, std::vector<double>(want.size(), -1.0));
  c.all_to_all_v(xin, send_counts, xout, recv_counts);
  check_values(read_values(xout), want, label(c, t, "all_to_all_v payload"));
}

void check_broadcast(Communicator& c, Backend& be, DType t, int root, int64_t n) {
  const int me = c.rank();
  std::vector<double> mine(static_cast<size_t>(n)), want(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    want[size_t(i)] = tagged(t, root, 0, i);
    mine[size_t(i)] = me == root ? want[size_t(i)] : -1.0;
  }
  Tensor x = make_tensor(be, t, mine);
  c.broadcast(x, root);
  check_values(read_values(x), want, label(c, t, strformat("broadcast from root %d", root).c_str()));
}

void check_send_recv_ring(Communicator& c, Backend& be, DType t) {
  const int np = c.size(), me = c.rank();
  if (np == 1 && std::string(c.kind()) == "nccl") return;  // see comm_checks.h
  const int next = (me + 1) % np, prev = (me + np - 1) % np;
  const int tag = 11;
  auto n_from = [](int src) { return int64_t(50 + 13 * src); };
  std::vector<double> out(static_cast<size_t>(n_from(me))), want(static_cast<size_t>(n_from(prev)));
  for (size_t i = 0; i < out.size(); ++i) out[i] = tagged(t, me, next, int64_t(i));
  for (size_t i = 0; i < want.size(); ++i) want[i] = tagged(t, prev, me, int64_t(i));
  Tensor xs = make_tensor(be, t, out);
  Tensor xr = make_tensor(be, t, std::vector<double>(want.size(), -1.0));
  if (me % 2 == 0) {
    c.send(xs, next, tag);
    c.recv(xr, prev, tag);
  } else {
    c.recv(xr, prev, tag);
    c.send(xs, next, tag);
  }
  check_values(read_values(xr), want, label(c, t, "send/recv ring"));
}

void check_sendrecv(Communicator& c, Backend& be, DType t) {
  const int np = c.size(), me = c.rank();
  const int next = (me + 1) % np, prev = (me + np - 1) % np;
  auto n_from = [](int src) { return int64_t(20 + 7 * src); };
  for (int dir = 0; dir < 2; ++dir) {  // dir 0: to next, from prev; dir 1: the reverse
    int dst = dir == 0 ? next : prev, src = dir == 0 ? prev : next;
    std::vector<double> out(static_cast<size_t>(n_from(me))), want(static_cast<size_t>(n_from(src)));
    for (size_t i = 0; i < out.size(); ++i) out[i] = tagged(t, me, dst, int64_t(i));
    for (size_t i = 0; i < want.size(); ++i) want[i] = tagged(t, src, me, int64_t(i));
    Tensor xs = make_tensor(be, t, out);
    Tensor xr = make_tensor(be, t, std::vector<double>(want.size(), -1.0));
    c.sendrecv(xs, dst, xr, src, 20 + dir);
    check_values(read_values(xr), want,
                 label(c, t, strformat("sendrecv direction %d", dir).c_str()));
  }
}

void check_split(Communicator& c, Backend& be) {
  const int np = c.size(), me = c.rank();
  // Even/odd groups; key -rank reverses the order inside each group.
  std::unique_ptr<Communicator> sub = c.split(me % 2, -me);
  REQUIRE(sub != nullptr);
  std::vector<int> members;  // world ranks of my group, in sub-rank order
  for (int r = np - 1; r >= 0; --r)
    if (r % 2 == me % 2) members.push_back(r);
  int my_sub_rank = 0;
  for (size_t k = 0; k < members.size(); ++k)
    if (members[k] == me) my_sub_rank = int(k);
  CHECK(std::string(sub->kind()) == c.kind());
  CHECK(sub->size() == int(members.size()));
  CHECK(sub->rank() == my_sub_rank);
  CHECK(sub->device() == c.device());

  // all_gather of world ranks inside the group: the members, in sub-rank order.
  Tensor xin = make_tensor(be, DType::I32, {double(me)});
  Tensor xout = make_tensor(be, DType::I32, std::vector<double>(members.size(), -1.0));
  sub->all_gather(xin, xout);
  std::vector<double> want_members(members.begin(), members.end());
  check_values(read_values(xout), want_members, label(c, DType::I32, "all_gather inside split group"));

  // all_reduce inside the group sums only the group's contributions.
  Tensor s = make_tensor(be, DType::I64, {double(int64_t(1) << (me * 4))});
  sub->all_reduce(s, ReduceOp::Sum);
  double want_sum = 0;
  for (int r : members) want_sum += double(int64_t(1) << (r * 4));
  check_values(read_values(s), {want_sum}, label(c, DType::I64, "all_reduce inside split group"));

  // Broadcast from the group's last sub-rank.
  check_broadcast(*sub, be, DType::F32, sub->size() - 1, 33);
  sub->barrier();

  // Rank 0 joins no group; the rest form one group of np - 1 ranks.
  std::unique_ptr<Communicator> rest = c.split(me == 0 ? kSplitNoColor : 7, me);
  if (me == 0) {
    CHECK(rest == nullptr);
  } else {
    REQUIRE(rest != nullptr);
    CHECK(rest->size() == np - 1);
    CHECK(rest->rank() == me - 1);
    check_all_reduce(*rest, be, DType::F32, ReduceOp::Sum, 17);
  }
}

void check_host_reductions(Communicator& c) {
  const int np = c.size(), me = c.rank();
  std::vector<double> d = {me + 0.5, -double(me), 1.0};
  c.all_reduce_host(d.data(), d.size(), ReduceOp::Sum);
  double want0 = 0, want1 = 0;
  for (int r = 0; r < np; ++r) {
    want0 += r + 0.5;
    want1 -= r;
  }
  check_values(d, {want0, want1, double(np)}, "all_reduce_host double sum");

  std::vector<double> a = {double(me), 2.0};
  c.all_reduce_host(a.data(), a.size(), ReduceOp::Avg);
  check_values(a, {(np - 1) / 2.0, 2.0}, "all_reduce_host double avg");

  std::vector<double> m = {double(me) - 10.0};
  c.all_reduce_host(m.data(), m.size(), ReduceOp::Max);
  check_values(m, {double(np - 1) - 10.0}, "all_reduce_host double max");

  // Beyond 2^53 the values are not exact as doubles, so compare as int64.
  const int64_t big = int64_t(1) << 60;
  std::vector<int64_t> k = {big + me, int64_t(me)};
  c.all_reduce_host(k.data(), k.size(), ReduceOp::Sum);
  int64_t want_k0 = 0, want_k1 = 0;
  for (int r = 0; r < np; ++r) {
    want_k0 += r;
    want_k1 += r;
  }
  want_k0 += big * np;  // np <= 4 keeps np * 2^60 below 2^63
  CHECK(k[0] == want_k0);
  CHECK(k[1] == want_k1);
  std::vector<int64_t> km = {int64_t(me) * 3 - 100};
  c.all_reduce_host(km.data(), km.size(), ReduceOp::Max);
  CHECK(km[0] == int64_t(np - 1) * 3 - 100);
}

void check_barrier(Communicator& c) {
  // A barrier cannot be observed without timing; check it completes on every rank,
  // several times, and that collectives still line up after it.
  for (int i = 0; i < 3; ++i) c.barrier();
  std::vector<int64_t> n = {1};
  c.all_reduce_host(n.data(), 1, ReduceOp::Sum);
  CHECK(n[0] == c.size());
}

void check_everything(Communicator& c, Backend& be) {
  const int np = c.size();
  for (DType t : all_dtypes()) {
    std::vector<ReduceOp> ops = {ReduceOp::Sum, ReduceOp::Max};
    if (dtype_is_float(t) && (np & (np - 1)) == 0) ops.push_back(ReduceOp::Avg);
    for (ReduceOp op : ops) {
      check_all_reduce(c, be, t, op, 1000);
      check_all_reduce(c, be, t, op, 1);
      check_reduce_scatter(c, be, t, op, 257);
    }
    check_all_reduce(c, be, t, ReduceOp::Sum, 0);
    check_all_gather(c, be, t, 300);
    check_all_to_all_v(c, be, t);
    check_broadcast(c, be, t, 0, 500);
    check_broadcast(c, be, t, np - 1, 500);
    check_send_recv_ring(c, be, t);
    check_sendrecv(c, be, t);
  }
  check_split(c, be);
  check_host_reductions(c);
  check_barrier(c);
}

}  // namespace comm_test
}  // namespace zeroth
