// Optimizer steps on flat buffers (docs/training.md §4), same arithmetic as the CPU backend: every
// gradient is first multiplied by the step's factor (read on the device from
// s.device_grad_scale when set, else s.grad_scale) and cleared in the pass that reads it;
// a factor that is not finite skips the update and only clears; elementwise math in
// float, norms in double. LAMB is multi-tensor: three launches for all parameter tensors
// together, the per-tensor trust ratios stay on the device (no host synchronisation).
#include <cmath>

#include "kernel_utils.cuh"
#include "kernels.h"

namespace txl::cuda {
namespace {

// The gradient factor of a step as the kernels read it: the device scalar when given,
// else the host value.
struct StepFactor {
  double host;
  const double* device;
  __device__ double value() const { return device ? *device : host; }
};
StepFactor step_factor(const OptimArgs& s) { return StepFactor{s.grad_scale, s.device_grad_scale}; }

struct LambParams {
  StepFactor factor;
  float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay;
};

// a = m / (sqrt(v) + eps) + wd p: one function, so both LAMB passes form the same bits.
__device__ __forceinline__ float lamb_direction(float m, float v, float p, const LambParams& c) {
  return m / (sqrtf(v) + c.eps) + c.weight_decay * p;
}

// Pass 1 (one block per item): m, v updated; partial sums of p^2 and a^2 per item.
// A skipped step (factor not finite) only clears g (the partials are 0, unused).
__global__ void lamb_moments_kernel(const float* p, float* g, float* m, float* v, const MultiTensorItem* items,
                                    LambParams c, double* partial_p, double* partial_a) {
  __shared__ double shared[kWarp];
  const MultiTensorItem item = items[blockIdx.x];
  const double factor = c.factor.value();
  const bool apply = isfinite(factor);
  const float grad_scale = static_cast<float>(factor);
  double pp = 0.0, aa = 0.0;
  for (int64_t i = item.begin + threadIdx.x; i < item.end; i += blockDim.x) {
    const float graw = g[i];
    g[i] = 0.0f;
    if (!apply) continue;
    const float gi = graw * grad_scale;
    const float mi = c.beta1 * m[i] + c.one_minus_beta1 * gi;
    const float vi = c.beta2 * v[i] + c.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const double a = lamb_direction(mi, vi, p[i], c);
    const double pv = p[i];
    pp += pv * pv;
    aa += a * a;
  }
  pp = block_sum(pp, shared);
  aa = block_sum(aa, shared);
  if (threadIdx.x == 0) {
    partial_p[blockIdx.x] = pp;
    partial_a[blockIdx.x] = aa;
  }
}

// Pass 2 (one warp per slice): step_size[s] = lr * trust_s.
__global__ void lamb_trust_kernel(const double* partial_p, const double* partial_a, const int32_t* slice_item_begin,
                                  int32_t num_slices, double lr, double eps, float* step_size) {
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (warp >= num_slices) return;
  double pp = 0.0, aa = 0.0;
  for (int32_t it = slice_item_begin[warp] + lane; it < slice_item_begin[warp + 1]; it += kWarp) {
    pp += partial_p[it];
    aa += partial_a[it];
  }
  pp = warp_sum(pp);
  aa = warp_sum(aa);
  if (lane == 0) {
    const double wn = fmin(sqrt(pp), 10.0);
    const double an = sqrt(aa);
    const double trust = (wn == 0.0 || an == 0.0) ? 1.0 : wn / (an + eps);
    step_size[warp] = static_cast<float>(lr * trust);
  }
}

// Pass 3 (one block per item): p -= step_size[slice] * a, a recomputed from m, v, p.
__global__ void lamb_apply_kernel(float* p, const float* m, const float* v, const MultiTensorItem* items,
                                  LambParams c, const float* step_size) {
  if (!isfinite(c.factor.value())) return;  // skipped step
  const MultiTensorItem item = items[blockIdx.x];
  const float step = step_size[item.slice];
  for (int64_t i = item.begin + threadIdx.x; i < item.end; i += blockDim.x)
    p[i] -= step * lamb_direction(m[i], v[i], p[i], c);
}

__global__ void adam_kernel(float* p, float* g, float* m, float* v, int64_t n, StepFactor factor, float weight_decay,
                            float one_minus_beta1, float beta2, float one_minus_beta2, float step_size,
                            float bias_correction2_sqrt, float eps) {
  const double f = factor.value();
  const bool apply = isfinite(f);
  const float grad_scale = static_cast<float>(f);
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const float graw = g[i];
    g[i] = 0.0f;
    if (!apply) continue;
    const float gi = graw * grad_scale + weight_decay * p[i];
    const float mi = m[i] + one_minus_beta1 * (gi - m[i]);
    const float vi = beta2 * v[i] + one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step_size * (mi / (sqrtf(vi) / bias_correction2_sqrt + eps));
  }
}

__global__ void sgd_kernel(float* p, float* g, int64_t n, float lr, StepFactor factor, float weight_decay) {
  const double f = factor.value();
  const bool apply = isfinite(f);
  const float grad_scale = static_cast<float>(f);
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const float graw = g[i];
    g[i] = 0.0f;
    if (apply) p[i] -= lr * (graw * grad_scale + weight_decay * p[i]);
  }
}

