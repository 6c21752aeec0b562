// Row gather/scatter (embeddings, adaptive-softmax clusters) and log-softmax + pick
// (one block per row; rows up to a few hundred thousand columns).
#include <cub/device/device_radix_sort.cuh>

#include "kernel_utils.cuh"
#include "kernels.h"

namespace txl::cuda {
namespace {

constexpr int kRowThreads = 512;

__global__ void gather_rows_kernel(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst) {
  const int64_t total = n * cols;
  for (int64_t e = global_thread(); e < total; e += grid_stride()) {
    const int64_t r = e / cols, c = e % cols;
    dst[e] = src[static_cast<int64_t>(idx[r]) * cols + c];
  }
}

__global__ void scatter_rows_kernel(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst) {
  const int64_t total = n * cols;
  for (int64_t e = global_thread(); e < total; e += grid_stride()) {
    const int64_t r = e / cols, c = e % cols;
    dst[static_cast<int64_t>(idx[r]) * cols + c] = src[e];
  }
}

// Deterministic scatter-add (indices may repeat): the row ids are sorted stably by
// index, so the rows of one destination form a segment in their original order; the
// first element of each segment adds the segment's rows into dst one after the other,
// in ascending row order: the additions of the CPU backend (src/cpu/loss.cpp), in its
// order, so the result is the same bit for bit and the same on every run (no atomics).
__global__ void iota_kernel(int32_t* out, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_stride()) out[i] = static_cast<int32_t>(i);
}

__global__ void segmented_add_rows_kernel(const float* src, const int32_t* sorted_idx, const int32_t* sorted_row,
                                          int64_t n, int64_t cols, float* dst) {
  const int64_t total = n * cols;
  for (int64_t e = global_thread(); e < total; e += grid_stride()) {
    const int64_t p = e / cols, c = e % cols;
    const int32_t key = sorted_idx[p];
    if (p > 0 && sorted_idx[p - 1] == key) continue;  // not the head of its segment
    float* out = dst + static_cast<int64_t>(key) * cols + c;
    float acc = *out;
    for (int64_t q = p; q < n && sorted_idx[q] == key; ++q) acc += src[static_cast<int64_t>(sorted_row[q]) * cols + c];
    *out = acc;
  }
}

__device__ float block_max(float v, float* shared) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : -INFINITY;
  return warp_max(v);
}

// logp = x - (max + log(sum exp(x - max))), the sum in double (as the CPU backend).
// Every element is read in passes 1-2 before pass 3 writes it (same thread, same index),
// so logp may alias logits.
__global__ void log_softmax_kernel(const float* logits, int64_t cols, float* logp) {
  __shared__ float shared_max[kWarp];
  __shared__ double shared_sum[kWarp];
  const int64_t row = blockIdx.x;
  const float* x = logits + row * cols;
  float* out = logp + row * cols;
  float max = -INFINITY;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) max = fmaxf(max, x[c]);
  max = block_max(max, shared_max);
  double sum = 0.0;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += expf(x[c] - max);
  sum = block_sum(sum, shared_sum);
  const float log_norm = static_cast<float>(static_cast<double>(max) + log(sum));
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) out[c] = x[c] - log_norm;
}

__global__ void pick_cols_kernel(const float* logp, const int32_t* col, int64_t rows, int64_t cols, bool accumulate,
                                 float* out) {
  for (int64_t r = global_thread(); r < rows; r += grid_stride()) {
    const float picked = col[r] >= 0 ? logp[r * cols + col[r]] : 0.0f;
    out[r] = accumulate ? out[r] + picked : picked;
  }
}

// The loss head's fused pass (Ops::biased_log_softmax_pick): one block per row, z = x +
// bias formed on the fly in each pass (the row's later passes hit L2), the arithmetic of
// log_softmax_kernel; thread 0 writes the row's lse and its picked log-probability.
__global__ void biased_log_softmax_pick_kernel(const float* logits, const float* bias, const int32_t* col,
                                               int64_t cols, bool accumulate, float* out, float* lse) {
  __shared__ float shared_max[kWarp];
  __shared__ double shared_sum[kWarp];
  const int64_t row = blockIdx.x;
  const float* x = logits + row * cols;
  float max = -INFINITY;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) max = fmaxf(max, bias ? x[c] + bias[c] : x[c]);
  max = block_max(max, shared_max);
  double sum = 0.0;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += expf((bias ? x[c] + bias[c] : x[c]) - max);
  sum = block_sum(sum, shared_sum);
  if (threadIdx.x == 0) {
    const float log_norm = static_cast<float>(static_cast<double>(max) + log(sum));
    lse[row] = log_norm;
    const int32_t target = col[row];
    const float picked = target >= 0 ? (bias ? x[target] + bias[target] : x[target]) - log_norm : 0.0f;
    out[row] = accumulate ? out[row] + picked : picked;
  }
}

