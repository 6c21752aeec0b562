// Reductions: bias gradients (column sums), whole-buffer sums, per-slice sums of squares.
// All are deterministic: the summation order depends on the sizes only.
#include <algorithm>

#include "kernel_utils.cuh"
#include "kernels.h"

namespace txl::cuda {
namespace {

struct RowMajorTerm {  // dy[r, c]
  const float* dy;
  int64_t cols;
  __device__ Vec<1> operator()(int64_t r, int64_t c) const { return Vec<1>{{static_cast<double>(dy[r * cols + c])}}; }
};

// Output column c = h * d_head + d of src [heads, rows, d_head].
struct HeadBlockTerm {
  const float* src;
  int64_t rows, d_head;
  __device__ Vec<1> operator()(int64_t r, int64_t c) const {
    const int64_t h = c / d_head, d = c % d_head;
    return Vec<1>{{static_cast<double>(src[(h * rows + r) * d_head + d])}};
  }
};

constexpr int kSumBlocks = 512;

// Stage 1: partial[block] = sum over a grid-stride share of x (or x^2), in double.
__global__ void sum_partial_kernel(const float* x, int64_t n, bool squares, double* partial) {
  __shared__ double shared[kWarp];
  double acc = 0.0;
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const double v = x[i];
    acc += squares ? v * v : v;
  }
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// Stage 2 (one block): *out = sum of the partials in a fixed order.
__global__ void sum_final_kernel(const double* partial, int count, double* out) {
  __shared__ double shared[kWarp];
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) *out = acc;
}

// One block per item: partial[item] = sum of x^2 over the item's range.
__global__ void sum_squares_items_kernel(const float* x, const MultiTensorItem* items, double* partial) {
  __shared__ double shared[kWarp];
  const MultiTensorItem item = items[blockIdx.x];
  double acc = 0.0;
  for (int64_t i = item.begin + threadIdx.x; i < item.end; i += blockDim.x) {
    const double v = x[i];
    acc += v * v;
  }
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// out[s] = sum of partial over slice s's items, in item order (one warp per slice).
__global__ void slice_sums_kernel(const double* partial, const int32_t* slice_item_begin, int32_t num_slices,
                                  double* out) {
  const int warp = static_cast<int>((static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp);
  const int lane = threadIdx.x % kWarp;
  if (warp >= num_slices) return;
  double acc = 0.0;
  for (int32_t it = slice_item_begin[warp] + lane; it < slice_item_begin[warp + 1]; it += kWarp) acc += partial[it];
  acc = warp_sum(acc);
  if (lane == 0) out[warp] = acc;
}

void launch_slice_sums(const double* partial, const MultiTensorPlan& plan, double* out_device, cudaStream_t stream) {
  const int64_t threads = static_cast<int64_t>(plan.num_slices) * kWarp;
  slice_sums_kernel<<<static_cast<unsigned>((threads + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      partial, plan.slice_item_begin, plan.num_slices, out_device);
  TXL_CUDA_LAUNCH_CHECK();
}

}  // namespace

void launch_bias_grad(const float* dy, float* dbias, int64_t rows, int64_t cols, Scratch& scratch,
                      cudaStream_t stream) {
  column_sum<1>(RowMajorTerm{dy, cols}, rows, cols, dbias, nullptr, scratch, stream);
}

void launch_head_bias_grad(const float* src, int64_t len, int64_t batch, int64_t heads, int64_t d_head,
                           float* bias_grad, Scratch& scratch, cudaStream_t stream) {
  const int64_t rows = batch * len;
  column_sum<1>(HeadBlockTerm{src, rows, d_head}, rows, heads * d_head, bias_grad, nullptr, scratch, stream);
}

void launch_sum(const float* x, int64_t n, bool squares, double* out_device, Scratch& scratch, cudaStream_t stream) {
  // The block count depends on n only (never on the device), so results are reproducible.
  const int blocks = static_cast<int>(std::min<int64_t>(kSumBlocks, std::max<int64_t>(1, (n + kThreads - 1) / kThreads)));
  double* partial = scratch.allocate_array<double>(blocks);
  sum_partial_kernel<<<blocks, kThreads, 0, stream>>>(x, n, squares, partial);
  TXL_CUDA_LAUNCH_CHECK();
  sum_final_kernel<<<1, kThreads, 0, stream>>>(partial, blocks, out_device);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_sum_squares_slices(const float* x, const MultiTensorPlan& plan, double* out_device, Scratch& scratch,
                               cudaStream_t stream) {
  if (plan.num_slices <= 0) return;
  double* partial = scratch.allocate_array<double>(plan.num_items);
  if (plan.num_items > 0) {
    sum_squares_items_kernel<<<plan.num_items, kThreads, 0, stream>>>(x, plan.items, partial);
    TXL_CUDA_LAUNCH_CHECK();
  }
  launch_slice_sums(partial, plan, out_device, stream);
}

}  // namespace txl::cuda
