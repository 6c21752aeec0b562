// The NCCL communicator for GPU ranks, behind the same Communicator interface as the MPI
// one. It is created from an existing (MPI) communicator, which broadcasts the NCCL
// unique id from rank 0 and must outlive it; rank, size and local rank come from it.
//
// Collectives on device buffers run on the communicator's own high-priority stream, so
// they overlap the backward kernels still running on the compute stream. Each call is
// ordered after everything already enqueued on the compute stream (an event, no host
// wait) and returns when the collective is complete (the Communicator contract).
// It also offers StreamOrderedCollectives (txl/dist/stream_ordered_collectives.h): the
// gradient reducer enqueues each bucket's all-reduce without any host wait and the
// optimizer's stream waits on an event. Host buffers are passed on to the MPI
// communicator, and abort() ends NCCL and then the whole job through it.
#pragma once
#include <memory>

#include "txl/core/ops.h"
#include "txl/dist/communicator.h"

namespace txl {

// Orders collectives after the compute stream of `cuda_ops` (a CUDA backend).
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& mpi, Ops<float>& cuda_ops);
// Without a backend to order after, every collective first waits for the whole device
// (correct, but no overlap with the compute stream). Prefer the overload above.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& mpi, int device);

}  // namespace txl
