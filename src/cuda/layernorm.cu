// LayerNorm over the last axis: one warp per row; row statistics in double (as the CPU
// backend). The parameter gradients use the deterministic two-stage column sum.
#include "kernel_utils.cuh"
#include "kernels.h"

namespace txl::cuda {
namespace {

constexpr int kRowsPerBlock = kThreads / kWarp;

__global__ void layernorm_fwd_kernel(int64_t rows, int64_t cols, const float* x, const float* gamma,
                                     const float* beta, float eps, float* y, float* mean, float* rstd) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= rows) return;
  const float* xr = x + row * cols;
  float* yr = y + row * cols;
  double s = 0.0;
  for (int64_t c = lane; c < cols; c += kWarp) s += xr[c];
  const double mu = warp_sum(s) / static_cast<double>(cols);
  double sq = 0.0;
  for (int64_t c = lane; c < cols; c += kWarp) {
    const double d = xr[c] - mu;
    sq += d * d;
  }
  const double var = warp_sum(sq) / static_cast<double>(cols);
  const float m = static_cast<float>(mu);
  const float rs = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = rs;
  }
  for (int64_t c = lane; c < cols; c += kWarp) yr[c] = (xr[c] - m) * rs * gamma[c] + beta[c];
}

// dx = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)) with g = dy * gamma.
__global__ void layernorm_dx_kernel(int64_t rows, int64_t cols, const float* dy, const float* x, const float* gamma,
                                    const float* mean, const float* rstd, float* dx) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= rows) return;
  const float* xr = x + row * cols;
  const float* dyr = dy + row * cols;
  float* dxr = dx + row * cols;
  const double m = mean[row], rs = rstd[row];
  double sg = 0.0, sgx = 0.0;
  for (int64_t c = lane; c < cols; c += kWarp) {
    const double g = static_cast<double>(dyr[c]) * gamma[c];
    sg += g;
    sgx += g * ((xr[c] - m) * rs);
  }
  const double mean_g = warp_sum(sg) / static_cast<double>(cols);
  const double mean_gx = warp_sum(sgx) / static_cast<double>(cols);
  for (int64_t c = lane; c < cols; c += kWarp) {
    const double xhat = (xr[c] - m) * rs;
    dxr[c] = static_cast<float>(rs * (static_cast<double>(dyr[c]) * gamma[c] - mean_g - xhat * mean_gx));
  }
}

// (dgamma, dbeta) terms of row r, column c: (dy * xhat, dy).
struct LayerNormParamTerm {
  const float* dy;
  const float* x;
  const float* mean;
  const float* rstd;
  int64_t cols;
  __device__ Vec<2> operator()(int64_t r, int64_t c) const {
    const double d = dy[r * cols + c];
    const double xhat = (x[r * cols + c] - static_cast<double>(mean[r])) * static_cast<double>(rstd[r]);
    return Vec<2>{{d * xhat, d}};
  }
};

unsigned row_blocks(int64_t rows) {
  const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  if (blocks > 0x7fffffff) throw_error("layernorm: too many rows for one launch");
  return static_cast<unsigned>(blocks);
}

}  // namespace

void launch_layernorm_fwd(int64_t rows, int64_t cols, const float* x, const float* gamma, const float* beta,
                          float eps, float* y, float* mean, float* rstd, cudaStream_t stream) {
  if (rows <= 0) return;
  layernorm_fwd_kernel<<<row_blocks(rows), kThreads, 0, stream>>>(rows, cols, x, gamma, beta, eps, y,
                                                                               mean, rstd);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_layernorm_bwd(int64_t rows, int64_t cols, const float* dy, const float* x, const float* gamma,
                          const float* mean, const float* rstd, float* dx, float* dgamma, float* dbeta,
                          Scratch& scratch, cudaStream_t stream) {
  if (rows <= 0) return;
  // Parameter gradients first, so dx may alias dy.
  column_sum<2>(LayerNormParamTerm{dy, x, mean, rstd, cols}, rows, cols, dgamma, dbeta, scratch, stream);
  layernorm_dx_kernel<<<row_blocks(rows), kThreads, 0, stream>>>(rows, cols, dy, x, gamma, mean, rstd,
                                                                              dx);
  TXL_CUDA_LAUNCH_CHECK();
}

}  // namespace txl::cuda
