// MpiCommunicator: the Communicator of CPU ranks, over MPI (MPI_COMM_WORLD).
// Every collective is started non-blocking and waited for with a deadline, so a rank
// whose peer died, hung or took another code path ends the whole job with one clear line
// instead of hanging (TXL_COLLECTIVE_TIMEOUT_S, default 600; 0 = wait forever).
// MPI errors return to us (MPI_ERRORS_RETURN) and are reported the same way.
#pragma once
#include <mpi.h>

#include <memory>
#include <string>

#include "txl/dist/communicator.h"

namespace txl {

class MpiCommunicator final : public Communicator {
 public:
  // Initialises MPI (MPI_Init_thread, MPI_THREAD_MULTIPLE requested) unless it already is.
  MpiCommunicator(int& argc, char**& argv);
  ~MpiCommunicator() override;  // MPI_Finalize when this object initialised MPI
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  std::string name() const override { return "mpi"; }

  void allreduce_sum(float* data, int64_t n) override;
  void allreduce_sum(double* data, int64_t n) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void barrier() override;
  [[noreturn]] void abort(int code) override;

  // ---- non-blocking pieces, for the overlapped gradient reducer ----
  // Starts an in-place sum of n floats (n < 2^31). The buffer must not be touched until
  // the request completes.
  MPI_Request start_allreduce_sum(float* data, int64_t n);
  // True when the request has completed (drives MPI progress as a side effect).
  bool test(MPI_Request& request);
  // Waits for the request with the collective deadline; `what` names it in the timeout message.
  void wait(MPI_Request& request, const char* what);
  // Waits of the calling thread poll between short sleeps instead of spinning first: for
  // a communication thread that shares its core with the backward computation.
  static void set_background_waits(bool background);

  // Thread support MPI granted (MPI_THREAD_SINGLE ... MPI_THREAD_MULTIPLE).
  int thread_level() const { return thread_level_; }
  double collective_timeout_s() const { return timeout_s_; }
  // Name of the node this rank runs on (MPI_Get_processor_name).
  const std::string& node_name() const { return node_name_; }

 private:
  // Reports a failed MPI call on this rank and ends the job.
  void check(int rc, const char* call);
  template <typename T>
  void allreduce_in_pieces(T* data, int64_t n);

  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  int thread_level_ = MPI_THREAD_SINGLE;
  double timeout_s_ = 600.0;
  bool owns_mpi_ = false;
  std::string node_name_;
};

}  // namespace txl
