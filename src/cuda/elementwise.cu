// Elementwise kernels: fill, bias, axpy/scale/add, ReLU, dropout, and the packing of
// GEMM operands into bfloat16 / float16.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernel_utils.cuh"
#include "kernels.h"
#include "txl/core/philox.h"

namespace txl::cuda {
namespace {

__global__ void fill_kernel(float* x, int64_t n, float value) {
  for (int64_t i = global_thread(); i < n; i += grid_stride()) x[i] = value;
}

__global__ void scale_matrices_kernel(float* C, int64_t rows, int64_t cols, int64_t ld, int64_t stride,
                                      int64_t batch, float beta) {
  const int64_t n = batch * rows * cols;
  for (int64_t e = global_thread(); e < n; e += grid_stride()) {
    const int64_t c = e % cols, r = (e / cols) % rows, b = e / (cols * rows);
    float* x = C + b * stride + r * ld + c;
    *x = beta == 0.0f ? 0.0f : beta * *x;
  }
}

template <typename Half, typename Convert>
__global__ void pack_half_kernel(const float* src, int64_t rows, int64_t cols, int64_t ld, int64_t stride,
                                 int64_t batch, Half* dst, Convert convert) {
  const int64_t n = batch * rows * cols;
  for (int64_t e = global_thread(); e < n; e += grid_stride()) {
    const int64_t c = e % cols, r = (e / cols) % rows, b = e / (cols * rows);
    dst[e] = convert(src[b * stride + r * ld + c]);
  }
}
struct ToBf16 {
  __device__ __nv_bfloat16 operator()(float x) const { return __float2bfloat16_rn(x); }
};
struct ToFp16 {
  __device__ __half operator()(float x) const { return __float2half_rn(x); }
};

__global__ void add_bias_kernel(float* y, const float* bias, int64_t n, int64_t cols) {
  for (int64_t i = global_thread(); i < n; i += grid_stride()) y[i] += bias[i % cols];
}

__global__ void axpy_kernel(int64_t n, float alpha, const float* x, float* y) {
  for (int64_t i = global_thread(); i < n; i += grid_stride()) y[i] += alpha * x[i];
}

__global__ void scale_kernel(int64_t n, float alpha, float* x) {
  for (int64_t i = global_thread(); i < n; i += grid_stride()) x[i] *= alpha;
}

__global__ void add_kernel(int64_t n, const float* a, const float* b, float* out) {
  for (int64_t i = global_thread(); i < n; i += grid_stride()) out[i] = a[i] + b[i];
}

__global__ void relu_fwd_kernel(int64_t n, const float* x, float* y) {
  for (int64_t i = global_thread(); i < n; i += grid_stride()) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

__global__ void relu_bwd_kernel(int64_t n, const float* y, const float* dy, float* dx) {
  for (int64_t i = global_thread(); i < n; i += grid_stride()) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// One thread per Philox counter block (four consecutive global indices) intersecting a
// row of `inner` elements: one Philox call yields the four uniforms, exactly as
// philox_uniform() forms them for each index (tests/gpu checks bit equality). For each
// of the block's elements in the row, f(local index, column, kept); p == 0 keeps all
// and draws nothing.
template <typename F>
__device__ void for_each_in_counter_block(int64_t t, int64_t blocks_per_row, float p, const DropoutKey& key,
                                          const BatchLayout& layout, F f) {
  const int64_t row = t / blocks_per_row;  // row = o * batch + b
  const int64_t jb = t % blocks_per_row;
  const int64_t o = row / layout.batch, b = row % layout.batch;
  const uint64_t base = static_cast<uint64_t>((o * layout.batch_global + b + layout.batch_offset) * layout.inner);
  const uint64_t block = (base >> 2) + static_cast<uint64_t>(jb);
  if (block * 4 >= base + static_cast<uint64_t>(layout.inner)) return;  // past the row's last block
  Philox4 bits{{0u, 0u, 0u, 0u}};
  if (p > 0.0f) {
    const Philox4 ctr{{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                       static_cast<uint32_t>(key.step) ^ (key.site * 0x85EBCA6Bu),
                       static_cast<uint32_t>(key.step >> 32) ^ key.site}};
    bits = philox4x32_10(ctr, static_cast<uint32_t>(key.seed), static_cast<uint32_t>(key.seed >> 32));
  }
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const uint64_t g = block * 4 + static_cast<uint64_t>(k);
    if (g < base || g >= base + static_cast<uint64_t>(layout.inner)) continue;
    const int64_t col = static_cast<int64_t>(g - base);
    const float u = static_cast<float>(bits.v[k] >> 8) * (1.0f / 16777216.0f);
    f(row * layout.inner + col, col, p == 0.0f || u >= p);
  }
}

__global__ void dropout_kernel(const float* x, float* y, float p, float multiplier, DropoutKey key, BatchLayout layout,
                               int64_t blocks_per_row, int64_t total_threads) {
  for (int64_t t = global_thread(); t < total_threads; t += grid_stride())
    for_each_in_counter_block(t, blocks_per_row, p, key, layout, [&](int64_t local, int64_t, bool keep) {
      y[local] = keep ? x[local] * multiplier : 0.0f;
    });
}

// The feed-forward activation (Ops::bias_relu_dropout): dropout_kernel's threads and
// masks, applied to relu(x + bias) (p == 0: every element kept, multiplier 1).
__global__ void bias_relu_dropout_kernel(const float* x, const float* bias, float* y, float p, float multiplier,
                                         DropoutKey key, BatchLayout layout, int64_t blocks_per_row,
                                         int64_t total_threads) {
  for (int64_t t = global_thread(); t < total_threads; t += grid_stride())
    for_each_in_counter_block(t, blocks_per_row, p, key, layout, [&](int64_t local, int64_t col, bool keep) {
      const float z = x[local] + bias[col];
      const float act = z > 0.0f ? z : 0.0f;
      y[local] = keep ? act * multiplier : 0.0f;
    });
}

__global__ void relu_dropout_bwd_kernel(int64_t n, const float* y, const float* dy, float multiplier, float* dx) {
  for (int64_t i = global_thread(); i < n; i += grid_stride()) dx[i] = y[i] > 0.0f ? dy[i] * multiplier : 0.0f;
}

__global__ void copy_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_stride()) y[i] = x[i];
}

}  // namespace

