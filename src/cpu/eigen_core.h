// The one place txl includes Eigen. GCC 12 warns "may be used uninitialized" (O2) and
// "is used uninitialized" (O1) inside its own AVX-512 intrinsics (avx512fintrin.h,
// _mm512_undefined_pd/ps: the value is undefined on purpose) wherever Eigen's AVX-512
// packet code is inlined. GCC 13 no longer warns there. The diagnostics are attached
// to the intrinsic headers' lines, so silencing them around their first inclusion
// covers every expansion and leaves these warnings on for txl's own code.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13 && (defined(__x86_64__) || defined(__i386__))
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <Eigen/Core>
#pragma GCC diagnostic pop
#else
#include <Eigen/Core>
#endif
