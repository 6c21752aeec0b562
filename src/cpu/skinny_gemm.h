// GEMMs with one very small side (private to src/cpu; used by gemm.cpp).
//
// The adaptive softmax's tail clusters multiply the few tokens that fall into a cluster
// (a few to ~60 rows) by the cluster's weight rows (20000 to 160000 of them, d_proj
// wide): forward logits [s, N] = h · Wᵀ, backward d_h [s, d] = d_logits · W and
// d_W [N, d] += d_logitsᵀ · h. Eigen packs the big operand for every such product and
// then reuses it only s times, so it runs them at 20-60 % of its large-GEMM rate
// (docs/benchmarks.md, CPU per-op profile). These kernels read the big operand straight
// from memory, once, with the small one held in cache and the output tile in registers.
//
// Each output element is computed by one thread in one fixed order whatever the thread
// count, so the bits do not depend on it.
#pragma once
#include <cstdint>

#include "txl/core/ops.h"

namespace txl::cpu {

// Largest small side the kernels take.
inline constexpr int64_t kSkinnyMaxSide = 64;

// Whether one of the kernels below takes this product (shapes already checked).
bool is_skinny(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k);

// C = alpha · op(A) · op(B) + beta · C for a shape is_skinny() took; beta == 0 never
// reads C.
template <typename T>
void skinny_gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                 const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace txl::cpu
