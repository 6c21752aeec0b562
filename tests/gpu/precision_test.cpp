// GEMM precision modes: TF32, bf16 and fp16 tensor-core math with float32 accumulation
// stay within the expected error of their operand rounding, and really are in use (the
// error is above float32 level).
#include "gpu_test_util.h"

namespace txl {
namespace {

using gpu_test::GpuTest;
using gpu_test::rel_error;

TEST(GemmPrecision, ParsesConfigNames) {
  EXPECT_EQ(parse_gemm_precision("fp32"), GemmPrecision::kFp32);
  EXPECT_EQ(parse_gemm_precision("tf32"), GemmPrecision::kTf32);
  EXPECT_EQ(parse_gemm_precision("bf16"), GemmPrecision::kBf16);
  EXPECT_EQ(parse_gemm_precision("fp16"), GemmPrecision::kFp16);
  EXPECT_STREQ(gemm_precision_name(GemmPrecision::kBf16), "bf16");
  EXPECT_THROW(parse_gemm_precision("fp64"), Error);
}

class GpuPrecision : public GpuTest {};

// Relative error of a product of operands rounded to a format with unit roundoff u (per
// operand RMS about u/sqrt(3), so about 0.8u for the product): TF32 and fp16 keep 10
// mantissa bits (u = 2^-11 rounding, 2^-10 if truncating), bf16 7 (u = 2^-8 / 2^-9).
// Bounds: tf32/fp16 2e-3, bf16 1e-2, with a factor of about 2.5 to spare.
TEST_F(GpuPrecision, MixedPrecisionGemmsWithinOperandRounding) {
  if (!require_cuda()) GTEST_SKIP() << "skipped: needs the CUDA backend";
  CudaBackend& backend = *as_cuda_backend(dut());
  struct Mode {
    GemmPrecision p;
    double tol;
    const char* name;
  };
  for (const Mode& mode : {Mode{GemmPrecision::kTf32, 2e-3, "cuda-float(tf32 gemm)"},
                           Mode{GemmPrecision::kBf16, 1e-2, "cuda-float(bf16 gemm)"},
                           Mode{GemmPrecision::kFp16, 2e-3, "cuda-float(fp16 gemm)"}}) {
    backend.set_precision(mode.p);
    EXPECT_STREQ(dut().name(), mode.name);
    for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{128, 96, 64}, {33, 65, 17}, {257, 130, 300}}) {
      auto A = both(randn(m * k)), B = both(randn(n * k)), C = poisoned(m * n);
      cpu().gemm(Trans::kNo, Trans::kYes, m, n, k, 1.0f, A.c.data(), k, B.c.data(), k, 0.0f, C.c.data(), n);
      dut().gemm(Trans::kNo, Trans::kYes, m, n, k, 1.0f, A.d.data(), k, B.d.data(), k, 0.0f, C.d.data(), n);
      const double err = rel_error(read(dut(), C.d), read(cpu(), C.c));
      EXPECT_LE(err, mode.tol) << mode.name << " m=" << m << " n=" << n << " k=" << k;
      EXPECT_GT(err, 1e-6) << mode.name << ": no sign of reduced-precision operands";
    }
    // Batched (attention) products use the same mode.
    const int64_t batch = 8, q = 20, kl = 36, d = 64;
    auto Q = both(randn(batch * q * d)), K = both(randn(batch * kl * d)), S = poisoned(batch * q * kl);
    cpu().gemm_strided_batched(Trans::kNo, Trans::kYes, q, kl, d, 0.125f, Q.c.data(), d, q * d, K.c.data(), d,
                               kl * d, 0.0f, S.c.data(), kl, q * kl, batch);
    dut().gemm_strided_batched(Trans::kNo, Trans::kYes, q, kl, d, 0.125f, Q.d.data(), d, q * d, K.d.data(), d,
                               kl * d, 0.0f, S.d.data(), kl, q * kl, batch);
    const double err = rel_error(read(dut(), S.d), read(cpu(), S.c));
    EXPECT_LE(err, mode.tol) << mode.name << " batched";
    EXPECT_GT(err, 1e-6) << mode.name << " batched";
  }
  backend.set_precision(GemmPrecision::kFp32);
  EXPECT_STREQ(dut().name(), "cuda-float(fp32)");
}

}  // namespace
}  // namespace txl
