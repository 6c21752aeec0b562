// Error checks for the CUDA runtime and cuBLAS. Every call into those libraries goes
// through one of these macros; a failure throws txl::Error naming the call site
// (file:line), the failing expression and the library's own error string.
// This header stays free of fmt (nvcc's front end cannot compile fmt's consteval
// format checks), so the .cu files can use it.
#pragma once
#include <cuda_runtime.h>

#include <cublas_v2.h>

namespace txl::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* expr, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* expr, const char* file, int line);
// Throws txl::Error(message).
[[noreturn]] void throw_error(const char* message);

}  // namespace txl::cuda

#define TXL_CUDA_CHECK(expr)                                                       \
  do {                                                                             \
    const cudaError_t txl_cuda_status_ = (expr);                                   \
    if (txl_cuda_status_ != cudaSuccess)                                           \
      ::txl::cuda::throw_cuda_error(txl_cuda_status_, #expr, __FILE__, __LINE__);  \
  } while (0)

#define TXL_CUBLAS_CHECK(expr)                                                        \
  do {                                                                                \
    const cublasStatus_t txl_cublas_status_ = (expr);                                 \
    if (txl_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                  \
      ::txl::cuda::throw_cublas_error(txl_cublas_status_, #expr, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: reports launch-configuration errors (and any earlier
// asynchronous error) at the launch site.
#define TXL_CUDA_LAUNCH_CHECK() TXL_CUDA_CHECK(cudaGetLastError())
