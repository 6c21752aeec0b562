// Optimizer steps on flat buffers (docs/training.md §4). Every gradient is first multiplied by
// the step's factor (s.device_grad_scale when set, else s.grad_scale) and cleared in the
// same loop that reads it; a factor that is not finite only clears the gradient.
// Elementwise arithmetic is done in T, norms in double. Loops run over
// chunks of kChunk elements whose square roots go through vector_sqrt (a std::sqrt in
// the loop would keep it scalar).
#include <algorithm>
#include <cmath>
#include <vector>

#include "txl/core/error.h"
#include "cpu_kernels.h"
#include "parallel.h"
#include "vector_math.h"

namespace txl::cpu {
namespace {
constexpr int64_t kChunk = 1024;  // elements per inner chunk (stays in L1)

// The gradient factor of the step (a "device" scalar is host memory on this backend).
double step_factor(const OptimStep& s) { return s.device_grad_scale ? *s.device_grad_scale : s.grad_scale; }

// A skipped step still consumes its gradient.
template <typename T>
void clear(T* g, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) g[i] = T(0);
}
}  // namespace

// LAMB without bias correction, per slice (one parameter tensor):
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  a = m / (sqrt(v) + eps) + wd p;
//   wn = min(|p|, 10), an = |a|, trust = wn / (an + eps) (1 when wn == 0 or an == 0);
//   p -= lr * trust * a.
// Pass 1 updates m, v and sums |p|^2, |a|^2 per (slice, block) piece; pass 2 recomputes
// a (same expression, same bits) and updates p once each slice's trust ratio is known.
template <typename T>
void lamb_step(T* p, T* g, T* m, T* v, const std::vector<FlatSlice>& slices, const OptimStep& s) {
  struct Piece {
    size_t slice;
    int64_t begin, end;
  };
  std::vector<Piece> pieces;
  for (size_t i = 0; i < slices.size(); ++i) {
    check_flat_slice("lamb_step", i, slices[i]);
    for (int64_t b = 0; b < slices[i].numel; b += kReduceBlock)
      pieces.push_back({i, slices[i].offset + b, slices[i].offset + std::min(slices[i].numel, b + kReduceBlock)});
  }
  const double factor = step_factor(s);
  if (!std::isfinite(factor)) {
    for (const Piece& piece : pieces) clear(g + piece.begin, piece.end - piece.begin);
    return;
  }
  const T grad_scale = static_cast<T>(factor);
  const T beta1 = static_cast<T>(s.beta1), one_minus_beta1 = static_cast<T>(1.0 - s.beta1);
  const T beta2 = static_cast<T>(s.beta2), one_minus_beta2 = static_cast<T>(1.0 - s.beta2);
  const T eps = static_cast<T>(s.eps), weight_decay = static_cast<T>(s.weight_decay);

  const int64_t count = static_cast<int64_t>(pieces.size());
  std::vector<double> p_sq(pieces.size()), a_sq(pieces.size());
#pragma omp parallel for schedule(dynamic, 4) if (count > 1)
  for (int64_t k = 0; k < count; ++k) {
    const Piece& piece = pieces[static_cast<size_t>(k)];
    double pp = 0.0, aa = 0.0;
    T root[kChunk];
    for (int64_t c0 = piece.begin; c0 < piece.end; c0 += kChunk) {
      const int64_t len = std::min(kChunk, piece.end - c0);
      T *mc = m + c0, *vc = v + c0, *gc = g + c0;
      const T* pc = p + c0;
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) {
        const T gi = gc[i] * grad_scale;
        gc[i] = T(0);
        mc[i] = beta1 * mc[i] + one_minus_beta1 * gi;
        vc[i] = beta2 * vc[i] + one_minus_beta2 * gi * gi;
      }
      vector_sqrt(vc, len, root);
#pragma omp simd reduction(+ : pp, aa)
      for (int64_t i = 0; i < len; ++i) {
        const double a = mc[i] / (root[i] + eps) + weight_decay * pc[i];
        pp += static_cast<double>(pc[i]) * pc[i];
        aa += a * a;
      }
    }
    p_sq[static_cast<size_t>(k)] = pp;
    a_sq[static_cast<size_t>(k)] = aa;
  }
  std::vector<double> p_norm_sq(slices.size(), 0.0), a_norm_sq(slices.size(), 0.0);
  for (size_t k = 0; k < pieces.size(); ++k) {
    p_norm_sq[pieces[k].slice] += p_sq[k];
    a_norm_sq[pieces[k].slice] += a_sq[k];
  }
  std::vector<T> step_size(slices.size());
  for (size_t i = 0; i < slices.size(); ++i) {
    const double wn = std::min(std::sqrt(p_norm_sq[i]), 10.0);
    const double an = std::sqrt(a_norm_sq[i]);
    const double trust = (wn == 0.0 || an == 0.0) ? 1.0 : wn / (an + s.eps);
    step_size[i] = static_cast<T>(s.lr * trust);
  }
