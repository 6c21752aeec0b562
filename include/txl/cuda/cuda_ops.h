// The CUDA backend of Ops<float>: cuBLAS GEMMs and custom kernels on one stream of one
// GPU, device memory from a caching arena (no cudaMalloc in steady state).
//
// GEMM precision (all other kernels compute in float32, reductions in float64):
//   fp32  strict float32 (CUBLAS_COMPUTE_32F; tensor cores off)
//   tf32  TF32 tensor cores, float32 accumulation (CUBLAS_COMPUTE_32F_FAST_TF32)
//   bf16  operands packed into bfloat16 copies (round to nearest even, scratch memory),
//         bf16 x bf16 -> float32 GEMM with float32 accumulation (CUBLAS_COMPUTE_32F)
//   fp16  the same with float16 copies; train with dynamic loss scaling (loss_scaler.h)
// Weights, activations, gradients and optimizer state stay float32 in every mode: the
// mixed-precision modes change only what the tensor cores multiply (see docs/gpu.md).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <memory>
#include <string>

#include "txl/core/ops.h"
#include "txl/cuda/caching_arena.h"

namespace txl {

enum class GemmPrecision { kFp32, kTf32, kBf16, kFp16 };
const char* gemm_precision_name(GemmPrecision p);  // "fp32", "tf32", "bf16", "fp16"
// Parses "fp32" | "tf32" | "bf16" | "fp16"; anything else throws naming the value.
GemmPrecision parse_gemm_precision(const std::string& name);

struct CudaOptions {
  int device = 0;
  GemmPrecision precision = GemmPrecision::kFp32;
  size_t arena_bytes = 0;                          // reserved up front; 0 = grow in 64 MiB chunks
  size_t cublas_workspace_bytes = size_t{32} << 20;  // cuBLAS workspace (needed for graph capture)
};

// Number of usable CUDA devices; 0 (never an exception) when there is no GPU or driver.
int cuda_device_count();
// The PCI bus id of CUDA device `device` as cudaDeviceGetPCIBusId writes it
// ("0000:1B:00.0"); affinity reads the device's sysfs entry with it (cpu_affinity.h).
std::string cuda_pci_bus_id(int device);

// The CUDA-specific surface of a backend made by make_cuda_ops.
class CudaBackend : public Ops<float> {
 public:
  virtual int device_index() const = 0;
  virtual cudaStream_t stream() const = 0;  // every op runs on this stream
  virtual GemmPrecision precision() const = 0;
  virtual void set_precision(GemmPrecision p) = 0;
  virtual cuda::CachingArena& arena() = 0;
};

std::unique_ptr<Ops<float>> make_cuda_ops(const CudaOptions& options = {});
// The CUDA surface of `ops`, or nullptr when `ops` is another backend.
CudaBackend* as_cuda_backend(Ops<float>& ops);

}  // namespace txl