void launch_fill(float* x, int64_t n, float value, cudaStream_t stream) {
  if (n <= 0) return;
  fill_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, n, value);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_scale_matrices(float* C, int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t batch,
                           float beta, cudaStream_t stream) {
  const int64_t n = batch * rows * cols;
  if (n <= 0 || beta == 1.0f) return;
  scale_matrices_kernel<<<grid_for(n), kThreads, 0, stream>>>(C, rows, cols, ld, stride, batch, beta);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_pack_half(const float* src, int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t batch,
                      bool bf16, void* dst, cudaStream_t stream) {
  const int64_t n = batch * rows * cols;
  if (n <= 0) return;
  if (bf16) {
    pack_half_kernel<<<grid_for(n), kThreads, 0, stream>>>(src, rows, cols, ld, stride, batch,
                                                           static_cast<__nv_bfloat16*>(dst), ToBf16{});
  } else {
    pack_half_kernel<<<grid_for(n), kThreads, 0, stream>>>(src, rows, cols, ld, stride, batch,
                                                           static_cast<__half*>(dst), ToFp16{});
  }
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_add_bias(float* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  add_bias_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(y, bias, rows * cols, cols);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_axpy(int64_t n, float alpha, const float* x, float* y, cudaStream_t stream) {
  if (n <= 0) return;
  axpy_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, alpha, x, y);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_scale(int64_t n, float alpha, float* x, cudaStream_t stream) {
  if (n <= 0) return;
  scale_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, alpha, x);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_add(int64_t n, const float* a, const float* b, float* out, cudaStream_t stream) {
  if (n <= 0) return;
  add_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, a, b, out);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_relu_fwd(int64_t n, const float* x, float* y, cudaStream_t stream) {
  if (n <= 0) return;
  relu_fwd_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, x, y);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_relu_bwd(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream) {
  if (n <= 0) return;
  relu_bwd_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, y, dy, dx);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_dropout(const float* x, float* y, float p, const DropoutKey& key, const BatchLayout& layout,
                    cudaStream_t stream) {
  const int64_t rows = layout.outer * layout.batch;
  const int64_t n = rows * layout.inner;
  if (n <= 0) return;
  if (p == 0.0f) {
    if (x != y) {
      copy_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, y, n);
      TXL_CUDA_LAUNCH_CHECK();
    }
    return;
  }
  const float multiplier = 1.0f / (1.0f - p);  // as the CPU backend: T(1) / (T(1) - T(p))
  // A row of `inner` elements starting anywhere touches at most this many counter blocks.
  const int64_t blocks_per_row = (layout.inner + 3) / 4 + 1;
  const int64_t total = rows * blocks_per_row;
  dropout_kernel<<<grid_for(total), kThreads, 0, stream>>>(x, y, p, multiplier, key, layout, blocks_per_row, total);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_bias_relu_dropout(const float* x, const float* bias, float p, const DropoutKey& key,
                              const BatchLayout& layout, float* y, cudaStream_t stream) {
  const int64_t rows = layout.outer * layout.batch;
  if (rows * layout.inner <= 0) return;
  const float multiplier = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;  // as the CPU backend
  const int64_t blocks_per_row = (layout.inner + 3) / 4 + 1;
  const int64_t total = rows * blocks_per_row;
  bias_relu_dropout_kernel<<<grid_for(total), kThreads, 0, stream>>>(x, bias, y, p, multiplier, key, layout,
                                                                     blocks_per_row, total);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_relu_dropout_bwd(int64_t n, const float* y, const float* dy, float p, float* dx, cudaStream_t stream) {
  if (n <= 0) return;
  const float multiplier = 1.0f / (1.0f - p);  // 1 for p == 0: dx = dy where y > 0, as relu_bwd
  relu_dropout_bwd_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, y, dy, multiplier, dx);
  TXL_CUDA_LAUNCH_CHECK();
}

}  // namespace txl::cuda
