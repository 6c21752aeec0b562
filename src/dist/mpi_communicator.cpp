// MPI implementation of Communicator (see include/txl/dist/mpi_communicator.h).
#include "txl/dist/mpi_communicator.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <thread>

#include "txl/core/error.h"

namespace txl {
namespace {

// MPI counts are int; larger buffers go in pieces of this many elements.
constexpr int64_t kMaxCount = int64_t{1} << 30;

double timeout_from_env() {
  const char* text = std::getenv("TXL_COLLECTIVE_TIMEOUT_S");
  if (text == nullptr || *text == '\0') return 600.0;
  char* end = nullptr;
  const double value = std::strtod(text, &end);
  TXL_CHECK(end != text && *end == '\0' && value >= 0.0,
            "TXL_COLLECTIVE_TIMEOUT_S='{}' is not a number of seconds >= 0", text);
  return value;
}

template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <>
MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }

}  // namespace

MpiCommunicator::MpiCommunicator(int& argc, char**& argv) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  TXL_CHECK(!finalized, "MPI was already finalised in this process and cannot be initialised again");
  timeout_s_ = timeout_from_env();
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) {
    MPI_Query_thread(&thread_level_);
  } else {
    const int rc = MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &thread_level_);
    TXL_CHECK(rc == MPI_SUCCESS, "MPI_Init_thread failed (code {}); under srun use `srun --mpi=pmix`", rc);
    owns_mpi_ = true;
  }
  // Errors come back to us so that we can name the rank and the call in one line.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm node_comm = MPI_COMM_NULL;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node_comm),
        "MPI_Comm_split_type");
  MPI_Comm_rank(node_comm, &local_rank_);
  MPI_Comm_size(node_comm, &local_size_);
  MPI_Comm_free(&node_comm);
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_Get_processor_name(name, &length);
  node_name_.assign(name, static_cast<size_t>(length));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_mpi_ && !finalized) MPI_Finalize();
}

void MpiCommunicator::check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(rc, text, &length);
  std::fprintf(stderr, "error: rank %d: %s failed: %s; ending the job\n", rank_, call, text);
  abort(1);
}

MPI_Request MpiCommunicator::start_allreduce_sum(float* data, int64_t n) {
  TXL_CHECK(n >= 0 && n <= kMaxCount, "start_allreduce_sum: {} elements (at most {})", n, kMaxCount);
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &request),
        "MPI_Iallreduce");
  return request;
}

bool MpiCommunicator::test(MPI_Request& request) {
  int done = 0;
  check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
  return done != 0;
}

namespace {
// How this thread waits for a request (see MpiCommunicator::set_background_waits).
thread_local bool t_background_waits = false;
}  // namespace

void MpiCommunicator::set_background_waits(bool background) { t_background_waits = background; }

void MpiCommunicator::wait(MPI_Request& request, const char* what) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  // The calling thread is the one the job waits for: spin first (short collectives finish
  // here), then yield the core, then sleep briefly, so that a rank waiting for a peer
  // that writes a checkpoint does not burn a core for minutes. A background thread (the
  // gradient reducer's) shares its core with compute: it only polls between short sleeps.
  const bool background = t_background_waits;
  for (int64_t iteration = 0;; ++iteration) {
    if (test(request)) return;
    if (!background && iteration < 1000) continue;
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    if (timeout_s_ > 0.0 && waited > timeout_s_) {
      std::fprintf(stderr,
                   "error: rank %d (%s): %s did not complete within %.0f s; another rank probably died, hung or "
                   "took a different path; ending the job (TXL_COLLECTIVE_TIMEOUT_S sets the limit)\n",
                   rank_, node_name_.c_str(), what, timeout_s_);
      abort(1);
    }
    if (background) {
      std::this_thread::sleep_for(std::chrono::microseconds(waited < 1.0 ? 20 : 1000));
    } else if (waited < 0.01) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(waited < 1.0 ? 50 : 1000));
    }
  }
}

template <typename T>
void MpiCommunicator::allreduce_in_pieces(T* data, int64_t n) {
  for (int64_t done = 0; done < n; done += kMaxCount) {
    const int count = static_cast<int>(std::min(kMaxCount, n - done));
    MPI_Request request = MPI_REQUEST_NULL;
    check(MPI_Iallreduce(MPI_IN_PLACE, data + done, count, mpi_type<T>(), MPI_SUM, MPI_COMM_WORLD, &request),
          "MPI_Iallreduce");
    wait(request, "all-reduce");
  }
}

void MpiCommunicator::allreduce_sum(float* data, int64_t n) { allreduce_in_pieces(data, n); }
void MpiCommunicator::allreduce_sum(double* data, int64_t n) { allreduce_in_pieces(data, n); }

void MpiCommunicator::broadcast(void* data, size_t bytes, int root) {
  TXL_CHECK(root >= 0 && root < size_, "broadcast: root {} is not a rank of {}", root, size_);
  auto* base = static_cast<char*>(data);
  for (size_t done = 0; done < bytes; done += static_cast<size_t>(kMaxCount)) {
    const int count = static_cast<int>(std::min<size_t>(static_cast<size_t>(kMaxCount), bytes - done));
    MPI_Request request = MPI_REQUEST_NULL;
    check(MPI_Ibcast(base + done, count, MPI_BYTE, root, MPI_COMM_WORLD, &request), "MPI_Ibcast");
    wait(request, "broadcast");
  }
}

void MpiCommunicator::barrier() {
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Ibarrier(MPI_COMM_WORLD, &request), "MPI_Ibarrier");
  wait(request, "barrier");
}

void MpiCommunicator::abort(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

}  // namespace txl
