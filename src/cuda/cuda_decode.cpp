// CudaBackend's inference ops: scatter_rows, mla_decode_attention (kernels/decode.cu) and
// sample_tokens (kernels/sample.cu): argument checks as backend.h documents them, then
// the launchers on the stream.
//
// Owns: validation and the upload of sample_tokens' (sequence id, step) pairs (an
// asynchronous copy from pageable memory, which returns once the host buffer is
// staged). Must not: synchronise or do math on the host.
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "cuda/cuda_backend_impl.h"
#include "cuda/cuda_check.h"
#include "decode.h"
#include "sample.h"
#include "zeroth/log.h"

namespace zeroth {

void CudaBackend::scatter_rows(const Tensor& src, const Tensor& rows, Tensor& dst) {
  const char* op = "scatter_rows";
  require_here(src, op, "src");
  require_here(rows, op, "rows");
  require_here(dst, op, "dst");
  ZT_ASSERT(dtype_is_float(src.dtype()) && dtype_is_float(dst.dtype()) && src.dim() == 2 &&
                dst.dim() == 2 && src.size(1) == dst.size(1),
            "%s: src %s and dst %s must be float (N, D) and (M, D)", op, src.str().c_str(),
            dst.str().c_str());
  const int64_t n = src.size(0), d = src.size(1);
  ZT_ASSERT(rows.dtype() == DType::I32 && rows.dim() == 1 && rows.size(0) == n &&
                rows.is_contiguous(),
            "%s: rows is %s, expected contiguous I32 (%lld)", op, rows.str().c_str(), (long long)n);
  ZT_ASSERT(d <= 1 || (src.stride(1) == 1 && dst.stride(1) == 1),
            "%s: src %s and dst %s need a contiguous last dimension", op, src.str().c_str(),
            dst.str().c_str());
  activate();
  launch_scatter_rows(src.data_ptr(), src.dtype(), src.stride(0), rows.data<int32_t>(),
                      dst.data_ptr(), dst.dtype(), dst.stride(0), n, d, stream_);
}

void CudaBackend::mla_decode_attention(const Tensor& q, const Tensor& cache, const Tensor& slots,
                                       const Tensor& lengths, float scale, Tensor& out) {
  const char* op = "mla_decode_attention";
  const std::pair<const Tensor*, const char*> args[] = {
      {&q, "q"}, {&cache, "cache"}, {&slots, "slots"}, {&lengths, "lengths"}, {&out, "out"}};
  for (const auto& a : args) {
    require_here(*a.first, op, a.second);
    ZT_ASSERT(a.first->is_contiguous(), "%s: %s %s must be contiguous", op, a.second,
              a.first->str().c_str());
  }
  ZT_ASSERT(q.dtype() == DType::F32 && q.dim() == 3, "%s: q is %s, expected F32 (N, H, R)", op,
            q.str().c_str());
  const int64_t n = q.size(0), h = q.size(1), r = q.size(2);
  ZT_ASSERT(cache.dtype() == DType::F32 && cache.dim() == 3 && cache.size(2) == r,
            "%s: cache is %s, expected F32 (S, Tmax, %lld)", op, cache.str().c_str(), (long long)r);
  ZT_ASSERT(out.dtype() == DType::F32 && out.dim() == 3 && out.size(0) == n && out.size(1) == h &&
                out.size(2) <= r,
            "%s: out is %s, expected F32 (%lld, %lld, Rv <= %lld)", op, out.str().c_str(),
            (long long)n, (long long)h, (long long)r);
  for (const Tensor* t : {&slots, &lengths})
    ZT_ASSERT(t->dtype() == DType::I32 && t->dim() == 1 && t->size(0) == n,
              "%s: slots/lengths is %s, expected I32 (%lld)", op, t->str().c_str(), (long long)n);
  activate();
  launch_mla_decode_attention(q.data<float>(), cache.data<float>(), slots.data<int32_t>(),
                              lengths.data<int32_t>(), scale, out.data<float>(), n, h, r,
                              out.size(2), cache.size(1), stream_);
}

void CudaBackend::sample_tokens(const Tensor& logits, const SamplingParams& params,
                                const std::vector<uint64_t>& sequence_ids,
                                const std::vector<uint64_t>& steps, Tensor& ids) {
  const char* op = "sample_tokens";
  require_here(logits, op, "logits");
  require_here(ids, op, "ids");
  ZT_ASSERT(logits.dtype() == DType::F32 && logits.dim() == 2 && logits.size(1) > 0 &&
                logits.is_contiguous(),
            "%s: logits is %s, expected contiguous F32 (B, V)", op, logits.str().c_str());
  const int64_t b = logits.size(0), v = logits.size(1);
  ZT_ASSERT(ids.dtype() == DType::I32 && ids.dim() == 1 && ids.size(0) == b && ids.is_contiguous(),
            "%s: ids is %s, expected I32 (%lld)", op, ids.str().c_str(), (long long)b);
  ZT_ASSERT(int64_t(sequence_ids.size()) == b && int64_t(steps.size()) == b,
            "%s: %zu sequence ids and %zu steps for %lld rows", op, sequence_ids.size(),
            steps.size(), (long long)b);
  if (b == 0) return;
  activate();
  std::vector<uint64_t> host(size_t(2 * b));
  for (int64_t i = 0; i < b; ++i) {
    host[size_t(2 * i)] = sequence_ids[size_t(i)];
    host[size_t(2 * i + 1)] = steps[size_t(i)];
  }
  Tensor dev = Tensor::empty(*this, {2 * b}, DType::I64);
  ZT_CUDA_CHECK(cudaMemcpyAsync(dev.data_ptr(), host.data(), host.size() * sizeof(uint64_t),
                                cudaMemcpyHostToDevice, stream_));
  launch_sample_tokens(logits.data<float>(), b, v, params.temperature, params.top_k,
                       params.top_p, params.min_p, params.seed,
                       static_cast<const uint64_t*>(dev.data_ptr()), ids.data<int32_t>(), stream_);
}

}  // namespace zeroth

