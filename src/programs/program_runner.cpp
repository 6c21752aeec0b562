#include <omp.h>

#include <cstdlib>
#include <memory>

#include "txl/dist/world.h"
#include "txl/programs/programs.h"

namespace txl {

int run_program_main(int argc, char** argv, ProgramBody body) {
  std::unique_ptr<Communicator> comm;
  try {
    comm = init_world(argc, argv);
    if (std::getenv("OMP_NUM_THREADS") == nullptr) omp_set_num_threads(default_threads_per_rank(*comm));
    const std::vector<std::string> args(argv + 1, argv + argc);
    return body(args, *comm);
  } catch (const std::exception& e) {
    return exit_after_error(comm.get(), e);
  }
}

}  // namespace txl
