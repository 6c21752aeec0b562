// Device helpers shared by the backend's kernels (private to src/cuda).
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernels.h"
#include "txl/cuda/check.h"

namespace txl::cuda {

inline constexpr int kThreads = 256;
inline constexpr int kWarp = 32;

// Blocks for a grid-stride loop over n elements (capped; the loop covers the rest).
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  const int64_t cap = int64_t{1} << 16;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Running (max, sum of exp(x - max)) of a softmax, merged across threads.
struct SoftmaxAcc {
  float max;
  float sum;
};
__device__ __forceinline__ SoftmaxAcc softmax_add(SoftmaxAcc a, float x) {
  if (x <= a.max) {
    a.sum += expf(x - a.max);
  } else {
    a.sum = a.sum * expf(a.max - x) + 1.0f;  // exp(-inf) = 0 covers the empty start
    a.max = x;
  }
  return a;
}
__device__ __forceinline__ SoftmaxAcc softmax_merge(SoftmaxAcc a, SoftmaxAcc b) {
  if (b.max == -INFINITY) return a;
  if (a.max == -INFINITY) return b;
  const float m = fmaxf(a.max, b.max);
  return SoftmaxAcc{m, a.sum * expf(a.max - m) + b.sum * expf(b.max - m)};
}
__device__ __forceinline__ SoftmaxAcc warp_softmax_merge(SoftmaxAcc a) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    SoftmaxAcc b{__shfl_xor_sync(0xffffffffu, a.max, offset), __shfl_xor_sync(0xffffffffu, a.sum, offset)};
    a = softmax_merge(a, b);
  }
  return a;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. `shared` holds at least 32 values. Deterministic for a fixed block size.
template <typename T>
__device__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  v = warp_sum(v);
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : T(0);
  return warp_sum(v);
}

// ---- deterministic column sums -----------------------------------------------------------
// out_k[c] += sum_r term(r, c)[k] for K outputs, rows x cols, accumulated in double.
// Stage 1: blocks of 32 columns x a chunk of rows write per-chunk partials; stage 2 adds
// the partials in chunk order.
// The result depends on the shape only, never on timing.
template <int K>
struct Vec {
  double v[K];
};

inline constexpr int kColTileX = 32;
inline constexpr int kColTileY = 8;

template <int K, typename Term>
__global__ void column_sum_partial_kernel(Term term, int64_t rows, int64_t cols, int64_t rows_per_chunk,
                                          double* partial /* [K][chunks][cols] */) {
  __shared__ double tile[K][kColTileY][kColTileX + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColTileX + tx;
  const int64_t chunk = blockIdx.y;
  const int64_t chunks = gridDim.y;
  const int64_t r0 = chunk * rows_per_chunk;
  const int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  double acc[K];
#pragma unroll
  for (int k = 0; k < K; ++k) acc[k] = 0.0;
  if (c < cols) {
    for (int64_t r = r0 + ty; r < r1; r += kColTileY) {
      const Vec<K> t = term(r, c);
#pragma unroll
      for (int k = 0; k < K; ++k) acc[k] += t.v[k];
    }
  }
#pragma unroll
  for (int k = 0; k < K; ++k) tile[k][ty][tx] = acc[k];
  __syncthreads();
  if (ty == 0 && c < cols) {
#pragma unroll
    for (int k = 0; k < K; ++k) {
      double s = 0.0;
      for (int y = 0; y < kColTileY; ++y) s += tile[k][y][tx];
      partial[(k * chunks + chunk) * cols + c] = s;
    }
  }
}

template <int K>
__global__ void column_sum_final_kernel(const double* partial, int64_t chunks, int64_t cols, float* out0,
                                        float* out1, float* out2) {
  for (int64_t c = global_thread(); c < cols; c += grid_stride()) {
#pragma unroll
    for (int k = 0; k < K; ++k) {
      double s = 0.0;
      for (int64_t ch = 0; ch < chunks; ++ch) s += partial[(k * chunks + ch) * cols + c];
      float* out = k == 0 ? out0 : (k == 1 ? out1 : out2);
      out[c] = static_cast<float>(out[c] + s);
    }
  }
}

// Enqueues both stages; out1 is used when K >= 2, out2 when K == 3.
template <int K, typename Term>
void column_sum(Term term, int64_t rows, int64_t cols, float* out0, float* out1, float* out2, Scratch& scratch,
                cudaStream_t stream) {
  static_assert(K >= 1 && K <= 3, "column_sum supports one to three outputs");
  if (rows <= 0 || cols <= 0) return;
  const int64_t col_blocks = (cols + kColTileX - 1) / kColTileX;
  // About 1024 blocks in stage 1, chunks of at least 32 rows.
  int64_t chunks = (1024 + col_blocks - 1) / col_blocks;
  const int64_t max_chunks = (rows + 31) / 32;
  if (chunks > max_chunks) chunks = max_chunks;
  if (chunks < 1) chunks = 1;
  const int64_t rows_per_chunk = (rows + chunks - 1) / chunks;
  chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
  if (col_blocks > 0x7fffffff || chunks > 65535) throw_error("column sum: matrix too large for one launch");
  double* partial = scratch.allocate_array<double>(K * chunks * cols);
  column_sum_partial_kernel<K><<<dim3(static_cast<unsigned>(col_blocks), static_cast<unsigned>(chunks)),
                                 dim3(kColTileX, kColTileY), 0, stream>>>(term, rows, cols, rows_per_chunk,
                                                                          partial);
  TXL_CUDA_LAUNCH_CHECK();
  column_sum_final_kernel<K><<<grid_for(cols), kThreads, 0, stream>>>(partial, chunks, cols, out0, out1, out2);
  TXL_CUDA_LAUNCH_CHECK();
}
template <int K, typename Term>
void column_sum(Term term, int64_t rows, int64_t cols, float* out0, float* out1, Scratch& scratch,
                cudaStream_t stream) {
  static_assert(K <= 2, "three outputs need out2");
  column_sum<K>(term, rows, cols, out0, out1, nullptr, scratch, stream);
}

}  // namespace txl::cuda
