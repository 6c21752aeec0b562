// LayerNorm over the last axis, and the fused residual tail (dropout + bias + residual +
// LayerNorm): one warp per row; row statistics in double (as the CPU backend). The
// parameter gradients use the deterministic two-stage column sum.
#include "kernel_utils.cuh"
#include "kernels.h"
#include "txl/core/philox.h"

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

// ---- fused residual tail ---------------------------------------------------------------
// The dropout of a [rows, cols] tensor laid out as [outer, batch, cols] (p == 0: none).
struct TailDropout {
  float p;
  float multiplier;  // 1 / (1 - p), as launch_dropout
  DropoutKey key;
  int64_t batch, batch_global, batch_offset;
};

// Calls f(c, keep) for the columns c of a row that `lane` owns: those of the Philox counter
// blocks lane, lane + 32, ... of the row (global indices base + c, base from the layout),
// so each lane draws each of its blocks once. Every pass over a row uses this same
// assignment, so a lane reads back only what it wrote itself. keep is drawn only when
// `draw` (and p > 0); otherwise it is true.
template <typename F>
__device__ __forceinline__ void for_lane_columns(const TailDropout& d, int64_t row, int64_t cols, int lane, bool draw,
                                                 F f) {
  uint64_t base = 0;
  if (d.p > 0.0f) {
    const int64_t o = row / d.batch, b = row % d.batch;
    base = static_cast<uint64_t>((o * d.batch_global + b + d.batch_offset) * cols);
  }
  draw = draw && d.p > 0.0f;
  const uint64_t end = base + static_cast<uint64_t>(cols);
  for (uint64_t block = (base >> 2) + static_cast<uint64_t>(lane); block * 4 < end; block += kWarp) {
    Philox4 bits{{0, 0, 0, 0}};
    if (draw) {
      const Philox4 ctr{{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                         static_cast<uint32_t>(d.key.step) ^ (d.key.site * 0x85EBCA6Bu),
                         static_cast<uint32_t>(d.key.step >> 32) ^ d.key.site}};
      bits = philox4x32_10(ctr, static_cast<uint32_t>(d.key.seed), static_cast<uint32_t>(d.key.seed >> 32));
    }
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const uint64_t g = block * 4 + static_cast<uint64_t>(k);
      if (g < base || g >= end) continue;
      // philox_uniform(key, g) >= p, as dropout_kernel.
      const bool keep = !draw || static_cast<float>(bits.v[k] >> 8) * (1.0f / 16777216.0f) >= d.p;
      f(static_cast<int64_t>(g - base), keep);
    }
  }
}

// sum = residual + dropout(x + bias); then the LayerNorm of the row as layernorm_fwd_kernel.
__global__ void residual_layernorm_fwd_kernel(int64_t rows, int64_t cols, const float* x, const float* bias,
                                              TailDropout d, const float* residual, const float* gamma,
                                              const float* beta, float eps, float* sum, float* y, float* mean,
                                              float* rstd) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= rows) return;
  const float* xr = x + row * cols;
  const float* hr = residual + row * cols;
  float* sr = sum + row * cols;
  double s = 0.0;
  for_lane_columns(d, row, cols, lane, true, [&](int64_t c, bool keep) {
    float t = bias ? xr[c] + bias[c] : xr[c];
    if (d.p > 0.0f) t = keep ? t * d.multiplier : 0.0f;
    const float v = hr[c] + t;
    sr[c] = v;
    s += v;
  });
  if (gamma == nullptr) return;  // the same for the whole warp
  const double mu = warp_sum(s) / static_cast<double>(cols);
  double sq = 0.0;
  for_lane_columns(d, row, cols, lane, false, [&](int64_t c, bool) {
    const double dv = sr[c] - mu;
    sq += dv * dv;
  });
  const double var = warp_sum(sq) / static_cast<double>(cols);
  const float m = static_cast<float>(mu);
  const float rs = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = rs;
  }
  float* yr = y + row * cols;
  for_lane_columns(d, row, cols, lane, false,
                   [&](int64_t c, bool) { yr[c] = (sr[c] - m) * rs * gamma[c] + beta[c]; });
}

