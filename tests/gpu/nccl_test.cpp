// The NCCL communicator on one rank (the only configuration one GPU allows): set-up
// through the (single-process) communicator, collectives on device buffers ordered after
// the compute stream, host buffers passed on.
#include "gpu_test_util.h"
#include "txl/cuda/nccl_communicator.h"
#include "txl/dist/communicator.h"

namespace txl {
namespace {

using gpu_test::GpuTest;

class GpuNccl : public GpuTest {};

TEST_F(GpuNccl, SingleRankCollectives) {
  if (!require_cuda()) GTEST_SKIP() << "skipped: needs the CUDA backend";
  auto world = make_single_process_communicator();
  auto nccl = make_nccl_communicator(*world, dut());
  EXPECT_EQ(nccl->name(), "nccl");
  EXPECT_EQ(nccl->rank(), 0);
  EXPECT_EQ(nccl->size(), 1);
  EXPECT_EQ(nccl->local_rank(), 0);

  // The fill is still queued on the compute stream when the all-reduce is issued: the
  // collective must be ordered after it.
  const int64_t n = (1 << 22) + 5;
  Tensor<float> buf(Shape{n}, dut().allocator());
  dut().fill(buf.data(), n, 3.0f);
  nccl->allreduce_sum(buf.data(), n);
  EXPECT_EQ(dut().sum(buf.data(), n), 3.0 * static_cast<double>(n));

  Tensor<double> dbuf(Shape{7}, dut().allocator());
  const std::vector<double> dhost = {1, 2, 3, 4, 5, 6, 7};
  dut().upload(dbuf.data(), dhost.data(), sizeof(double) * 7);
  nccl->allreduce_sum(dbuf.data(), 7);
  std::vector<double> dback(7);
  dut().download(dback.data(), dbuf.data(), sizeof(double) * 7);
  EXPECT_EQ(dback, dhost);

  const auto payload = randn(33);
  auto dev = on(dut(), payload);
  nccl->broadcast(dev.data(), dev.bytes(), 0);
  EXPECT_EQ(read(dut(), dev), payload);

  std::vector<float> host = {1.0f, 2.0f};  // host memory: handed to the MPI/single communicator
  nccl->allreduce_sum(host.data(), 2);
  EXPECT_EQ(host, (std::vector<float>{1.0f, 2.0f}));
  nccl->barrier();

  auto by_device = make_nccl_communicator(*world, as_cuda_backend(dut())->device_index());
  by_device->allreduce_sum(buf.data(), n);
  EXPECT_EQ(dut().sum(buf.data(), n), 3.0 * static_cast<double>(n));
}

TEST(NcclApi, RejectsNonCudaBackend) {
  auto world = make_single_process_communicator();
  auto cpu = make_cpu_ops<float>();
  EXPECT_THROW(make_nccl_communicator(*world, *cpu), Error);
}

}  // namespace
}  // namespace txl
