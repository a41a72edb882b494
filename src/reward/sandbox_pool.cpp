// SandboxPool (sandbox.h): a fixed set of worker threads draining a FIFO of sandbox
// jobs into futures. Must not: run jobs on the caller's thread, or drop a queued job
// (the destructor finishes the queue before joining).
#include <exception>

#include "zeroth/sandbox.h"

namespace zeroth {

SandboxPool::SandboxPool(const Sandbox& sandbox, int workers) : sandbox_(sandbox) {
  int n = workers > 0 ? workers : sandbox.max_concurrent();
  threads_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { worker_loop(); });
}

SandboxPool::~SandboxPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

std::future<SandboxResult> SandboxPool::submit(SandboxJob job) {
  std::promise<SandboxResult> promise;
  std::future<SandboxResult> future = promise.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.emplace(std::move(job), std::move(promise));
  }
  cv_.notify_one();
  return future;
}

void SandboxPool::worker_loop() {
  for (;;) {
    std::pair<SandboxJob, std::promise<SandboxResult>> item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      item = std::move(queue_.front());
      queue_.pop();
    }
    try {
      item.second.set_value(sandbox_.run(item.first));
    } catch (...) {
      item.second.set_exception(std::current_exception());
    }
  }
}

}  // namespace zeroth
