#include "txl/train/backend.h"

#include "txl/core/error.h"
#if defined(TXL_WITH_CUDA)
#include "txl/cuda/cuda_ops.h"
#endif

namespace txl {

std::unique_ptr<Ops<float>> make_backend(const std::string& device, const std::string& precision, int local_rank) {
  if (device == "cpu") {
    if (precision != "fp32")
      failf("precision: {} needs device: cuda (the CPU backend computes in fp32 only)", precision);
    return make_cpu_ops<float>();
  }
  if (device != "cuda") failf("device: unknown value '{}' (cpu | cuda)", device);
#if defined(TXL_WITH_CUDA)
  const int count = cuda_device_count();
  if (count == 0) fail("device: cuda, but no CUDA device is visible (driver missing or CUDA_VISIBLE_DEVICES empty)");
  CudaOptions options;
  options.device = local_rank % count;
  options.precision = parse_gemm_precision(precision);
  return make_cuda_ops(options);
#else
  (void)local_rank;
  fail("device: cuda, but this build has no CUDA backend (configure with cmake -DTXL_CUDA=ON on a machine with nvcc)");
#endif
}

}  // namespace txl