#pragma omp parallel for schedule(dynamic, 4) if (count > 1)
  for (int64_t k = 0; k < count; ++k) {
    const Piece& piece = pieces[static_cast<size_t>(k)];
    const T step = step_size[piece.slice];
    T root[kChunk];
    for (int64_t c0 = piece.begin; c0 < piece.end; c0 += kChunk) {
      const int64_t len = std::min(kChunk, piece.end - c0);
      const T *mc = m + c0, *vc = v + c0;
      T* pc = p + c0;
      vector_sqrt(vc, len, root);
      // a recomputed exactly as in pass 1 (it is not stored), from the unchanged p.
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) pc[i] -= step * (mc[i] / (root[i] + eps) + weight_decay * pc[i]);
    }
  }
}

// PyTorch Adam (torch.optim.Adam, single-tensor path, amsgrad off, maximize off):
//   g = g + wd p;  m = m + (1-b1)(g - m)  (PyTorch's lerp);  v = b2 v + (1-b2) g^2;
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
template <typename T>
void adam_step(T* p, T* g, T* m, T* v, int64_t n, const OptimStep& s) {
  check_adam_step(s);
  const double factor = step_factor(s);
  if (!std::isfinite(factor)) return clear(g, n);
  const double t = static_cast<double>(s.step);
  const T step_size = static_cast<T>(s.lr / (1.0 - std::pow(s.beta1, t)));
  const T bias_correction2_sqrt = static_cast<T>(std::sqrt(1.0 - std::pow(s.beta2, t)));
  const T grad_scale = static_cast<T>(factor);
  const T one_minus_beta1 = static_cast<T>(1.0 - s.beta1);
  const T beta2 = static_cast<T>(s.beta2), one_minus_beta2 = static_cast<T>(1.0 - s.beta2);
  const T eps = static_cast<T>(s.eps), weight_decay = static_cast<T>(s.weight_decay);
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t c0 = c * kChunk, len = std::min(kChunk, n - c0);
    T *pc = p + c0, *mc = m + c0, *vc = v + c0, *gc = g + c0;
    T root[kChunk];
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) {
      const T gi = gc[i] * grad_scale + weight_decay * pc[i];
      gc[i] = T(0);
      mc[i] += one_minus_beta1 * (gi - mc[i]);
      vc[i] = beta2 * vc[i] + one_minus_beta2 * gi * gi;
    }
    vector_sqrt(vc, len, root);
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) pc[i] -= step_size * (mc[i] / (root[i] / bias_correction2_sqrt + eps));
  }
}

// PyTorch SGD (dampening 0, no Nesterov): g = g + wd p; with momentum
// buf = momentum buf + g and g = buf; p -= lr g. PyTorch's first step sets buf = g;
// the caller zero-initialises buf, and momentum*0 + g == g exactly. buf is not touched
// (and may be null) when momentum == 0.
template <typename T>
void sgd_step(T* p, T* g, T* buf, int64_t n, const OptimStep& s) {
  check_sgd_buffer(s, buf);
  const double factor = step_factor(s);
  if (!std::isfinite(factor)) return clear(g, n);
  const T lr = static_cast<T>(s.lr), grad_scale = static_cast<T>(factor);
  const T weight_decay = static_cast<T>(s.weight_decay), momentum = static_cast<T>(s.momentum);
  if (s.momentum == 0.0) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      p[i] -= lr * (g[i] * grad_scale + weight_decay * p[i]);
      g[i] = T(0);
    }
    return;
  }
#pragma omp parallel for simd schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i] * grad_scale + weight_decay * p[i];
    g[i] = T(0);
    buf[i] = momentum * buf[i] + gi;
    p[i] -= lr * buf[i];
  }
}

// PyTorch Adagrad with lr_decay 0: g = g + wd p; sum += g^2; p -= lr g / (sqrt(sum) + eps).
// The caller fills `sum` with s.initial_accumulator when it creates the state.
template <typename T>
void adagrad_step(T* p, T* g, T* sum, int64_t n, const OptimStep& s) {
  const double factor = step_factor(s);
  if (!std::isfinite(factor)) return clear(g, n);
  const T lr = static_cast<T>(s.lr), grad_scale = static_cast<T>(factor);
  const T weight_decay = static_cast<T>(s.weight_decay), eps = static_cast<T>(s.eps);
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t c0 = c * kChunk, len = std::min(kChunk, n - c0);
    T *pc = p + c0, *sc = sum + c0, *gc = g + c0;
    T grad[kChunk], root[kChunk];
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) {
      grad[i] = gc[i] * grad_scale + weight_decay * pc[i];
      gc[i] = T(0);
      sc[i] += grad[i] * grad[i];
    }
    vector_sqrt(sc, len, root);
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) pc[i] -= lr * (grad[i] / (root[i] + eps));
  }
}

#define TXL_INSTANTIATE(T)                                                                              \
  template void lamb_step<T>(T*, T*, T*, T*, const std::vector<FlatSlice>&, const OptimStep&); \
  template void adam_step<T>(T*, T*, T*, T*, int64_t, const OptimStep&);                        \
  template void sgd_step<T>(T*, T*, T*, int64_t, const OptimStep&);                             \
  template void adagrad_step<T>(T*, T*, T*, int64_t, const OptimStep&);
TXL_INSTANTIATE(float)
TXL_INSTANTIATE(double)
#undef TXL_INSTANTIATE

}  // namespace txl::cpu
