// Communicator: the collective operations data parallelism needs, behind one interface
// implemented by MPI (CPU ranks), NCCL (GPU ranks; the unique id travels over MPI) and a
// single-process no-op. Buffers live on the backend's device.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace txl {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;   // rank within the node
  virtual int local_size() const = 0;
  virtual std::string name() const = 0;  // "mpi", "nccl", "single"

  // In-place sums across ranks (blocking).
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends the whole job (all ranks) with exit code `code`; used after a fatal error on
  // one rank so the others never hang in a collective.
  [[noreturn]] virtual void abort(int code) = 0;
};

std::unique_ptr<Communicator> make_single_process_communicator();

}  // namespace txl