__global__ void sgd_momentum_kernel(float* p, float* g, float* buf, int64_t n, float lr, StepFactor factor,
                                    float weight_decay, float momentum) {
  const double f = factor.value();
  const bool apply = isfinite(f);
  const float grad_scale = static_cast<float>(f);
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const float graw = g[i];
    g[i] = 0.0f;
    if (!apply) continue;
    const float gi = graw * grad_scale + weight_decay * p[i];
    const float b = momentum * buf[i] + gi;
    buf[i] = b;
    p[i] -= lr * b;
  }
}

__global__ void adagrad_kernel(float* p, float* g, float* sum, int64_t n, float lr, StepFactor factor,
                               float weight_decay, float eps) {
  const double f = factor.value();
  const bool apply = isfinite(f);
  const float grad_scale = static_cast<float>(f);
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const float graw = g[i];
    g[i] = 0.0f;
    if (!apply) continue;
    const float gi = graw * grad_scale + weight_decay * p[i];
    const float s = sum[i] + gi * gi;
    sum[i] = s;
    p[i] -= lr * (gi / (sqrtf(s) + eps));
  }
}

}  // namespace

void launch_lamb_step(float* p, float* g, float* m, float* v, const MultiTensorPlan& plan, const OptimArgs& s,
                      Scratch& scratch, cudaStream_t stream) {
  if (plan.num_items <= 0) return;  // nothing to update (all slices empty)
  const LambParams c{step_factor(s),                    static_cast<float>(s.beta1),
                     static_cast<float>(1.0 - s.beta1), static_cast<float>(s.beta2),
                     static_cast<float>(1.0 - s.beta2), static_cast<float>(s.eps),
                     static_cast<float>(s.weight_decay)};
  double* partial_p = scratch.allocate_array<double>(2 * static_cast<int64_t>(plan.num_items));
  double* partial_a = partial_p + plan.num_items;
  float* step_size = scratch.allocate_array<float>(plan.num_slices);
  lamb_moments_kernel<<<plan.num_items, kThreads, 0, stream>>>(p, g, m, v, plan.items, c, partial_p, partial_a);
  TXL_CUDA_LAUNCH_CHECK();
  const int64_t threads = static_cast<int64_t>(plan.num_slices) * kWarp;
  lamb_trust_kernel<<<static_cast<unsigned>((threads + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      partial_p, partial_a, plan.slice_item_begin, plan.num_slices, s.lr, s.eps, step_size);
  TXL_CUDA_LAUNCH_CHECK();
  lamb_apply_kernel<<<plan.num_items, kThreads, 0, stream>>>(p, m, v, plan.items, c, step_size);
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_adam_step(float* p, float* g, float* m, float* v, int64_t n, const OptimArgs& s, cudaStream_t stream) {
  if (n <= 0) return;
  const double t = static_cast<double>(s.step);
  const float step_size = static_cast<float>(s.lr / (1.0 - std::pow(s.beta1, t)));
  const float bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(s.beta2, t)));
  adam_kernel<<<grid_for(n), kThreads, 0, stream>>>(
      p, g, m, v, n, step_factor(s), static_cast<float>(s.weight_decay),
      static_cast<float>(1.0 - s.beta1), static_cast<float>(s.beta2), static_cast<float>(1.0 - s.beta2), step_size,
      bias_correction2_sqrt, static_cast<float>(s.eps));
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_sgd_step(float* p, float* g, float* buf, int64_t n, const OptimArgs& s, cudaStream_t stream) {
  if (n <= 0) return;
  if (s.momentum == 0.0) {
    sgd_kernel<<<grid_for(n), kThreads, 0, stream>>>(p, g, n, static_cast<float>(s.lr), step_factor(s),
                                                     static_cast<float>(s.weight_decay));
  } else {
    sgd_momentum_kernel<<<grid_for(n), kThreads, 0, stream>>>(
        p, g, buf, n, static_cast<float>(s.lr), step_factor(s), static_cast<float>(s.weight_decay),
        static_cast<float>(s.momentum));
  }
  TXL_CUDA_LAUNCH_CHECK();
}

void launch_adagrad_step(float* p, float* g, float* sum, int64_t n, const OptimArgs& s, cudaStream_t stream) {
  if (n <= 0) return;
  adagrad_kernel<<<grid_for(n), kThreads, 0, stream>>>(p, g, sum, n, static_cast<float>(s.lr), step_factor(s),
                                                       static_cast<float>(s.weight_decay), static_cast<float>(s.eps));
  TXL_CUDA_LAUNCH_CHECK();
}

}  // namespace txl::cuda
