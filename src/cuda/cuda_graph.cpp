#include "txl/cuda/cuda_graph.h"

#include <cstdio>

#include "txl/cuda/check.h"

namespace txl {
namespace {

CudaBackend& require_cuda(Ops<float>& ops) {
  CudaBackend* backend = as_cuda_backend(ops);
  TXL_CHECK(backend != nullptr, "CudaGraph: backend '{}' is not a CUDA backend", ops.name());
  return *backend;
}

}  // namespace

CudaGraph::CudaGraph(Ops<float>& cuda_ops) : backend_(require_cuda(cuda_ops)) {}

CudaGraph::~CudaGraph() { reset(); }

void CudaGraph::reset() {
  // Also runs from the destructor: report errors, never throw.
  if (exec_ || graph_) cudaStreamSynchronize(backend_.stream());  // a replay may still be running
  if (exec_) cudaGraphExecDestroy(exec_);
  if (graph_) cudaGraphDestroy(graph_);
  exec_ = nullptr;
  graph_ = nullptr;
  if (pool_ != 0) backend_.arena().release_private_pool(pool_);
  pool_ = 0;
}

void CudaGraph::capture(const std::function<void()>& step) {
  reset();
  TXL_CUDA_CHECK(cudaSetDevice(backend_.device_index()));
  cudaStream_t stream = backend_.stream();
  pool_ = backend_.arena().open_private_pool();
  TXL_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    step();
  } catch (...) {
    cudaGraph_t partial = nullptr;
    cudaStreamEndCapture(stream, &partial);  // ends the (possibly invalidated) capture
    if (partial) cudaGraphDestroy(partial);
    (void)cudaGetLastError();
    backend_.arena().close_private_pool();
    reset();
    throw;
  }
  const cudaError_t end = cudaStreamEndCapture(stream, &graph_);
  backend_.arena().close_private_pool();
  if (end != cudaSuccess) {
    graph_ = nullptr;
    reset();
    failf("CudaGraph: capture failed ({}): the step synchronised or used another stream", cudaGetErrorString(end));
  }
  TXL_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
}

void CudaGraph::replay() {
  TXL_CHECK(exec_ != nullptr, "CudaGraph: replay() before capture()");
  TXL_CUDA_CHECK(cudaGraphLaunch(exec_, backend_.stream()));
}

size_t CudaGraph::num_nodes() const {
  if (!graph_) return 0;
  size_t n = 0;
  TXL_CUDA_CHECK(cudaGraphGetNodes(graph_, nullptr, &n));
  return n;
}

}  // namespace txl