// d_sum = LayerNorm backward of dy (as layernorm_dx_kernel) or dy itself; d_x = dropout(d_sum).
__global__ void residual_layernorm_bwd_kernel(int64_t rows, int64_t cols, const float* dy, const float* sum,
                                              const float* gamma, const float* mean, const float* rstd,
                                              TailDropout d, float* d_sum, float* d_x) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= rows) return;
  const float* dyr = dy + row * cols;
  float* dsr = d_sum ? d_sum + row * cols : nullptr;
  float* dxr = d_x + row * cols;
  auto store = [&](int64_t c, bool keep, float ds) {
    if (dsr) dsr[c] = ds;
    dxr[c] = d.p > 0.0f ? (keep ? ds * d.multiplier : 0.0f) : ds;
  };
  if (gamma == nullptr) {
    for_lane_columns(d, row, cols, lane, true, [&](int64_t c, bool keep) { store(c, keep, dyr[c]); });
    return;
  }
  const float* sr = sum + row * cols;
  const double m = mean[row], rs = rstd[row];
  double sg = 0.0, sgx = 0.0;
  for_lane_columns(d, row, cols, lane, false, [&](int64_t c, bool) {
    const double g = static_cast<double>(dyr[c]) * gamma[c];
    sg += g;
    sgx += g * ((sr[c] - m) * rs);
  });
  const double mean_g = warp_sum(sg) / static_cast<double>(cols);
  const double mean_gx = warp_sum(sgx) / static_cast<double>(cols);
  for_lane_columns(d, row, cols, lane, true, [&](int64_t c, bool keep) {
    const double xhat = (sr[c] - m) * rs;
    store(c, keep, static_cast<float>(rs * (static_cast<double>(dyr[c]) * gamma[c] - mean_g - xhat * mean_gx)));
  });
}

// (dgamma, dbeta, dbias) terms of row r, column c: (dy * xhat, dy, d_x).
struct ResidualTailParamTerm {
  LayerNormParamTerm ln;
  const float* d_x;
  __device__ Vec<3> operator()(int64_t r, int64_t c) const {
    const Vec<2> t = ln(r, c);
    return Vec<3>{{t.v[0], t.v[1], static_cast<double>(d_x[r * ln.cols + c])}};
  }
};
struct RowTerm {  // d_x[r, c]
  const float* d_x;
  int64_t cols;
  __device__ Vec<1> operator()(int64_t r, int64_t c) const { return Vec<1>{{static_cast<double>(d_x[r * cols + c])}}; }
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

namespace {
TailDropout tail_dropout(float p, const DropoutKey& key, const BatchLayout& layout) {
  TailDropout d{p, 1.0f, key, 1, 1, 0};
  if (p > 0.0f) {
    d.multiplier = 1.0f / (1.0f - p);  // as launch_dropout
    d.batch = layout.batch;
    d.batch_global = layout.batch_global;
    d.batch_offset = layout.batch_offset;
  }
  return d;
}
}  // namespace

void launch_dropout_residual_layernorm_fwd(int64_t rows, int64_t cols, const float* x, const float* bias, float p,
                                           const DropoutKey& key, const BatchLayout& layout, const float* residual,
                                           const float* gamma, const float* beta, float eps, float* sum, float* y,
                                           float* mean, float* rstd, cudaStream_t stream) {
  if (rows <= 0) return;
  residual_layernorm_fwd_kernel<<<row_blocks(rows), kThreads, 0, stream>>>(
      rows, cols, x, bias, tail_dropout(p, key, layout), residual, gamma, beta, eps, sum, y, mean, rstd);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_dropout_residual_layernorm_bwd(int64_t rows, int64_t cols, const float* dy, const float* sum,
                                           const float* gamma, const float* mean, const float* rstd, float p,
                                           const DropoutKey& key, const BatchLayout& layout, float* d_sum, float* d_x,
                                           float* dgamma, float* dbeta, float* dbias, Scratch& scratch,
                                           cudaStream_t stream) {
  if (rows <= 0) return;
  residual_layernorm_bwd_kernel<<<row_blocks(rows), kThreads, 0, stream>>>(
      rows, cols, dy, sum, gamma, mean, rstd, tail_dropout(p, key, layout), d_sum, d_x);
  TXL_CUDA_LAUNCH_CHECK();
  // The column sums read d_x, so they follow the row kernel (dy must not alias the outputs).
  const LayerNormParamTerm ln{dy, sum, mean, rstd, cols};
  if (gamma && dbias) {
    column_sum<3>(ResidualTailParamTerm{ln, d_x}, rows, cols, dgamma, dbeta, dbias, scratch, stream);
  } else if (gamma) {
    column_sum<2>(ln, rows, cols, dgamma, dbeta, scratch, stream);
  } else if (dbias) {
    column_sum<1>(RowTerm{d_x, cols}, rows, cols, dbias, nullptr, scratch, stream);
  }
}

}  // namespace txl::cuda
