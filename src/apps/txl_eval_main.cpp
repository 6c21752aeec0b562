// txl_eval [CONFIG.yaml] [--config PRESET] --model CKPT [--data corpus.h5] [--split valid|test|all] ...
// (docs/training.md)
#include <omp.h>

#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "txl/dist/grad_reducer.h"
#include "txl/dist/world.h"
#include "txl/train/programs.h"

int main(int argc, char** argv) {
  std::unique_ptr<txl::Communicator> comm;
  try {
    comm = txl::init_world(argc, argv);
    if (std::getenv("OMP_NUM_THREADS") == nullptr) omp_set_num_threads(txl::default_threads_per_rank(*comm));
    const std::vector<std::string> args(argv + 1, argv + argc);
    return txl::run_eval_program(args, *comm);
  } catch (const std::exception& e) {
    return txl::exit_after_error(comm.get(), e);
  }
}
