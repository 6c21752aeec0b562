// The model tests run tiny shapes (d_model 8) thousands of times; on a shared 2-core
// machine OpenMP fork/join and barrier waits cost far more than the arithmetic, so the
// CPU backend is limited to one thread here. (Threaded kernels are tested in test_cpu.)
#include <gtest/gtest.h>
#include <omp.h>

namespace {
class SingleThread : public ::testing::Environment {
 public:
  void SetUp() override { omp_set_num_threads(1); }
};
const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new SingleThread);
}  // namespace