// Also log_softmax_pick_bwd: its log-probabilities are logits with no bias and lse null (0).
__global__ void biased_log_softmax_pick_bwd_kernel(const float* logits, const float* bias, const float* lse,
                                                   const int32_t* col, const float* coef, int64_t rows, int64_t cols,
                                                   float* dlogits) {
  const int64_t total = rows * cols;
  for (int64_t e = global_thread(); e < total; e += grid_stride()) {
    const int64_t r = e / cols, c = e % cols;
    const int32_t target = col[r];
    if (target < 0) {
      dlogits[e] = 0.0f;
      continue;
    }
    const float logp = (bias ? logits[e] + bias[c] : logits[e]) - (lse ? lse[r] : 0.0f);
    dlogits[e] = c == target ? coef[r] * (1.0f - expf(logp)) : -coef[r] * expf(logp);
  }
}

}  // namespace

void launch_gather_rows(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst,
                        cudaStream_t stream) {
  if (n <= 0 || cols <= 0) return;
  gather_rows_kernel<<<grid_for(n * cols), kThreads, 0, stream>>>(src, idx, n, cols, dst);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_scatter_rows(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst,
                         cudaStream_t stream) {
  if (n <= 0 || cols <= 0) return;
  scatter_rows_kernel<<<grid_for(n * cols), kThreads, 0, stream>>>(src, idx, n, cols, dst);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_scatter_add_rows(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst,
                             Scratch& scratch, cudaStream_t stream) {
  if (n <= 0 || cols <= 0) return;
  if (n > INT32_MAX) throw_error("scatter_add_rows: too many rows for one sort");
  const int items = static_cast<int>(n);
  int32_t* rows = scratch.allocate_array<int32_t>(n);
  int32_t* sorted_idx = scratch.allocate_array<int32_t>(n);
  int32_t* sorted_rows = scratch.allocate_array<int32_t>(n);
  size_t temp_bytes = 0;
  if (cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, idx, sorted_idx, rows, sorted_rows, items, 0,
                                      static_cast<int>(8 * sizeof(int32_t)), stream) != cudaSuccess)
    throw_error("scatter_add_rows: sort workspace query failed");
  void* temp = scratch.allocate(temp_bytes > 0 ? temp_bytes : 1);
  iota_kernel<<<grid_for(n), kThreads, 0, stream>>>(rows, n);
  TXL_CUDA_LAUNCH_CHECK();
  // Radix sort is stable: rows with the same index keep their ascending order.
  if (cub::DeviceRadixSort::SortPairs(temp, temp_bytes, idx, sorted_idx, rows, sorted_rows, items, 0,
                                      static_cast<int>(8 * sizeof(int32_t)), stream) != cudaSuccess)
    throw_error("scatter_add_rows: sort failed");
  TXL_CUDA_LAUNCH_CHECK();
  segmented_add_rows_kernel<<<grid_for(n * cols), kThreads, 0, stream>>>(src, sorted_idx, sorted_rows, n, cols, dst);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_log_softmax(const float* logits, int64_t rows, int64_t cols, float* logp, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  if (rows > 0x7fffffff) throw_error("log_softmax: too many rows for one launch");
  log_softmax_kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(logits, cols, logp);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_pick_cols(const float* logp, const int32_t* col, int64_t rows, int64_t cols, bool accumulate,
                      float* out, cudaStream_t stream) {
  if (rows <= 0) return;
  pick_cols_kernel<<<grid_for(rows), kThreads, 0, stream>>>(logp, col, rows, cols, accumulate, out);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_log_softmax_pick_bwd(const float* logp, const int32_t* col, const float* coef, int64_t rows,
                                 int64_t cols, float* dlogits, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  biased_log_softmax_pick_bwd_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(logp, nullptr, nullptr, col,
                                                                                      coef, rows, cols, dlogits);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_biased_log_softmax_pick(const float* logits, const float* bias, const int32_t* col, int64_t rows,
                                    int64_t cols, bool accumulate, float* out, float* lse, cudaStream_t stream) {
  if (rows <= 0) return;
  if (rows > 0x7fffffff) throw_error("biased_log_softmax_pick: too many rows for one launch");
  biased_log_softmax_pick_kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(logits, bias, col, cols,
                                                                                          accumulate, out, lse);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_biased_log_softmax_pick_bwd(const float* logits, const float* bias, const float* lse,
                                        const int32_t* col, const float* coef, int64_t rows, int64_t cols,
                                        float* dlogits, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  biased_log_softmax_pick_bwd_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(logits, bias, lse, col, coef,
                                                                                      rows, cols, dlogits);
  TXL_CUDA_LAUNCH_CHECK();
}

}  // namespace txl::cuda
