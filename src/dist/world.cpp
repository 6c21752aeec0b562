// init_world and the helpers of txl/dist/world.h: launcher detection, fatal-error
// handling across ranks, start-up consistency checks.
#include <sched.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "txl/core/error.h"
#include "txl/dist/grad_reducer.h"
#include "txl/dist/mpi_communicator.h"
#include "txl/dist/world.h"

namespace txl {
namespace {

bool has(const std::function<const char*(const char*)>& lookup, const char* name) {
  const char* v = lookup(name);
  return v != nullptr && *v != '\0';
}

int int_env(const std::function<const char*(const char*)>& lookup, const char* name) {
  const char* v = lookup(name);
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  const long value = std::strtol(v, &end, 10);
  return (end != v && *end == '\0' && value > 0 && value < (1L << 30)) ? static_cast<int>(value) : 0;
}

uint64_t fnv1a64(std::string_view text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

void finalize_mpi_at_exit() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

}  // namespace

LaunchInfo detect_launch(const std::function<const char*(const char*)>& lookup) {
  LaunchInfo info;
  // mpirun (Open MPI) names the world size directly; it wins over SLURM variables that a
  // mpirun inside an allocation inherits from the batch step.
  if (has(lookup, "OMPI_COMM_WORLD_SIZE")) {
    info.under_launcher = true;
    info.launcher = "mpirun";
    info.expected_size = int_env(lookup, "OMPI_COMM_WORLD_SIZE");
    return info;
  }
  // A task of an srun step.
  if (has(lookup, "SLURM_STEP_ID") && has(lookup, "SLURM_PROCID")) {
    int tasks = int_env(lookup, "SLURM_STEP_NUM_TASKS");
    if (tasks == 0) tasks = int_env(lookup, "SLURM_NTASKS");
    const bool pmix = has(lookup, "PMIX_RANK");
    const bool pmi = has(lookup, "PMI_RANK") || has(lookup, "PMI_FD");
#if defined(OPEN_MPI)
    const bool wired = pmix;  // Debian's Open MPI talks to SLURM only through PMIx
#else
    const bool wired = pmix || pmi;
#endif
    if (wired) {
      info.under_launcher = true;
      info.launcher = "srun";
      info.expected_size = tasks;
    } else if (tasks > 1) {
      info.problem = fmt::format(
          "srun started {} tasks without a PMIx environment (srun --mpi={}), so MPI cannot connect them; "
          "launch with `srun --mpi=pmix` (`srun --mpi=list` shows the choices) or set MpiDefault=pmix in slurm.conf",
          tasks, pmi ? "pmi2" : "none");
    }
    return info;
  }
  if (has(lookup, "PMIX_RANK")) {  // another PMIx launcher (prterun, ...)
    info.under_launcher = true;
    info.launcher = "pmix";
    return info;
  }
  if (has(lookup, "PMI_RANK") && has(lookup, "PMI_SIZE")) {  // MPICH's hydra
    info.under_launcher = true;
    info.launcher = "hydra";
    info.expected_size = int_env(lookup, "PMI_SIZE");
  }
  return info;
}

std::unique_ptr<Communicator> init_world(int& argc, char**& argv) {
  const char* mode_env = std::getenv("TXL_DIST");
  const std::string mode = mode_env ? mode_env : "auto";
  TXL_CHECK(mode == "auto" || mode == "single" || mode == "mpi", "TXL_DIST='{}' (expected auto, single or mpi)",
            mode);
  if (mode == "single") return make_single_process_communicator();
  const LaunchInfo launch = detect_launch([](const char* name) { return std::getenv(name); });
  if (!launch.problem.empty()) {
    // Every task finds the same problem; task 0 says it, the others leave quietly.
    const char* task = std::getenv("SLURM_PROCID");
    if (task != nullptr && std::string(task) != "0") std::exit(1);
    fail(launch.problem);
  }
  if (mode == "auto" && !launch.under_launcher) return make_single_process_communicator();

  auto comm = std::make_unique<MpiCommunicator>(argc, argv);
  std::atexit(finalize_mpi_at_exit);  // a process that ends by exit() still finalises
  if (launch.expected_size > 0 && comm->size() != launch.expected_size) {
    failf("{} started {} processes but MPI sees {} rank(s) in this one: this MPI did not get the launcher's "
          "process information; under SLURM use `srun --mpi=pmix`, otherwise mpirun from the same MPI",
          launch.launcher, launch.expected_size, comm->size());
  }
  return comm;
}

int exit_after_error(Communicator* comm, const std::exception& error) {
  if (comm != nullptr && comm->size() > 1) {
    std::fprintf(stderr, "error: rank %d: %s\n", comm->rank(), error.what());
    comm->abort(1);
  }
  std::fprintf(stderr, "error: %s\n", error.what());
  return 1;
}

void require_same_on_all_ranks(Communicator& comm, const std::string& what, const std::string& value) {
  const int world = comm.size();
  if (world == 1) return;
  // Each rank writes its 64-bit hash as two exact 32-bit halves into its own slots; the
  // sum gives everyone every rank's hash.
  const uint64_t h = fnv1a64(value);
  std::vector<double> hashes(static_cast<size_t>(2 * world), 0.0);
  hashes[static_cast<size_t>(2 * comm.rank())] = static_cast<double>(h >> 32);
  hashes[static_cast<size_t>(2 * comm.rank() + 1)] = static_cast<double>(h & 0xffffffffu);
  comm.allreduce_sum(hashes.data(), static_cast<int64_t>(hashes.size()));
  std::string differing;
  int count = 0;
  for (int r = 1; r < world; ++r) {
    const auto i = static_cast<size_t>(2 * r);
    if (hashes[i] != hashes[0] || hashes[i + 1] != hashes[1]) {
      if (count < 8) differing += (differing.empty() ? "" : ", ") + std::to_string(r);
      ++count;
    }
  }
  if (count > 0) {
    failf("{} differs between ranks: rank(s) {}{} do not match rank 0; every rank must get the same {}", what,
          differing, count > 8 ? fmt::format(" and {} more", count - 8) : "", what);
  }
}

int default_threads_per_rank(const Communicator& comm) {
  cpu_set_t set;
  CPU_ZERO(&set);
  int usable = 1;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) usable = CPU_COUNT(&set);
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  // A mask narrower than the machine means a launcher bound this rank already.
  if (comm.local_size() > 1 && usable >= online) usable /= comm.local_size();
  return usable > 0 ? usable : 1;
}

std::string describe_world(Communicator& comm) {
  double nodes = comm.local_rank() == 0 ? 1.0 : 0.0;
  comm.allreduce_sum(&nodes, 1);
  const int n = static_cast<int>(nodes);
  if (comm.size() == 1) return fmt::format("{}: 1 rank", comm.name());
  return fmt::format("{}: {} ranks on {} node{} ({} on this node)", comm.name(), comm.size(), n, n == 1 ? "" : "s",
                     comm.local_size());
}

}  // namespace txl