namespace zeroth {

void CudaBackend::expert_rows_gemm(const Tensor& x, const Tensor& w, const Tensor& experts,
                                   int x_div, Tensor& out) {
  const char* op = "expert_rows_gemm";
  const std::pair<const Tensor*, const char*> args[] = {
      {&x, "x"}, {&w, "w"}, {&experts, "experts"}, {&out, "out"}};
  for (const auto& a : args) {
    require_here(*a.first, op, a.second);
    ZT_ASSERT(a.first->is_contiguous(), "%s: %s %s must be contiguous", op, a.second,
              a.first->str().c_str());
  }
  ZT_ASSERT(dtype_is_float(x.dtype()) && dtype_is_float(w.dtype()) && dtype_is_float(out.dtype()),
            "%s: x, w and out must be float", op);
  ZT_ASSERT(x_div >= 1 && w.dim() == 3 && x.dim() == 2 && out.dim() == 2 &&
                x.size(1) == w.size(2) && out.size(1) == w.size(1) &&
                out.size(0) == x.size(0) * x_div,
            "%s: x %s, w %s, out %s, x_div %d do not fit", op, x.str().c_str(), w.str().c_str(),
            out.str().c_str(), x_div);
  ZT_ASSERT(experts.dtype() == DType::I32 && experts.dim() == 1 && experts.size(0) == out.size(0),
            "%s: experts is %s, expected I32 (%lld)", op, experts.str().c_str(),
            (long long)out.size(0));
  activate();
  launch_expert_rows_gemm(x.data_ptr(), x.dtype(), x.size(1), w.data_ptr(), w.dtype(), w.size(2),
                          experts.data<int32_t>(), x_div, out.data_ptr(), out.dtype(),
                          out.size(1), out.size(0), w.size(1), w.size(2), w.size(0), stream_);
}

}  // namespace zeroth

namespace zeroth {

namespace {

// An instantiated CUDA graph (the recording of capture()).
class CudaGraph final : public Backend::OpGraph {
 public:
  CudaGraph(cudaGraph_t g, cudaGraphExec_t e) : graph_(g), exec_(e) {}
  ~CudaGraph() override {
    cudaGraphExecDestroy(exec_);
    cudaGraphDestroy(graph_);
  }
  cudaGraphExec_t exec() const { return exec_; }

 private:
  cudaGraph_t graph_;
  cudaGraphExec_t exec_;
};

}  // namespace

// Stream capture of fn's ops (thread-local mode: other threads' CUDA calls are not
// affected). A failure (an op that synchronises, an uncapturable call) ends the capture,
// clears the error and returns nullptr with a warning, so the caller runs fn eagerly.
std::unique_ptr<Backend::OpGraph> CudaBackend::capture(const std::function<void()>& fn) {
  activate();
  ZT_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  std::string failure;
  try {
    fn();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  cudaGraph_t graph = nullptr;
  const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
  if (failure.empty() && end != cudaSuccess)
    failure = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(end);
  cudaGraphExec_t exec = nullptr;
  if (failure.empty()) {
    const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
    if (inst != cudaSuccess) failure = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(inst);
  }
  if (!failure.empty()) {
    if (graph) cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    ZT_LOG_WARN("cuda: recording a graph failed (%s); running the ops one by one instead",
             failure.c_str());
    return nullptr;
  }
  return std::make_unique<CudaGraph>(graph, exec);
}

void CudaBackend::replay(OpGraph& graph) {
  activate();
  auto* g = dynamic_cast<CudaGraph*>(&graph);
  ZT_ASSERT(g != nullptr, "replay: not a recording of this backend");
  ZT_CUDA_CHECK(cudaGraphLaunch(g->exec(), stream_));
}

}  // namespace zeroth
