// The communicator shared by the tests of test_dist_mpi (set up in mpi_test_main.cpp).
#pragma once
#include "txl/dist/communicator.h"

namespace txl::test {
Communicator& world();
}  // namespace txl::test
