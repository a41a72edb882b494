// LocalCommunicator: the one-rank communicator (no MPI). Every collective is a copy
// or a no-op; send/recv to itself go through a queue of host copies.
//
// Owns: the single-rank semantics of comm.h. Must not: initialise MPI or NCCL.
#include <cstring>
#include <deque>
#include <map>
#include <vector>

#include "comm/comm_util.h"
#include "zeroth/backend.h"
#include "zeroth/comm.h"

namespace zeroth {
namespace {

using namespace comm_detail;

class LocalCommunicator : public Communicator {
 public:
  explicit LocalCommunicator(Backend* be) : be_(be) {}

  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* kind() const override { return "local"; }
  Device device() const override { return be_ ? be_->device() : Device::cpu(); }

  void all_reduce(Tensor& x, ReduceOp op) override {
    check_tensor(x, device(), "all_reduce: x");
    check_op(op, x.dtype(), "all_reduce");  // sum, max and avg over one rank: x itself
  }

  void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) override {
    check_tensor(in, device(), "reduce_scatter: in");
    check_tensor(out, device(), "reduce_scatter: out");
    check_op(op, in.dtype(), "reduce_scatter");
    check_same(in, out, "reduce_scatter");
    copy(in, out);
  }

  void all_gather(const Tensor& in, Tensor& out) override {
    check_tensor(in, device(), "all_gather: in");
    check_tensor(out, device(), "all_gather: out");
    check_same(in, out, "all_gather");
    copy(in, out);
  }

  void all_to_all_v(const Tensor& in, const std::vector<int64_t>& send_counts, Tensor& out,
                    const std::vector<int64_t>& recv_counts) override {
    check_tensor(in, device(), "all_to_all_v: in");
    check_tensor(out, device(), "all_to_all_v: out");
    check_counts(send_counts, 1, in.numel(), "send_counts");
    check_counts(recv_counts, 1, out.numel(), "recv_counts");
    check_same(in, out, "all_to_all_v");
    copy(in, out);
  }

  void broadcast(Tensor& x, int root) override {
    check_tensor(x, device(), "broadcast: x");
    ZT_ASSERT(root == 0, "broadcast: root %d is not a rank of a 1-rank communicator", root);
  }

  void barrier() override {
    if (be_) be_->synchronize();
  }

  void send(const Tensor& x, int peer, int tag) override {
    check_tensor(x, device(), "send: x");
    ZT_ASSERT(peer == 0, "send: peer %d is not a rank of a 1-rank communicator", peer);
    std::vector<char> msg(x.nbytes());
    if (be_) be_->copy_to_host(msg.data(), x.data_ptr(), x.nbytes());
    else if (!msg.empty()) std::memcpy(msg.data(), x.data_ptr(), x.nbytes());
    queues_[tag].push_back(std::move(msg));
  }

  void recv(Tensor& x, int peer, int tag) override {
    check_tensor(x, device(), "recv: x");
    ZT_ASSERT(peer == 0, "recv: peer %d is not a rank of a 1-rank communicator", peer);
    auto it = queues_.find(tag);
    ZT_ASSERT(it != queues_.end() && !it->second.empty(),
              "recv: no message with tag %d was sent to this rank; recv would wait forever", tag);
    std::vector<char> msg = std::move(it->second.front());
    it->second.pop_front();
    ZT_ASSERT(msg.size() == x.nbytes(), "recv: message with tag %d has %zu bytes, %s needs %zu", tag,
              msg.size(), x.str().c_str(), x.nbytes());
    if (be_) be_->copy_from_host(x.data_ptr(), msg.data(), msg.size());
    else if (!msg.empty()) std::memcpy(x.data_ptr(), msg.data(), msg.size());
  }

  void sendrecv(const Tensor& send_x, int dst, Tensor& recv_x, int src, int tag) override {
    check_tensor(send_x, device(), "sendrecv: send_x");
    check_tensor(recv_x, device(), "sendrecv: recv_x");
    ZT_ASSERT(dst == 0 && src == 0, "sendrecv: peers %d, %d are not ranks of a 1-rank communicator",
              dst, src);
    (void)tag;
    check_same(send_x, recv_x, "sendrecv");
    copy(send_x, recv_x);
  }

  std::unique_ptr<Communicator> split(int color, int key) override {
    (void)key;
    ZT_ASSERT(color >= 0 || color == kSplitNoColor, "split: color %d is negative", color);
    if (color == kSplitNoColor) return nullptr;
    return std::make_unique<LocalCommunicator>(be_);
  }

  void all_reduce_host(double* data, size_t n, ReduceOp op) override {
    (void)data;
    (void)n;
    (void)op;  // one rank: sum, avg and max of a value are the value
  }

  void all_reduce_host(int64_t* data, size_t n, ReduceOp op) override {
    (void)data;
    (void)n;
    ZT_ASSERT(op != ReduceOp::Avg, "all_reduce_host: avg needs double data, found int64");
  }

 private:
  // With one rank, in and out of every collective have the same numel and dtype.
  static void check_same(const Tensor& in, const Tensor& out, const char* what) {
    ZT_ASSERT(in.dtype() == out.dtype() && in.numel() == out.numel(),
              "%s: on one rank in and out must match, found %s and %s", what, in.str().c_str(),
              out.str().c_str());
  }

  void copy(const Tensor& in, Tensor& out) {
    if (in.data_ptr() == out.data_ptr() || in.nbytes() == 0) return;
    check_no_overlap(in, out, "copy");
    if (be_) be_->copy_on_device(out.data_ptr(), in.data_ptr(), in.nbytes());
    else std::memcpy(out.data_ptr(), in.data_ptr(), in.nbytes());
  }

  Backend* be_;  // nullptr: host tensors
  std::map<int, std::deque<std::vector<char>>> queues_;  // messages to self, by tag
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator(Backend* backend) {
  return std::make_unique<LocalCommunicator>(backend);
}

}  // namespace zeroth
