#include "txl/train/backend.h"

#include "txl/core/error.h"
#include "txl/core/recording_ops.h"
#if defined(TXL_WITH_CUDA)
#include "txl/cuda/cuda_graph.h"
#include "txl/cuda/cuda_ops.h"
#endif

namespace txl {

std::unique_ptr<Ops<float>> make_backend(const std::string& device, const std::string& precision, int local_rank,
                                         bool graphs) {
  if (device == "cpu") {
    if (precision != "fp32")
      failf("precision: {} needs device: cuda (the CPU backend computes in fp32 only)", precision);
    if (graphs) return std::make_unique<RecordingOps<float>>(make_cpu_ops<float>());
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

std::vector<std::string> gpu_bus_ids_of_local_ranks(int local_size) {
#if defined(TXL_WITH_CUDA)
  const int count = cuda_device_count();
  if (count == 0) fail("device: cuda, but no CUDA device is visible (driver missing or CUDA_VISIBLE_DEVICES empty)");
  std::vector<std::string> ids;
  for (int r = 0; r < local_size; ++r) ids.push_back(cuda_pci_bus_id(r % count));
  return ids;
#else
  (void)local_size;
  fail("device: cuda, but this build has no CUDA backend (configure with cmake -DTXL_CUDA=ON on a machine with nvcc)");
#endif
}

std::unique_ptr<StepGraph> make_step_graph(Ops<float>& ops) {
  if (auto recorded = make_recorded_step_graph(ops)) return recorded;
#if defined(TXL_WITH_CUDA)
  if (as_cuda_backend(ops) != nullptr) return std::make_unique<CudaGraph>(ops);
#endif
  failf("step graphs need a CUDA backend or a recording CPU backend; backend '{}' is neither", ops.name());
}

}  // namespace txl
