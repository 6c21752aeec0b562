// PyTorch-convention linear layer y = x·Wᵀ + b (W [out, in], row-major, dense) as three
// GEMM calls: forward, weight/bias gradient, input gradient. Shared by every module.
// A block of rows of W (e.g. the q part of qkv_net) is itself such a W.
#pragma once
#include <cstdint>

#include "txl/core/ops.h"

namespace txl {

// y[rows, out] = x[rows, in] · Wᵀ (+ b).
template <typename T>
void linear_forward(Ops<T>& ops, const T* x, int64_t rows, int64_t in, const T* W, int64_t out, const T* b, T* y) {
  ops.gemm(Trans::kNo, Trans::kYes, rows, out, in, T(1), x, in, W, in, T(0), y, out);
  if (b) ops.add_bias(y, b, rows, out);
}

// dW[out, in] += dyᵀ · x; db[out] += Σ_rows dy (when db is given).
template <typename T>
void linear_backward_weight(Ops<T>& ops, const T* dy, const T* x, int64_t rows, int64_t in, int64_t out, T* dW,
                            T* db) {
  ops.gemm(Trans::kYes, Trans::kNo, out, in, rows, T(1), dy, out, x, in, T(1), dW, in);
  if (db) ops.bias_grad(dy, db, rows, out);
}

// dx[rows, in] = dy · W + beta * dx.
template <typename T>
void linear_backward_input(Ops<T>& ops, const T* dy, const T* W, int64_t rows, int64_t in, int64_t out, T beta,
                           T* dx) {
  ops.gemm(Trans::kNo, Trans::kNo, rows, in, out, T(1), dy, out, W, in, beta, dx, in);
}

}  // namespace txl
