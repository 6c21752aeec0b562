// GEMMs with one very small side (skinny_gemm.h), written on Eigen's packet types so
// the same code is AVX-512, AVX2 or NEON as the build targets.
#include "skinny_gemm.h"

#include "eigen_core.h"

#include <algorithm>
#include <vector>

#include "parallel.h"

namespace txl::cpu {
namespace {

namespace ei = Eigen::internal;
template <typename T>
using Packet = typename ei::packet_traits<T>::type;
template <typename T>
inline constexpr int kLanes = ei::unpacket_traits<Packet<T>>::size;

// Vector registers of the target: the register tiles below are sized to fit them.
#if defined(__AVX512F__) || defined(__aarch64__)
inline constexpr int kRegisters = 32;
#else
inline constexpr int kRegisters = 16;
#endif

// Makes the compiler hold `x` in a vector register. Without it GCC folds each use of a
// loaded packet into its multiply-add as a memory operand, which reloads the packet once
// per use: the dot tile below then makes 28 loads instead of 10 per 24 multiply-adds.
template <typename P>
inline void keep_in_register(P& x) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  asm("" : "+v"(x));
#elif defined(__GNUC__) && defined(__aarch64__)
  asm("" : "+w"(x));
#else
  (void)x;
#endif
}

bool run_threaded() { return !omp_in_parallel() && omp_get_max_threads() > 1; }

template <typename T>
T scaled(T alpha, T sum, T beta, const T& c) {
  return beta == T(0) ? alpha * sum : alpha * sum + beta * c;  // beta == 0 never reads C
}

// ---- C[s, N] = A[s, k] · B[N, k]ᵀ: dot products along k, which both operands store
// contiguously. A tile of RA rows of A and RB rows of B keeps RA × RB sums in registers;
// the RB rows of B stay in L1 while every row group of A (in L2) passes over them. Per
// step of k the tile loads RB + RA packets for RA × RB multiply-adds: loads, not
// arithmetic, are what limits such a kernel (one 512-bit load per cycle on the Zen 5
// this was tuned on), so each packet is loaded once into a register.
template <typename T, int RA, int RB, bool kPrefetch = false>
void dot_tile(int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T alpha, T beta, T* c, int64_t ldc,
              const T* next_b = nullptr) {
  using P = Packet<T>;
  constexpr int L = kLanes<T>;
  P acc[RA][RB];
  for (int i = 0; i < RA; ++i)
    for (int j = 0; j < RB; ++j) acc[i][j] = ei::pset1<P>(T(0));
  int64_t p = 0;
  for (; p + L <= k; p += L) {
    P bv[RB];
    for (int j = 0; j < RB; ++j) {
      bv[j] = ei::ploadu<P>(b + j * ldb + p);
      keep_in_register(bv[j]);
      if constexpr (kPrefetch) __builtin_prefetch(next_b + j * ldb + p);
    }
    for (int i = 0; i < RA; ++i) {
      const P av = ei::ploadu<P>(a + i * lda + p);
      for (int j = 0; j < RB; ++j) acc[i][j] = ei::pmadd(av, bv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < RA; ++i)
    for (int j = 0; j < RB; ++j) {
      T sum = ei::predux(acc[i][j]);
      for (int64_t q = p; q < k; ++q) sum += a[i * lda + q] * b[j * ldb + q];
      T& out = c[i * ldc + j];
      out = scaled(alpha, sum, beta, out);
    }
}

template <typename T>
void skinny_nt(int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta,
               T* C, int64_t ldc) {
  constexpr int RA = kRegisters >= 32 ? 4 : 3, RB = kRegisters >= 32 ? 5 : 3;  // RA·RB + RB + 1 registers
  const int64_t groups = (n + RB - 1) / RB;
#pragma omp parallel for schedule(static) if (run_threaded())
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t j0 = g * RB, nb = std::min<int64_t>(RB, n - j0);
    for (int64_t i0 = 0; i0 < m; i0 += RA) {
      const int64_t mb = std::min<int64_t>(RA, m - i0);
      const T* a = A + i0 * lda;
      const T* b = B + j0 * ldb;
      T* c = C + i0 * ldc + j0;
      if (mb == RA && nb == RB && i0 == 0 && j0 + 2 * RB <= n) {
        // The first row group also fetches the next tile's rows of B from memory.
        dot_tile<T, RA, RB, true>(k, a, lda, b, ldb, alpha, beta, c, ldc, b + RB * ldb);
      } else if (mb == RA && nb == RB) {
        dot_tile<T, RA, RB>(k, a, lda, b, ldb, alpha, beta, c, ldc);
      } else if (nb == RB) {
        for (int64_t i = 0; i < mb; ++i) dot_tile<T, 1, RB>(k, a + i * lda, lda, b, ldb, alpha, beta, c + i * ldc, ldc);
      } else {
        for (int64_t i = 0; i < mb; ++i)
          for (int64_t j = 0; j < nb; ++j)
            dot_tile<T, 1, 1>(k, a + i * lda, lda, b + j * ldb, ldb, alpha, beta, c + i * ldc + j, ldc);
      }
    }
  }
}

// ---- Outer-product tiles: S[RI, CP·L] (+)= Σ_p a[i, p] · b[p, :], where a[i, p] is at
// a + i * a_row + p * a_col (so one kernel serves A and Aᵀ) and the rows of b are
// contiguous. The sums stay in registers over the p loop.
template <typename T, int RI, int CP>
void outer_tile(int64_t depth, const T* a, int64_t a_row, int64_t a_col, const T* b, int64_t ldb, Packet<T> (&acc)[RI][CP]) {
  using P = Packet<T>;
  constexpr int L = kLanes<T>;
  for (int64_t p = 0; p < depth; ++p) {
    P bv[CP];
    for (int c = 0; c < CP; ++c) bv[c] = ei::ploadu<P>(b + p * ldb + c * L);
    for (int r = 0; r < RI; ++r) {
      const P av = ei::pset1<P>(a[r * a_row + p * a_col]);
      for (int c = 0; c < CP; ++c) acc[r][c] = ei::pmadd(av, bv[c], acc[r][c]);
    }
  }
}

// Columns of C that the packet tiles leave (n not a multiple of the tile width), one by
// one: sum_p a[i, p] · b[p, col].
template <typename T>
T scalar_column(int64_t depth, const T* a, int64_t a_row, int64_t a_col, int64_t i, const T* b, int64_t ldb) {
  T sum = T(0);
  for (int64_t p = 0; p < depth; ++p) sum += a[i * a_row + p * a_col] * b[p * ldb];
  return sum;
}

inline constexpr int kOuterRows = 6;
template <typename T>
inline constexpr int kOuterPackets = kRegisters >= 32 ? 4 : 2;  // 6 x 4 (or 6 x 2) sums in registers

// ---- C[s, n] = A[s, k] · B[k, n] with k long (the gradient of a tail cluster's input,
// summed over the cluster's words). Threads own column tiles of C. k is walked in blocks
// of kDepthBlock so that the block of B under a tile stays in L2 while every row group of
// A passes over it; a tile's running sums are kept in `sums` between blocks, so each
// element is summed in the order of k on one thread.
inline constexpr int64_t kDepthBlock = 256;

template <typename T, int RI, int CP>
void nn_tile_rows(int64_t kb, const T* a, int64_t lda, const T* b, int64_t ldb, bool first, T* sums,
                  int64_t lds) {
  using P = Packet<T>;
  constexpr int L = kLanes<T>;
  P acc[RI][CP];
  for (int r = 0; r < RI; ++r)
    for (int c = 0; c < CP; ++c) acc[r][c] = first ? ei::pset1<P>(T(0)) : ei::ploadu<P>(sums + r * lds + c * L);
  outer_tile<T, RI, CP>(kb, a, lda, 1, b, ldb, acc);
  for (int r = 0; r < RI; ++r)
    for (int c = 0; c < CP; ++c) ei::pstoreu(sums + r * lds + c * L, acc[r][c]);
}

template <typename T>
void skinny_nn(int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta,
               T* C, int64_t ldc) {
  constexpr int RI = kOuterRows, CP = kOuterPackets<T>, L = kLanes<T>, W = CP * L;
  const int64_t tiles = n / W, packed = tiles * W;
  thread_local std::vector<T> scratch;
  if (scratch.size() < static_cast<size_t>(m * packed)) scratch.resize(static_cast<size_t>(m * packed));
  T* const sums = scratch.data();
  const bool threaded = run_threaded();
#pragma omp parallel if (threaded)
  {
    for (int64_t k0 = 0; k0 < k; k0 += kDepthBlock) {
      const int64_t kb = std::min(kDepthBlock, k - k0);
#pragma omp for schedule(static) nowait
      for (int64_t t = 0; t < tiles; ++t) {
        const T* b = B + k0 * ldb + t * W;
        int64_t i0 = 0;
        for (; i0 + RI <= m; i0 += RI)
          nn_tile_rows<T, RI, CP>(kb, A + i0 * lda + k0, lda, b, ldb, k0 == 0, sums + i0 * packed + t * W, packed);
        for (; i0 < m; ++i0)
          nn_tile_rows<T, 1, CP>(kb, A + i0 * lda + k0, lda, b, ldb, k0 == 0, sums + i0 * packed + t * W, packed);
      }
    }
    // Each thread reads back only the tiles it wrote (the same static schedule).
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = t * W; j < (t + 1) * W; ++j) C[i * ldc + j] = scaled(alpha, sums[i * packed + j], beta, C[i * ldc + j]);
#pragma omp for schedule(static)
    for (int64_t j = packed; j < n; ++j)
      for (int64_t i = 0; i < m; ++i)
        C[i * ldc + j] = scaled(alpha, scalar_column(k, A, lda, 1, i, B + j, ldb), beta, C[i * ldc + j]);
  }
}

// ---- C[N, n] = Aᵀ · B with A [k, N], B [k, n], k small (the gradient of a tail cluster's
// weights: one pass over C, which is written once). Threads own blocks of kRowBlock rows
// of C; within one, the columns of A it reads (k x kRowBlock) stay in L1 and the tile's
// rows of B (k x W) too.
inline constexpr int64_t kRowBlock = 16 * kOuterRows;

// With beta != 0 the tile's rows of C are read from memory (an accumulated gradient far
// larger than the caches): `ahead`, the tile two row groups further on, is prefetched
// while this one computes, so that read overlaps the arithmetic.
template <typename T, int RI, int CP>
void tn_tile(int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T alpha, T beta, T* c, int64_t ldc,
             const T* ahead) {
  using P = Packet<T>;
  constexpr int L = kLanes<T>;
  if (ahead)
    for (int r = 0; r < RI; ++r)
      for (int q = 0; q < CP; ++q) __builtin_prefetch(ahead + r * ldc + q * L, 1);
  P acc[RI][CP];
  for (int r = 0; r < RI; ++r)
    for (int q = 0; q < CP; ++q) acc[r][q] = ei::pset1<P>(T(0));
  outer_tile<T, RI, CP>(k, a, 1, lda, b, ldb, acc);
  const P pa = ei::pset1<P>(alpha);
  for (int r = 0; r < RI; ++r)
    for (int q = 0; q < CP; ++q) {
      T* out = c + r * ldc + q * L;
      if (beta == T(0)) ei::pstoreu(out, ei::pmul(pa, acc[r][q]));
      else ei::pstoreu(out, ei::pmadd(pa, acc[r][q], ei::pmul(ei::pset1<P>(beta), ei::ploadu<P>(out))));
    }
}

template <typename T>
void skinny_tn(int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta,
               T* C, int64_t ldc) {
  constexpr int RI = kOuterRows, CP = kOuterPackets<T>, L = kLanes<T>, W = CP * L;
  const int64_t tiles = n / W, packed = tiles * W;
  const int64_t blocks = (m + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(static) if (run_threaded())
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t r0 = blk * kRowBlock, r1 = std::min(m, r0 + kRowBlock);
    for (int64_t t = 0; t < tiles; ++t) {
      const T* b = B + t * W;
      int64_t i = r0;
      for (; i + RI <= r1; i += RI) {
        const T* ahead = beta != T(0) && i + 9 * RI <= m ? C + (i + 8 * RI) * ldc + t * W : nullptr;
        tn_tile<T, RI, CP>(k, A + i, lda, b, ldb, alpha, beta, C + i * ldc + t * W, ldc, ahead);
      }
      for (; i < r1; ++i) tn_tile<T, 1, CP>(k, A + i, lda, b, ldb, alpha, beta, C + i * ldc + t * W, ldc, nullptr);
    }
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t j = packed; j < n; ++j)
        C[i * ldc + j] = scaled(alpha, scalar_column(k, A, 1, lda, i, B + j, ldb), beta, C[i * ldc + j]);
  }
}

}  // namespace

bool is_skinny(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k) {
  if (m == 0 || n == 0 || k == 0) return false;
  if (ta == Trans::kNo && tb == Trans::kYes) return m <= kSkinnyMaxSide && n >= 1024;  // logits
  if (ta == Trans::kNo && tb == Trans::kNo) return m <= kSkinnyMaxSide && k >= 4096;   // d input
  if (ta == Trans::kYes && tb == Trans::kNo) return k <= kSkinnyMaxSide && m >= 1024;  // d weights
  return false;
}

template <typename T>
void skinny_gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                 const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (ta == Trans::kNo && tb == Trans::kYes) skinny_nt(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (ta == Trans::kNo && tb == Trans::kNo) skinny_nn(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  else skinny_tn(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

template void skinny_gemm<float>(Trans, Trans, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                                 int64_t, float, float*, int64_t);
template void skinny_gemm<double>(Trans, Trans, int64_t, int64_t, int64_t, double, const double*, int64_t,
                                  const double*, int64_t, double, double*, int64_t);

}  // namespace txl::cpu
