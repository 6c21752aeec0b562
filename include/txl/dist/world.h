// The job's process world beyond the Communicator itself: how the job was launched,
// what to do when a rank fails, and start-up checks that every rank got the same inputs.
#pragma once
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "txl/dist/communicator.h"

namespace txl {

// Sets up the job's communicator: MPI when launched by mpirun/srun (or when MPI is
// requested), the single-process one otherwise.
std::unique_ptr<Communicator> init_world(int& argc, char**& argv);

// What the environment says about how this process was started.
struct LaunchInfo {
  bool under_launcher = false;  // started by mpirun / srun / another PMI launcher: use MPI
  std::string launcher;         // "mpirun", "srun", "pmix", "hydra"; empty when none
  int expected_size = 0;        // processes the launcher started; 0 when it does not say
  std::string problem;          // non-empty: MPI cannot be wired up this way (one line, with the fix)
};
// `lookup` is getenv (a parameter so tests can feed a fake environment).
LaunchInfo detect_launch(const std::function<const char*(const char*)>& lookup);

// For main()'s catch block: prints "error: <what>" (with the rank when there are several)
// and returns 1 for a single process; with several ranks it ends the whole job
// (Communicator::abort) so that no other rank waits forever in a collective.
// `comm` may be null (the error happened before init_world finished).
int exit_after_error(Communicator* comm, const std::exception& error);

// Start-up consistency check: every rank passes its own `value` (the resolved config as
// YAML, a corpus checksum, ...). Throws txl::Error on every rank, naming `what` and the
// ranks that differ from rank 0, when they are not all equal. Collective.
void require_same_on_all_ranks(Communicator& comm, const std::string& what, const std::string& value);

// OpenMP threads a rank should use when OMP_NUM_THREADS is not set: the CPUs this process
// may run on, divided among the node's ranks unless a launcher already bound each rank.
int default_threads_per_rank(const Communicator& comm);

// One line for rank 0's log: "mpi: 8 ranks on 2 nodes (4 on this node)". Collective.
std::string describe_world(Communicator& comm);

}  // namespace txl
