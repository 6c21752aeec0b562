#include "txl/cuda/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "txl/cuda/check.h"
#include "txl/cuda/cuda_ops.h"
#include "txl/dist/stream_ordered_collectives.h"

#define TXL_NCCL_CHECK(comm, expr)                                                                        \
  do {                                                                                                    \
    const ncclResult_t txl_nccl_status_ = (expr);                                                         \
    if (txl_nccl_status_ != ncclSuccess)                                                                  \
      ::txl::failf("NCCL error {} ({}{}{}) in {} at {}:{}", static_cast<int>(txl_nccl_status_),          \
                   ncclGetErrorString(txl_nccl_status_), (comm) ? ": " : "", (comm) ? ncclGetLastError(comm) : "", \
                   #expr, __FILE__, __LINE__);                                                           \
  } while (0)

namespace txl {
namespace {

bool is_device_pointer(const void* p) {
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged;
}

class NcclCommunicator final : public Communicator, public StreamOrderedCollectives {
 public:
  NcclCommunicator(Communicator& mpi, int device, cudaStream_t compute) : mpi_(mpi), device_(device), compute_(compute) {
    TXL_CUDA_CHECK(cudaSetDevice(device_));
    ncclUniqueId id{};
    if (mpi_.rank() == 0) TXL_NCCL_CHECK(nullptr, ncclGetUniqueId(&id));
    mpi_.broadcast(&id, sizeof(id), 0);
    TXL_NCCL_CHECK(nullptr, ncclCommInitRank(&comm_, mpi_.size(), id, mpi_.rank()));
    int least = 0, greatest = 0;
    TXL_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    TXL_CUDA_CHECK(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, greatest));
    TXL_CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
    TXL_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
  }

  ~NcclCommunicator() override {
    cudaSetDevice(device_);
    if (comm_) {
      cudaStreamSynchronize(stream_);
      if (ncclCommFinalize(comm_) != ncclSuccess || ncclCommDestroy(comm_) != ncclSuccess)
        std::fprintf(stderr, "warning: NCCL communicator shutdown reported an error\n");
    }
    if (ready_) cudaEventDestroy(ready_);
    if (done_) cudaEventDestroy(done_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  int rank() const override { return mpi_.rank(); }
  int size() const override { return mpi_.size(); }
  int local_rank() const override { return mpi_.local_rank(); }
  int local_size() const override { return mpi_.local_size(); }
  std::string name() const override { return "nccl"; }

  void allreduce_sum(float* data, int64_t n) override {
    if (n <= 0) return;
    if (!is_device_pointer(data)) return mpi_.allreduce_sum(data, n);
    run([&] { TXL_NCCL_CHECK(comm_, ncclAllReduce(data, data, static_cast<size_t>(n), ncclFloat, ncclSum, comm_, stream_)); });
  }
  void allreduce_sum(double* data, int64_t n) override {
    if (n <= 0) return;
    if (!is_device_pointer(data)) return mpi_.allreduce_sum(data, n);
    run([&] { TXL_NCCL_CHECK(comm_, ncclAllReduce(data, data, static_cast<size_t>(n), ncclDouble, ncclSum, comm_, stream_)); });
  }
  void broadcast(void* data, size_t bytes, int root) override {
    if (bytes == 0) return;
    if (!is_device_pointer(data)) return mpi_.broadcast(data, bytes, root);
    run([&] { TXL_NCCL_CHECK(comm_, ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream_)); });
  }
  void barrier() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      TXL_CUDA_CHECK(cudaSetDevice(device_));
      TXL_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    mpi_.barrier();
  }
  // StreamOrderedCollectives: the all-reduce waits for the compute stream's work so far
  // through an event (recorded now, so later compute work is not waited for) and the host
  // does not wait at all.
  void enqueue_allreduce_sum(float* data, int64_t n) override {
    if (n <= 0) return;
    if (!compute_ || !is_device_pointer(data)) return allreduce_sum(data, n);  // no stream to order after
    std::lock_guard<std::mutex> lock(mutex_);
    TXL_CHECK(comm_ != nullptr, "NCCL communicator used after abort()");
    TXL_CUDA_CHECK(cudaSetDevice(device_));
    TXL_CUDA_CHECK(cudaEventRecord(ready_, compute_));
    TXL_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_, 0));
    TXL_NCCL_CHECK(comm_, ncclAllReduce(data, data, static_cast<size_t>(n), ncclFloat, ncclSum, comm_, stream_));
  }
  void wait_on_compute_stream() override {
    std::lock_guard<std::mutex> lock(mutex_);
    TXL_CUDA_CHECK(cudaSetDevice(device_));
    if (!compute_) {
      TXL_CUDA_CHECK(cudaStreamSynchronize(stream_));
      return;
    }
    TXL_CUDA_CHECK(cudaEventRecord(done_, stream_));
    TXL_CUDA_CHECK(cudaStreamWaitEvent(compute_, done_, 0));
  }

  [[noreturn]] void abort(int code) override {
    if (comm_) {
      ncclCommAbort(comm_);  // unblocks NCCL kernels waiting for peers that will never come
      comm_ = nullptr;
    }
    mpi_.abort(code);
    std::abort();  // not reached: Communicator::abort does not return
  }

 private:
  // Orders `collective` after the work already on the compute stream, runs it on our
  // stream and waits for it. One collective at a time (NCCL calls on one communicator
  // must be issued in the same order on every rank; the mutex keeps callers from
  // interleaving within this process).
  template <typename Collective>
  void run(const Collective& collective) {
    std::lock_guard<std::mutex> lock(mutex_);
    TXL_CHECK(comm_ != nullptr, "NCCL communicator used after abort()");
    TXL_CUDA_CHECK(cudaSetDevice(device_));
    if (compute_) {
      TXL_CUDA_CHECK(cudaEventRecord(ready_, compute_));
      TXL_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_, 0));
    } else {
      TXL_CUDA_CHECK(cudaDeviceSynchronize());
    }
    collective();
    TXL_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  Communicator& mpi_;
  int device_;
  cudaStream_t compute_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;  // the compute stream's work before a collective
  cudaEvent_t done_ = nullptr;   // the collectives enqueued so far
  std::mutex mutex_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& mpi, Ops<float>& cuda_ops) {
  CudaBackend* backend = as_cuda_backend(cuda_ops);
  TXL_CHECK(backend != nullptr, "make_nccl_communicator: backend '{}' is not a CUDA backend", cuda_ops.name());
  return std::make_unique<NcclCommunicator>(mpi, backend->device_index(), backend->stream());
}

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& mpi, int device) {
  TXL_CHECK(device >= 0 && device < cuda_device_count(), "make_nccl_communicator: no CUDA device {}", device);
  return std::make_unique<NcclCommunicator>(mpi, device, nullptr);
}

}  // namespace txl
