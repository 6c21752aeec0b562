#include "txl/cuda/check.h"

#include "txl/core/error.h"

namespace txl::cuda {

void throw_cuda_error(cudaError_t status, const char* expr, const char* file, int line) {
  (void)cudaGetLastError();  // reset the thread's last error, so later launch checks do not report it again
  failf("CUDA error {} ({}) in {} at {}:{}", cudaGetErrorName(status), cudaGetErrorString(status), expr, file, line);
}

void throw_cublas_error(cublasStatus_t status, const char* expr, const char* file, int line) {
  failf("cuBLAS error {} ({}) in {} at {}:{}", cublasGetStatusName(status), cublasGetStatusString(status), expr,
        file, line);
}

void throw_error(const char* message) { fail(message); }

}  // namespace txl::cuda
